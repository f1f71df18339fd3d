"""The scope of a raw ASGI ``http`` request, as a server would make it, and the whole request,
for tests that call an ASGI application directly."""

from __future__ import annotations

import asyncio
from typing import Any, Optional


def http_scope(
    path: str = "/", method: str = "GET", headers: Optional[list] = None, **extra: Any
) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        **extra,
    }


def asgi_request(app: Any, scope: dict) -> list[dict[str, Any]]:
    """Call ``app`` with ``scope`` and an empty body, on an event loop of its own: the messages
    it sent. After the body, ``receive`` waits, as a server's does until the client goes away
    (Django listens for that disconnect until its response is sent)."""
    sent: list[dict[str, Any]] = []
    bodies = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()
        raise AssertionError("never set")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent
