"""``DockerflowASGIMiddleware``: the ASGI adapter of the Dockerflow core.

It reads an ASGI ``http`` request, asks :class:`~dockerflow_wsgi.core.DockerflowCore` what to
do, and keeps the ASGI rules: ``lifespan`` and ``websocket`` scopes pass through untouched, the
body is relayed message by message, ``more_body`` decides when a response ends, and nothing
blocking runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, MutableMapping
from typing import Any, Callable, Optional

from .answers import GROUPS_PATH
from .config import FrameworkSettings
from .core import DockerflowCore
from .cors import ALLOW_ORIGIN, with_request_id_exposed
from .exchange import Exchange
from .options import with_option_docs
from .request_id import accept_request_id, mark_exception
from .request_keys import REQUEST_ID_KEY
from .routes import asgi_route
from .tracing import span_watch

__all__ = ["DockerflowASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HTTP = frozenset({"http"})
_ALLOW_ORIGIN = ALLOW_ORIGIN.encode("latin-1")
_ALLOW_ORIGIN_LENGTH = len(_ALLOW_ORIGIN)
_USER_AGENT = b"user-agent"
_ACCEPT_LANGUAGE = b"accept-language"
_TRACEPARENT = b"traceparent"


@with_option_docs
class DockerflowASGIMiddleware:
    """Make any ASGI 3 application follow the Dockerflow conventions.

    The ASGI twin of :class:`~dockerflow_wsgi.DockerflowMiddleware`, with the same options
    (keywords, and their environment variables): ``/__lbheartbeat__``, ``/__heartbeat__`` and
    ``/__version__`` answered before the application, a request id for every request, and one
    ``request.summary`` record, written when the last body message is sent, when the
    application raises (ERROR with the exception, which is raised again) or when the client
    goes away.

    .. code-block:: python

        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

        app.add_middleware(DockerflowASGIMiddleware)              # FastAPI, Starlette
        application = DockerflowASGIMiddleware(asgi_application)  # any ASGI 3 app

    The request id is at ``scope["dockerflow.request_id"]`` of the scope the application gets
    (a copy: the server's scope is left as it is) and in the context variable for the whole
    request, so every log record the application makes carries it. ``async def`` checks are
    awaited on the server's loop; the others run on the middleware's threads, never on the
    loop's.

    :param app: the ASGI application to wrap.
    :raises ValueError: for an invalid option or environment variable, naming it. Built while
        an event loop runs (Starlette and FastAPI build ``add_middleware``'s middleware on
        their first call, the lifespan's), the middleware fails the lifespan's startup with
        the error's text instead, which stops uvicorn and hypercorn, and fails every other
        call with the error.
    """

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self._build(app, options, None)

    @classmethod
    def with_framework_settings(
        cls, app: ASGIApp, framework: FrameworkSettings, **options: Any
    ) -> DockerflowASGIMiddleware:
        """The middleware of a framework integration: each option also from ``framework``'s
        configuration (see :meth:`DockerflowMiddleware.with_framework_settings
        <dockerflow_wsgi.DockerflowMiddleware.with_framework_settings>`)."""
        return _FrameworkASGIMiddleware(app, framework, options)

    def _build(
        self, app: ASGIApp, options: dict[str, Any], framework: Optional[FrameworkSettings]
    ) -> None:
        try:
            core = DockerflowCore.from_options(options, framework, sender=self)
        except (TypeError, ValueError) as exc:
            if not _event_loop_running():
                raise
            # Built by a server already running the application: Starlette builds its
            # middleware on its first call, the lifespan's. Raised from here, the error would
            # fail that one call, which uvicorn and hypercorn take for an application without
            # lifespan support, and then every request with a 500. Failing the lifespan's
            # startup stops them instead.
            self.app = _RefusedOptions(exc)
            self._protocols = frozenset()
            return
        self._setup(app, core)

    def _setup(self, app: ASGIApp, core: DockerflowCore) -> None:
        self.app = app
        #: The scope types this middleware handles; it hands every other on to ``app``.
        self._protocols = _HTTP
        self.core = core
        self.config = core.config
        self.heartbeat = core.heartbeat
        # ASGI header names are lowercase bytes: encoded once, compared with every request's.
        self._request_id_header = core.request_id_header_lower.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in self._protocols or REQUEST_ID_KEY in scope:
            # lifespan, websocket, a request an outer middleware already handles, or any call
            # of a middleware whose options were refused.
            await self.app(scope, receive, send)
            return
        core = self.core
        if core.background is not None:
            core.background.start()
        exchange = ASGIExchange(self, scope, send)
        # A copy: the server's scope is left as it is.
        scope = exchange.scope
        try:
            if exchange.dockerflow_route is None:
                await self.app(scope, receive, exchange.send)
            else:
                await exchange.answer(exchange.dockerflow_route)
        except asyncio.CancelledError:
            # The server gave up on the request (its client went away): no error of the app's.
            exchange.finish(None)
            raise
        except BaseException as exc:
            mark_exception(exc, exchange.request_id)
            if exchange.route is None:
                # Raised before any response went through here (Starlette's 500 page is sent
                # outside the middleware added to it): the router had matched a route all the
                # same.
                exchange.route = asgi_route(scope)
            exchange.finish(sys.exc_info())
            raise
        else:
            # Already written when the body ended; else the client went away before it did,
            # or the application returned without ending it.
            exchange.finish(None)
        finally:
            exchange.leave()


class _FrameworkASGIMiddleware(DockerflowASGIMiddleware):
    """A :class:`DockerflowASGIMiddleware` whose options also come from a framework's
    settings, given with them rather than as keywords."""

    def __init__(self, app: ASGIApp, framework: FrameworkSettings, options: dict[str, Any]) -> None:
        self._build(app, options, framework)


def _mounted_paths(scope: Scope) -> tuple[str, str]:
    """The whole path of a request to an application mounted at ``root_path``, and its path
    within the application (the one routed).

    ``path`` includes ``root_path`` in today's ASGI servers and leaves it out in older ones:
    both are understood.
    """
    path = scope.get("path", "")
    root = scope["root_path"]
    if path.startswith(root):
        return path, path[len(root) :]
    return root + path, path


def _with_exposed(headers: Any, request_id_header: str) -> list[tuple[bytes, bytes]]:
    """A copy of a CORS response's ``headers`` (the application's list is left as it is),
    the request id header exposed to browser code as
    :func:`~dockerflow_wsgi.cors.with_request_id_exposed` says."""
    as_text = [
        (bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in headers
    ]
    exposed = with_request_id_exposed(as_text, request_id_header)
    if exposed is None:
        return list(headers)
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in exposed]


def _event_loop_running() -> bool:
    """Whether an event loop runs in this thread: whatever builds the middleware now is
    serving already, and cannot stop on an exception it gets."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _RefusedOptions:
    """The application of a middleware whose options were refused while a server ran it.

    It fails the lifespan's startup with the error's text, which stops uvicorn and hypercorn
    (as Starlette's own lifespan does, the error is raised on after that); any other call (a
    server run without lifespan) fails with the error.
    """

    def __init__(self, error: Exception) -> None:
        self.error = error
        self._traceback = error.__traceback__
        self.message = f"DockerflowASGIMiddleware: {type(error).__name__}: {error}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": self.message})
        # Its first traceback each time, where the options were refused, rather than one that
        # grows with every call.
        raise self.error.with_traceback(self._traceback)


