"""The ``request.summary`` record: one per request, in the mozlog field names."""

from __future__ import annotations

import logging
from typing import Any, Optional

from .direct_log import make_record, plain_handlers, write_plain
from .redact import mask_secrets

__all__ = ["MAX_CLIENT_FIELD_LENGTH", "SummaryWriter", "clip"]

#: Longest value taken from the client (User-Agent, path, ...) that is logged as it is.
MAX_CLIENT_FIELD_LENGTH = 1024
TRUNCATION_MARKER = "...[truncated]"

_LOGGER_NAME = "request.summary"
summary_logger = logging.getLogger(_LOGGER_NAME)


def clip(value: str) -> str:
    """Bound a client-controlled value so one request cannot write a huge log line."""
    if len(value) <= MAX_CLIENT_FIELD_LENGTH:
        return value
    return value[:MAX_CLIENT_FIELD_LENGTH] + TRUNCATION_MARKER


def status_code(status: Optional[str]) -> int:
    """The integer code of a WSGI status line, 0 when there is none or it is malformed."""
    code = _codes_of_status_lines.get(status)  # type: ignore[arg-type]
    if code is None:
        try:
            code = int(status[:3]) if status else 0
        except ValueError:
            code = 0
        # An application uses a handful of status lines; one that invents endless variants
        # just starts the memory afresh.
        if len(_codes_of_status_lines) >= 256:
            _codes_of_status_lines.clear()
        _codes_of_status_lines[status] = code  # type: ignore[index]
    return code


_codes_of_status_lines: dict[str, int] = {}


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


class SummaryWriter:
    """Writes the summary record of a finished request to the ``request.summary`` logger."""

    __slots__ = ("log_querystring",)

    def __init__(self, *, log_querystring: bool) -> None:
        self.log_querystring = log_querystring

    def write(
        self,
        environ: dict[str, Any],
        status: Optional[str],
        duration_ms: int,
        request_id: str,
        exc_info: Any = None,
    ) -> None:
        """Log the summary; ERROR with ``exc_info`` when the app raised, else INFO.

        ``exc_info`` is a ``sys.exc_info()`` triple or, as an integration may report it, the
        exception itself.
        """
        level = logging.ERROR if exc_info else logging.INFO
        if not summary_logger.isEnabledFor(level):
            return
        code = status_code(status)
        if exc_info:
            code = code or 500
            errno = 500
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        else:
            errno = code if code >= 400 else 0
        # Text from the client (or the app) is bounded; the length check is all that the
        # usual request pays.
        agent = environ.get("HTTP_USER_AGENT", "")
        lang = environ.get("HTTP_ACCEPT_LANGUAGE", "")
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not path.isascii():
            path = wsgi_text_as_utf8(path)
        uid = str(environ.get("dockerflow.user_id") or environ.get("REMOTE_USER") or "")
        if "@" in path:
            # A URL with its credentials, quoted in the path: the log must not keep them.
            path = mask_secrets(path)
        if max(len(agent), len(lang), len(method), len(path), len(uid)) > MAX_CLIENT_FIELD_LENGTH:
            agent, lang, method, path, uid = map(clip, (agent, lang, method, path, uid))
        fields = {
            "agent": agent,
            "lang": lang,
            "method": method,
            "path": path,
            "code": code,
            "errno": errno,
            "t": duration_ms,
            "rid": request_id,
            "uid": uid,
        }
        if self.log_querystring:
            fields["querystring"] = clip(
                mask_secrets(wsgi_text_as_utf8(environ.get("QUERY_STRING", "")))
            )
        if not exc_info:
            handlers = plain_handlers(summary_logger, level)
            if handlers is not None:
                write_plain(handlers, _LOGGER_NAME, level, fields)
                return
        summary_logger.handle(make_record(_LOGGER_NAME, level, fields, exc_info))
