"""The application of the conformance table (``test_conformance.py``), once per protocol.

The same few routes written for WSGI, for raw ASGI and for Sanic, each wrapped by its
Dockerflow adapter in the same profiles of options. The table's drivers import this
module in the test process, and the real servers import it in theirs (``serve_uvicorn`` and
``serve_sanic``), so every adapter serves exactly the same thing.

Routes:

- ``/`` and any other path: 200, ``hello``.
- ``/user``: 200, the request made by ``alice`` (the summary's ``uid``).
- ``/raise``: the application raises ``RuntimeError("boom")``.
- ``/reported``: the framework caught ``ReportedError("caught")`` and answered 500 itself.
- ``/cors``: a cross-origin response exposing one header of its own.
- ``/reused``: the same response each time (one header list, one response object).
- ``/reused-headers``: that response's headers now, as JSON pairs: the application's own
  list, which the adapter must leave as it is.
- ``/items/<n>`` (a number): 200, ``item``.
- ``/slow``: 200 after ``SLOW_SECONDS``.
- ``/unavailable``: 503, without an exception.

Each route has a template as Sanic writes it (``items/<n:int>``, ``""`` for ``/``): the Sanic
app's routes are those, and the WSGI and ASGI apps report the same (``ROUTES``) at
``dockerflow.route``, so that every adapter's summary has the same ``route``. A path no route
matched (any other) has none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import tempfile
import time
from typing import Any, Callable, Optional

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.checks import CheckMessage
from dockerflow_wsgi.drain import make_mark

VERSION = {
    "source": "https://github.com/acme/conformance",
    "version": "1.0.0",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/1",
}

#: The header the ASGI server's one app reads to pick the profile a request is served with.
PROFILE_HEADER = "x-conformance-profile"

#: The header list of ``/reused``, one list for every response.
REUSED_HEADERS = [("Content-Type", "text/plain"), ("X-App", "reused")]
CORS_HEADERS = [
    ("Content-Type", "text/plain"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "X-Other"),
]
TEXT = [("Content-Type", "text/plain")]

#: How long ``/slow`` takes: more than the sampled profiles' ``summary_slow_ms``.
SLOW_SECONDS = 0.45
#: The template of each route, as Sanic writes it.
ROUTES = {
    "/": "",
    "/user": "user",
    "/raise": "raise",
    "/reported": "reported",
    "/cors": "cors",
    "/reused": "reused",
    "/reused-headers": "reused-headers",
    "/slow": "slow",
    "/unavailable": "unavailable",
}
ITEM_ROUTE = "items/<n:int>"
_ITEM_PATH = re.compile(r"/items/[0-9]+")


def route_of(path: str) -> Optional[str]:
    """The template of the route ``path`` matches, as Sanic's router would say."""
    if _ITEM_PATH.fullmatch(path):
        return ITEM_ROUTE
    return ROUTES.get(path)


class ReportedError(Exception):
    """The exception a framework caught and answered with its own 500 page."""


def passing() -> list[CheckMessage]:
    return []


def _version(version_path: Any) -> dict[str, str]:
    return VERSION


_COMMON: dict[str, Any] = {
    "checks": [("passing", passing)],
    "heartbeat_groups": {"ready": ["passing"]},
    "version_callback": _version,
    "log_querystring": True,
}

#: The state folder of the draining profiles: a drain mark is there for as long as the tests run
#: (every process that imports this module makes it anew).
DRAINED_STATE_DIR = os.path.join(tempfile.gettempdir(), "dockerflow-conformance-drained")
#: The drain groups of the draining profiles: ``ready`` is configured, ``readiness`` is not.
DRAIN_GROUPS = ["ready", "readiness"]

#: The options of each profile, the same for every adapter.
PROFILES: dict[str, dict[str, Any]] = {
    "default": _COMMON,
    "trace": {**_COMMON, "request_id_header": "X-Trace-ID"},
    "quiet": {**_COMMON, "log_probes": False, "metrics": True},
    # An ordinary request's summary kept by the draw of its id, 3 in 10.
    "sampled": {**_COMMON, "summary_sample_rate": 0.3, "summary_slow_ms": 400},
    # Only the errors, the slow and the trace-sampled requests have one.
    "errors_only": {**_COMMON, "summary_sample_rate": 0, "summary_slow_ms": 400},
    # The pod drains.
    "draining": {**_COMMON, "state_dir": DRAINED_STATE_DIR, "drain_groups": DRAIN_GROUPS},
    "draining_quiet": {
        **_COMMON,
        "state_dir": DRAINED_STATE_DIR,
        "drain_groups": DRAIN_GROUPS,
        "log_probes": False,
        "metrics": True,
    },
}
make_mark(DRAINED_STATE_DIR, 0, hold=3600)


# -- WSGI ------------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    route = route_of(path)
    if route is not None:
        environ["dockerflow.route"] = route
    if path == "/raise":
        raise RuntimeError("boom")
    if path == "/reported":
        try:
            raise ReportedError("caught")
        except ReportedError:
            environ["dockerflow.exc_info"] = sys.exc_info()
        start_response("500 Internal Server Error", list(TEXT))
        return [b"reported"]
    if path == "/user":
        environ["dockerflow.user_id"] = "alice"
    if path == "/cors":
        start_response("200 OK", list(CORS_HEADERS))
        return [b"cors"]
    if path == "/reused":
        start_response("200 OK", REUSED_HEADERS)
        return [b"reused"]
    if path == "/reused-headers":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(REUSED_HEADERS).encode()]
    if path == "/slow":
        time.sleep(SLOW_SECONDS)
    if path == "/unavailable":
        start_response("503 Service Unavailable", list(TEXT))
        return [b"unavailable"]
    if route == ITEM_ROUTE:
        start_response("200 OK", list(TEXT))
        return [b"item"]
    start_response("200 OK", list(TEXT))
    return [b"hello"]


