"""The Sanic integration: Dockerflow for an application that Sanic's own server runs.

.. code-block:: python

    from dockerflow_wsgi.sanic import Dockerflow

    dockerflow = Dockerflow(app)          # or Dockerflow() then dockerflow.init_app(app)

Sanic's server calls no WSGI or ASGI callable that could be wrapped, so this adapter hooks
into Sanic's request lifecycle instead, and only translates it into core calls:

* the ``http.lifecycle.handle`` signal, when Sanic starts handling a request (before routing
  and before reading the body): the request id, the context variable, the clock;
* a request middleware that runs before every other one: the Dockerflow answers;
* a response middleware that runs after every other one: the status, the request id header;
* the ``http.lifecycle.response`` signal, just before the response's last bytes are sent (after
  the handler returned, so after the last chunk of a streamed body): the summary; the
  ``http.lifecycle.exception`` signal, for the exception that Sanic answers with its error page;
  ``http.lifecycle.complete``, when the connection closes, for a request that ended without a
  response (its client gone).
"""

from __future__ import annotations

import functools
import sys
import warnings
from contextvars import ContextVar, Token
from typing import Any, Callable, Optional
from urllib.parse import unquote

from sanic import Request, Sanic
from sanic.compat import Header
from sanic.constants import HTTP_METHODS
from sanic.http import Stage
from sanic.models.server_types import ConnInfo
from sanic.response import BaseHTTPResponse, HTTPResponse

from .answers import HEARTBEAT_PATH
from .checks.registry import Check, get_checks, register
from .config import FrameworkSettings
from .core import DockerflowCore
from .cors import ALLOW_ORIGIN, EXPOSE_HEADERS_NAME, exposed_headers
from .exchange import Exchange
from .request_id import accept_request_id

__all__ = ["Dockerflow"]

# Sanic runs the request middleware of the highest priority first and the response middleware
# of the highest priority last: Dockerflow answers before the application's middleware, and
# sees the response after they changed it.
_FIRST_AND_LAST = sys.maxsize


class SanicExchange(Exchange):
    """One request's passage through Sanic: its facts read from the request, and its context
    (its id, this exchange) current from Sanic's start of the request to :meth:`finish`."""

    __slots__ = ("_exchange_token", "exception", "request")

    def __init__(
        self, core: DockerflowCore, request: Request, request_id: str, route: Optional[str]
    ) -> None:
        self.request = request
        self.method = request.method
        self.path = unquote(request.path, errors="replace")
        self.query = request.query_string if core.config.log_querystring else None
        headers = request.headers
        self.agent = _header_text(headers.getone("user-agent", ""))
        self.lang = _header_text(headers.getone("accept-language", ""))
        # Joined like a WSGI server's: two of them make neither valid (W3C).
        self.traceparent = ",".join(headers.getall("traceparent", [])) or None
        self.user_id = None
        #: The exception Sanic caught and answered, for the summary if its answer is a 5xx.
        self.exception: Optional[BaseException] = None
        super().__init__(core, request_id, route)
        self._exchange_token: Token[Optional[SanicExchange]] = _exchange_var.set(self)

    def finish(self, exc_info: Any = None) -> None:
        """End the request, then its context: the connection's next request runs in the same
        task, and must not begin with this id."""
        if self.finished:
            return
        try:
            self.user_id = getattr(self.request.ctx, "user_id", None)
            if self.route is None and self.core.route(self.request.path) is None:
                # The template of the application's route Sanic matched: its ``route.path``
                # (Dockerflow's own are Sanic routes too: an unknown group has none).
                self.route = getattr(getattr(self.request, "route", None), "path", None)
            super().finish(exc_info)
        finally:
            _exchange_var.reset(self._exchange_token)
            self.leave()


#: The request being handled. Sanic handles a connection's requests one after the other in one
#: task, so each is the current one from its ``http.lifecycle.handle`` to its summary; none is
#: for a malformed request that Sanic answers itself, which (as under WSGI) the application
#: never sees.
_exchange_var: ContextVar[Optional[SanicExchange]] = ContextVar("dockerflow_sanic", default=None)


def _header_text(value: str) -> str:
    """A header value as the WSGI and ASGI adapters log it: its bytes read as latin-1.

    Sanic decodes header bytes as UTF-8, keeping invalid ones as lone surrogates, which no
    log line could carry; the same request makes the same summary whichever adapter serves it.
    """
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def sanic_settings(app: Sanic) -> FrameworkSettings:
    """``app.config`` as the options' source. The default ``version_path`` is the core's, the
    current directory, which is the ``dockerflow`` package's Sanic default (``"."``) too."""
    return FrameworkSettings(app.config, "app.config[{!r}]")


