"""The spans a test process exports: one in-memory exporter on the process's tracer provider.

OpenTelemetry lets a process set its global tracer provider once; a test module that imports a
docs example may have set it already. Either way, the exporter here is added to it once, and a
test clears it before it looks.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dockerflow_wsgi.tracing import span_watch

_exporter: Optional[InMemorySpanExporter] = None


def provider() -> TracerProvider:
    """The process's tracer provider, an SDK one (set now if none was, and seen by the requests
    at once: a service sees it within a second, which an earlier test's request may have
    started)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    if not span_watch.tracing:
        span_watch.look(time.perf_counter())
    found = trace.get_tracer_provider()
    assert isinstance(found, TracerProvider), found
    return found


def exporter() -> InMemorySpanExporter:
    """The exporter of every span the process's provider ends, emptied."""
    global _exporter
    if _exporter is None:
        _exporter = InMemorySpanExporter()
        provider().add_span_processor(SimpleSpanProcessor(_exporter))
    _exporter.clear()
    return _exporter


def hex_ids(span: Any) -> tuple[str, str]:
    """A span's trace id and span id as the summary writes them."""
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def parent_id(span: ReadableSpan) -> Optional[str]:
    return None if span.parent is None else format(span.parent.span_id, "016x")
