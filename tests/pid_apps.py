"""The smallest applications a multi-worker server test needs: each answers with the id of the
process that served it, so that a test can tell the workers apart. No side effects: the
modules that serve them (``drain_apps``, ``shared_heartbeat_apps``) wrap them as they need."""

from __future__ import annotations

import os
from typing import Any, Callable

__all__ = ["pid_asgi", "pid_wsgi"]


def pid_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


async def pid_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