class Dockerflow:
    """Dockerflow for a Sanic application served by Sanic's own server.

    ``/__lbheartbeat__``, ``/__heartbeat__`` and ``/__version__`` (also with a trailing slash)
    are answered before the application's request middleware and handlers, a request id is
    given to every request and one ``request.summary`` record is written for it.

    Each option comes from the keyword, else from ``app.config`` under its environment
    variable's name (``app.config["DOCKERFLOW_CHECK_TIMEOUT"]``), else from the environment.
    The heartbeat signals are sent with the Sanic app as sender.

    During a request, ``request.ctx.request_id`` is its id, and the application may set
    ``request.ctx.user_id`` for the summary's ``uid``.

    :param app: the Sanic application; may be given later to :meth:`init_app`.
    :param options: options of :class:`~dockerflow_wsgi.DockerflowMiddleware`.
    :raises ValueError: for an invalid option, naming where it came from.
    """

    def __init__(self, app: Optional[Sanic] = None, **options: Any) -> None:
        self.options = options
        #: The core serving the application given last.
        self.core: Optional[DockerflowCore] = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Sanic) -> None:
        """Set Dockerflow up on ``app``, once: an app that has it already
        (``app.ctx.dockerflow``) keeps its own."""
        existing = getattr(app.ctx, "dockerflow", None)
        if existing is not None:
            self.core = existing.core
            return
        self.core = DockerflowCore.from_options(self.options, sanic_settings(app), sender=app)
        _SanicAdapter(self.core).install(app)
        app.ctx.dockerflow = self

    # -- the ``dockerflow`` package's ways of registering checks, which its Sanic documentation
    # uses: kept so that a service moves by changing its imports, deprecated as they are there.

    @property
    def checks(self) -> dict[str, Check]:
        """The checks the heartbeat runs now, by name.

        .. deprecated:: 0.1.0 use :func:`dockerflow_wsgi.checks.get_checks`.
        """
        _deprecated("dockerflow.checks", "dockerflow_wsgi.checks.get_checks()")
        if self.core is not None:
            return dict(self.core.checks.current())
        explicit = self.options.get("checks")
        return get_checks() if explicit is None else dict(explicit)

    def check(self, func: Optional[Check] = None, name: Optional[str] = None) -> Any:
        """Register a check, as ``@dockerflow.check``, ``@dockerflow.check(name="db")`` or
        ``dockerflow.check(func)``; the function is returned unchanged. Into the registry, or
        into this instance's checks when it was given ``checks=``, which the registry does
        not reach.

        .. deprecated:: 0.1.0 use :func:`dockerflow_wsgi.checks.register`.
        """
        _deprecated("dockerflow.check()", "dockerflow_wsgi.checks.register()")

        def decorator(check: Check) -> Check:
            self._register(check, name)
            return check

        return decorator if func is None else decorator(func)

    def init_check(self, check: Callable[..., Any], obj: Any) -> Check:
        """Register ``check(obj)`` under ``check``'s name, as :meth:`check` does; return it.

        .. deprecated:: 0.1.0 use :func:`dockerflow_wsgi.checks.register_partial`.
        """
        _deprecated("dockerflow.init_check()", "dockerflow_wsgi.checks.register_partial()")
        bound = functools.partial(check, obj)
        functools.update_wrapper(bound, check)
        self._register(bound, check.__name__)
        return bound

    def _register(self, check: Check, name: Optional[str]) -> None:
        explicit = self._explicit_checks()
        if explicit is None:
            register(check, name=name)
            return
        if not callable(check):
            raise TypeError(f"a check must be callable, got {check!r}")
        explicit.append((name or check.__name__, check))

    def _explicit_checks(self) -> Optional[list[tuple[str, Check]]]:
        """The list of ``checks=`` this instance runs, to add to; ``None`` without one."""
        if self.core is not None:
            return self.core.checks.explicit
        given = self.options.get("checks")
        if given is None:
            return None
        # A list of our own, which init_app hands on: the caller's iterable may be a tuple.
        self.options["checks"] = listed = list(given)
        return listed


def _deprecated(what: str, instead: str) -> None:
    warnings.warn(
        f"{what} is kept for services moving from dockerflow.sanic, which deprecates it too; "
        f"use {instead} instead",
        DeprecationWarning,
        stacklevel=3,
    )


