"""Sampling the summary: ``summary_sample_rate`` and ``summary_slow_ms``.

An ordinary request keeps its summary when ``crc32(request_id) < rate * 2**32``, and its line
then says ``sample_rate``; an error, a 5xx, a slow or a trace-sampled request keeps its own
without it. The conformance table runs the cases every adapter shares (its ``sampled`` and
``errors_only`` profiles); here: exact counts over many ids through WSGI, ASGI and Sanic's
server, the same rule over any id and rate, the line as JSON, and the options refused at
construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import random
import re
import signal
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional
from wsgiref.util import setup_testing_defaults

import conformance_apps
import httpx
import pytest
from asgi_scope import http_scope
from hypothesis import example, given, settings
from hypothesis import strategies as st
from server_process import HOST, ServerProcess, unused_port

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import MozlogHandler

TESTS = Path(__file__).resolve().parent
#: The conformance apps' ``sampled`` profile's rate, which the exact counts use.
RATE = conformance_apps.PROFILES["sampled"]["summary_sample_rate"]
REQUESTS = 2000
SAMPLED_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

#: Any id a client may send and have kept: 1 to 128 visible ASCII characters.
request_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128
)
rates = st.floats(min_value=0, max_value=1)


def drawn(request_id: str, rate: float) -> bool:
    """Whether the draw keeps the summary of an ordinary request with this id."""
    return zlib.crc32(request_id.encode()) < rate * 2**32


@pytest.fixture(scope="module")
def ids() -> list[str]:
    """``REQUESTS`` distinct ids as a service makes them (UUID hex), the same every run."""
    generator = random.Random(22)
    made = [uuid.UUID(int=generator.getrandbits(128), version=4).hex for _ in range(REQUESTS)]
    # Ids that exercise the draw: near the rate's share of them is kept, neither all nor none.
    assert abs(sum(drawn(request_id, RATE) for request_id in made) - RATE * REQUESTS) < 100
    return made


@contextlib.contextmanager
def summaries() -> Iterator[list[logging.LogRecord]]:
    """The ``request.summary`` records written meanwhile (the fixture's, for hypothesis)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("request.summary")
    handler = Collect()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def wsgi_request(app: Any, path: str = "/", **headers: str) -> None:
    """One request through ``app`` to its end, as a server runs it; its exception swallowed."""
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    setup_testing_defaults(environ)
    try:
        body = app(environ, lambda status, headers, exc_info=None: None)
    except Exception:
        return
    try:
        for _ in body:
            pass
    except Exception:
        pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


async def asgi_request(app: Any, path: str = "/", **headers: str) -> None:
    """One raw ASGI request through ``app``; its exception swallowed."""
    scope = http_scope(
        path, headers=[(name.lower().encode(), value.encode()) for name, value in headers.items()]
    )

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    with contextlib.suppress(Exception):
        await app(scope, receive, send)


def assert_kept_by_the_draw_or_slow(
    lines: list[dict[str, Any]], ids: list[str], slow_ms: int
) -> None:
    """``lines`` (the summaries' fields) are exactly those of the ``ids`` the draw keeps, each
    saying ``sample_rate``, and of those that took ``slow_ms`` or more, without it: a request a
    busy machine made slow is kept as slow, which its ``t`` shows."""
    kept = {line["rid"]: line for line in lines}
    assert len(kept) == len(lines), "a request had two summaries"
    slow = {rid for rid, line in kept.items() if line["t"] >= slow_ms}
    # The draw's test, not the clock's.
    assert len(slow) <= len(ids) // 100
    assert set(kept) == {rid for rid in ids if drawn(rid, RATE)} | slow
    assert {rid: line.get("sample_rate") for rid, line in kept.items()} == {
        rid: None if rid in slow else RATE for rid in kept
    }


def fields_of(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [
        {"rid": record.rid, "t": record.t, "sample_rate": getattr(record, "sample_rate", None)}
        for record in records
    ]


def kept_lines(records: list[logging.LogRecord]) -> dict[str, Optional[float]]:
    """Request id to the ``sample_rate`` of its one summary (``None``: the line has none)."""
    kept = {record.rid: getattr(record, "sample_rate", None) for record in records}
    assert len(kept) == len(records), "a request had two summaries"
    return kept


# -- exact counts ---------------------------------------------------------------------------------


def test_wsgi_keeps_exactly_the_ids_the_draw_keeps(ids):
    # Nothing slow: the draw alone decides.
    app = DockerflowMiddleware(conformance_apps.wsgi_app, summary_sample_rate=RATE)
    with summaries() as records:
        for number, request_id in enumerate(ids):
            wsgi_request(app, f"/items/{number}", X_Request_ID=request_id)

    assert_kept_by_the_draw_or_slow(fields_of(records), ids, app.config.summary_slow_ms)


def test_asgi_keeps_exactly_the_ids_the_draw_keeps(ids):
    app = DockerflowASGIMiddleware(conformance_apps.asgi_app, summary_sample_rate=RATE)

    async def send_all() -> None:
        for number, request_id in enumerate(ids):
            await asgi_request(app, f"/items/{number}", **{"x-request-id": request_id})

    with summaries() as records:
        asyncio.run(send_all())

    assert_kept_by_the_draw_or_slow(fields_of(records), ids, app.config.summary_slow_ms)


def test_the_rate_from_the_environment_draws_the_same(ids, monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_SUMMARY_SAMPLE_RATE", " 0.3 ")
    app = DockerflowMiddleware(conformance_apps.wsgi_app)
    with summaries() as records:
        for request_id in ids[:500]:
            wsgi_request(app, X_Request_ID=request_id)

    assert kept_lines(records) == {
        request_id: 0.3 for request_id in ids[:500] if drawn(request_id, 0.3)
    }


@pytest.fixture
def sanic_sampled(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """The conformance apps' Sanic app in its ``sampled`` profile, under Sanic's server."""
    port = unused_port()
    environ = {
        name: value for name, value in os.environ.items() if not name.startswith("DOCKERFLOW_")
    }
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), environ.get("PYTHONPATH")]))
    environ["PYTHONUNBUFFERED"] = "1"
    server = ServerProcess(
        [sys.executable, "-m", "conformance_apps", "sanic", "sampled", str(port)],
        cwd=tmp_path,
        env=environ,
        stdout_path=tmp_path / "sanic.out",
        stderr_path=tmp_path / "sanic.err",
        stop_signal=signal.SIGINT,
    ).start()
    url = f"http://{HOST}:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/__lbheartbeat__", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        server.wait_until(answers)
        yield server, url
    finally:
        server.stop(timeout=10)


