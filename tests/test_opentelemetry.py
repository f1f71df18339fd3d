"""OpenTelemetry, with the real SDK and instrumentations: the summary's ``trace_id`` and
``span_id`` are the request's span's (``dockerflow.request_id`` on it), a heartbeat run is a span
with a child span per check, background runs are root spans, and a service without
OpenTelemetry imports none of it.

Django's instrumentation is tested in a Django process (``test_django_opentelemetry.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

import flask
import pytest
import webtest
from asgi_scope import asgi_request, http_scope
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGIMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGIMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from otel_spans import exporter, hex_ids, named, parent_id, provider

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.tracing import SpanWatch

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return exporter()


# -- the applications, as each instrumentation wraps them ----------------------------------------


def wsgi_hello(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    logging.getLogger("app").info("in the view")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def asgi_hello(scope: dict, receive: Any, send: Any) -> None:
    logging.getLogger("app").info("in the view")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def flask_app() -> flask.Flask:
    app = flask.Flask("traced")

    @app.route("/")
    def index() -> str:
        logging.getLogger("app").info("in the view")
        return "hello"

    return app


def wsgi_get(app: Any, headers: dict[str, str]) -> str:
    return webtest.TestApp(app).get("/", headers=headers).headers["X-Request-ID"]


def asgi_get(app: Any, headers: dict[str, str], path: str = "/") -> tuple[int, str]:
    """A raw ASGI GET: the status and the request id header."""
    scope = http_scope(
        path,
        headers=[(b"host", b"testserver")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    )
    start = asgi_request(app, scope)[0]
    return start["status"], dict(start["headers"])[b"x-request-id"].decode()


def otel_wsgi_outside() -> Callable[[dict[str, str]], str]:
    app = OtelWSGIMiddleware(DockerflowMiddleware(wsgi_hello), tracer_provider=provider())
    return lambda headers: wsgi_get(app, headers)


def flask_instrumented_then_wrapped() -> Callable[[dict[str, str]], str]:
    app = flask_app()
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider())
    app.wsgi_app = DockerflowMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return lambda headers: wsgi_get(app, headers)


def flask_wrapped_then_instrumented() -> Callable[[dict[str, str]], str]:
    app = flask_app()
    app.wsgi_app = DockerflowMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider())
    return lambda headers: wsgi_get(app, headers)


def flask_shim() -> Callable[[dict[str, str]], str]:
    app = flask_app()
    Dockerflow(app)
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider())
    return lambda headers: wsgi_get(app, headers)


def otel_asgi_outside() -> Callable[[dict[str, str]], str]:
    app = OtelASGIMiddleware(DockerflowASGIMiddleware(asgi_hello), tracer_provider=provider())
    return lambda headers: asgi_get(app, headers)[1]


def otel_asgi_inside() -> Callable[[dict[str, str]], str]:
    app = DockerflowASGIMiddleware(OtelASGIMiddleware(asgi_hello, tracer_provider=provider()))
    return lambda headers: asgi_get(app, headers)[1]


def fastapi_instrumented() -> Callable[[dict[str, str]], str]:
    app = FastAPI()

    @app.get("/")
    def index() -> dict[str, str]:
        logging.getLogger("app").info("in the view")
        return {"hello": "world"}

    app.add_middleware(DockerflowASGIMiddleware)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider())
    return lambda headers: asgi_get(app, headers)[1]


INSTRUMENTED = {
    "wsgi middleware outside": otel_wsgi_outside,
    "flask instrumentor, then the middleware": flask_instrumented_then_wrapped,
    "the middleware, then the flask instrumentor": flask_wrapped_then_instrumented,
    "flask shim": flask_shim,
    "asgi middleware outside": otel_asgi_outside,
    "asgi middleware inside": otel_asgi_inside,
    "fastapi instrumentor": fastapi_instrumented,
}


def server_span(spans: InMemorySpanExporter) -> Any:
    (found,) = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    return found


@pytest.mark.parametrize("make", INSTRUMENTED.values(), ids=INSTRUMENTED.keys())
@pytest.mark.parametrize("headers", [{}, {"traceparent": TRACEPARENT}], ids=["new", "continued"])
def test_the_summary_has_the_ids_of_the_requests_span(
    make, headers, spans, summary_records, app_records
):
    request_id = make()(headers)

    span = server_span(spans)
    trace_id, span_id = hex_ids(span)
    (summary,) = summary_records
    assert (summary.trace_id, summary.span_id) == (trace_id, span_id)
    assert summary.rid == request_id
    assert span.attributes["dockerflow.request_id"] == request_id
    if headers:
        # The caller's trace, continued by a span of this service's own.
        assert trace_id == CALLER_TRACE_ID and span_id != CALLER_SPAN_ID
    # What the view logged is found by the same ids (fastapi's view runs in a child span).
    (record,) = app_records
    assert record.otelTraceID == trace_id
    assert record.rid == request_id


def test_a_request_that_raises_has_the_ids_of_its_span(spans, summary_records):
    def broken(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        raise LookupError("the app failed")

    app = OtelWSGIMiddleware(DockerflowMiddleware(broken), tracer_provider=provider())
    with pytest.raises(LookupError):
        webtest.TestApp(app).get("/")

    (summary,) = summary_records
    assert summary.levelno == logging.ERROR
    assert (summary.trace_id, summary.span_id) == hex_ids(server_span(spans))


def test_without_a_provider_the_callers_trace_id_comes_from_traceparent(summary_records):
    """An instrumentation without a tracer provider makes the caller's span current as it is:
    not this service's span, so the summary has the ``traceparent``'s trace id and no span
    id, as without OpenTelemetry."""
    app = OtelWSGIMiddleware(DockerflowMiddleware(wsgi_hello), tracer_provider=NoOpTracerProvider())
    wsgi_get(app, {"traceparent": TRACEPARENT})
    wsgi_get(app, {})

    continued, new = summary_records
    assert continued.trace_id == CALLER_TRACE_ID and not hasattr(continued, "span_id")
    assert not hasattr(new, "trace_id") and not hasattr(new, "span_id")


def test_without_a_span_the_trace_id_comes_from_traceparent(spans, summary_records):
    wsgi_get(DockerflowMiddleware(wsgi_hello), {"traceparent": TRACEPARENT})

    (summary,) = summary_records
    assert summary.trace_id == CALLER_TRACE_ID and not hasattr(summary, "span_id")
    assert spans.get_finished_spans() == ()


def test_a_span_that_is_not_recording_still_gives_its_ids(summary_records):
    """A sampler's "drop" leaves a valid span of this service, not recording: the summary
    still has its ids, the same that the records made in it have."""
    dropping = TracerProvider(sampler=ALWAYS_OFF)
    seen: list[Any] = []
    inner = _keeping(seen, DockerflowMiddleware(wsgi_hello))
    wsgi_get(OtelWSGIMiddleware(inner, tracer_provider=dropping), {})

    (summary,) = summary_records
    (span,) = seen
    assert not span.is_recording()
    assert (summary.trace_id, summary.span_id) == hex_ids(span)


def _keeping(seen: list[Any], app: Any) -> Any:
    def keep(environ: dict, start_response: Callable[..., Any]) -> Any:
        seen.append(trace.get_current_span())
        return app(environ, start_response)

    return keep


# -- heartbeat runs and their checks -----------------------------------------------------------

RELEASE = threading.Event()


def fine() -> list:
    return []


def failing() -> list:
    return [checks.Error("the queue is full", id="acme.E001")]


def silenced() -> list:
    return [checks.Error("known and silenced", id="acme.E002")]


def raising() -> list:
    raise ConnectionError("cannot reach postgres://app:hunter2@db:5432/app")


def hanging() -> list:
    RELEASE.wait(10)
    return []


def tracing_itself() -> list:
    with trace.get_tracer("tests").start_as_current_span("query"):
        return []


async def tracing_itself_async() -> list:
    with trace.get_tracer("tests").start_as_current_span("query async"):
        await asyncio.sleep(0)
        return []


CHECKS = [
    ("fine", fine),
    ("failing", failing),
    ("silenced", silenced),
    ("optional", failing),
    ("raising", raising),
    ("hanging", hanging),
    ("tracing_itself", tracing_itself),
    ("tracing_itself_async", tracing_itself_async),
]
OPTIONS = {
    "checks": CHECKS,
    "check_timeout": 0.5,
    "silenced_checks": "acme.E002",
    "non_critical_checks": "optional",
}


@pytest.fixture
def released() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


def check_spans(spans: InMemorySpanExporter) -> dict[str, Any]:
    return {
        span.attributes["dockerflow.check.name"]: span
        for span in named(spans.get_finished_spans(), "dockerflow.check")
    }


def assert_run_spans(spans: InMemorySpanExporter, parent: Optional[str]) -> None:
    """The run's span under ``parent`` (``None``: a root), and each check's span in it."""
    finished = spans.get_finished_spans()
    (run,) = named(finished, "dockerflow.heartbeat")
    assert parent_id(run) == parent
    assert run.attributes["dockerflow.heartbeat.level"] == "error"
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "failing: failing, hanging, raising"
    by_name = check_spans(spans)
    assert set(by_name) == {name for name, _ in CHECKS}
    run_id = hex_ids(run)[1]
    for name, span in by_name.items():
        assert parent_id(span) == run_id, name
        assert span.context.trace_id == run.context.trace_id
        assert span.attributes["dockerflow.check.timed_out"] is (name == "hanging"), name
    levels = {name: span.attributes["dockerflow.check.level"] for name, span in by_name.items()}
    assert levels == {
        "fine": "ok",
        "failing": "error",
        # The heartbeat's rules: a silenced id is left out, a non-critical error is a warning.
        "silenced": "ok",
        "optional": "warning",
        "raising": "error",
        "hanging": "error",
        "tracing_itself": "ok",
        "tracing_itself_async": "ok",
    }
    errors = {name for name, span in by_name.items() if span.status.status_code is StatusCode.ERROR}
    assert errors == {"failing", "raising", "hanging"}
    assert by_name["failing"].status.description == "acme.E001: the queue is full"
    assert by_name["hanging"].status.description.startswith("dockerflow.health.E102: ")
    # The run stopped waiting at the check's timeout: its span ends then.
    hanging_seconds = (by_name["hanging"].end_time - by_name["hanging"].start_time) / 1e9
    assert 0.45 <= hanging_seconds < 2.0
    (event,) = by_name["raising"].events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "builtins.ConnectionError"
    assert "postgres://app:***@db:5432/app" in event.attributes["exception.message"]
    assert "hunter2" not in json.dumps(dict(event.attributes))
    # The check's span is current while it runs: what its client traces is its child.
    for name in ("tracing_itself", "tracing_itself_async"):
        check_id = hex_ids(by_name[name])[1]
        (query,) = [
            span
            for span in finished
            if span.name.startswith("query") and parent_id(span) == check_id
        ]
        assert query.context.trace_id == run.context.trace_id


def test_a_heartbeat_on_demand_is_a_child_of_the_probes_span(spans, released):
    app = OtelWSGIMiddleware(
        DockerflowMiddleware(wsgi_hello, **OPTIONS), tracer_provider=provider()
    )
    webtest.TestApp(app).get("/__heartbeat__", status=500)
    RELEASE.set()

    assert_run_spans(spans, parent=hex_ids(server_span(spans))[1])


def test_an_asgi_heartbeat_on_demand_is_a_child_of_the_probes_span(spans, released):
    app = OtelASGIMiddleware(
        DockerflowASGIMiddleware(asgi_hello, **OPTIONS), tracer_provider=provider()
    )
    status, _ = asgi_get(app, {}, path="/__heartbeat__")
    RELEASE.set()

    assert status == 500
    assert_run_spans(spans, parent=hex_ids(server_span(spans))[1])


def test_background_runs_are_root_spans_even_when_a_probe_started_them(spans, released):
    middleware = DockerflowMiddleware(wsgi_hello, heartbeat_interval=3600, **OPTIONS)
    app = OtelWSGIMiddleware(middleware, tracer_provider=provider())
    try:
        webtest.TestApp(app).get("/__heartbeat__", status=500)
        RELEASE.set()
        probe = server_span(spans)
        assert_run_spans(spans, parent=None)
        (run,) = named(spans.get_finished_spans(), "dockerflow.heartbeat")
        assert run.context.trace_id != probe.context.trace_id
    finally:
        middleware.core.background.stop()  # type: ignore[union-attr]


def test_a_check_still_running_from_an_earlier_run_is_timed_out_in_this_one(spans, released):
    middleware = DockerflowMiddleware(wsgi_hello, checks=[("hanging", hanging)], check_timeout=0.2)
    app = webtest.TestApp(middleware)
    app.get("/__heartbeat__", status=500)
    spans.clear()
    app.get("/__heartbeat__", status=500)
    RELEASE.set()

    (span,) = check_spans(spans).values()
    assert span.attributes["dockerflow.check.timed_out"] is True
    assert "still running" in span.status.description


def test_no_span_is_made_for_a_run_of_a_passing_heartbeat_without_a_provider_set() -> None:
    """Checked in a process of its own, where no provider is set: imported, OpenTelemetry
    makes no span and costs a run nothing but a lookup."""
    result = run_python(
        "import opentelemetry.trace\n"
        "from dockerflow_wsgi.checks.spans import start_run_trace\n"
        "from dockerflow_wsgi.checks.results import fold_results\n"
        "assert start_run_trace(root=True, fold=fold_results) is None\n"
        "print('no trace')\n"
    )
    assert result.stdout.strip() == "no trace"


# -- without OpenTelemetry -----------------------------------------------------------------------

SERVE_EVERYTHING = """
import asyncio, logging, sys, webtest
{blocker}
import flask
from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.logging import configure

