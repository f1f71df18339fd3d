"""Hostile requests: fuzzed methods, paths, query strings and headers; forged and huge values.

Two stacks. In process, the example's Flask app with its own middleware and mozlog logging,
under ``wsgiref.validate.validator`` on both sides of the middleware, gets what a lenient
server could pass on (CR, LF, NUL, any latin-1, 64 KiB values). Over HTTP, gunicorn serves
it the bytes a client can send; gunicorn refuses some of them itself (400, 414, 431) before
the middleware runs, which is fine: what reaches the middleware is held to the same rules.

* The middleware never answers 5xx and never raises; response headers are latin-1 without
  CR or LF; exactly one ``X-Request-ID``, the client's when it is acceptable, else a new one.
* Every log line is one mozlog JSON object, with no object nested in ``Fields``; each request
  has one summary, under the id echoed to the client.
* A rejected request id never reaches a log line or a header (no log forging), and a
  client's value is logged cut to ``MAX_CLIENT_FIELD_LENGTH`` (1024) characters plus
  ``TRUNCATION_MARKER``, so a 64 KiB header does not make a 64 KiB line.

``tests/test_wsgi_stack.py`` fuzzes a bare app the same way, one layer down.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import operator
import os
import re
import socket
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Callable, Optional
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from harness import (
    CLIENT_FIELDS,
    HOST,
    Gunicorn,
    is_summary,
    log_problems,
    mozlog_problem,
    parse_lines,
    tally,
    wait_until,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockerflow_wsgi.logging import JsonLogFormatter, RequestIdLogFilter
from dockerflow_wsgi.middleware import find_middleware
from dockerflow_wsgi.request_id import is_valid_request_id
from dockerflow_wsgi.summary import MAX_CLIENT_FIELD_LENGTH, TRUNCATION_MARKER

NEW_ID = re.compile(r"[0-9a-f]{32}")
#: No log line may be longer, whatever the client sent: the five client fields of a summary,
#: clipped, each character JSON-escaped as ``\u00XX`` at worst, and the rest of the record.
LINE_BOUND = 5 * 6 * (MAX_CLIENT_FIELD_LENGTH + len(TRUNCATION_MARKER)) + 4096
#: The same for printable ASCII values, which JSON leaves as they are.
ASCII_LINE_BOUND = 8 * 1024
KIB_64 = 64 * 1024

# -- values a client (or a lenient server) can produce -------------------------------------------

LATIN_1 = st.characters(max_codepoint=0xFF)
FORGED = [
    "abc\r\nX-Injected: 1",
    'abc\n{"Type":"request.summary","Fields":{"rid":"forged"}}',
    '{"Type":"request.summary","Fields":{"rid":"forged"}}',
    "forged\x00id",
    "id with spaces",
    "\u00e9t\u00e9",
    "caf\u00c3\u00a9",  # UTF-8 bytes of "café", as a server decodes them
    "\x1b[31mred",
]
huge = st.builds(
    operator.mul,
    st.sampled_from(["a", "\u00e9", "\r\n", "%2F", "\x00", '{"', "\u00ff", "../"]),
    st.integers(1000, KIB_64),
)
header_values = st.one_of(
    st.text(LATIN_1),
    st.text().map(lambda text: text.encode("utf-8").decode("latin-1")),
    st.binary().map(lambda raw: raw.decode("latin-1")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=140),
    st.sampled_from(FORGED),
    huge,
)
SPECIAL_PATHS = [
    "/",
    "/notes",
    "/stream",
    "/__heartbeat__",
    "/__lbheartbeat__",
    "/__version__",
    "/__heartbeat__/",
    "/__HEARTBEAT__",
    "//__heartbeat__",
    "/..",
    "/../../etc/passwd",
    "/__version__/../__heartbeat__",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/notes%2F..%2F__heartbeat__",
    "/notes/../__heartbeat__",
    "/__heartbeat__\x00",
    "/\x00",
    "/\u00e9",
    "/\u00e2\u0082\u00ac",
    "/" + "a" * KIB_64,
]
paths = st.one_of(
    st.sampled_from(SPECIAL_PATHS),
    st.text(LATIN_1).map(lambda text: "/" + text),
    huge.map(lambda text: "/" + text),
).filter(lambda path: path != "/boom")  # the example's route that raises on purpose
methods = st.one_of(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]),
    st.sampled_from(["get", "", "GET ", "G\x00T", "GET\r\n", "X" * 300]),
    st.text(LATIN_1, max_size=20),
)
queries = st.one_of(st.text(LATIN_1), huge)
optional = st.none() | header_values


def acceptable(request_id: Optional[str]) -> bool:
    """DESIGN.md: 1-128 characters of printable ASCII without whitespace."""
    return (
        request_id is not None
        and 1 <= len(request_id) <= 128
        and all("!" <= char <= "~" for char in request_id)
    )


def clipped(value: str) -> bool:
    return len(value) <= MAX_CLIENT_FIELD_LENGTH or (
        len(value) == MAX_CLIENT_FIELD_LENGTH + len(TRUNCATION_MARKER)
        and value.endswith(TRUNCATION_MARKER)
    )


def distinctive(rejected: str, others: list[Optional[str]]) -> bool:
    """Whether finding ``rejected`` in a log line could only mean that it was logged."""
    return len(rejected.strip()) >= 8 and not any(rejected in (other or "") for other in others)


# -- the in-process stack ------------------------------------------------------------------------


class _Lines(logging.Handler):
    """Formats every record as production does, one mozlog line each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonLogFormatter(logger_name="example_app"))
        self.addFilter(RequestIdLogFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _logging_left_as_it_was() -> Iterator[None]:
    """``create_app`` configures logging for the whole process; undo it for the other tests."""
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in ("request.summary", "example_app")]
    saved = (list(root.handlers), root.level, [logger.level for logger in loggers])
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
                stream = getattr(handler, "stream", None)
                if stream not in (None, sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                    stream.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for logger, level in zip(loggers, saved[2]):
            logger.setLevel(level)


@dataclass
class Stack:
    app: Callable[..., Any]
    handler: _Lines = field(default_factory=_Lines)

    @contextlib.contextmanager
    def logging(self) -> Iterator[_Lines]:
        root = logging.getLogger()
        summary = logging.getLogger("request.summary")
        levels = (root.level, summary.level)
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)
        summary.setLevel(logging.INFO)
        try:
            yield self.handler
        finally:
            root.removeHandler(self.handler)
            root.setLevel(levels[0])
            summary.setLevel(levels[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The example app, its middleware between two ``wsgiref.validate`` layers."""
    database = tmp_path_factory.mktemp("hostile") / "example.sqlite3"
    with pytest.MonkeyPatch.context() as patch, _logging_left_as_it_was():
        for name in list(os.environ):
            if name.startswith("DOCKERFLOW_") or name in ("REDIS_URL", "ALEMBIC_CONFIG"):
                patch.delenv(name)
        patch.setenv("DATABASE_URL", f"sqlite:///{database}")
        patch.setenv("DOCKERFLOW_SUMMARY_LOG_QUERYSTRING", "on")
        # Importing the module creates its own app too, from the same environment.
        from example_app.app import create_app

        flask_app = create_app()
    middleware = find_middleware(flask_app)
    assert middleware is not None
    # The inner validator checks how the middleware calls the app; the outer one, what the
    # server gets from the middleware.
    middleware.app = validator(middleware.app)
    return Stack(validator(flask_app))


@dataclass
class Result:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    lines: list[str]
    complaints: list[str]

    @property
    def code(self) -> int:
        return int(self.status[:3])


def call(stack: Stack, environ: dict[str, Any]) -> Result:
    """One request, as a server runs it: call, iterate, close; with its log lines."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    with stack.logging() as handler, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handler.lines.clear()
        body = stack.app(environ, start_response)
        try:
            chunks = list(body)
        finally:
            body.close()
    complaints = [str(warning.message) for warning in caught]
    return Result(started[-1][0], started[-1][1], b"".join(chunks), list(handler.lines), complaints)


def environ_for(
    method: str, path: str, query: str, request_id: Any, agent: Any, lang: Any
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": BytesIO(b""),
    }
    for key, value in (
        ("HTTP_X_REQUEST_ID", request_id),
        ("HTTP_USER_AGENT", agent),
        ("HTTP_ACCEPT_LANGUAGE", lang),
    ):
        if value is not None:
            environ[key] = value
    setup_testing_defaults(environ)
    return environ


def check_answer(result: Result, request_id: Optional[str]) -> str:
    """The rules every answer keeps; returns the request id the client was given."""
    assert result.code < 500, (result.status, result.body[:300])
    for name, value in result.headers:
        assert type(name) is str and type(value) is str
        name.encode("latin-1")
        value.encode("latin-1")
        assert not {"\r", "\n"} & set(name + value)
    [echoed] = [value for name, value in result.headers if name.lower() == "x-request-id"]
    if acceptable(request_id):
        assert echoed == request_id
    else:
        assert NEW_ID.fullmatch(echoed), echoed
    return echoed


def check_lines(lines: list[str], echoed: str) -> list[dict[str, Any]]:
    """The rules every log line keeps; returns the records."""
    records = []
    for line in lines:
        assert line.splitlines() == [line], "a record spans several lines"
        assert len(line) <= LINE_BOUND, len(line)
        [record] = parse_lines([line])[0]
        assert mozlog_problem(record) is None, (mozlog_problem(record), line[:300])
        records.append(record)
    [summary] = [record for record in records if is_summary(record)]
    fields = summary["Fields"]
    assert fields["rid"] == echoed
    for name in CLIENT_FIELDS:
        if name in fields:
            assert clipped(fields[name]), name
    return records


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=methods,
    path=paths,
    query=queries,
    request_id=optional,
    agent=optional,
    lang=optional,
)
@example(method="GET", path="/", query="", request_id=FORGED[0], agent=None, lang=None)
@example(method="GET", path="/", query="", request_id=FORGED[1], agent=None, lang=None)
@example(method="GET", path="/", query="", request_id=FORGED[2], agent=None, lang=None)
@example(
    method="GET", path="/__heartbeat__", query="", request_id="x" * KIB_64, agent=None, lang=None
)
def test_any_request_through_the_validated_stack(
    stack: Stack,
    method: str,
    path: str,
    query: str,
    request_id: Optional[str],
    agent: Optional[str],
    lang: Optional[str],
) -> None:
    result = call(stack, environ_for(method, path, query, request_id, agent, lang))
    tally("requests sent (in process)")

    assert [
        text for text in result.complaints if not text.startswith("Unknown REQUEST_METHOD")
    ] == []
    echoed = check_answer(result, request_id)
    check_lines(result.lines, echoed)
    if request_id is not None and not acceptable(request_id):
        # No log forging: the rejected value is nowhere, raw or decoded.
        assert request_id not in {value for _, value in result.headers}
        if distinctive(request_id, [method, path, query, agent, lang]):
            for line in result.lines:
                assert request_id not in line
                fields = json.loads(line)["Fields"]
                assert not any(request_id in str(value) for value in fields.values())


@pytest.mark.parametrize("header", ["HTTP_USER_AGENT", "HTTP_ACCEPT_LANGUAGE", "HTTP_X_REQUEST_ID"])
def test_a_64_kib_header_makes_no_64_kib_line(stack: Stack, header: str) -> None:
    environ = environ_for("GET", "/" + "p" * KIB_64, "q=" + "x" * KIB_64, None, None, None)
    environ[header] = "v" * KIB_64
    result = call(stack, environ)
    tally("requests sent (in process)")
    echoed = check_answer(result, environ.get("HTTP_X_REQUEST_ID"))
    records = check_lines(result.lines, echoed)
    [summary] = [record["Fields"] for record in records if is_summary(record)]
    assert summary["path"].endswith(TRUNCATION_MARKER)
    assert summary["querystring"].endswith(TRUNCATION_MARKER)
    if header != "HTTP_X_REQUEST_ID":
        name = {"HTTP_USER_AGENT": "agent", "HTTP_ACCEPT_LANGUAGE": "lang"}[header]
        assert summary[name] == "v" * MAX_CLIENT_FIELD_LENGTH + TRUNCATION_MARKER
    assert max(len(line) for line in result.lines) < ASCII_LINE_BOUND


# -- over HTTP, through gunicorn -----------------------------------------------------------------


@dataclass
class RawAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    raw_head: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def send_raw(port: int, request: bytes) -> RawAnswer:
    """Send ``request`` as it is, on a new connection, and read the answer to the end."""
    with socket.create_connection((HOST, port), timeout=15) as sock:
        sock.sendall(request)
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    tally("requests sent")
    tally("requests answered")
    head = received.split(b"\r\n\r\n", 1)[0]
    status_line, *header_lines = head.split(b"\r\n")
    headers = []
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers.append((name, value.strip()))
    return RawAnswer(int(status_line.split()[1]), headers, head)


@pytest.fixture(scope="module")
def server(serve: Any) -> Gunicorn:
    return serve("hostile", threads=4, DOCKERFLOW_SUMMARY_LOG_QUERYSTRING="on")


TOKEN = st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PROPFIND"])
# What can stand in a request target or a header value on the wire: no CR, LF or space in a
# target; anything but CR and LF in a value (gunicorn refuses some of it itself).
TARGET_BYTES = (
    st.binary()
    .map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
    .map(lambda raw: raw.replace(b" ", b""))
)
wire_targets = st.one_of(
    st.sampled_from([path.encode("latin-1") for path in SPECIAL_PATHS[:15]]),
    st.sampled_from([b"/a%2Fb", b"/%00", b"/%C3%A9", b"/%ff", b"/" + b"a" * 3000]),
    TARGET_BYTES.map(lambda raw: b"/" + raw),
)
wire_values = st.one_of(
    st.binary().map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=140).map(
        str.encode
    ),
    st.sampled_from([value.encode("latin-1") for value in FORGED if "\r" not in value]),
    st.integers(1, 7000).map(lambda size: b"a" * size),
)