@pytest.mark.servers
def test_sanic_keeps_exactly_the_ids_the_draw_keeps(ids, sanic_sampled):
    server, url = sanic_sampled
    start = len(server.output())
    with httpx.Client(base_url=url, timeout=15) as client:
        for number, request_id in enumerate(ids):
            response = client.get(f"/items/{number}", headers={"X-Request-ID": request_id})
            assert response.status_code == 200
        # Kept whatever its id draws, written after every request before it.
        sentinel = client.get(
            "/", headers={"X-Request-ID": "sentinel", "traceparent": SAMPLED_TRACEPARENT}
        )
        assert sentinel.status_code == 200

    server.wait_for_output('"rid":"sentinel"', timeout=20)
    lines = [json.loads(line) for line in server.output()[start:].splitlines()]
    fields = [
        line["Fields"]
        for line in lines
        if line["Type"] == "request.summary" and line["Fields"]["rid"] != "sentinel"
    ]
    slow_ms = conformance_apps.PROFILES["sampled"]["summary_slow_ms"]
    assert_kept_by_the_draw_or_slow(fields, ids, slow_ms)


# -- the rule, for any id and rate --------------------------------------------------------------


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@settings(max_examples=200, deadline=None)
@given(rate=rates, request_id=request_ids)
def test_an_ordinary_request_is_kept_by_its_ids_draw(rate, request_id):
    app = DockerflowMiddleware(hello, summary_sample_rate=rate)
    with summaries() as records:
        wsgi_request(app, X_Request_ID=request_id)

    if rate == 1:
        # As before sampling: every line, none saying a rate.
        assert kept_lines(records) == {request_id: None}
    elif drawn(request_id, rate):
        assert kept_lines(records) == {request_id: rate}
    else:
        assert records == []


def status_app(status: str) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [b"answer"]

    return app


