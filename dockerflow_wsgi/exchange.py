"""One request's passage through Dockerflow, whatever the protocol that carries it.

An adapter makes one :class:`Exchange` per request (its own subclass, which adds what its
protocol needs: WSGI's ``start_response``, ASGI's ``send``) and fills in the request's facts
as its protocol gives them: the method, the path and query as the client sent them, the
headers the summary logs. Everything else is done here, once for every protocol: the request's
context variables, and the end of the request (the metrics, the probes left out of the log, the
duration, the summary), written once, however many ways the request may end.
"""

from __future__ import annotations

from contextvars import Token
from math import trunc
from time import perf_counter
from typing import TYPE_CHECKING, Any, Optional
from zlib import crc32

from .request_id import request_id_header_var, request_id_var
from .request_keys import EXC_INFO_KEY, ROUTE_KEY, SPAN_KEY, USER_ID_KEY
from .summary import RequestFacts
from .tracing import is_sampled, request_span, span_watch

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .core import DockerflowCore

__all__ = ["Exchange"]

_NO_REPORTS: Mapping[str, Any] = {}

# The request id's context variable is set and reset through its methods bound once, here:
# CPython 3.11 compiles ``request_id_var.set(...)`` on a name from ``from ... import`` as it
# would a module's function, and makes a new bound method at every call.
_set_request_id = request_id_var.set
_reset_request_id = request_id_var.reset


class Exchange(RequestFacts):
    """A request: its facts (:class:`~dockerflow_wsgi.summary.RequestFacts`, which the adapter's
    subclass reads from its protocol), its context and its end.

    The adapter's subclass sets the facts in its ``__init__`` and calls this one's; the
    application (or a framework integration) may report an exception or a user at
    ``reports`` (the WSGI environ or the ASGI scope, under :data:`EXC_INFO_KEY` and
    :data:`USER_ID_KEY`) until :meth:`finish`.
    """

    __slots__ = (
        "_header_token",
        "_id_token",
        "agent",
        "code",
        "core",
        "ended",
        "finished",
        "lang",
        "log",
        "method",
        "path",
        "query",
        "reports",
        "request_id",
        "route",
        "span",
        "started",
        "traceparent",
        "user_id",
    )

    #: Who made the request, as the server says (``REMOTE_USER``), unless ``reports`` says.
    user_id: Any
    _id_token: Token[Optional[str]]
    _header_token: Optional[Token[str]]

    def __init__(
        self,
        core: DockerflowCore,
        request_id: str,
        dockerflow_route: Optional[str],
        reports: Mapping[str, Any] = _NO_REPORTS,
    ) -> None:
        self.core = core
        self.request_id = request_id
        if dockerflow_route is None:
            # The application's request, nearly every one: logged, its route the framework's.
            # One test, where the two lookups below would cost it ~250 instructions.
            #: Whether the request gets a summary: every one but the probes, unless they are
            #: logged.
            self.log = True
            self.route = None
        else:
            self.log = dockerflow_route not in core.silent_routes
            self.route = core.route_templates.get(dockerflow_route)
        self.reports = reports
        #: The status sent, 0 until there is one.
        self.code = 0
        #: When the last byte of the body was handed to the server, if it was.
        self.ended: Optional[float] = None
        self.finished = False
        #: The request's OpenTelemetry span: ``None`` until :meth:`see_span` looks, ``False``
        #: when it found none.
        self.span: Any = None
        if core.metrics is not None:
            core.metrics.request_started()
        self.started = started = perf_counter()
        if started >= span_watch.next_look:
            # At most once a second, until a tracer provider is set.
            span_watch.look(started)
        # A request begins entered: enter()'s two lines, here rather than by its call, which
        # would cost each request as much again.
        self._id_token = _set_request_id(request_id)
        header = core.header_in_context
        self._header_token = None if header is None else request_id_header_var.set(header)

    def enter(self) -> None:
        """Make the request's id (and its header, when not the default) current, for the code
        that runs for it now, until :meth:`leave`. A request begins entered.

        The code run for a request never overlaps itself (the application's call, the relay
        of its body, its close), so one pair of tokens is kept, not a stack.
        """
        self._id_token = _set_request_id(self.request_id)
        header = self.core.header_in_context
        self._header_token = None if header is None else request_id_header_var.set(header)

    def leave(self) -> None:
        """Restore the context variables as :meth:`enter` found them."""
        _reset_request_id(self._id_token)
        if self._header_token is not None:
            request_id_header_var.reset(self._header_token)

    def see_span(self) -> None:
        """Note the request's OpenTelemetry span, for the summary's ids: the one a framework
        integration reported at :data:`SPAN_KEY`, else the one current now.

        An adapter calls it as the response starts, where a tracer provider is set
        (:data:`~dockerflow_wsgi.tracing.span_watch`): a framework's instrumentation may end its
        span before the request ends (Flask's, at the end of its request context).
        :meth:`finish` calls it for a request that ended without a response (the application
        raised).
        """
        reports = self.reports
        span = reports[SPAN_KEY] if SPAN_KEY in reports else request_span(self.request_id)
        self.span = span or False

    def finish(self, exc_info: Any = None) -> None:
        """End the request, once: its metrics and, unless sampling leaves it out, its summary.

        ``exc_info`` is the exception that ended it (a ``sys.exc_info()`` triple or the
        exception), if any; without one, the one reported at ``reports`` counts: a view's
        exception that a framework answered with a 500 page is still an error. With
        ``summary_sample_rate`` below 1, errors, 5xx, slow and trace-sampled requests keep
        their summary; any other keeps it when ``crc32(request_id)`` falls below the rate's
        share of 2**32, and then says so with ``sample_rate``.
        """
        if self.finished:
            return
        self.finished = True
        reports = self.reports
        # ``in`` first, then the item: cheaper than get() for the usual request, which has none.
        if not exc_info and EXC_INFO_KEY in reports:
            exc_info = reports[EXC_INFO_KEY]
        if ROUTE_KEY in reports:
            # What the application reported wins over what its framework says; as text,
            # whatever it gave.
            reported = reports[ROUTE_KEY]
            self.route = None if reported is None else str(reported)
        core = self.core
        seconds = (self.ended or perf_counter()) - self.started
        if core.metrics is not None:
            core.metrics.request_finished()
            core.metrics.observe_request(
                self.method, self.code, self.route or "", seconds, bool(exc_info)
            )
        if not self.log:
            return
        if self.span is None and span_watch.tracing:
            self.see_span()
        # trunc() gives what int() gives for a float, without a call of the int type (its
        # construction costs the request ~450 instructions more, counted by callgrind).
        milliseconds = trunc(seconds * 1000)
        sample_rate = None
        if (
            core.sample_threshold is not None
            and not exc_info
            and self.code < 500
            and milliseconds < core.config.summary_slow_ms
            and not (self.traceparent is not None and is_sampled(self.traceparent))
        ):
            # An ordinary request: kept by its id's draw, the same in every service the id
            # passes through.
            if crc32(self.request_id.encode()) >= core.sample_threshold:
                return
            sample_rate = core.config.summary_sample_rate
        uid = reports[USER_ID_KEY] if USER_ID_KEY in reports else None  # noqa: SIM401 - as above
        core.summary.write(self, uid or self.user_id, milliseconds, exc_info, sample_rate)
