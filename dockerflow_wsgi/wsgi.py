"""``DockerflowMiddleware``: the WSGI adapter of the Dockerflow core.

It reads a WSGI request, asks :class:`~dockerflow_wsgi.core.DockerflowCore` what to do, and
keeps PEP 3333's rules: the status recorded in ``start_response``, the body relayed chunk by
chunk and never buffered, the summary written when the server closes the response.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, Optional, Union

from .answers import ANSWERED_METHODS, DRAINING, GROUPS_PATH, LBHEARTBEAT, DeliberateError, Route
from .checks.registry import Check
from .config import FrameworkSettings, VersionCallback
from .core import DockerflowCore
from .cors import ALLOW_ORIGIN, with_request_id_exposed
from .discovery import find_middleware
from .exchange import Exchange
from .options import with_option_docs
from .pep3333 import (
    STATUS_CODES,
    rewrap_file_response,
    status_code,
    status_line,
    wsgi_text_as_utf8,
)
from .request_id import accept_request_id, generate_request_id, mark_exception
from .request_keys import REQUEST_ID_KEY
from .routes import wsgi_route_finder
from .tracing import span_watch

__all__ = ["DeliberateError", "DockerflowMiddleware", "find_middleware"]

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


@with_option_docs
class DockerflowMiddleware:
    """Make any WSGI application follow the Dockerflow conventions.

    Answers ``/__lbheartbeat__``, ``/__heartbeat__`` and ``/__version__`` (and ``/__error__``
    when enabled) before the wrapped application runs, gives every request an id, and writes
    one ``request.summary`` log record per request when its response is closed. Every other
    request reaches the application untouched.

    .. code-block:: python

        from dockerflow_wsgi import DockerflowMiddleware

        app.wsgi_app = DockerflowMiddleware(app.wsgi_app)    # Flask
        application = DockerflowMiddleware(application)      # any WSGI app

    Each option below may also come from its environment variable; the keyword wins.
    Invalid values raise :class:`ValueError` here, not at request time.

    :param app: the WSGI application to wrap.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        version_path: Optional[Union[str, os.PathLike[str]]] = None,
        version_callback: Optional[VersionCallback] = None,
        checks: Optional[Iterable[tuple[str, Check]]] = None,
        silenced_checks: Optional[Union[Iterable[str], str]] = None,
        check_timeout: Optional[Union[float, str]] = None,
        heartbeat_cache_ttl: Optional[Union[float, str]] = None,
        heartbeat_failed_status_code: Optional[Union[int, str]] = None,
        request_id_header: Optional[str] = None,
        log_querystring: Optional[Union[bool, str]] = None,
        heartbeat_details: Optional[Union[bool, str]] = None,
        error_endpoint: Optional[Union[bool, str]] = None,
        log_probes: Optional[Union[bool, str]] = None,
        db: Any = None,
        redis: Any = None,
        alembic_config: Any = None,
        heartbeat_groups: Optional[Union[Mapping[str, Any], str]] = None,
        check_timeouts: Optional[Union[Mapping[str, Any], str]] = None,
        non_critical_checks: Optional[Union[Iterable[str], str]] = None,
        heartbeat_interval: Optional[Union[float, str]] = None,
        metrics: Optional[Union[bool, str]] = None,
        state_dir: Optional[Union[str, os.PathLike[str]]] = None,
        drain_groups: Optional[Union[Iterable[str], str]] = None,
        heartbeat_shared: Optional[Union[bool, str]] = None,
        transition_runs: Optional[Union[int, str]] = None,
        health_log_repeat: Optional[Union[float, str]] = None,
        summary_sample_rate: Optional[Union[float, str]] = None,
        summary_slow_ms: Optional[Union[int, str]] = None,
    ) -> None:
        self._setup(
            app,
            DockerflowCore.from_options(
                {
                    "version_path": version_path,
                    "version_callback": version_callback,
                    "checks": checks,
                    "silenced_checks": silenced_checks,
                    "check_timeout": check_timeout,
                    "heartbeat_cache_ttl": heartbeat_cache_ttl,
                    "heartbeat_failed_status_code": heartbeat_failed_status_code,
                    "request_id_header": request_id_header,
                    "log_querystring": log_querystring,
                    "heartbeat_details": heartbeat_details,
                    "error_endpoint": error_endpoint,
                    "log_probes": log_probes,
                    "db": db,
                    "redis": redis,
                    "alembic_config": alembic_config,
                    "heartbeat_groups": heartbeat_groups,
                    "check_timeouts": check_timeouts,
                    "non_critical_checks": non_critical_checks,
                    "heartbeat_interval": heartbeat_interval,
                    "metrics": metrics,
                    "state_dir": state_dir,
                    "drain_groups": drain_groups,
                    "heartbeat_shared": heartbeat_shared,
                    "transition_runs": transition_runs,
                    "health_log_repeat": health_log_repeat,
                    "summary_sample_rate": summary_sample_rate,
                    "summary_slow_ms": summary_slow_ms,
                },
                sender=self,
            ),
        )

    @classmethod
    def with_framework_settings(
        cls, app: WSGIApp, framework: FrameworkSettings, **options: Any
    ) -> DockerflowMiddleware:
        """The middleware of a framework integration: each option also from ``framework``'s
        configuration, under its environment variable's name (the keyword wins over it, and it
        over the environment); a bad value names the key it came from.
        """
        return _FrameworkMiddleware(app, framework, options)

    def _setup(self, app: WSGIApp, core: DockerflowCore) -> None:
        self.app = app
        self.core = core
        core.route_finder = wsgi_route_finder(app)
        self.config = core.config
        self.heartbeat = core.heartbeat
        #: ``checks=`` as given, or ``None`` for the registry, entry points and sources.
        self.checks = core.checks.explicit
        #: The environ key of the request id header.
        self._request_id_key = core.config.request_id_environ_key
        #: The route answered without a summary or anything else per request: the load
        #: balancer's probe when probes are not logged and no metrics count it; else none.
        self._quiet_route = (
            Route.LBHEARTBEAT
            if Route.LBHEARTBEAT in core.silent_routes and core.metrics is None
            else None
        )

    def current_checks(self) -> list[tuple[str, Check]]:
        """The checks a heartbeat runs now, as ``(name, check)`` pairs: ``checks=`` if it was
        given, else the registered, published, built-in and framework checks, read now."""
        return self.core.checks.current()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if REQUEST_ID_KEY in environ:
            # An outer DockerflowMiddleware already handles this request.
            return self.app(environ, start_response)
        core = self.core
        if core.background is not None:
            core.background.start()
        # ``in`` first, then the item: cheaper than get() for the usual request, which has none.
        key = self._request_id_key
        sent = environ[key] if key in environ else None  # noqa: SIM401
        request_id = generate_request_id() if sent is None else accept_request_id(sent)
        path = environ.get("PATH_INFO", "")
        # The usual request's one cost: a lookup in the core's table. Only a path under the
        # heartbeat's (an unknown group is Dockerflow's 404 too) asks the core for more.
        route = core.routes.get(path)
        if route is None and GROUPS_PATH in path:
            route = core.route(path)
        if route is not None and route is self._quiet_route:
            quiet = _quiet_lbheartbeat(environ["REQUEST_METHOD"], start_response, core, request_id)
            if quiet is not None:
                return quiet
        environ[REQUEST_ID_KEY] = request_id
        exchange = WSGIExchange(core, environ, start_response, request_id, route, path)
        # The id is current while code runs for this request (here, while the body is made,
        # while it is closed) and never after: a response nobody closes (a test client's)
        # leaves no id behind for whatever this thread runs next.
        try:
            if route is None:
                body = self.app(environ, exchange.start_response)
            else:
                answer = core.respond(environ.get("REQUEST_METHOD", ""), route)
                exchange.start_response(status_line(answer.status), list(answer.headers))
                body = [answer.body]
        except BaseException as exc:
            mark_exception(exc, request_id)
            # Whatever status it had started, nothing was sent: the server answers 500.
            exchange.code = 0
            exchange.finish(sys.exc_info())
            raise
        finally:
            exchange.leave()
        exchange.body = body
        if type(body) is not list:
            file_response = rewrap_file_response(body, environ, exchange.close)
            if file_response is not None:
                # The server's own wrapper again, so that it can still send the file its way.
                return file_response
        return exchange