@pytest.mark.servers
def test_any_request_over_http(server: Gunicorn) -> None:
    """Fuzzed requests on the wire; then every answer the middleware gave was logged once."""
    given_ids: collections.Counter[str] = collections.Counter()
    # (the id the request was given, the rejected value it came with)
    rejected: list[tuple[str, str]] = []

    @settings(max_examples=250, deadline=None, database=None)
    @given(
        method=TOKEN,
        target=wire_targets,
        query=st.none() | TARGET_BYTES,
        request_id=st.none() | wire_values,
        agent=st.none() | wire_values,
    )
    def one_request(
        method: bytes,
        target: bytes,
        query: Optional[bytes],
        request_id: Optional[bytes],
        agent: Optional[bytes],
    ) -> None:
        lines = [
            method + b" " + target + (b"?" + query if query is not None else b"") + b" HTTP/1.1"
        ]
        lines += [b"Host: fuzz", b"Connection: close", b"Content-Length: 0"]
        if request_id is not None:
            lines.append(b"X-Request-ID: " + request_id)
        if agent is not None:
            lines.append(b"User-Agent: " + agent)
        answer = send_raw(server.port, b"\r\n".join(lines) + b"\r\n\r\n")

        for line in answer.raw_head.split(b"\r\n"):
            assert b"\r" not in line and b"\n" not in line
        echoed = answer.header(b"X-Request-ID")
        if not echoed:
            # gunicorn refused the request before the middleware saw it.
            assert 400 <= answer.status < 500, answer.raw_head
            tally("hostile requests refused by gunicorn")
            return
        [echoed_id] = echoed
        assert answer.status < 500, answer.raw_head
        # gunicorn decodes header values as latin-1, without surrounding whitespace.
        sent = None if request_id is None else request_id.decode("latin-1").strip(" \t")
        if sent is not None and is_valid_request_id(sent):
            assert echoed_id.decode("latin-1") == sent
        else:
            assert NEW_ID.fullmatch(echoed_id.decode("ascii"))
            others = [target, agent or b"", query or b""]
            if sent and distinctive(sent, [other.decode("latin-1") for other in others]):
                rejected.append((echoed_id.decode("ascii"), sent))
        given_ids[echoed_id.decode("latin-1")] += 1

    one_request()
    assert given_ids, "nothing reached the middleware"
    # Each answer is logged when the server closes it, just after the client has it.
    wait_until(
        lambda: len([r for r in server.records() if is_summary(r)]) >= sum(given_ids.values()),
        10,
    )
    lines = server.stdout_lines()
    assert log_problems(lines) == []
    assert max(len(line) for line in lines) <= LINE_BOUND
    logged = collections.Counter(r["Fields"]["rid"] for r in parse_lines(lines)[0] if is_summary(r))
    assert {rid: logged[rid] for rid, count in given_ids.items() if logged[rid] != count} == {}
    # No log forging: a rejected id is in none of its request's lines, raw or decoded.
    lines_of: dict[str, list[tuple[str, dict[str, Any]]]] = collections.defaultdict(list)
    for line, record in zip(lines, parse_lines(lines)[0]):
        lines_of[record["Fields"].get("rid", "")].append((line, record))
    forged = [
        (request_id, value)
        for request_id, value in rejected
        for line, record in lines_of[request_id]
        if value in line or any(value in str(field) for field in record["Fields"].values())
    ]
    assert forged == []


