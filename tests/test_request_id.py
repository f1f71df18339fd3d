"""Request ids: which client ids are trusted as they are, and what a generated one looks like."""

from __future__ import annotations

import asyncio
import os
import re
import string
import threading
import uuid

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, request_id
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.request_id import (
    MAX_REQUEST_ID_LENGTH,
    current_request_id,
    current_request_id_header,
    generate_request_id,
    is_valid_request_id,
)

# Same examples on every run, no example database written next to the project.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

VISIBLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


def test_generated_id_is_32_lowercase_hex_digits():
    assert re.fullmatch(r"[0-9a-f]{32}", generate_request_id())


def test_generated_ids_are_version_4_rfc_4122_uuids():
    for _ in range(1000):
        request_id = generate_request_id()

        parsed = uuid.UUID(hex=request_id)

        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == request_id


def test_generated_ids_are_unique():
    ids = {generate_request_id() for _ in range(10_000)}

    assert len(ids) == 10_000


def test_ids_stay_unique_across_batches_and_threads():
    per_thread = 5 * request_id.ID_BATCH_SIZE
    results: list[list[str]] = []

    def draw() -> None:
        results.append([generate_request_id() for _ in range(per_thread)])

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    drawn = [each for batch in results for each in batch]
    assert len(drawn) == 8 * per_thread
    assert len(set(drawn)) == len(drawn)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_pending_ids():
    generate_request_id()  # the parent now holds a batch with ids still to hand out
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the ids it would give next, then leave at once
        os.close(read_end)
        os.write(write_end, " ".join(generate_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = pipe.read().split()
    os.waitpid(pid, 0)
    parent_ids = [generate_request_id() for _ in range(3)]

    assert len(child_ids) == 3
    assert not set(child_ids) & set(parent_ids)


def test_generated_id_is_itself_a_valid_request_id():
    assert is_valid_request_id(generate_request_id())


def test_max_length_is_128():
    assert MAX_REQUEST_ID_LENGTH == 128


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a", id="one character"),
        pytest.param("x" * 128, id="128 characters"),
        pytest.param("3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b", id="uuid with dashes"),
        pytest.param("3f2b8c1e5d4a4e6f9a7b0c1d2e3f4a5b", id="uuid hex"),
        pytest.param("Root=1-67891233-abcdef012345678912345678", id="aws trace id"),
        pytest.param(string.punctuation, id="all punctuation"),
        pytest.param(VISIBLE_ASCII, id="every visible ascii character"),
    ],
)
def test_valid_request_ids(value):
    assert is_valid_request_id(value) is True


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 129, id="129 characters"),
        pytest.param("abc def", id="space"),
        pytest.param(" abc", id="leading space"),
        pytest.param("abc\tdef", id="tab"),
        pytest.param("abc\rdef", id="CR"),
        pytest.param("abc\ndef", id="LF"),
        pytest.param("abc\r\nX-Injected: 1", id="header injection"),
        pytest.param("abc\x00def", id="NUL"),
        pytest.param("abc\x7fdef", id="DEL"),
        pytest.param("abc\x1bdef", id="ESC"),
        pytest.param("caf\u00e9", id="non-ascii e acute"),
        pytest.param("caf\u00c3\u00a9", id="utf-8 bytes decoded as latin-1"),
        pytest.param("id\u00a0x", id="no-break space"),
        pytest.param("id\u2028x", id="line separator"),
        pytest.param("\U0001f600", id="emoji"),
    ],
)
def test_invalid_request_ids(value):
    assert is_valid_request_id(value) is False


def _is_visible_ascii(value: str) -> bool:
    return 1 <= len(value) <= 128 and all(0x21 <= ord(char) <= 0x7E for char in value)


@DETERMINISTIC
@given(st.text(max_size=200))
@example("")
@example("x" * 128)
@example("x" * 129)
@example("a b")
@example("\x7f")
def test_valid_exactly_when_1_to_128_visible_ascii_characters(value):
    assert is_valid_request_id(value) is _is_visible_ascii(value)


@DETERMINISTIC
@given(st.text(alphabet=VISIBLE_ASCII, min_size=1, max_size=128))
def test_any_visible_ascii_id_up_to_128_characters_is_valid(value):
    assert is_valid_request_id(value) is True


@DETERMINISTIC
@given(
    st.text(alphabet=VISIBLE_ASCII, max_size=60),
    st.characters(exclude_characters=VISIBLE_ASCII),
    st.text(alphabet=VISIBLE_ASCII, max_size=60),
)
def test_one_character_outside_visible_ascii_makes_an_id_invalid(before, bad, after):
    assert is_valid_request_id(before + bad + after) is False


# -- the header to pass the id on under ---------------------------------------------------------


def _seen_by_app(header: str | None) -> list[tuple[str | None, str]]:
    """What the app saw (id, header) while called and while its streamed body was made, and
    what is current once the response is closed."""
    seen = []

    def app(environ, start_response):
        seen.append((current_request_id(), current_request_id_header()))
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            seen.append((current_request_id(), current_request_id_header()))
            yield b"hello"

        return body()

    options = {} if header is None else {"request_id_header": header}
    TestApp(DockerflowMiddleware(app, **options)).get("/", headers={"X-Trace": "abc"})
    seen.append((current_request_id(), current_request_id_header()))
    return seen


def test_the_header_of_the_middleware_is_current_while_the_app_runs():
    (called, streamed, after) = _seen_by_app("X-Trace")

    assert called[1] == streamed[1] == "X-Trace"
    assert called[0] == streamed[0] == "abc"
    assert after == (None, "X-Request-ID")


def test_the_default_header_is_current_by_default():
    (called, streamed, after) = _seen_by_app(None)

    assert called[1] == streamed[1] == after[1] == "X-Request-ID"


def test_the_header_of_the_asgi_middleware_is_current_while_the_app_runs():
    seen = []

    async def app(scope, receive, send):
        seen.append(current_request_id_header())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    middleware = DockerflowASGIMiddleware(app, request_id_header="X-Correlation-ID")
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(middleware(scope, receive, send))

    assert seen == ["X-Correlation-ID"]
    assert current_request_id_header() == "X-Request-ID"
