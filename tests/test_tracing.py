"""Trace correlation: a valid W3C ``traceparent`` puts its trace id in the summary, strictly by
the W3C rules, under WSGI and ASGI; an active OpenTelemetry span's ids go into the records made
during the request. Sanic's summary is tested on its server in ``test_sanic.py``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.tracing import trace_id_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def hex_of(length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789abcdef", min_size=length, max_size=length)


@pytest.mark.parametrize(
    "value",
    [
        VALID,
        f"00-{TRACE_ID}-00f067aa0ba902b7-00",
        # A later version may add fields of its own after a "-".
        f"01-{TRACE_ID}-00f067aa0ba902b7-01",
        f"cc-{TRACE_ID}-00f067aa0ba902b7-09-what-the-future-adds",
    ],
)
def test_a_valid_traceparent_gives_its_trace_id(value):
    assert trace_id_of(value) == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # uppercase hex
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # an all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # an all-zero parent id
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # the forbidden version
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 is exactly 55 characters
        f"01-{TRACE_ID}-00f067aa0ba902b7-01extra",  # a later version's fields follow a "-"
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",  # too short
        f"00-{TRACE_ID}0-00f067aa0ba902b7-01",  # too long
        f"00_{TRACE_ID}_00f067aa0ba902b7_01",
        f" {VALID}",
        f"{VALID}\n",
        f"{VALID},{VALID}",  # two headers, joined by the server
        f"00-{TRACE_ID[:-1]}g-00f067aa0ba902b7-01",
        f"0-{TRACE_ID}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7-1",
    ],
)
def test_anything_else_gives_none(value):
    assert trace_id_of(value) is None


@given(version=hex_of(2), trace_id=hex_of(32), parent_id=hex_of(16), flags=hex_of(2))
def test_a_traceparent_is_valid_exactly_by_the_w3c_rules(version, trace_id, parent_id, flags):
    valid = version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16
    found = trace_id_of(f"{version}-{trace_id}-{parent_id}-{flags}")
    assert found == (trace_id if valid else None)


@given(st.text(max_size=80))
def test_no_text_but_a_traceparent_gives_a_trace_id(text):
    found = trace_id_of(text)
    if found is not None:
        assert len(found) == 32 and set(found) <= set("0123456789abcdef")
        assert found != "0" * 32 and found in text


# -- the summary --------------------------------------------------------------------------------


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def fields_of(summary_records: list[logging.LogRecord]) -> dict[str, Any]:
    (record,) = summary_records
    return record.__dict__


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": VALID}, TRACE_ID),
        ({"traceparent": VALID.upper()}, None),
        ({}, None),
    ],
)
def test_the_wsgi_summary_has_the_trace_id_of_a_valid_traceparent(
    summary_records, headers, expected
):
    TestApp(DockerflowMiddleware(hello)).get("/", headers=headers)

    assert fields_of(summary_records).get("trace_id") == expected
    assert ("trace_id" in fields_of(summary_records)) is (expected is not None)


async def _asgi_hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def asgi_get(app: Any, headers: list[tuple[bytes, bytes]]) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"traceparent", VALID.encode())], TRACE_ID),
        ([(b"traceparent", VALID.encode()), (b"traceparent", VALID.encode())], None),
        ([(b"traceparent", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01")], None),
        ([], None),
    ],
)
def test_the_asgi_summary_has_the_trace_id_of_a_valid_traceparent(
    summary_records, headers, expected
):
    asgi_get(DockerflowASGIMiddleware(_asgi_hello), headers)

    assert fields_of(summary_records).get("trace_id") == expected


# -- OpenTelemetry spans ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracer() -> trace.Tracer:
    provider = TracerProvider()
    return provider.get_tracer("tests")


def test_records_made_in_a_span_during_a_request_carry_its_ids(tracer, app_records):
    def traced(environ, start_response):
        with tracer.start_as_current_span("view") as span:
            logging.getLogger("app").info("in the span")
            context = span.get_span_context()
        logging.getLogger("app").info("after the span")
        environ["test.context"] = context
        return hello(environ, start_response)

    response = TestApp(DockerflowMiddleware(traced)).get("/")
    context = response.request.environ["test.context"]

    in_span, after = app_records
    assert in_span.otelTraceID == format(context.trace_id, "032x")
    assert in_span.otelSpanID == format(context.span_id, "016x")
    assert in_span.otelTraceSampled is True
    assert in_span.rid == after.rid == response.headers["X-Request-ID"]
    assert not hasattr(after, "otelTraceID")


def test_records_outside_a_request_get_no_span_ids(tracer, app_records):
    with tracer.start_as_current_span("job"):
        logging.getLogger("app").info("no request")

    (record,) = app_records
    assert not hasattr(record, "rid") and not hasattr(record, "otelTraceID")


def test_span_ids_already_set_by_opentelemetrys_logging_instrumentation_are_kept(
    tracer, app_records
):
    def traced(environ, start_response):
        with tracer.start_as_current_span("view"):
            logging.getLogger("app").info("set", extra={"otelTraceID": "theirs"})
        return hello(environ, start_response)

    TestApp(DockerflowMiddleware(traced)).get("/")

    (record,) = app_records
    assert record.otelTraceID == "theirs"
