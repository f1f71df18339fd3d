"""Trace correlation: the trace the request is in, for its summary, and an active
OpenTelemetry span's ids for the log records made during a request.

Both only read what is already there: this library starts no span for a request. When an
OpenTelemetry instrumentation traces the request, the summary's ``trace_id`` and ``span_id`` are
its span's, the ids the request's other records carry; otherwise ``trace_id`` is the one of the
caller's W3C ``traceparent``. Nothing of OpenTelemetry is imported here: without
``opentelemetry.trace`` imported by the application, no span can be current.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Optional

__all__ = [
    "OPENTELEMETRY_TRACE",
    "REQUEST_ID_ATTRIBUTE",
    "SpanWatch",
    "add_span_ids",
    "is_sampled",
    "request_span",
    "span_ids",
    "span_watch",
    "trace_id_of",
    "tracer_provider",
]

#: The module of OpenTelemetry's tracing API: looked up in ``sys.modules``, never imported.
OPENTELEMETRY_TRACE = "opentelemetry.trace"
#: The attribute of a request's recording span that holds the request's id.
REQUEST_ID_ATTRIBUTE = "dockerflow.request_id"

# version "-" trace-id "-" parent-id "-" trace-flags, all lowercase hex (W3C Trace Context,
# section 3.2). A later version may append "-" and fields of its own, which are ignored.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
# The trace-flags bit saying the caller records this trace (W3C Trace Context, 3.2.2.5).
_SAMPLED = 0x01
_INVALID_VERSION = "ff"
_ZERO_TRACE_ID = "0" * 32
_ZERO_PARENT_ID = "0" * 16


def trace_id_of(traceparent: str) -> Optional[str]:
    """The trace id of a ``traceparent`` header value, ``None`` unless it is valid.

    Strictly W3C: lowercase hex only, neither the trace id nor the parent id all zeros, version
    ``ff`` rejected, and version ``00`` exactly 55 characters long. Anything else is not
    logged: the summary keeps only ids a tracing system could have made.
    """
    match = _valid(traceparent)
    return None if match is None else match.group(2)


def is_sampled(traceparent: str) -> bool:
    """Whether a ``traceparent`` header value is valid (as :func:`trace_id_of` says) and has
    its sampled flag set: the caller records this trace, so its requests are worth a log line."""
    match = _valid(traceparent)
    return match is not None and bool(int(match.group(4), 16) & _SAMPLED)


def _valid(traceparent: str) -> Optional[re.Match[str]]:
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None:
        return None
    version, trace_id, parent_id, _, rest = match.groups()
    if version == _INVALID_VERSION or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID:
        return None
    return match


def add_span_ids(record: logging.LogRecord) -> None:
    """Give ``record`` the active OpenTelemetry span's ids, in the attribute names that
    OpenTelemetry's logging instrumentation uses (``otelTraceID``, ``otelSpanID``,
    ``otelTraceSampled``), unless it has them already.

    Without ``opentelemetry.trace`` imported no span can be active, so nothing is imported and
    nothing looked up: an application that does not trace pays one dictionary lookup.
    """
    trace = sys.modules.get(OPENTELEMETRY_TRACE)
    if trace is None or "otelTraceID" in record.__dict__:
        return
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record.otelTraceID = format(context.trace_id, "032x")
        record.otelSpanID = format(context.span_id, "016x")
        record.otelTraceSampled = context.trace_flags.sampled


def tracer_provider() -> Any:
    """OpenTelemetry's global tracer provider, if its tracing API is imported and a provider is
    set (``trace.set_tracer_provider``, or the ``opentelemetry-instrument`` command); else
    ``None``: no instrumentation can then make a span of this service's, and no heartbeat run
    is traced."""
    trace = sys.modules.get(OPENTELEMETRY_TRACE)
    if trace is None:
        return None
    try:
        provider = trace.get_tracer_provider()
    except Exception:
        # OTEL_PYTHON_TRACER_PROVIDER names a provider that cannot be loaded (OpenTelemetry
        # logs why): nothing traces.
        return None
    return None if isinstance(provider, trace.ProxyTracerProvider) else provider


class SpanWatch:
    """Whether this process's requests may run in spans of its own: a tracer provider set.

    Asking OpenTelemetry for the current span costs a request as much as 5 % of the
    pass-through, and a service that only has the API imported (FastAPI imports it wherever it
    is installed; so do many client libraries) has none to find. So a request reads
    :attr:`tracing`, and :meth:`look` asks :func:`tracer_provider` at most once a second
    until it says yes, then never again: a process sets its provider once, at its start.
    """

    __slots__ = ("next_look", "tracing")

    #: Seconds between two looks while no provider is set.
    INTERVAL = 1.0

    def __init__(self) -> None:
        #: Whether a tracer provider is set: requests then look for their span.
        self.tracing = False
        #: When (by ``time.perf_counter``) to look again; never, once a provider is set.
        self.next_look = 0.0

    def look(self, now: float) -> None:
        """Ask whether a tracer provider is set now (``now`` by ``time.perf_counter``)."""
        self.tracing = tracer_provider() is not None
        self.next_look = float("inf") if self.tracing else now + self.INTERVAL


#: The process's watch, which every middleware reads.
span_watch = SpanWatch()


def request_span(request_id: str) -> Any:
    """The OpenTelemetry span current now, if an instrumentation started it in this service,
    else ``None``. A recording one is given the request's id as :data:`REQUEST_ID_ATTRIBUTE`.

    The caller's span, which an instrumentation without a tracer provider makes current as it
    is (remote), is not this service's: its trace id is the ``traceparent``'s, which the summary
    has without it.

    Only for a caller that found :data:`OPENTELEMETRY_TRACE` in ``sys.modules`` (as
    :attr:`SpanWatch.tracing` does).
    """
    trace = sys.modules[OPENTELEMETRY_TRACE]
    span = trace.get_current_span()
    # The answer without a span: the one invalid span, known without asking it.
    if span is trace.INVALID_SPAN:
        return None
    context = span.get_span_context()
    if not context.is_valid or context.is_remote:
        return None
    if span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
    return span


def span_ids(span: Any) -> tuple[str, str]:
    """The trace id (32 lowercase hex) and span id (16) of an OpenTelemetry span."""
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
