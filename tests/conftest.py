"""Shared fixtures: log capture, a clean check registry and environment, and small WSGI apps;
the summary's direct write off under ``DOCKERFLOW_TEST_NO_DIRECT_LOG=1``."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from wsgiref.util import setup_testing_defaults

import pytest
import server_process

from dockerflow_wsgi import direct_log
from dockerflow_wsgi.checks import clear_checks
from dockerflow_wsgi.drain import MARK_NAME
from dockerflow_wsgi.logging import RequestIdLogFilter
from dockerflow_wsgi.state_dir import default_state_dir


class _RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _capture(
    logger_name: str, level: int, *filters: logging.Filter
) -> Iterator[list[logging.LogRecord]]:
    """Collect the records of one logger (through ``filters``, as a handler of the application
    would see them), then put its handlers and level back."""
    logger = logging.getLogger(logger_name)
    handler = _RecordList()
    for record_filter in filters:
        handler.addFilter(record_filter)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


@pytest.fixture
def summary_records() -> Iterator[list[logging.LogRecord]]:
    """The records of the ``request.summary`` logger, with that logger enabled at INFO."""
    with _capture("request.summary", logging.INFO) as records:
        yield records


@pytest.fixture
def app_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the application's ``app`` logger, through the request id filter, as a
    handler sees them: with ``rid`` and the active OpenTelemetry span's ids."""
    with _capture("app", logging.INFO, RequestIdLogFilter()) as records:
        yield records


@pytest.fixture
def dockerflow_records() -> Iterator[list[logging.LogRecord]]:
    """The records of the library's own ``dockerflow_wsgi`` logger."""
    with _capture("dockerflow_wsgi", logging.DEBUG) as records:
        yield records


# Set to 1, the summary goes through Logger.handle for the whole run, as with plain logging:
# `make test` runs the summary's and logging's tests so too, to test both ways.
NO_DIRECT_LOG_VARIABLE = "DOCKERFLOW_TEST_NO_DIRECT_LOG"


def pytest_configure(config: pytest.Config) -> None:
    """Turn the summary's direct write off under ``DOCKERFLOW_TEST_NO_DIRECT_LOG=1``, before any
    test module is collected (their skip marks read it)."""
    if os.environ.get(NO_DIRECT_LOG_VARIABLE) == "1":
        direct_log.set_enabled(False)


def pytest_report_header(config: pytest.Config) -> str:
    state = "on" if direct_log.is_enabled() else f"off ({NO_DIRECT_LOG_VARIABLE}=1)"
    return f"request.summary direct write: {state}"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the test to the server harness before its fixtures start any server: a test that
    starts one without the ``servers`` marker fails."""
    server_process.running_test = item


@pytest.fixture(autouse=True)
def _empty_check_registry() -> Iterator[None]:
    clear_checks()
    yield
    clear_checks()


# Variables that would add built-in checks to every middleware a test builds.
_BUILTIN_CHECK_VARIABLES = ("DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", "AMQP_URL")


@pytest.fixture(autouse=True)
def _no_dockerflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's or CI's environment must not change the middleware's defaults."""
    for name in list(os.environ):
        if name.startswith("DOCKERFLOW_") or name in _BUILTIN_CHECK_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="session")
def _no_drain_mark_in_the_default_folder() -> Iterator[None]:
    """No test may drain the machine: a mark in the default state folder would make every
    service using it, the tests' own servers included, answer its probes with 503 for ten
    minutes. A test that drains uses a folder of its own."""
    mark = Path(default_state_dir()) / MARK_NAME
    before = mark.stat().st_mtime_ns if mark.exists() else None
    yield
    after = mark.stat().st_mtime_ns if mark.exists() else None
    assert after is None or after == before, f"a test left a drain mark in {mark}"


# -- calling WSGI apps like a server ---------------------------------------------------------


