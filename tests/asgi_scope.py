"""The scope of a raw ASGI ``http`` request, as a server would make it, for tests that call an
ASGI application directly."""

from __future__ import annotations

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