def raise_before(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise RuntimeError("before its response")


def raise_mid_stream(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first"
    raise RuntimeError("mid-stream")


def report_exception(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    # What a framework integration does for an exception it answered with its own page.
    try:
        raise LookupError("caught")
    except LookupError:
        environ["dockerflow.exc_info"] = sys.exc_info()
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    return [b"caught"]


def sleeping(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    time.sleep(0.03)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept"]


#: Requests that keep their summary whatever their id draws: app, headers, slow_ms.
ALWAYS_KEPT = {
    "500": (status_app("500 Internal Server Error"), {}, 1000),
    "503": (status_app("503 Service Unavailable"), {}, 1000),
    "599": (status_app("599 Network Connect Timeout"), {}, 1000),
    "raised before its response": (raise_before, {}, 1000),
    "raised mid-stream (a 200 started)": (raise_mid_stream, {}, 1000),
    "exception reported": (report_exception, {}, 1000),
    "slower than summary_slow_ms": (sleeping, {}, 20),
    "summary_slow_ms=0": (hello, {}, 0),
    "trace sampled": (hello, {"traceparent": SAMPLED_TRACEPARENT}, 1000),
}


@pytest.mark.parametrize("reason", ALWAYS_KEPT)
@settings(max_examples=25, deadline=None)
@given(rate=st.floats(min_value=0, max_value=1, exclude_max=True), request_id=request_ids)
def test_errors_5xx_slow_and_trace_sampled_requests_are_kept_without_sample_rate(
    reason, rate, request_id
):
    app, headers, slow_ms = ALWAYS_KEPT[reason]
    middleware = DockerflowMiddleware(app, summary_sample_rate=rate, summary_slow_ms=slow_ms)
    with summaries() as records:
        wsgi_request(middleware, X_Request_ID=request_id, **headers)

    assert kept_lines(records) == {request_id: None}


@pytest.mark.parametrize(
    "traceparent",
    [
        UNSAMPLED_TRACEPARENT,
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        f"{SAMPLED_TRACEPARENT},{SAMPLED_TRACEPARENT}",
    ],
    ids=["flags 00", "zero trace id", "uppercase", "version ff", "two joined"],
)
@settings(max_examples=25, deadline=None)
@given(request_id=request_ids)
def test_a_traceparent_not_sampled_or_invalid_leaves_it_to_the_draw(traceparent, request_id):
    app = DockerflowMiddleware(hello, summary_sample_rate=RATE)
    with summaries() as records:
        wsgi_request(app, X_Request_ID=request_id, traceparent=traceparent)

    assert kept_lines(records) == ({request_id: RATE} if drawn(request_id, RATE) else {})


async def asgi_raising(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise RuntimeError("before its response")


async def asgi_status(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(0.03)
    status = 503 if path == "/unavailable" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"answer"})


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(min_value=0, max_value=1, exclude_max=True), request_id=request_ids)
def test_asgi_keeps_the_same_requests(rate, request_id):
    ordinary = DockerflowASGIMiddleware(asgi_status, summary_sample_rate=rate)
    slow = DockerflowASGIMiddleware(asgi_status, summary_sample_rate=rate, summary_slow_ms=20)
    raising = DockerflowASGIMiddleware(asgi_raising, summary_sample_rate=rate)
    sent = {"x-request-id": request_id}

    async def send_all() -> None:
        await asgi_request(ordinary, "/", **sent)
        await asgi_request(ordinary, "/unavailable", **sent)
        await asgi_request(slow, "/slow", **sent)
        await asgi_request(ordinary, "/", traceparent=SAMPLED_TRACEPARENT, **sent)
        await asgi_request(ordinary, "/", traceparent=UNSAMPLED_TRACEPARENT, **sent)
        await asgi_request(raising, "/", **sent)

    with summaries() as records:
        asyncio.run(send_all())

    by_draw = [("/", rate)] if drawn(request_id, rate) else []
    assert [(record.path, getattr(record, "sample_rate", None)) for record in records] == [
        *by_draw,
        ("/unavailable", None),
        ("/slow", None),
        ("/", None),
        *by_draw,
        ("/", None),
    ]


@pytest.mark.parametrize("rate", [0, 0.0, "0"])
def test_rate_zero_keeps_only_what_is_always_kept(rate):
    apps = {
        name: DockerflowMiddleware(app, summary_sample_rate=rate, summary_slow_ms=slow_ms)
        for name, (app, _, slow_ms) in ALWAYS_KEPT.items()
    }
    ordinary = DockerflowMiddleware(hello, summary_sample_rate=rate)
    with summaries() as records:
        for number in range(300):
            wsgi_request(ordinary, X_Request_ID=f"ordinary-{number}")
            wsgi_request(ordinary, "/__heartbeat__/nope", X_Request_ID=f"probe-{number}")
        for name, app in apps.items():
            wsgi_request(app, X_Request_ID=name.replace(" ", "-"), **ALWAYS_KEPT[name][1])

    assert kept_lines(records) == {name.replace(" ", "-"): None for name in ALWAYS_KEPT}


# -- the line -------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(min_value=0.001, max_value=1, exclude_max=True))
@example(rate=0.001)
@example(rate=1 / 3)
@example(rate=0.999999999)
def test_the_mozlog_line_says_the_rate_as_a_json_number(rate):
    # An id the draw keeps: about one in 1/rate.
    request_id = next(f"line-{n}" for n in range(10**6) if drawn(f"line-{n}", rate))
    stream = io.StringIO()
    handler = MozlogHandler(stream)
    logger = logging.getLogger("request.summary")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        wsgi_request(DockerflowMiddleware(hello, summary_sample_rate=rate), X_Request_ID=request_id)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    (line,) = stream.getvalue().splitlines()
    fields = json.loads(line)["Fields"]
    assert fields["rid"] == request_id
    assert fields["sample_rate"] == rate
    assert type(fields["sample_rate"]) is float


# -- the options ----------------------------------------------------------------------------------

BAD_RATES = [1.5, -0.1, "x", float("nan"), "nan", float("inf"), True, ""]
BAD_SLOW_MS = ["x", -1, "-1", True, 1.5, "1.5"]


def bad_values() -> Iterator[Any]:
    for value in BAD_RATES:
        yield pytest.param("summary_sample_rate", value, id=f"summary_sample_rate={value!r}")
    for value in BAD_SLOW_MS:
        yield pytest.param("summary_slow_ms", value, id=f"summary_slow_ms={value!r}")


def build_wsgi(**options: Any) -> Any:
    return DockerflowMiddleware(hello, **options)


def build_asgi(**options: Any) -> Any:
    return DockerflowASGIMiddleware(asgi_status, **options)


def build_flask(**options: Any) -> Any:
    from flask import Flask

    from dockerflow_wsgi.flask import Dockerflow

    return Dockerflow(Flask(__name__), **options)


def build_sanic(**options: Any) -> Any:
    from sanic import Sanic

    from dockerflow_wsgi.sanic import Dockerflow

    return Dockerflow(Sanic(f"sampling_{uuid.uuid4().hex}", configure_logging=False), **options)


BUILDERS = {"wsgi": build_wsgi, "asgi": build_asgi, "flask": build_flask, "sanic": build_sanic}


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(("option", "value"), list(bad_values()))
def test_a_bad_keyword_fails_at_construction_naming_it(builder, option, value):
    with pytest.raises(ValueError, match=rf"^{option} must be .*, got {re.escape(repr(value))}$"):
        BUILDERS[builder](**{option: value})


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        *(("DOCKERFLOW_SUMMARY_SAMPLE_RATE", value) for value in ("1.5", "-0.1", "x", "NaN")),
        *(("DOCKERFLOW_SUMMARY_SLOW_MS", value) for value in ("x", "-1", "true", "1.5")),
    ],
)
def test_a_bad_variable_fails_at_construction_naming_it(builder, variable, value, monkeypatch):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=rf"^{variable} must be .*, got '{re.escape(value)}'$"):
        BUILDERS[builder]()


@pytest.mark.parametrize(
    ("rate", "slow_ms", "expected"),
    [(0, 0, (0.0, 0)), (1, "250", (1.0, 250)), ("0.25", 5, (0.25, 5)), (None, None, (1.0, 1000))],
)
def test_good_values_are_taken(rate, slow_ms, expected):
    config = DockerflowMiddleware(hello, summary_sample_rate=rate, summary_slow_ms=slow_ms).config
    assert (config.summary_sample_rate, config.summary_slow_ms) == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [("DOCKERFLOW_SUMMARY_SAMPLE_RATE", 1.5), ("DOCKERFLOW_SUMMARY_SLOW_MS", -1)],
)
def test_a_bad_flask_setting_fails_naming_its_key(key, value):
    from flask import Flask

    from dockerflow_wsgi.flask import Dockerflow

    app = Flask(__name__)
    app.config[key] = value
    with pytest.raises(ValueError, match=re.escape(f"app.config[{key!r}] must be ")):
        Dockerflow(app)