class _FrameworkMiddleware(DockerflowMiddleware):
    """A :class:`DockerflowMiddleware` whose options also come from a framework's settings.

    Its parent's ``__init__`` takes the options as keywords only (they are its documented,
    typed signature); this one takes them with their framework's settings instead, and sets
    up the same middleware from them.
    """

    def __init__(self, app: WSGIApp, framework: FrameworkSettings, options: dict[str, Any]) -> None:
        self._setup(app, DockerflowCore.from_options(options, framework, sender=self))


def _quiet_lbheartbeat(
    method: str, start_response: Callable[..., Any], core: DockerflowCore, request_id: str
) -> Optional[tuple[bytes, ...]]:
    """The load balancer's probe when probes are not logged and no metrics count it: a
    constant, its id echoed, nothing else (``None`` for a method it does not answer). A load
    balancer may probe every second from every node: this is all such a probe costs.

    It asks the drain watch itself rather than :meth:`DockerflowCore.answer`, whose dispatch
    would cost the probe a quarter more; the probe always drains (``core.drain_routes`` holds
    it)."""
    if method not in ANSWERED_METHODS:
        return None
    header = (core.config.request_id_header, request_id)
    if core.drain is not None and core.drain.draining_now():
        start_response(_DRAINING_STATUS, [*DRAINING.headers, header])
        return () if method == "HEAD" else _DRAINING_BODY
    start_response("200 OK", [*LBHEARTBEAT.headers, header])
    # A tuple, which no server or wrapper can change, so the same one serves every probe.
    return () if method == "HEAD" else _LBHEARTBEAT_BODY