@dataclass
class WSGIResult:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    start_response_calls: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def code(self) -> int:
        return int(self.status[:3])

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class FakeServer:
    """The server side of one request: a ``start_response`` that records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.written: list[bytes] = []

    def start_response(self, *args: Any) -> Callable[[bytes], None]:
        self.calls.append(args)
        return self.write

    def write(self, data: bytes) -> None:
        self.written.append(data)

    @property
    def status(self) -> Optional[str]:
        return self.calls[-1][0] if self.calls else None

    @property
    def headers(self) -> list[tuple[str, str]]:
        return list(self.calls[-1][1]) if self.calls else []


def _make_environ(path: str = "/", method: str = "GET", **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REQUEST_METHOD": method,
        **extra,
    }
    setup_testing_defaults(environ)
    return environ


def _call_wsgi(app: Callable[..., Any], environ: dict[str, Any]) -> WSGIResult:
    """Run one request to the end, as a server does: call, iterate, close."""
    server = FakeServer()
    body = app(environ, server.start_response)
    try:
        chunks = list(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return WSGIResult(
        server.status or "", server.headers, b"".join(server.written + chunks), server.calls
    )


@pytest.fixture(scope="session")
def make_environ() -> Callable[..., dict[str, Any]]:
    """``make_environ(path, method, **keys)``: a complete WSGI environ (wsgiref's defaults)."""
    return _make_environ


@pytest.fixture(scope="session")
def call_wsgi() -> Callable[[Callable[..., Any], dict[str, Any]], WSGIResult]:
    """``call_wsgi(app, environ)``: status, headers and body of one request run to the end."""
    return _call_wsgi


@pytest.fixture
def fake_server() -> FakeServer:
    return FakeServer()


# -- small WSGI applications -----------------------------------------------------------------

HELLO_BODY = b"Hello, world!"
HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO_BODY)))]


def _hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", list(HELLO_HEADERS))
    return [HELLO_BODY]


def _streaming_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    # A generator: start_response only runs on the server's first next().
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one "
    yield b"two "
    yield b"three"


@pytest.fixture(scope="session")
def hello_app() -> Callable[..., Any]:
    """Answers ``200 OK`` with ``HELLO_BODY``."""
    return _hello_app


@pytest.fixture(scope="session")
def streaming_app() -> Callable[..., Any]:
    """A generator app yielding ``b"one "``, ``b"two "``, ``b"three"``."""
    return _streaming_app


class AppError(Exception):
    """What the failing apps raise."""


class RaisingApp:
    """An app that raises ``self.error`` before, after ``start_response``, or mid-stream."""

    def __init__(self, when: str) -> None:
        assert when in ("before_start_response", "after_start_response", "mid_stream")
        self.when = when
        self.error = AppError(f"failed {when}")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.when == "before_start_response":
            raise self.error
        start_response("200 OK", [("Content-Type", "text/plain")])
        if self.when == "after_start_response":
            raise self.error
        return self._body()

    def _body(self) -> Iterator[bytes]:
        yield b"first chunk"
        raise self.error


@pytest.fixture(scope="session")
def raising_app() -> Callable[[str], RaisingApp]:
    """``raising_app(when)`` with ``when`` one of ``before_start_response``,
    ``after_start_response``, ``mid_stream``; the exception is ``app.error``."""
    return RaisingApp


class ClosingBody:
    """A response iterable that counts ``close()`` calls and can fail while being iterated."""

    def __init__(self, chunks: list[bytes], fail_at: Optional[int] = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.error = AppError("body iteration failed")
        self.close_calls = 0
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise self.error
            self.produced += 1
            yield chunk

    def close(self) -> None:
        self.close_calls += 1


class ClosingApp:
    """An app whose response is a :class:`ClosingBody` (``app.body``)."""

    def __init__(self, chunks: list[bytes], fail_at: Optional[int] = None) -> None:
        self.body = ClosingBody(chunks, fail_at)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self.body


@pytest.fixture
def closing_app() -> Callable[..., ClosingApp]:
    """``closing_app(chunks, fail_at=None)``: its body counts ``close()`` calls."""
    return ClosingApp
