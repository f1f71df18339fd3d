"""``DockerflowMiddleware``: the WSGI adapter of the Dockerflow core.

It reads a WSGI request, asks :class:`~dockerflow_wsgi.core.DockerflowCore` what to do, and
keeps PEP 3333's rules: the status recorded in ``start_response``, the body relayed chunk by
chunk and never buffered, the summary written when the server closes the response.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from time import perf_counter
from typing import Any, Callable, Optional, Union

from .answers import (
    ANSWERED_METHODS,
    GROUPS_PATH,
    LBHEARTBEAT,
    METHOD_NOT_ALLOWED,
    DeliberateError,
    Route,
)
from .checks.registry import Check
from .config import FrameworkSettings, VersionCallback
from .core import EXC_INFO_KEY, REQUEST_ID_KEY, USER_ID_KEY, DockerflowCore
from .cors import ALLOW_ORIGIN, with_request_id_exposed
from .discovery import find_middleware
from .options import with_option_docs
from .pep3333 import (
    STATUS_CODES,
    rewrap_file_response,
    status_code,
    status_line,
    wsgi_text_as_utf8,
)
from .request_id import (
    accept_request_id,
    generate_request_id,
    mark_exception,
    request_id_header_var,
    request_id_var,
)

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
        middleware = cls.__new__(cls)
        middleware._setup(app, DockerflowCore.from_options(options, framework, sender=middleware))
        return middleware

    def _setup(self, app: WSGIApp, core: DockerflowCore) -> None:
        self.app = app
        self.core = core
        self.config = core.config
        self.heartbeat = core.heartbeat
        #: ``checks=`` as given, or ``None`` for the registry, entry points and sources.
        self.checks = core.checks.explicit
        # Read on every request: kept here, one attribute away.
        self._routes = core.routes
        self._silent_routes = core.silent_routes
        self._summary = core.summary
        #: Started by the first request of each process (``heartbeat_interval``), else None.
        self._background = core.background
        self._request_id_key = core.config.request_id_environ_key
        # Compared with every response's header names: lowered once, not per request.
        self._request_id_header_lower = core.config.request_id_header.lower()
        #: The header to make current with the id, when it is not the default one.
        self._header_in_context = core.header_in_context
        self._request_id_header = core.config.request_id_header
        #: The route answered without a summary or anything else per request: the load
        #: balancer's probe when probes are not logged and no metrics count it; else none.
        self._quiet_route = (
            Route.LBHEARTBEAT
            if Route.LBHEARTBEAT in core.silent_routes and core.metrics is None
            else None
        )
        # Its headers, one attribute away (cheaper than the global's), and its body by method:
        # tuples, which no server or wrapper can change, so the same ones serve every probe.
        self._quiet_headers = LBHEARTBEAT.headers
        self._quiet_bodies = {"GET": (LBHEARTBEAT.body,), "HEAD": ()}
        #: The process's Prometheus metrics, when ``metrics`` is on.
        self._metrics = core.metrics

    def current_checks(self) -> list[tuple[str, Check]]:
        """The checks a heartbeat runs now, as ``(name, check)`` pairs: ``checks=`` if it was
        given, else the registered, published, built-in and framework checks, read now."""
        return self.core.checks.current()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if REQUEST_ID_KEY in environ:
            # An outer DockerflowMiddleware already handles this request.
            return self.app(environ, start_response)
        if self._background is not None:
            self._background.start()
        sent = environ.get(self._request_id_key)
        request_id = generate_request_id() if sent is None else accept_request_id(sent)
        path = environ.get("PATH_INFO", "")
        route = self._routes.get(path)
        if route is None:
            # ``in`` first: for the usual path, which holds no group path at all, it costs a
            # fraction of a startswith() call.
            if GROUPS_PATH in path and path.startswith(GROUPS_PATH):
                route = self.core.route(path)
        elif route is self._quiet_route:
            # The load balancer's probe when probes are not logged: a constant, its id echoed,
            # nothing else. A load balancer may probe every second from every node: this is
            # all such a probe costs.
            body = self._quiet_bodies.get(environ["REQUEST_METHOD"])
            if body is not None:
                start_response(
                    "200 OK", [*self._quiet_headers, (self._request_id_header, request_id)]
                )
                return body
        environ[REQUEST_ID_KEY] = request_id
        # The exchange's slots set here rather than by an __init__, whose call would cost
        # more than all of them.
        exchange = _Exchange()
        exchange._middleware = self
        exchange.environ = environ
        exchange._start_response = start_response
        exchange.request_id = request_id
        exchange._log = route not in self._silent_routes
        exchange._status = None
        exchange._finished = False
        exchange._started = perf_counter()
        # The id is current while code runs for this request (here, while the body is made,
        # while it is closed) and never after: a response nobody closes (a test client's)
        # leaves no id behind for whatever this thread runs next.
        token = request_id_var.set(request_id)
        header = self._header_in_context
        header_token = None if header is None else request_id_header_var.set(header)
        try:
            if route is None:
                app_iter = self.app(environ, exchange.start_response)
            else:
                app_iter = self._answer(route, environ, exchange.start_response)
        except BaseException as exc:
            mark_exception(exc, request_id)
            exchange.abort(sys.exc_info())
            raise
        finally:
            request_id_var.reset(token)
            if header_token is not None:
                request_id_header_var.reset(header_token)
        if type(app_iter) is list:
            # The usual small body, and every Dockerflow answer: handed on in the exchange.
            exchange += app_iter
            return exchange
        return exchange.wrap_stream(app_iter)

    def _answer(
        self, route: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        answer = self.core.answer(route) if method in ANSWERED_METHODS else METHOD_NOT_ALLOWED
        start_response(status_line(answer.status), list(answer.headers))
        return [] if method == "HEAD" else [answer.body]


_ALLOW_ORIGIN_LENGTH = len(ALLOW_ORIGIN)


class _Exchange(list):  # type: ignore[type-arg]
    """One request's passage through the middleware, and, for a list body, the response.

    It records the status the application starts, adds the request id header, and when the
    server closes the response it closes the application's iterable and writes the summary,
    the id current again. It holds everything a request needs, so that it is all the
    middleware makes per request.

    A list body (the usual small one, and every Dockerflow answer) cannot fail while iterated:
    its chunks are put in this exchange, a list, which the server then walks in C and closes.
    Any other body is relayed by a :class:`_StreamedBody`, the request's id current while the
    application makes each chunk.
    """

    __slots__ = (
        "_app_iter",
        "_exc_info",
        "_finished",
        "_log",
        "_middleware",
        "_start_response",
        "_started",
        "_status",
        "environ",
        "request_id",
    )

    _middleware: DockerflowMiddleware
    environ: dict[str, Any]
    _start_response: Callable[..., Any]
    request_id: str
    #: Whether the request gets a summary.
    _log: bool
    #: The status the application started, until it raises instead of answering.
    _status: Optional[str]
    #: A body that is not a list, and the exception its relay or its close() raised.
    _app_iter: Any
    _exc_info: Any
    _finished: bool
    _started: float

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        self._status = status
        middleware = self._middleware
        wanted = middleware._request_id_header_lower
        wanted_length = len(wanted)
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
            headers = with_request_id_exposed(headers, middleware._request_id_header) or headers
        if not has_id:
            headers = [*headers, (middleware._request_id_header, self.request_id)]
        if exc_info is None:
            return self._start_response(status, headers)
        return self._start_response(status, headers, exc_info)

    def wrap_stream(self, app_iter: Any) -> Any:
        """What the server should iterate for a body that is not a list, ``app_iter``: a relay
        of it, or a new file wrapper of the server's own."""
        # Only such a body has anything of the application's to relay, to close or to fail.
        self._app_iter = app_iter
        self._exc_info = None
        file_response = rewrap_file_response(app_iter, self.environ, self.close_body)
        if file_response is not None:
            return file_response
        # Its slots set here, as the exchange's are: an __init__ call would cost more.
        body = _StreamedBody()
        body._exchange = self
        body._relay = None
        return body

    def relay(self) -> Iterator[bytes]:
        """The application's chunks as they come, noting an exception raised on the way.

        A generator rather than ``__next__``: the end of the body is no exception to catch
        and raise again. Not ``yield from``, which would close the application's iterable
        when this generator is closed, and :meth:`close_body` closes it already. The
        request's id is current while the body is relayed, and not once it ends.
        """
        # Current from the first chunk to the last: setting it around each chunk would cost
        # more than the chunk's relay itself.
        token = request_id_var.set(self.request_id)
        header = self._middleware._header_in_context
        header_token = None if header is None else request_id_header_var.set(header)
        try:
            for chunk in self._app_iter:  # noqa: UP028 - see the docstring
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            mark_exception(exc, self.request_id)
            self._exc_info = sys.exc_info()
            raise
        finally:
            try:
                request_id_var.reset(token)
                if header_token is not None:
                    request_id_header_var.reset(header_token)
            except ValueError:
                # Finalised by the garbage collector in another context: nothing to restore.
                pass

    def close_body(self) -> None:
        """Close the application's body, the request's id current, then finish."""
        if self._finished:
            return
        close = getattr(self._app_iter, "close", None)
        if close is None:
            self.finish(self._exc_info)
            return
        token = request_id_var.set(self.request_id)
        header = self._middleware._header_in_context
        header_token = None if header is None else request_id_header_var.set(header)
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
                request_id_var.reset(token)
                if header_token is not None:
                    request_id_header_var.reset(header_token)

    def abort(self, exc_info: Any) -> None:
        """The application raised instead of returning a response.

        Whatever status it had started, nothing was sent: the server answers 500.
        """
        self._status = None
        self.finish(exc_info)

    def finish(self, exc_info: Any = None) -> None:
        """Write the summary, once.

        Without an exception of its own, the summary takes the one a framework reported at
        ``environ["dockerflow.exc_info"]``: a view's exception that the framework answered
        with a 500 page is still an error.
        """
        if self._finished:
            return
        self._finished = True
        status = self._status
        code = STATUS_CODES.get(status) or status_code(status)  # type: ignore[arg-type]
        metrics = self._middleware._metrics
        if metrics is not None:
            metrics.observe_request(
                self.environ.get("REQUEST_METHOD", ""),
                code,
                perf_counter() - self._started,
                bool(exc_info or self.environ.get(EXC_INFO_KEY)),
            )
        if self._log:
            environ = self.environ
            summary = self._middleware._summary
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            summary.write(
                environ.get("REQUEST_METHOD", ""),
                path if path.isascii() else wsgi_text_as_utf8(path),
                (
                    wsgi_text_as_utf8(environ.get("QUERY_STRING", ""))
                    if summary.log_querystring
                    else None
                ),
                environ.get("HTTP_USER_AGENT", ""),
                environ.get("HTTP_ACCEPT_LANGUAGE", ""),
                environ.get(USER_ID_KEY) or environ.get("REMOTE_USER"),
                code,
                int((perf_counter() - self._started) * 1000),
                self.request_id,
                exc_info or environ.get(EXC_INFO_KEY),
                # Cheaper than get() for the usual request, which has none.
                environ["HTTP_TRACEPARENT"] if "HTTP_TRACEPARENT" in environ else None,  # noqa: SIM401
            )

    #: The server closes a list body, the exchange itself: nothing of the application's is
    #: left to close or to fail (the summary carries the id itself), so closing it is
    #: finishing.
    close = finish


class _StreamedBody:
    """The response of a body that is not a list: relayed as the application makes it."""

    __slots__ = ("_exchange", "_relay")

    _exchange: _Exchange
    #: The relay of the application's body, once a server asks for an iterator.
    _relay: Optional[Iterator[bytes]]

    def __iter__(self) -> Iterator[bytes]:
        # Some clients (Flask's test client) call iter() twice: the body is relayed once.
        if self._relay is None:
            self._relay = self._exchange.relay()
        return self._relay

    def close(self) -> None:
        if self._relay is not None and not self._exchange._finished:
            # Left unfinished when the server stops early; its frame refers to the exchange,
            # so it is closed now rather than left for the garbage collector. First: it
            # leaves the request's id as it found it, which must not undo the id the
            # exchange sets while it closes the application's body.
            self._relay.close()
        self._exchange.close_body()