def wsgi_middleware(profile: str, wrap: Callable[[Any], Any] = lambda app: app) -> Any:
    """The WSGI app of ``profile``: ``wrap`` (a validator) goes around the application."""
    return DockerflowMiddleware(wrap(wsgi_app), **PROFILES[profile])


# -- ASGI ------------------------------------------------------------------------------------

#: ``/reused``'s one header list, as a raw ASGI app sends it.
REUSED_ASGI_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in REUSED_HEADERS
]


def _asgi_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    status, headers, body = 200, _asgi_headers(TEXT), b"hello"
    route = route_of(path)
    if route is not None:
        scope["dockerflow.route"] = route
    if path == "/raise":
        raise RuntimeError("boom")
    if path == "/reported":
        try:
            raise ReportedError("caught")
        except ReportedError:
            scope["dockerflow.exc_info"] = sys.exc_info()
        status, body = 500, b"reported"
    elif path == "/user":
        scope["dockerflow.user_id"] = "alice"
    elif path == "/cors":
        headers, body = _asgi_headers(CORS_HEADERS), b"cors"
    elif path == "/reused":
        headers, body = REUSED_ASGI_HEADERS, b"reused"
    elif path == "/reused-headers":
        listed = [[name.decode(), value.decode()] for name, value in REUSED_ASGI_HEADERS]
        headers, body = [(b"content-type", b"application/json")], json.dumps(listed).encode()
    elif path == "/slow":
        await asyncio.sleep(SLOW_SECONDS)
    elif path == "/unavailable":
        status, body = 503, b"unavailable"
    elif route == ITEM_ROUTE:
        body = b"item"
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def asgi_middleware(profile: str) -> DockerflowASGIMiddleware:
    return DockerflowASGIMiddleware(asgi_app, **PROFILES[profile])


def asgi_profiles() -> Callable[..., Any]:
    """One ASGI app for the one real server: each request served by the middleware of the
    profile its ``x-conformance-profile`` header names (``default`` without one)."""
    middleware = {profile: asgi_middleware(profile) for profile in PROFILES}

    async def by_profile(scope: dict[str, Any], receive: Any, send: Any) -> None:
        profile = "default"
        for name, value in scope.get("headers", ()):
            if name == PROFILE_HEADER.encode():
                profile = value.decode()
        await middleware[profile](scope, receive, send)

    return by_profile


# -- Sanic -----------------------------------------------------------------------------------


def sanic_app(profile: str) -> Any:
    from sanic import Request, Sanic, response

    from dockerflow_wsgi.sanic import Dockerflow

    app = Sanic(f"conformance_{profile}", configure_logging=False)
    reused = response.text("reused", headers=dict(REUSED_HEADERS[1:]))

    @app.route("/", methods=["GET", "HEAD", "POST"])
    async def index(request: Request) -> Any:
        return response.text("hello")

    @app.get("/user")
    async def user(request: Request) -> Any:
        request.ctx.user_id = "alice"
        return response.text("hello")

    @app.get("/raise")
    async def raising(request: Request) -> Any:
        raise RuntimeError("boom")

    @app.get("/reported")
    async def reported(request: Request) -> Any:
        raise ReportedError("caught")

    @app.exception(ReportedError)
    async def error_page(request: Request, exception: ReportedError) -> Any:
        return response.text("reported", status=500)

    @app.get("/cors")
    async def cors(request: Request) -> Any:
        return response.text("cors", headers=dict(CORS_HEADERS[1:]))

    @app.get("/reused")
    async def reused_response(request: Request) -> Any:
        return reused

    @app.get("/reused-headers")
    async def reused_headers(request: Request) -> Any:
        return response.json([[name, value] for name, value in reused.headers.items()])

    @app.get("/items/<n:int>")
    async def item(request: Request, n: int) -> Any:
        return response.text("item")

    @app.get("/slow")
    async def slow(request: Request) -> Any:
        await asyncio.sleep(SLOW_SECONDS)
        return response.text("hello")

    @app.get("/unavailable")
    async def unavailable(request: Request) -> Any:
        return response.text("unavailable", status=503)

    Dockerflow(app, **PROFILES[profile])
    return app


# -- the servers' entry points ---------------------------------------------------------------


def _log_to_stdout() -> None:
    from dockerflow_wsgi.logging import MozlogHandler

    logging.basicConfig(handlers=[MozlogHandler(name="conformance")], level=logging.INFO)


def serve_uvicorn(port: int) -> None:
    import uvicorn

    _log_to_stdout()
    uvicorn.run(asgi_profiles(), host="127.0.0.1", port=port, log_config=None, access_log=False)


def serve_sanic(profile: str, port: int) -> None:
    _log_to_stdout()
    sanic_app(profile).run(host="127.0.0.1", port=port, single_process=True, motd=False)


if __name__ == "__main__":
    if sys.argv[1] == "uvicorn":
        serve_uvicorn(int(sys.argv[2]))
    else:
        serve_sanic(sys.argv[2], int(sys.argv[3]))
