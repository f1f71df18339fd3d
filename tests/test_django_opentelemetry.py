"""The summary's ids under OpenTelemetry's Django instrumentation: the span it makes for the
request, which it ends in its middleware before Django starts the response, reported to the
summary by ``DockerflowDjangoMiddleware`` (in the test project's ``MIDDLEWARE``).

Collected only in a process set up for the test project (``tests/test_django.py`` runs it in
one); by hand::

    DJANGO_SETTINGS_MODULE=project.settings PYTHONPATH=tests/django_project \\
        PROJECT_DATABASE=sqlite:////tmp/db.sqlite3 \\
        python -m pytest tests/test_django_opentelemetry.py
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import webtest
from asgi_scope import http_scope
from opentelemetry.trace import SpanKind
from otel_spans import exporter, hex_ids, provider

from dockerflow_wsgi.django import get_asgi_application, get_wsgi_application

__test__ = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"

CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Any:
    """Django instrumented as its docs say, before the application is made (the instrumentor
    puts its middleware first in ``MIDDLEWARE``)."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    instrumentor = DjangoInstrumentor()
    instrumentor.instrument(tracer_provider=provider())
    yield
    instrumentor.uninstrument()


def wsgi_get(headers: dict[str, str]) -> str:
    return webtest.TestApp(get_wsgi_application()).get("/", headers=headers).headers["X-Request-ID"]


def asgi_get(headers: dict[str, str]) -> str:
    scope = http_scope(
        "/",
        headers=[(b"host", b"testserver")]
        + [(name.encode(), value.encode()) for name, value in headers.items()],
    )
    sent: list[dict[str, Any]] = []
    bodies = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if bodies:
            return bodies.pop()
        # Django listens for the client's disconnect until its response is sent.
        await asyncio.Event().wait()
        raise AssertionError("never set")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(get_asgi_application()(scope, receive, send))
    return dict(sent[0]["headers"])[b"x-request-id"].decode()


@pytest.mark.parametrize("get", [wsgi_get, asgi_get], ids=["wsgi", "asgi"])
@pytest.mark.parametrize("headers", [{}, {"traceparent": TRACEPARENT}], ids=["new", "continued"])
def test_the_summary_has_the_ids_of_djangos_span(get, headers, summary_records):
    spans = exporter()
    request_id = get(headers)

    (span,) = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    (summary,) = summary_records
    assert (summary.trace_id, summary.span_id) == hex_ids(span)
    assert span.attributes["dockerflow.request_id"] == summary.rid == request_id
    if headers:
        assert summary.trace_id == CALLER_TRACE_ID