class ASGIExchange(Exchange):
    """One request's passage through the ASGI middleware: its facts read from the scope, and
    the ``send`` the application gets, which records the status, adds the request id header
    and ends the request with the body's last message."""

    __slots__ = ("_request_id_header", "_send", "dockerflow_route", "scope")

    def __init__(self, middleware: DockerflowASGIMiddleware, scope: Scope, send: Send) -> None:
        core = middleware.core
        sent_id = agent = lang = traceparent = None
        wanted = self._request_id_header = middleware._request_id_header
        for name, value in scope.get("headers", ()):
            if name == wanted:
                sent_id = value.decode("latin-1")
            elif name == _USER_AGENT:
                agent = value
            elif name == _ACCEPT_LANGUAGE:
                lang = value
            elif name == _TRACEPARENT:
                # Two of them make neither valid (W3C): joined, they match no traceparent.
                traceparent = value if traceparent is None else traceparent + b"," + value
        request_id = accept_request_id(sent_id)
        self.scope = scope = {**scope, REQUEST_ID_KEY: request_id}
        self._send = send
        self.method = scope.get("method", "")
        if scope.get("root_path"):
            self.path, routed = _mounted_paths(scope)
        else:
            self.path = routed = scope.get("path", "")
        # The usual request's one cost: a lookup in the core's table. Only a path under the
        # heartbeat's (an unknown group is Dockerflow's 404 too) asks the core for more.
        route = core.routes.get(routed)
        if route is None and GROUPS_PATH in routed:
            route = core.route(routed)
        #: The Dockerflow route of the request, ``None`` for the application's.
        self.dockerflow_route = route
        self.query = (
            bytes(scope.get("query_string", b"")).decode("utf-8", "replace")
            if core.config.log_querystring
            else None
        )
        self.agent = "" if agent is None else agent.decode("latin-1")
        self.lang = "" if lang is None else lang.decode("latin-1")
        self.traceparent = None if traceparent is None else traceparent.decode("latin-1")
        self.user_id = None
        # Called by name: super() would make an object for it, on every request.
        Exchange.__init__(self, core, request_id, route, scope)

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.code = message["status"]
            if self.route is None and "route" in self.scope:
                # Starlette's router, or FastAPI's, matched a route of the application.
                self.route = asgi_route(self.scope)
            if span_watch.tracing:
                # Now, while an instrumentation inside this middleware has its span current.
                self.see_span()
            wanted = self._request_id_header
            # Latin-1: as many bytes as the name has characters.
            length = self.core.request_id_header_length
            headers = message.get("headers", ())
            has_id = cross_origin = False
            for name, _ in headers:
                # Most names differ in length from both already, and len() is cheaper than
                # lower().
                # (bytes and bytearray names alike: both lower(), and compare equal to bytes;
                # bytes(name) would cost a type call per name, and Content-Type is as long as
                # X-Request-ID.)
                size = len(name)
                if size == length:
                    if name.lower() == wanted:
                        has_id = True  # the application's own, as it wants it
                elif size == _ALLOW_ORIGIN_LENGTH and name.lower() == _ALLOW_ORIGIN:
                    cross_origin = True
            if cross_origin:
                headers = _with_exposed(headers, self.core.config.request_id_header)
                message = {**message, "headers": headers}
            if not has_id:
                # A copy, as Starlette's CORS middleware makes: the list is the application's,
                # which may send it again (a module-level response) for another request.
                # The id is ASCII (generated, or accepted only so): encode()'s UTF-8 is the
                # same bytes, without looking the codec's name up.
                header = (wanted, self.request_id.encode())
                message = {**message, "headers": [*headers, header]}
        try:
            await self._send(message)
        except BaseException:
            # The connection failed under the application: its request ends here.
            self.finish(None)
            raise
        if kind == "http.response.body" and not message.get("more_body", False):
            self.ended = time.perf_counter()
            if self.code < 500:
                self.finish(None)
            # A 5xx page may be sent before the exception behind it is raised on to the
            # server (Starlette's ServerErrorMiddleware does so): its summary waits for the
            # application to return or raise, timed to this end of the body all the same.

    async def answer(self, route: str) -> None:
        """Answer a Dockerflow path."""
        answer = await self.core.respond_async(self.method, route)
        await self.send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in answer.headers
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": answer.body})
