"""Containing a check: whatever it does, what leaves it is a list of clean messages.

A check is the application's code, or a plugin's, run for a public endpoint. Nothing it does
may reach the request: an exception of any kind (``SystemExit`` and ``KeyboardInterrupt``
included, which would otherwise end a server's worker), a result of the wrong shape, a message
whose text cannot be made or holds a password, a value JSON cannot carry. Each of those
becomes an E101 Error for that check alone, and every text that crosses is masked and bounded.
So is the number of messages: a check that returns thousands would otherwise make a heartbeat
body of megabytes and as many log records at every run.
"""

from __future__ import annotations

import heapq
import inspect
from operator import attrgetter
from typing import Any, NamedTuple, Optional

from .. import health
from ..redact import describe_exception, mask_secrets, masked_traceback
from .messages import CheckMessage, Error, Info
from .registry import Check

__all__ = [
    "MAX_MESSAGES",
    "MAX_MESSAGE_LENGTH",
    "CheckFailure",
    "evaluate",
    "evaluate_async",
    "is_async",
]

#: Characters of a message's text (or an exception's) that a heartbeat shows.
MAX_MESSAGE_LENGTH = 1000

#: Messages of one check that cross the boundary, those of the highest levels; the others are
#: counted in one more message, I106.
MAX_MESSAGES = 100

# How much of a result that is not a list of messages is quoted in the E101 message.
_QUOTED_RESULT_LENGTH = 80


class CheckFailure(Error):
    """E101: the check raised, or returned something that is not a list of valid messages.

    :param traceback: the masked traceback of the exception the check raised, if any; it is
        logged with the message, never served.
    :param exception_type: the qualified name of that exception's type, for the check's
        OpenTelemetry span.
    """

    def __init__(
        self,
        msg: str,
        *,
        traceback: Optional[str] = None,
        exception_type: Optional[str] = None,
    ) -> None:
        super().__init__(
            msg,
            hint="the check raised an exception or returned an invalid result; see the log",
            id=health.ERROR_CHECK_FAILED,
        )
        self.traceback = traceback
        self.exception_type = exception_type


def is_async(check: Check) -> bool:
    """Whether ``check`` is an ``async def`` function (a partial of one, or an object whose
    ``__call__`` is one): it is then awaited on an event loop, not called on a thread."""
    call = type(check).__call__ if not inspect.isroutine(check) else None
    return inspect.iscoroutinefunction(check) or inspect.iscoroutinefunction(call)


def evaluate(check: Check) -> list[CheckMessage]:
    """Call ``check`` and return its messages, clean; never raises, whatever the check does."""
    try:
        try:
            result = check()
        except BaseException as exc:
            return _raised(exc)
        if inspect.iscoroutine(result):
            result.close()  # never awaited: no warning about it, and nothing of it runs
            return [CheckFailure("the check returned a coroutine: declare it with async def")]
        return _validated(result)
    except BaseException as exc:
        return _uninspectable(exc)


async def evaluate_async(check: Check) -> list[CheckMessage]:
    """Await ``check`` and return its messages, clean; never raises, whatever the check does
    (its cancellation included: a check cancelled with its event loop is E101 too)."""
    try:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            return _raised(exc)
        return _validated(result)
    except BaseException as exc:
        return _uninspectable(exc)


def _raised(exc: BaseException) -> list[CheckMessage]:
    kind = type(exc)
    return [
        CheckFailure(
            describe_exception(exc, limit=MAX_MESSAGE_LENGTH),
            traceback=masked_traceback(exc),
            exception_type=f"{kind.__module__}.{kind.__qualname__}",
        )
    ]


def _uninspectable(exc: BaseException) -> list[CheckMessage]:
    # Inspecting what the check returned raised: a hostile __eq__, __len__, __class__...
    return [
        CheckFailure(
            "the check's result could not be inspected: "
            + describe_exception(exc, limit=MAX_MESSAGE_LENGTH)
        )
    ]


class _Plain(NamedTuple):
    """A message's values, each read once and of the right type, not masked yet."""

    text: str
    level: int
    hint: Optional[str]
    ident: Optional[str]


def _validated(result: Any) -> list[CheckMessage]:
    if result is None:
        return []
    if not isinstance(result, (list, tuple)):
        return [CheckFailure(f"the check returned {_quoted(result)}, not a list of messages")]
    plain = []
    for position, message in enumerate(result):
        values, problem = _plain(message)
        if values is None:
            return [CheckFailure(f"message {position} of the check's result {problem}")]
        plain.append(values)
    if len(plain) <= MAX_MESSAGES:
        return [_masked(values) for values in plain]
    # Highest levels first, in the check's order within a level; only those kept are masked.
    kept = heapq.nlargest(MAX_MESSAGES, plain, key=attrgetter("level"))
    return [*map(_masked, kept), _left_out(len(plain) - MAX_MESSAGES)]


def _plain(message: Any) -> tuple[Optional[_Plain], str]:
    """The values of ``message``, or why it is not a valid message."""
    if not isinstance(message, CheckMessage):
        return None, f"is {_quoted(message)}, not a CheckMessage"
    level = message.level
    if not isinstance(level, int) or isinstance(level, bool):
        return None, f"has the level {_quoted(level)}, not an int such as checks.ERROR"
    ident = message.id
    if ident is not None and not isinstance(ident, str):
        return None, f"has the id {_quoted(ident)}, not a str or None"
    text = _text(message.msg)
    if text is None:
        return None, f"has a msg of type {type(message.msg).__name__} that cannot be made text"
    hint = message.hint
    return (
        _Plain(
            text,
            int(level),
            str.__str__(hint) if isinstance(hint, str) else None,
            None if ident is None else str.__str__(ident),
        ),
        "",
    )


def _masked(values: _Plain) -> CheckMessage:
    """A plain message of ``values``, its texts masked and bounded."""
    return CheckMessage(
        mask_secrets(values.text, limit=MAX_MESSAGE_LENGTH),
        level=values.level,
        hint=None if values.hint is None else mask_secrets(values.hint),
        id=None if values.ident is None else mask_secrets(values.ident),
    )


def _left_out(count: int) -> CheckMessage:
    return Info(
        f"{count:,} more messages left out: a check reports at most {MAX_MESSAGES}",
        hint="the heartbeat and the log keep the messages of the highest levels; report a "
        "problem once, with how often it occurs",
        id=health.INFO_MESSAGES_LEFT_OUT,
    )


def _text(msg: Any) -> Optional[str]:
    """``msg`` as text (so a float NaN becomes the word, never a bare ``NaN`` in JSON)."""
    if type(msg) is str:
        return msg
    try:
        text = str(msg)
    except BaseException:
        return None
    return str.__str__(text) if isinstance(text, str) else None


def _quoted(value: Any) -> str:
    """A short, masked description of a value the check should not have given."""
    try:
        text = repr(value)
    except BaseException:
        return f"a {type(value).__name__} that cannot be shown"
    return mask_secrets(text, limit=_QUOTED_RESULT_LENGTH)