# (what is sent as X-Request-ID, what must happen: "refused" by gunicorn, "replaced" by a new
# id, or "kept" as it is)
WIRE_FORGERIES = {
    "CRLF and a fake record": (b'forged\r\n{"Type":"request.summary"}', "refused"),
    "obsolete line folding": (b"forged\r\n folded-line", "refused"),
    "lone LF": (b"forged\nX-Injected: 1", "refused"),
    "lone CR": (b"forged\rX-Injected: 1", "refused"),
    "NUL": (b"forged\x00id", "refused"),
    "DEL": (b"forged\x7fid", "refused"),
    "escape sequence": (b"\x1b[31mforged-red", "refused"),
    "spaces": (b"forged id with spaces", "replaced"),
    "tab": (b"forged\tid-with-tab", "replaced"),
    "UTF-8": ("forg\u00e9-\u00e9t\u00e9".encode(), "replaced"),
    "latin-1": (b"forg\xe9-\xe9t\xe9", "replaced"),
    "129 characters": (b"forged" + b"f" * 123, "replaced"),
    "8000 characters": (b"forged" + b"f" * 7994, "replaced"),
    "a JSON record": (b'{"Type":"request.summary","Fields":{"rid":"wire-forged"}}', "kept"),
}


@pytest.mark.servers
@pytest.mark.parametrize("case", list(WIRE_FORGERIES))
def test_a_forged_request_id_on_the_wire(server: Gunicorn, case: str) -> None:
    value, fate = WIRE_FORGERIES[case]
    marker = f"wire-{list(WIRE_FORGERIES).index(case)}"
    request = (
        f"GET /?case={marker} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n".encode()
        + b"X-Request-ID: "
        + value
        + b"\r\n\r\n"
    )
    answer = send_raw(server.port, request)
    echoed = answer.header(b"X-Request-ID")
    if fate == "refused":
        assert (answer.status, echoed) == (400, [])
        return
    [echoed_id] = echoed
    if fate == "kept":
        assert echoed_id == value
    else:
        assert NEW_ID.fullmatch(echoed_id.decode("ascii"))
    [summary] = server.wait_for_summary(echoed_id.decode("latin-1"))
    assert summary["Fields"]["querystring"] == f"case={marker}"
    if fate == "replaced":
        text = value.decode("latin-1")
        for line in server.stdout_lines():
            assert text not in line
            assert text not in str(json.loads(line))


