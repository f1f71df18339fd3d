"""Containing a check: nothing it raises or returns leaves it except clean messages."""

from __future__ import annotations

import enum
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.containment import MAX_MESSAGE_LENGTH, CheckFailure, evaluate
from dockerflow_wsgi.redact import MASK

E101 = "dockerflow.health.E101"


class Level(enum.IntEnum):
    SLOW = 30


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([], []),
        (None, []),
        ([checks.Warning("slow", id="x.W1")], [checks.Warning("slow", id="x.W1")]),
        ((checks.Info("fyi", id="x.I1"),), [checks.Info("fyi", id="x.I1")]),
        ([checks.CheckMessage("custom", level=35)], [checks.CheckMessage("custom", level=35)]),
        # Anything a message holds that is not text is made text: JSON never sees a float.
        ([checks.Warning(12.5, id="x.W2")], [checks.Warning("12.5", id="x.W2")]),
        ([checks.Warning(float("nan"))], [checks.Warning("nan")]),
        ([checks.Warning(float("-inf"))], [checks.Warning("-inf")]),
        ([checks.Warning(["a", 1])], [checks.Warning("['a', 1]")]),
        ([checks.CheckMessage("enum", level=Level.SLOW)], [checks.Warning("enum")]),
    ],
)
def test_valid_results_cross_as_plain_messages(result, expected):
    messages = evaluate(lambda: result)
    assert messages == expected
    for message in messages:
        assert type(message.msg) is str
        assert type(message.level) is int


class Boom(BaseException):
    """Neither an Exception, nor one of Python's own."""


@pytest.mark.parametrize(
    ("raised", "text"),
    [
        (ValueError("the disk is on fire"), "ValueError: the disk is on fire"),
        (SystemExit(3), "SystemExit: 3"),
        (SystemExit(0), "SystemExit: 0"),
        (SystemExit(), "SystemExit"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
        (GeneratorExit(), "GeneratorExit"),
        (Boom("custom"), "Boom: custom"),
        (RecursionError("maximum recursion depth exceeded"), "RecursionError: maximum recursion"),
        (MemoryError(), "MemoryError"),
    ],
)
def test_any_exception_becomes_E101_with_its_type_and_text(raised, text):
    def check():
        raise raised

    [message] = evaluate(check)
    assert isinstance(message, CheckFailure)
    assert (message.id, message.level) == (E101, checks.ERROR)
    assert message.msg.startswith(text)
    assert "Traceback" in message.traceback
    assert type(raised).__name__ in message.traceback


def test_an_exception_whose_text_cannot_be_made_is_still_E101():
    class Hostile(Exception):
        def __str__(self):
            raise SystemExit("str() raised")

    def check():
        raise Hostile

    [message] = evaluate(check)
    assert message.id == E101
    assert message.msg == "Hostile: <the exception's text cannot be shown>"


class Unprintable:
    def __str__(self):
        raise RuntimeError("no text")

    def __repr__(self):
        raise KeyboardInterrupt


def deeply_nested(depth: int) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


def message_with(**attributes):
    message = checks.Error("placeholder", id="x.E1")
    message.__dict__.update(attributes)
    return message


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ("ok", "the check returned 'ok', not a list of messages"),
        ({"a": 1}, "the check returned {'a': 1}, not a list of messages"),
        (42, "the check returned 42, not a list of messages"),
        (iter([]), "not a list of messages"),
        (Unprintable(), "the check returned a Unprintable that cannot be shown"),
        (["not a message"], "message 0 of the check's result is 'not a message', not a"),
        ([checks.Info("x"), 3], "message 1 of the check's result is 3, not a CheckMessage"),
        ([message_with(id=["x", "y"])], "has the id ['x', 'y'], not a str or None"),
        ([message_with(id=7)], "has the id 7, not a str or None"),
        ([message_with(level="error")], "has the level 'error', not an int"),
        ([message_with(level=True)], "has the level True, not an int"),
        ([message_with(level=40.0)], "has the level 40.0, not an int"),
        ([message_with(level=None)], "has the level None, not an int"),
        ([message_with(msg=Unprintable())], "has a msg of type Unprintable that cannot be made"),
        ([message_with(msg=deeply_nested(100_000))], "has a msg of type list that cannot be"),
    ],
)
def test_a_result_that_is_not_a_list_of_valid_messages_is_E101(result, problem):
    [message] = evaluate(lambda: result)
    assert isinstance(message, CheckFailure)
    assert message.id == E101
    assert problem in message.msg
    assert len(message.msg) <= 200


def test_a_result_that_raises_while_it_is_inspected_is_E101():
    class Sneaky(list):
        def __iter__(self):
            raise SystemExit("iterating raised")

    [message] = evaluate(lambda: Sneaky([checks.Info("x")]))
    assert message.id == E101
    assert "SystemExit: iterating raised" in message.msg


def test_messages_are_masked_before_they_are_cut():
    url = "postgresql://app:" + "s" * (MAX_MESSAGE_LENGTH - 20) + "@db/app"
    [message] = evaluate(lambda: [checks.Error(f"cannot reach {url}", id="x.E1")])
    assert "sss" not in message.msg
    assert message.msg == f"cannot reach postgresql://app:{MASK}@db/app"


def test_long_messages_are_cut_to_the_limit():
    [message] = evaluate(lambda: [checks.Warning("x" * 10 * MAX_MESSAGE_LENGTH)])
    assert len(message.msg) == MAX_MESSAGE_LENGTH
    assert message.msg.endswith("...")


# With a sign no traceback's file names or source lines hold, so that finding the password in
# the output can only mean it leaked.
secret_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="@:/()[]"),
    min_size=6,
    max_size=40,
).filter(lambda secret: set(secret) & set("!$%*+;<>?^|~"))


@given(password=secret_text, prefix=st.text(max_size=30), where=st.sampled_from(["msg", "raise"]))
def test_a_url_password_from_a_user_check_is_never_shown(password, prefix, where):
    assume(password not in f"{prefix} cannot reach redis://default:@cache.internal:6379/0")
    url = f"redis://default:{password}@cache.internal:6379/0"
    text = f"{prefix} cannot reach {url} after 3 tries"

    def check():
        if where == "raise":
            raise ConnectionError(text)
        return [checks.Error(text, id="x.E1")]

    [message] = evaluate(check)
    shown = json.dumps([message.msg, message.hint, getattr(message, "traceback", None)])
    assert password not in shown
    assert f"redis://default:{MASK}@" in message.msg


@given(
    value=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&#"),
        min_size=6,
        max_size=40,
    ),
    name=st.sampled_from(["password", "PASSWD", "pwd", "Token", "api_key", "auth", "secret"]),
)
def test_a_secret_query_parameter_from_a_user_check_is_never_shown(value, name):
    text = f"postgresql://app@db/app?sslmode=require&{name}={value}&connect_timeout=2 failed"
    # The value must be found nowhere else in the text (not "postgr", say).
    assume(value not in text.replace(f"{name}={value}", f"{name}="))

    [message] = evaluate(lambda: [checks.Error(text, id="x.E1")])
    assert value not in message.msg
    assert f"{name}={MASK}" in message.msg
