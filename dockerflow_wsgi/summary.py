"""The ``request.summary`` record: one per request, in the mozlog field names, whatever the
protocol (each adapter gathers the request's own text in its exchange)."""

from __future__ import annotations

import logging
from typing import Any, Optional, Protocol

from .direct_log import level_cache, make_record, on_switch, write_direct
from .logging import SUMMARY_LOGGER_NAME
from .redact import mask_path, mask_query
from .tracing import span_ids, trace_id_of

__all__ = ["MAX_CLIENT_FIELD_LENGTH", "RequestFacts", "SummaryWriter", "clip"]

#: Longest value taken from the client (User-Agent, path, ...) that is logged as it is.
MAX_CLIENT_FIELD_LENGTH = 1024
TRUNCATION_MARKER = "...[truncated]"

_INFO = logging.INFO
_ERROR = logging.ERROR
summary_logger = logging.getLogger(SUMMARY_LOGGER_NAME)


def _read_level_cache() -> None:
    """Point ``_enabled_levels``, read at every request, at the summary logger's cache of
    ``isEnabledFor``'s answers (:func:`~.direct_log.level_cache`): at import, and again whenever
    the direct write is turned on or off (off, it is an empty dict: every request asks
    ``isEnabledFor``, as plain logging does)."""
    global _enabled_levels
    _enabled_levels = level_cache(summary_logger)


_enabled_levels: dict[int, bool]
_read_level_cache()
on_switch(_read_level_cache)


def clip(value: str) -> str:
    """Bound a client-controlled value so one request cannot write a huge log line."""
    if len(value) <= MAX_CLIENT_FIELD_LENGTH:
        return value
    return value[:MAX_CLIENT_FIELD_LENGTH] + TRUNCATION_MARKER


class RequestFacts(Protocol):
    """What the summary says of a request, as its adapter read it: the facts every
    :class:`~dockerflow_wsgi.exchange.Exchange` holds."""

    __slots__ = ()

    #: The request's method, as sent.
    method: str
    #: The whole path, and the query string when it is logged (else ``None``), as the client
    #: sent them, decoded as UTF-8.
    path: str
    query: Optional[str]
    #: The User-Agent and Accept-Language, ``""`` when not sent.
    agent: str
    lang: str
    #: The W3C ``traceparent`` header, if sent (two are joined with a comma).
    traceparent: Optional[str]
    #: The OpenTelemetry span the request ran in, if one was seen (else ``None`` or ``False``).
    span: Any
    #: The status sent, 0 when none was.
    code: int
    request_id: str
    #: The template of the route the framework matched (a Dockerflow path's own path), as its
    #: adapter read it; ``None`` when no route matched.
    route: Optional[str]


class SummaryWriter:
    """Writes the summary record of a finished request to the ``request.summary`` logger."""

    __slots__ = ("log_querystring",)

    def __init__(self, *, log_querystring: bool) -> None:
        self.log_querystring = log_querystring

    def write(
        self,
        request: RequestFacts,
        uid: Any,
        duration_ms: int,
        exc_info: Any,
        sample_rate: Optional[float] = None,
    ) -> None:
        """Log the summary of ``request``; ERROR with ``exc_info`` when it failed, else INFO.

        The request's facts are as its adapter read them: its path and query as the client
        sent them, decoded as UTF-8, its ``code`` the status sent (0 when none was); ``uid``
        is whoever the application said made the request. ``exc_info`` is a
        ``sys.exc_info()`` triple or, as an integration may report it, the exception itself.
        The request's OpenTelemetry span adds its ``trace_id`` and ``span_id``; without one, a
        valid ``traceparent`` adds its ``trace_id``. A matched ``route`` adds its template;
        ``sample_rate`` is the rate of the draw that kept this line, if one did.
        """
        level = _ERROR if exc_info else _INFO
        # isEnabledFor's answer from its own cache, without the call (logging empties the
        # cache at every change of levels; it is filled by the call when empty); the cache
        # does not know of a disabled logger, which the call checks first.
        try:
            enabled = _enabled_levels[level]
        except KeyError:
            enabled = summary_logger.isEnabledFor(level)
        if not enabled or summary_logger.disabled:
            return
        method = request.method
        path = request.path
        agent = request.agent
        lang = request.lang
        code = request.code
        if exc_info:
            code = code or 500
            errno = 500
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        else:
            errno = code if code >= 400 else 0
        uid = str(uid) if uid else ""
        if "@" in path or "?" in path:
            # A URL with its credentials quoted in the path, or a query string sent in it as
            # %3F: the log must not keep their secrets. Two `in` tests are all a usual path pays.
            path = mask_path(path)
        # Text from the client (or the app) is bounded; the length check is all that the
        # usual request pays (a sum is cheaper than max(), and clip() leaves short texts be).
        if len(agent) + len(lang) + len(method) + len(path) + len(uid) > MAX_CLIENT_FIELD_LENGTH:
            agent, lang, method, path, uid = map(clip, (agent, lang, method, path, uid))
        fields = {
            "agent": agent,
            "lang": lang,
            "method": method,
            "path": path,
            "code": code,
            "errno": errno,
            "t": duration_ms,
            "rid": request.request_id,
            "uid": uid,
        }
        query = request.query
        if query is not None:
            fields["querystring"] = clip(mask_query(query))
        if request.span:
            # The trace the service is in: the caller's, continued, or one begun here.
            fields["trace_id"], fields["span_id"] = span_ids(request.span)
        else:
            traceparent = request.traceparent
            if traceparent is not None:
                trace_id = trace_id_of(traceparent)
                if trace_id is not None:
                    fields["trace_id"] = trace_id
        route = request.route
        if route is not None:
            # From the application's own route table, not from the client: bounded already.
            fields["route"] = route
        if sample_rate is not None:
            fields["sample_rate"] = sample_rate
        if exc_info or not write_direct(summary_logger, level, fields):
            summary_logger.handle(make_record(SUMMARY_LOGGER_NAME, level, fields, exc_info))
