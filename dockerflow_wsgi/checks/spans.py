"""OpenTelemetry spans of heartbeat runs: ``dockerflow.heartbeat`` for a run, and a child
``dockerflow.check`` for each check in it, for services that trace.

A check's span is current while the check runs, so the spans its own client makes (a database
driver's instrumentation) are its children; it records the level the heartbeat reports, whether
the run stopped waiting for the check, and the exception it raised (masked, as the log has it).
A run on demand is a child of the probe's span; a run in the background is a trace of its own
(a root span), never a child of whichever probe first started the runs.

Spans are made only where the application has imported ``opentelemetry.trace`` and set a tracer
provider: nothing of OpenTelemetry is imported here, and a service that does not trace pays, per
run, the question whether a provider is set.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from ..tracing import OPENTELEMETRY_TRACE, tracer_provider
from .containment import CheckFailure
from .messages import ERROR, OK, CheckMessage, level_to_text
from .results import CheckResults

__all__ = [
    "CHECK_LEVEL",
    "CHECK_NAME",
    "CHECK_SPAN",
    "CHECK_TIMED_OUT",
    "HEARTBEAT_LEVEL",
    "HEARTBEAT_SPAN",
    "RunTrace",
    "start_run_trace",
]

#: The span of a heartbeat run, and of each check in it.
HEARTBEAT_SPAN = "dockerflow.heartbeat"
CHECK_SPAN = "dockerflow.check"
#: The attributes of a check's span: its name, the level the heartbeat reports (text), and
#: whether the run stopped waiting for it (E102).
CHECK_NAME = "dockerflow.check.name"
CHECK_LEVEL = "dockerflow.check.level"
CHECK_TIMED_OUT = "dockerflow.check.timed_out"
#: The attribute of a run's span: the heartbeat's level (text).
HEARTBEAT_LEVEL = "dockerflow.heartbeat.level"

_INSTRUMENTATION_NAME = "dockerflow_wsgi"

logger = logging.getLogger("dockerflow_wsgi")
# Whether this process said already that its tracer provider failed: once is enough.
_failure_logged = False


def _log_failure(step: str) -> None:
    """A tracer provider is the application's (or a vendor's) code: whatever it raises, the
    checks still run and the heartbeat answers, untraced; the first failure is logged."""
    global _failure_logged
    if not _failure_logged:
        _failure_logged = True
        logger.warning(
            "OpenTelemetry failed to %s; heartbeat runs go on untraced", step, exc_info=True
        )


Fold = Callable[[Mapping[str, list[CheckMessage]]], CheckResults]


def start_run_trace(*, root: bool, fold: Fold) -> Optional[RunTrace]:
    """The spans of a run that starts now, or ``None`` where nothing traces.

    :param root: whether the run is a trace of its own (a background run), rather than a child
        of the span current now.
    :param fold: folds the run's messages under the heartbeat's rules (silenced ids,
        non-critical checks), for the levels the spans report.
    """
    provider = tracer_provider()
    if provider is None:
        return None
    try:
        return RunTrace(sys.modules[OPENTELEMETRY_TRACE], provider, root=root, fold=fold)
    except Exception:
        _log_failure("start a heartbeat run's span")
        return None


class RunTrace:
    """The spans of one heartbeat run: started as the run starts, each check's as the run
    starts (or joins) its call, all ended by :meth:`end` with what the run reports."""

    def __init__(self, trace: Any, provider: Any, *, root: bool, fold: Fold) -> None:
        # Here, not at the top: the package imports this module before it has its version.
        from .. import __version__

        self._trace = trace
        self._fold = fold
        self._tracer = trace.get_tracer(_INSTRUMENTATION_NAME, __version__, provider)
        # A background run's parent is an empty context: no span, so a new trace.
        parent = sys.modules["opentelemetry.context"].Context() if root else None
        self.span = self._tracer.start_span(HEARTBEAT_SPAN, context=parent)
        self._parent = trace.set_span_in_context(self.span, parent)
        self._checks: dict[str, Any] = {}

    def check_context(self, name: str) -> contextvars.Context:
        """Start the span of the check ``name``: the context to run the check in, a copy of the
        current one in which that span is current."""
        context = contextvars.copy_context()
        try:
            span = self._tracer.start_span(
                CHECK_SPAN, context=self._parent, attributes={CHECK_NAME: name}
            )
            self._checks[name] = span
            # In the copy only: its token is never needed, the copy being dropped with the call.
            attach = sys.modules["opentelemetry.context"].attach
            context.run(attach, self._trace.set_span_in_context(span, self._parent))
        except Exception:
            _log_failure("start a check's span")
        return context

    def end(self, messages: Mapping[str, list[CheckMessage]], ended: Mapping[str, float]) -> None:
        """End the run's spans: each check's when it returned (``ended``, by the monotonic
        clock) or now, for one the run stopped waiting for."""
        try:
            self._end(messages, ended)
        except Exception:
            _log_failure("end a heartbeat run's spans")

    def _end(self, messages: Mapping[str, list[CheckMessage]], ended: Mapping[str, float]) -> None:
        trace = self._trace
        results = self._fold(messages)
        now = time.monotonic()
        now_ns = time.time_ns()
        failing = []
        for name, span in self._checks.items():
            finished = ended.get(name)
            span.set_attribute(CHECK_LEVEL, results.statuses.get(name, level_to_text(OK)))
            span.set_attribute(CHECK_TIMED_OUT, finished is None)
            for message in messages.get(name, ()):
                if isinstance(message, CheckFailure):
                    _record_failure(span, message)
            if name in results.details and results.details[name]["level"] >= ERROR:
                failing.append(name)
                span.set_status(
                    trace.Status(trace.StatusCode.ERROR, _worst(results.messages.get(name, [])))
                )
            span.end(end_time=now_ns if finished is None else now_ns - int((now - finished) * 1e9))
        self.span.set_attribute(HEARTBEAT_LEVEL, level_to_text(results.level))
        if failing:
            description = "failing: " + ", ".join(sorted(failing))
            self.span.set_status(trace.Status(trace.StatusCode.ERROR, description))
        self.span.end(end_time=now_ns)


def _record_failure(span: Any, failure: CheckFailure) -> None:
    """The exception a check raised, as an ``exception`` event in OpenTelemetry's names, masked
    as the heartbeat and the log have it (``record_exception`` would not mask it)."""
    attributes = {"exception.message": failure.msg}
    if failure.exception_type is not None:
        attributes["exception.type"] = failure.exception_type
    if failure.traceback is not None:
        attributes["exception.stacktrace"] = failure.traceback
    span.add_event("exception", attributes)


def _worst(messages: list[CheckMessage]) -> str:
    """The most severe message, ``id: text``, for the span's status."""
    if not messages:
        return ""
    worst = max(messages, key=lambda message: message.level)
    return f"{worst.id}: {worst.msg}" if worst.id else str(worst.msg)