class _SanicAdapter:
    """The routes, middleware and signal handlers that translate one app's Sanic lifecycle
    into calls of its core."""

    def __init__(self, core: DockerflowCore) -> None:
        self.core = core
        self._request_id_header = core.config.request_id_header

    def install(self, app: Sanic) -> None:
        for path, route in self.core.routes.items():
            if not path.endswith("/"):
                # Every method, so that Dockerflow answers them all (405 included) and Sanic
                # routes the path without its error machinery; the names are the dockerflow
                # package's, for url_for.
                app.add_route(
                    self.answer,
                    path,
                    methods=HTTP_METHODS,
                    name=f"dockerflow.{route}",
                    strict_slashes=False,
                )
        # /__heartbeat__/<any other name>: 404 from Dockerflow, not from Sanic.
        app.add_route(
            self.answer,
            f"{HEARTBEAT_PATH}/<group:str>",
            methods=HTTP_METHODS,
            name="dockerflow.heartbeat_group",
            strict_slashes=False,
        )
        app.register_middleware(self.answer, "request", priority=_FIRST_AND_LAST)
        app.register_middleware(self.respond, "response", priority=_FIRST_AND_LAST)
        app.signal("http.lifecycle.handle", priority=_FIRST_AND_LAST)(self.start)
        app.signal("http.lifecycle.exception")(self.on_exception)
        app.signal("http.lifecycle.response")(self.on_response)
        app.signal("http.lifecycle.complete")(self.on_complete)

    def start(self, request: Request) -> None:
        """Sanic starts handling ``request``: give it its id, for the whole request."""
        if self.core.background is not None:
            self.core.background.start()
        request_id = accept_request_id(request.headers.getone(self._request_id_header, None))
        request.ctx.request_id = request_id
        SanicExchange(self.core, request, request_id, self.core.route(request.path))

    async def answer(self, request: Request, **path_parameters: str) -> Optional[HTTPResponse]:
        """Answer a Dockerflow path; HEAD gets the headers of GET and no body.

        Registered as the first request middleware, so the application's middleware never see
        a probe, and as the handler of the Dockerflow routes, since Sanic routes a path to a
        handler only.
        """
        route = self.core.route(request.path)
        if route is None:
            return None
        answer = await self.core.respond_async(request.method, route)
        return HTTPResponse(answer.body, answer.status, Header(answer.headers))

    def respond(self, request: Request, response: BaseHTTPResponse) -> Optional[BaseHTTPResponse]:
        """The last response middleware: the status as sent, the request id unless the
        application gave the header itself, exposed to browser code on a CORS response. Before
        the headers go, also for a streamed body.

        A whole response (one with its body) is replaced by a copy that carries them: the
        application may return the same response object again for another request (a
        module-level one), which must not keep this request's id (Sanic writes its framing
        headers into the response it sends, too). A streamed response is the request's own.
        """
        exchange = _exchange_var.get()
        if exchange is None:
            return None
        exchange.code = response.status
        copied = None
        if isinstance(response, HTTPResponse) and response.body is not None:
            response = copied = HTTPResponse(
                response.body, response.status, Header(response.headers), response.content_type
            )
        headers = response.headers
        if self._request_id_header not in headers:
            headers[self._request_id_header] = exchange.request_id
        if ALLOW_ORIGIN in headers:
            exposed = exposed_headers(headers.items(), self._request_id_header)
            if exposed is not None:
                # Set, it replaces every field of the name.
                headers[EXPOSE_HEADERS_NAME] = exposed
        return copied

    def on_exception(self, request: Request, exception: BaseException) -> None:
        """Sanic caught ``exception``. Its error page, if any, is a response like any other;
        once the response has begun (a streamed body), none follows: the request ends here."""
        exchange = _exchange_var.get()
        if exchange is None:
            return
        if getattr(request.stream, "stage", Stage.HANDLER) is Stage.HANDLER:
            exchange.exception = exception
        else:
            exchange.finish(exception)

    def on_response(self, request: Request, response: BaseHTTPResponse) -> None:
        """The response is about to end: the summary. The exception that led to it counts as
        the application's error when the answer is a 5xx; one answered 404 or 400 (Sanic's
        ``NotFound``, an error handler of the application) is the client's."""
        exchange = _exchange_var.get()
        if exchange is None:
            return
        exchange.code = response.status
        exchange.finish(exchange.exception if response.status >= 500 else None)

    def on_complete(self, conn_info: ConnInfo) -> None:
        """The connection closed with a request unanswered (its client gone, a timeout): its
        summary has the status sent so far. A websocket's session ends here too: as under
        ASGI, it has no summary."""
        exchange = _exchange_var.get()
        if exchange is None:
            return
        if exchange.request.headers.getone("upgrade", "").lower() == "websocket":
            exchange.log = False
        exchange.finish(None)
