"""The services of ``test_shared_heartbeat_servers.py``, as the real servers import them.

One check, ``counted``, appends a line ``<pid> <wall-clock time>`` to the file named by
``SHARED_CALLS`` at each call, and says which process ran it: a heartbeat's body is the same
in every worker only when they all answer from one runner's result. Every response carries
``X-Pid``, the process that answered it. ``DOCKERFLOW_*`` come from the environment, as in a
deployment.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

from pid_apps import pid_asgi, pid_wsgi

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.checks import CheckMessage, Info
from dockerflow_wsgi.logging import MozlogHandler

logging.basicConfig(handlers=[MozlogHandler(name="shared-test")], level=logging.INFO, force=True)


def counted() -> list[CheckMessage]:
    line = f"{os.getpid()} {time.time():.6f}\n".encode()
    descriptor = os.open(os.environ["SHARED_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)
    return [Info(f"run by {os.getpid()}", id="shared.I001")]


CHECKS = [("counted", counted)]


def _with_pid_wsgi(app: Any) -> Any:
    def served(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, ("X-Pid", str(os.getpid()))], *exc_info)

        return app(environ, start)

    return served


wsgi = _with_pid_wsgi(DockerflowMiddleware(pid_wsgi, checks=CHECKS))


def _with_pid_asgi(app: Any) -> Any:
    async def served(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_pid(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                pid = (b"x-pid", str(os.getpid()).encode())
                message = {**message, "headers": [*message.get("headers", []), pid]}
            await send(message)

        await app(scope, receive, send_with_pid)

    return served


asgi = _with_pid_asgi(DockerflowASGIMiddleware(pid_asgi, checks=CHECKS))