_DRAINING_STATUS = status_line(DRAINING.status)
_DRAINING_BODY = (DRAINING.body,)
_LBHEARTBEAT_BODY = (LBHEARTBEAT.body,)
_ALLOW_ORIGIN_LENGTH = len(ALLOW_ORIGIN)


class WSGIExchange(Exchange):
    """One request's passage through the WSGI middleware, and the response the server gets.

    Its ``start_response`` records the status the application starts and adds the request id
    header; the server iterates it for the body, relayed as the application makes it, and
    closing it closes the application's iterable and ends the request.
    """

    __slots__ = ("_exc_info", "_relay", "_start_response", "body", "environ")

    #: The application's body: set when it returns one, before the server gets this exchange.
    body: Any

    def __init__(
        self,
        core: DockerflowCore,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        request_id: str,
        route: Optional[str],
        path_info: str,
    ) -> None:
        self.environ = environ
        self._start_response = start_response
        self.method = environ.get("REQUEST_METHOD", "")
        path = environ.get("SCRIPT_NAME", "") + path_info
        self.path = path if path.isascii() else wsgi_text_as_utf8(path)
        if core.config.log_querystring:
            query = environ.get("QUERY_STRING")
            self.query = wsgi_text_as_utf8(query) if query else ""
        else:
            self.query = None
        self.agent = environ.get("HTTP_USER_AGENT", "")
        self.lang = environ.get("HTTP_ACCEPT_LANGUAGE", "")
        # Cheaper than get() for the usual request, which has neither.
        self.user_id = environ["REMOTE_USER"] if "REMOTE_USER" in environ else None  # noqa: SIM401
        self.traceparent = environ["HTTP_TRACEPARENT"] if "HTTP_TRACEPARENT" in environ else None  # noqa: SIM401
        #: The relay of a body that is not a list, once the server asks for an iterator.
        self._relay: Optional[Iterator[bytes]] = None
        #: The exception the relay of the body, or its close(), raised.
        self._exc_info: Any = None
        # Called by name: super() would make an object for it, on every request.
        Exchange.__init__(self, core, request_id, route, environ)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        # A subscript, not get(): CPython 3.11 calls a method of a name from ``from ...
        # import`` through a bound method made at each call. Nearly every status is known.
        try:
            self.code = STATUS_CODES[status]
        except KeyError:
            self.code = status_code(status)
        core = self.core
        if core.route_finder is not None and self.route is None:
            # Now, while the framework's request is still there; a Dockerflow path keeps its
            # own route (no framework request saw it).
            self.route = core.route_finder(self.environ)
        if span_watch.tracing:
            # Now, while a framework's instrumentation has its span current (Flask's ends it
            # with its request context, before the body is closed).
            self.see_span()
        wanted = core.request_id_header_lower
        wanted_length = core.request_id_header_length
        has_id = cross_origin = False
        for name, _ in headers:
            # Most names differ in length from both already, and len() is cheaper than lower().
            length = len(name)
            if length == wanted_length:
                if name.lower() == wanted:
                    has_id = True
            elif length == _ALLOW_ORIGIN_LENGTH and name.lower() == ALLOW_ORIGIN:
                cross_origin = True
        if cross_origin:
            headers = with_request_id_exposed(headers, core.request_id_header) or headers
        if not has_id:
            headers = [*headers, (core.request_id_header, self.request_id)]
        if exc_info is None:
            return self._start_response(status, headers)
        return self._start_response(status, headers, exc_info)

    def __iter__(self) -> Iterator[bytes]:
        body = self.body
        if type(body) is list:
            # The usual small body, and every Dockerflow answer: nothing of the application's
            # runs while a list is walked, so the server walks it itself.
            return iter(body)
        # Some clients (Flask's test client) call iter() twice: the body is relayed once.
        if self._relay is None:
            self._relay = self._relay_chunks()
        return self._relay

    def _relay_chunks(self) -> Iterator[bytes]:
        """The application's chunks as they come, noting an exception raised on the way.

        A generator rather than ``__next__``: the end of the body is no exception to catch
        and raise again. Not ``yield from``, which would close the application's iterable
        when this generator is closed, and :meth:`close` closes it already. The request's id
        is current while the body is relayed, and not once it ends.
        """
        # Current from the first chunk to the last: setting it around each chunk would cost
        # more than the chunk's relay itself.
        self.enter()
        try:
            for chunk in self.body:  # noqa: UP028 - see the docstring
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            mark_exception(exc, self.request_id)
            self._exc_info = sys.exc_info()
            raise
        finally:
            try:
                self.leave()
            except ValueError:
                # Finalised by the garbage collector in another context: nothing to restore.
                pass

    def close(self) -> None:
        """Close the application's body, the request's id current, then end the request."""
        if self.finished:
            return
        body = self.body
        # A list (the usual small body, every Dockerflow answer) has no close(): its type,
        # tested first, costs less than getattr()'s search.
        close = None if type(body) is list else getattr(body, "close", None)
        if close is None:
            # A list, or a body with nothing to close: nothing of the application's runs.
            self.finish(self._exc_info)
            return
        if self._relay is not None:
            # Left unfinished when the server stops early; its frame refers to this exchange,
            # so it is closed now rather than left for the garbage collector. First: it
            # leaves the request's id as it found it, which must not undo the id set below.
            self._relay.close()
        self.enter()
        try:
            close()
        except BaseException as exc:
            mark_exception(exc, self.request_id)
            self._exc_info = self._exc_info or sys.exc_info()
            raise
        finally:
            try:
                self.finish(self._exc_info)
            finally:
                self.leave()