@pytest.mark.servers
def test_a_forged_request_id_never_reached_the_log(server: Gunicorn) -> None:
    """Nothing of a refused or replaced value is in any line, raw or decoded."""
    values = [value for value, fate in WIRE_FORGERIES.values() if fate != "kept"]
    lines = server.stdout_lines()
    decoded = [str(parse_lines([line])[0]) for line in lines]
    for value in values:
        text = value.decode("latin-1")
        assert not any(text in line for line in lines), value
        assert not any(text in line for line in decoded), value


@pytest.mark.servers
def test_huge_headers_on_the_wire(server: Gunicorn) -> None:
    """gunicorn takes header fields up to 8190 bytes: values that long are clipped in the
    summary; 64 KiB is refused by gunicorn (431) and logs nothing."""
    big = b"b" * 8000
    answer = send_raw(
        server.port,
        b"GET /?huge=1 HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
        + b"User-Agent: "
        + big
        + b"\r\nAccept-Language: "
        + big
        + b"\r\nX-Request-ID: huge-1\r\n\r\n",
    )
    assert answer.status == 200
    [summary] = server.wait_for_summary("huge-1")
    clipped_value = "b" * MAX_CLIENT_FIELD_LENGTH + TRUNCATION_MARKER
    assert (summary["Fields"]["agent"], summary["Fields"]["lang"]) == (clipped_value,) * 2
    line = next(line for line in server.stdout_lines() if '"rid":"huge-1"' in line)
    assert len(line) < ASCII_LINE_BOUND

    refused = send_raw(
        server.port,
        b"GET /?huge=2 HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
        + b"User-Agent: "
        + b"c" * KIB_64
        + b"\r\nX-Request-ID: huge-2\r\n\r\n",
    )
    assert (refused.status, refused.header(b"X-Request-ID")) == (431, [])
    assert server.summaries("huge-2") == []


@pytest.mark.servers
def test_the_log_over_http_stays_mozlog(server: Gunicorn) -> None:
    assert server.stop() == 0
    lines = server.stdout_lines()
    assert log_problems(lines) == []
    assert max(len(line) for line in lines) <= LINE_BOUND
