"""FastAPI apps for the uvicorn benchmark: ``uvicorn asgi_server_apps:bare`` etc.

``floor`` is a raw ASGI app, the least a server can serve: what a library adds to a probe is
measured from it. ``ours`` is the hello app with one ``add_middleware`` line; ``theirs`` is the
same app with the
``dockerflow`` package's FastAPI integration as its documentation sets it up (its router, its
request id middleware and its summary logger). Both libraries write their summary through
their own formatter into a null stream, so the log line is paid for as in production without
the disk in the measurement.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter

_null_stream = open(os.devnull, "w")  # noqa: SIM115 - lives with the worker


def null_logger(name: str, formatter: logging.Formatter) -> logging.Logger:
    """``name``'s records, formatted by ``formatter``, into a null stream."""
    handler = logging.StreamHandler(_null_stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def hello_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def index() -> PlainTextResponse:
        return PlainTextResponse("hello")

    return app


def with_ours(app: FastAPI) -> FastAPI:
    null_logger("request.summary", JsonLogFormatter(logger_name="bench"))
    app.add_middleware(DockerflowASGIMiddleware)
    return app


def with_theirs(app: FastAPI) -> FastAPI:
    """The ``dockerflow`` package's integration, or the bare app where it is not installed."""
    try:
        from dockerflow.fastapi import router
        from dockerflow.fastapi.middleware import MozlogRequestSummaryLogger, RequestIdMiddleware
        from dockerflow.logging import JsonLogFormatter as TheirFormatter
    except ImportError:
        return app
    logger = null_logger("bench.their.request.summary", TheirFormatter(logger_name="bench"))
    app.include_router(router)
    app.add_middleware(MozlogRequestSummaryLogger, logger=logger)
    app.add_middleware(RequestIdMiddleware)
    return app


async def floor(scope: dict, receive: object, send: object) -> None:
    """The least an ASGI server can serve: a raw ASGI app answering an empty 200."""
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


def with_own_line(app: FastAPI) -> Any:
    """The hello app writing the summary's mozlog line itself at the end of each response's
    body (the status from its start, a dict, orjson, a write and a flush), in the least ASGI
    wrapper that can see both: the least a logged ASGI request can cost, as ``floor`` in
    ``instructions.py`` is for WSGI. Not a product: the floor the overheads are set against."""
    import orjson

    hostname, pid = socket.gethostname(), os.getpid()

    async def logged(scope: dict, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        status = 0

        async def send_and_log(message: dict) -> None:
            nonlocal status
            await send(message)
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body", False):
                headers = dict(scope["headers"])
                fields = {
                    "agent": headers.get(b"user-agent", b"").decode("latin-1"),
                    "lang": headers.get(b"accept-language", b"").decode("latin-1"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "code": status,
                    "errno": 0,
                    "t": int((time.perf_counter() - started) * 1000),
                    "rid": "",
                    "uid": "",
                }
                envelope = {
                    "Timestamp": time.time_ns(),
                    "Type": "request.summary",
                    "Logger": "bench",
                    "Hostname": hostname,
                    "EnvVersion": "2.0",
                    "Severity": 6,
                    "Pid": pid,
                    "Fields": fields,
                }
                _null_stream.write(orjson.dumps(envelope).decode() + "\n")
                _null_stream.flush()

        await app(scope, receive, send_and_log)

    return logged


bare = hello_app()
own_line = with_own_line(hello_app())
ours = with_ours(hello_app())
theirs = with_theirs(hello_app())
