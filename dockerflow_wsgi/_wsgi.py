"""PEP 3333 plumbing shared by the middleware: JSON answers and file-wrapper responses."""

from __future__ import annotations

import json
from typing import Any, Callable

from webob import Response

__all__ = ["JSON_HEADERS", "json_response", "rewrap_file_response"]

#: Headers of every Dockerflow answer: JSON, and never cached by a proxy in between.
JSON_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-cache"))

# Strict RFC 8259: NaN and the infinities are refused rather than written as bare words.
_encode = json.JSONEncoder(separators=(",", ":"), default=repr, allow_nan=False).encode


def json_response(status: int, payload: Any, **headers: str) -> Response:
    """A Dockerflow answer: ``payload`` as compact JSON; webob takes care of HEAD.

    :raises ValueError: for a payload holding a float that is not finite.
    :raises TypeError: for a payload with keys JSON cannot have.
    """
    response = Response(
        body=_encode(payload).encode("ascii"),
        status=status,
        headerlist=list(JSON_HEADERS),
        charset=None,
    )
    for name, value in headers.items():
        response.headers[name] = value
    return response


class _FileCloseHook:
    """A file-like proxy whose ``close()`` runs ``on_close`` (which closes the real file).

    Everything else (``read``, ``fileno``, ``seek``, ...) is the real file's, so a server that
    sends ``wsgi.file_wrapper`` responses with ``sendfile()`` still can.
    """

    __slots__ = ("_filelike", "_on_close")

    def __init__(self, filelike: Any, on_close: Callable[[], None]) -> None:
        self._filelike = filelike
        self._on_close = on_close

    def __getattr__(self, name: str) -> Any:
        return getattr(self._filelike, name)

    def close(self) -> None:
        self._on_close()


def rewrap_file_response(
    app_iter: Any, environ: dict[str, Any], on_close: Callable[[], None]
) -> Any:
    """If ``app_iter`` came from the server's ``wsgi.file_wrapper``, return a new one of it.

    The new wrapper serves the same file through a proxy whose ``close()`` reaches
    ``on_close``, so the server keeps its fast path while the middleware still sees the end
    of the response. Returns ``None`` for any other response.
    """
    file_wrapper = environ.get("wsgi.file_wrapper")
    if not isinstance(file_wrapper, type) or not isinstance(app_iter, file_wrapper):
        return None
    filelike = getattr(app_iter, "filelike", None)
    if filelike is None:
        return None
    block_size = getattr(app_iter, "blksize", None) or getattr(app_iter, "buffer_size", 8192)
    return file_wrapper(_FileCloseHook(filelike, on_close), block_size)
