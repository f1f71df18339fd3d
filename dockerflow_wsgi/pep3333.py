"""PEP 3333 plumbing of the WSGI adapter: status lines, WSGI's latin-1 strings, file wrappers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable, Optional

__all__ = [
    "STATUS_CODES",
    "rewrap_file_response",
    "status_code",
    "status_line",
    "wsgi_text_as_utf8",
]

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def status_line(code: int) -> str:
    """The WSGI status line of ``code``: ``"200 OK"``."""
    line = _STATUS_LINES.get(code)
    return line if line is not None else f"{code} Status {code}"


def status_code(status: Optional[str]) -> int:
    """The integer code of a WSGI status line, 0 when there is none or it is malformed."""
    code = STATUS_CODES.get(status)  # type: ignore[arg-type]
    if code is None:
        try:
            code = int(status[:3]) if status else 0
        except ValueError:
            code = 0
        # An application uses a handful of status lines; one that invents endless variants
        # just starts the memory afresh.
        if len(STATUS_CODES) >= 256:
            STATUS_CODES.clear()
        STATUS_CODES[status] = code  # type: ignore[index]
    return code


#: The code of each status line :func:`status_code` has seen: a caller on a hot path may look
#: a line up here first, and call it only for one that is not there.
STATUS_CODES: dict[str, int] = {}


def wsgi_text_as_utf8(text: str) -> str:
    """The request's own text of a WSGI string.

    WSGI servers decode the bytes of a request line as latin-1; clients send UTF-8, so
    ``/café`` arrives as ``/cafÃ©``. The bytes are decoded again, as UTF-8, with U+FFFD for
    bytes that are not. Text that holds no byte (set by an application) is left as it is.
    """
    try:
        return text.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text


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