configure(name="nootel")

def hello(environ, start_response):
    logging.getLogger("nootel").info("in the view")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

async def asgi_hello(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"hello"}})

async def check_async():
    return []

checks = [("sync", lambda: []), ("async", check_async)]
wsgi = webtest.TestApp(DockerflowMiddleware(hello, checks=checks))
tp = {{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
wsgi.get("/", headers=tp)
wsgi.get("/__heartbeat__")
background = webtest.TestApp(DockerflowMiddleware(hello, checks=checks, heartbeat_interval=60))
background.get("/__heartbeat__")
app = flask.Flask("nootel")
app.route("/")(lambda: "hello")
Dockerflow(app, checks=checks)
app.test_client().get("/").close()

async def asgi():
    sent = []
    async def receive():
        return {{"type": "http.request", "body": b""}}
    async def send(message):
        sent.append(message)
    middleware = DockerflowASGIMiddleware(asgi_hello, checks=checks)
    for path in ("/", "/__heartbeat__"):
        await middleware({{"type": "http", "method": "GET", "path": path, "headers": []}},
                         receive, send)
    return sent
asyncio.run(asgi())
from dockerflow_wsgi.tracing import span_watch
assert span_watch.tracing is False
print("IMPORTED", sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""

BLOCK_OPENTELEMETRY = """
import importlib.abc
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("blocker", [BLOCK_OPENTELEMETRY, ""], ids=["not installed", "installed"])
def test_nothing_of_opentelemetry_is_imported_by_a_service_that_does_not(blocker):
    result = run_python(SERVE_EVERYTHING.format(blocker=blocker))

    *lines, last = result.stdout.splitlines()
    assert last == "IMPORTED []"
    summaries = [json.loads(line) for line in lines if '"request.summary"' in line]
    assert len(summaries) == 6
    first = summaries[0]["Fields"]
    assert first["trace_id"] == CALLER_TRACE_ID and "span_id" not in first


def test_the_watch_asks_for_a_provider_at_most_once_a_second_until_one_is_set(monkeypatch):
    """Asking OpenTelemetry costs a request more than finding nothing: a request reads a flag,
    and the flag is looked at again at most once a second, and never once a provider is set."""
    answers = iter([False, False, True])
    asked: list[float] = []

    def set_provider() -> Any:
        asked.append(now)
        return TracerProvider() if next(answers) else None

    monkeypatch.setattr("dockerflow_wsgi.tracing.tracer_provider", set_provider)
    watch = SpanWatch()
    for now in (10.0, 10.4, 10.99, 11.0, 11.5, 12.2, 13.0, 500.0):
        if now >= watch.next_look:
            watch.look(now)
    assert asked == [10.0, 11.0, 12.2]
    assert watch.tracing is True


PROVIDER_SET_LATE = """
import time, webtest
from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import configure
from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider

configure(name="late")

def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

app = webtest.TestApp(OpenTelemetryMiddleware(DockerflowMiddleware(hello)))
app.get("/")
trace.set_tracer_provider(TracerProvider())
time.sleep(1.1)
app.get("/")
"""


def test_a_provider_set_after_the_first_request_is_seen_within_a_second():
    result = run_python(PROVIDER_SET_LATE)

    before, after = [
        line["Fields"]
        for line in map(json.loads, result.stdout.splitlines())
        if line["Type"] == "request.summary"
    ]
    assert "span_id" not in before
    assert len(after["span_id"]) == 16


def test_a_span_found_late_is_ended_before_the_summary_is_written(spans, summary_records):
    """A response that never starts (the app raised inside the instrumentation's span) is
    looked up at the end of the request, once."""
    tracer = provider().get_tracer("tests")

    def raises_in_a_span(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("no response")

    def traced(environ: dict, start_response: Callable[..., Any]) -> Any:
        with tracer.start_as_current_span("outer", end_on_exit=True):
            return middleware(environ, start_response)

    middleware = DockerflowMiddleware(raises_in_a_span)
    with pytest.raises(RuntimeError):
        webtest.TestApp(traced).get("/")

    (summary,) = summary_records
    (outer,) = named(spans.get_finished_spans(), "outer")
    assert (summary.trace_id, summary.span_id) == hex_ids(outer)
    assert outer.attributes["dockerflow.request_id"] == summary.rid


def test_a_tracer_provider_that_raises_leaves_the_heartbeat_answering(
    monkeypatch, dockerflow_records
):
    class Broken(TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the exporter is misconfigured")

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: Broken())
    monkeypatch.setattr("dockerflow_wsgi.checks.spans._failure_logged", False)
    app = webtest.TestApp(DockerflowMiddleware(wsgi_hello, checks=[("fine", fine)]))

    for _ in range(3):
        assert app.get("/__heartbeat__").json["status"] == "ok"
    (warning,) = [record for record in dockerflow_records if "untraced" in record.getMessage()]
    assert warning.exc_info[1].args == ("the exporter is misconfigured",)
