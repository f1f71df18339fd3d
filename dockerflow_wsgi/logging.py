"""mozlog JSON output for the standard library's logging, and the request id filter.

The library adds no handlers and sets no levels unless the application asks, with one call::

    dockerflow_wsgi.logging.configure(name="myapp", level="INFO")

Otherwise it offers a handler, a formatter and a filter for the application's own logging
configuration, e.g. with :func:`logging.config.dictConfig`::

    "handlers": {"mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "myapp"}},

or, piece by piece::

    "formatters": {"json": {"()": "dockerflow_wsgi.logging.JsonLogFormatter",
                            "logger_name": "myapp"}},
    "filters": {"request_id": {"()": "dockerflow_wsgi.logging.RequestIdLogFilter"}},
"""

from __future__ import annotations

import copy
import json
import logging
import math
import socket
import sys
import traceback
from typing import Any, Optional, TextIO, Union

from pythonjsonlogger.json import JsonFormatter

from .redact import mask_secrets
from .request_id import request_id_var
from .tracing import add_span_ids

try:  # optional: `pip install 'dockerflow-wsgi[orjson]'` makes every log line cheaper
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None

__all__ = [
    "JsonLogFormatter",
    "MozlogFormatter",
    "MozlogHandler",
    "RequestIdLogFilter",
    "configure",
    "process_stdout",
    "request_id_context",
]

#: The logger of the ``request.summary`` records, named here for ``configure`` and the summary
#: writer both, so that neither module imports the other for it.
SUMMARY_LOGGER_NAME = "request.summary"

#: The context variable holding the current request's id (the ``dockerflow`` package's name).
request_id_context = request_id_var

# Derived from a real record rather than listed by hand, so attributes that new Python
# versions add (``taskName`` in 3.12) never leak into ``Fields``.
_LOGRECORD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}

_SYSLOG_SEVERITY = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_SYSLOG_DEBUG = 7

# Scalars need no inspection; anything else may nest an object or defeat the encoder.
_SCALAR_TYPES = (str, int, bool, type(None))
# The exact types of the common case, checked with one set lookup per field.
_PLAIN_TYPES = frozenset(_SCALAR_TYPES)


def _syslog_severity(levelno: int) -> int:
    """Map a logging level, custom ones included, to the nearest syslog severity below it."""
    for threshold, severity in _SYSLOG_SEVERITY:
        if levelno >= threshold:
            return severity
    return _SYSLOG_DEBUG


# Bounds the memory of _extra_keys: an application has a handful of record layouts; one
# that makes endless new ones (generated attribute names) just starts the memory afresh.
_MAX_REMEMBERED_LAYOUTS = 256

_SEVERITY_OF_LEVEL = {level: _syslog_severity(level) for level in range(0, 60, 10)}
_NANOSECONDS = 1_000_000_000


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _orjson_encode(data: Any) -> str:
    return orjson.dumps(data, default=_safe_repr).decode()


class JsonLogFormatter(JsonFormatter):
    """Format each record as one line of mozlog JSON (``EnvVersion`` 2.0).

    Built on python-json-logger's pipeline: its ``format()`` gathers the message, the
    extra attributes and the formatted exception; ``add_fields()`` here arranges them into
    the mozlog envelope, with the record's extra attributes under ``Fields``.

    Formatting never raises: a value JSON cannot encode becomes its ``repr``, a dict value
    becomes its JSON text (mozlog forbids nested objects in ``Fields``), and a record that
    still cannot be written is replaced by one describing the failure.

    :param fmt: accepted for :func:`logging.config.dictConfig` compatibility; the output shape
        is fixed by mozlog, so it is not used.
    :param datefmt: accepted for the same reason; ``Timestamp`` is always nanoseconds.
    :param style: as for :class:`logging.Formatter`.
    :param logger_name: the ``Logger`` field: the name of the application.
    """

    LOGGING_FORMAT_VERSION = "2.0"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        logger_name: str = "Dockerflow",
    ) -> None:
        super().__init__(
            None,
            datefmt,
            style,
            reserved_attrs=_LOGRECORD_ATTRS,
            json_default=_safe_repr,
        )
        self.logger_name = logger_name
        self.hostname = socket.gethostname()
        # json.dumps builds a new encoder on every call that passes options; one prepared
        # encoder is reused instead. NaN and infinities are not JSON, so they are refused
        # here; add_fields writes such a field as text, leaving the other fields as they are.
        self._encoder = json.JSONEncoder(default=_safe_repr, allow_nan=False, separators=(",", ":"))
        # orjson, where installed, encodes a record several times faster; whatever it refuses
        # (huge integers, lone surrogates, odd keys) goes through the stdlib fallback below.
        self._encode = _orjson_encode if orjson is not None else self._encoder.encode
        self._extra_keys_by_layout: dict[tuple[str, ...], tuple[str, ...]] = {}

    def renamed(self, logger_name: str) -> JsonLogFormatter:
        """A copy of this formatter that writes ``logger_name`` as ``Logger``; this one is
        left as it is (other handlers may share it)."""
        twin = copy.copy(self)
        twin.logger_name = logger_name
        # Its own cache of record layouts: a dict the two grow and clear apart.
        twin._extra_keys_by_layout = {}
        return twin

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Arrange the record into the mozlog envelope."""
        attributes = record.__dict__
        fields = {key: attributes[key] for key in self._extra_keys(attributes)}
        # python-json-logger puts the formatted exception under "exc_info" of the message dict,
        # which is the record's own dict message otherwise: a key a dict message may have too.
        traceback_text = (
            message_dict.pop("exc_info", None) if record.exc_info or record.exc_text else None
        )
        fields.update(message_dict)
        if record.message:
            fields["msg"] = record.message
        # Exception texts are not ours: a driver's may quote a connection URL, password included.
        if traceback_text:
            traceback_text = mask_secrets(traceback_text)
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = mask_secrets(_safe_repr(record.exc_info[1]))
            fields["traceback"] = traceback_text
        elif traceback_text:
            fields["traceback"] = traceback_text
        self._make_plain(fields)
        log_data.update(
            self._envelope(
                record.name,
                record.levelno,
                int(record.created * _NANOSECONDS),
                record.process,
                fields,
            )
        )

    def _make_plain(self, fields: dict[str, Any]) -> None:
        """Replace the values mozlog's ``Fields`` cannot hold by their JSON text or repr."""
        # Usually every value is a plain str/int/bool/None: one C-level pass says so.
        if not set(map(type, fields.values())) <= _PLAIN_TYPES:
            for key, value in fields.items():
                if isinstance(value, float):
                    if not math.isfinite(value):
                        fields[key] = _safe_repr(value)
                elif not isinstance(value, _SCALAR_TYPES):
                    fields[key] = self._flatten(value)

    def _extra_keys(self, attributes: dict[str, Any]) -> tuple[str, ...]:
        """The record's own attributes (its ``extra``), in order; what python-json-logger's
        ``merge_record_extra`` selects.

        Records made at one call site share their attribute names, so the selection is
        remembered per layout: a tuple of names is cheaper to look up than to recompute for
        every ``request.summary`` record.
        """
        layout = tuple(attributes)
        keys = self._extra_keys_by_layout.get(layout)
        if keys is None:
            reserved = self._skip_fields
            keys = tuple(
                key
                for key in layout
                if key not in reserved and not (type(key) is str and key.startswith("_"))
            )
            if len(self._extra_keys_by_layout) >= _MAX_REMEMBERED_LAYOUTS:
                self._extra_keys_by_layout.clear()
            self._extra_keys_by_layout[layout] = keys
        return keys

    def _envelope(
        self, name: str, levelno: int, timestamp: int, process: int | None, fields: Any
    ) -> dict[str, Any]:
        """The mozlog line of a record made at ``timestamp`` (nanoseconds), ``fields`` as its
        ``Fields``: :meth:`format`'s envelope, which the summary's direct write
        (:mod:`dockerflow_wsgi.direct_log`) builds its lines from too."""
        severity = _SEVERITY_OF_LEVEL.get(levelno)
        return {
            "Timestamp": timestamp,
            "Type": name,
            "Logger": self.logger_name,
            "Hostname": self.hostname,
            "EnvVersion": self.LOGGING_FORMAT_VERSION,
            "Severity": _syslog_severity(levelno) if severity is None else severity,
            "Pid": process,
            "Fields": fields,
        }

    def _flatten(self, value: Any) -> Any:
        """Keep lists of scalars as they are; write anything that could nest an object as text."""
        if isinstance(value, (list, tuple)) and all(isinstance(v, _SCALAR_TYPES) for v in value):
            return list(value)
        if isinstance(value, (dict, list, tuple)):
            try:
                return self._encoder.encode(value)
            except (TypeError, ValueError, RecursionError):
                return _safe_repr(value)
        # Decided here rather than by the encoder, so that orjson (which writes datetimes,
        # UUIDs and dataclasses its own way) and the stdlib give the same line.
        return _safe_repr(value)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        try:
            text = self._encode(log_data)
            # The stdlib escapes every non-ASCII character; orjson writes them raw, and some
            # (U+2028, U+0085) count as line breaks to log readers. ASCII is the common case.
            return text if text.isascii() else self._encoder.encode(log_data)
        except (TypeError, ValueError, RecursionError):
            fields = log_data.get("Fields", {})
            log_data["Fields"] = {
                str(key): value if isinstance(value, _SCALAR_TYPES) else _safe_repr(value)
                for key, value in fields.items()
            }
            return self._encoder.encode(log_data)

    def format(self, record: logging.LogRecord) -> str:
        try:
            return super().format(record)
        except Exception as exc:
            return self._format_failure(record, exc)

    def _format_failure(self, record: logging.LogRecord, exc: Exception) -> str:
        """Describe a record that could not be formatted, without raising again."""
        fields = {
            "msg": _safe_repr(record.msg),
            "args": _safe_repr(record.args),
            "error": f"log record could not be formatted: {_safe_repr(exc)}",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        }
        envelope = self._envelope(
            record.name, record.levelno, int(record.created * _NANOSECONDS), record.process, fields
        )
        return self._encoder.encode(envelope)


MozlogFormatter = JsonLogFormatter


class RequestIdLogFilter(logging.Filter):
    """Add ``rid``, the id of the request being handled, to every record made during it, and
    the ids of the active OpenTelemetry span if there is one (``otelTraceID``, ``otelSpanID``,
    ``otelTraceSampled``: see :func:`~dockerflow_wsgi.tracing.add_span_ids`).

    Records made outside a request, and records that already carry ``rid`` (such as
    ``request.summary``), are left as they are. The filter never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "rid" not in record.__dict__:
            rid = request_id_var.get()
            if rid is not None:
                record.rid = rid
                add_span_ids(record)
        return True


def process_stdout() -> TextIO:
    """A text stream on the process's standard output, whichever server runs the application.

    Usually ``sys.stdout``. uWSGI's Python 3 plugin points ``sys.stdout`` at file descriptor 2
    (unbit/uwsgi#1601), where Dockerflow's "logs go to stdout" would not find them: then a
    line-buffered stream on descriptor 1 is made. A ``sys.stdout`` that has no descriptor (a
    test's capture) is used as it is.
    """
    try:
        if sys.stdout.fileno() != 1:
            return open(1, "w", encoding="utf-8", buffering=1, closefd=False)
    except (AttributeError, OSError, ValueError):
        pass
    return sys.stdout


class MozlogHandler(logging.StreamHandler):
    """Every record as one mozlog JSON line on standard output, with the request's ``rid``.

    The one-line handler for Dockerflow's "logs go to stdout": a :class:`logging.StreamHandler`
    with :class:`JsonLogFormatter` and :class:`RequestIdLogFilter` built in. The request
    summary's direct write serves it as it serves a plain ``StreamHandler``.

    :param stream: where to write; the process's standard output by default
        (:func:`process_stdout`, right under uWSGI too).
    :param name: the ``Logger`` field of each line: the application's name, to be given (the
        default, ``"myapp"``, only holds its place). It stays so when
        the handler is given another :class:`JsonLogFormatter` (``setFormatter`` or a
        dictConfig ``formatter``), as with the ``dockerflow`` package's handler.
    """

    def __init__(self, stream: Optional[TextIO] = None, name: str = "Dockerflow") -> None:
        super().__init__(process_stdout() if stream is None else stream)
        # Not ``self.name``: that is the handler's own name, which dictConfig sets.
        self.logger_name = name
        self.setFormatter(JsonLogFormatter(logger_name=name))
        self.addFilter(RequestIdLogFilter())

    def setFormatter(self, fmt: Optional[logging.Formatter]) -> None:
        """Format with ``fmt``; a :class:`JsonLogFormatter` is used as a copy that writes this
        handler's name, whatever ``logger_name`` it had."""
        if isinstance(fmt, JsonLogFormatter) and fmt.logger_name != self.logger_name:
            fmt = fmt.renamed(self.logger_name)
        super().setFormatter(fmt)


def configure(name: str = "myapp", level: Union[int, str] = "INFO") -> MozlogHandler:
    """Send every logger's records to standard output as mozlog, through one
    :class:`MozlogHandler` on the root logger; return that handler.

    The one call a service needs for Dockerflow's "logs go to stdout": the
    ``request.summary`` lines, the application's records and its libraries' all reach the
    root logger, each with its request's ``rid``. Every logger stays as it was: unlike
    :func:`logging.config.dictConfig`'s and ``fileConfig``'s defaults, none made earlier is
    disabled.

    A :class:`MozlogHandler` already on the root logger (an earlier call's: an app factory
    runs once per test) is replaced, so each record is still written once; the root's other
    handlers (Sentry's, pytest's capture) stay.

    .. code-block:: python

        import dockerflow_wsgi.logging

        dockerflow_wsgi.logging.configure(name="myapp", level="INFO")

    :param name: the ``Logger`` field of each line: the application's name, to be given (the
        default, ``"myapp"``, only holds its place).
    :param level: the root logger's level, a name (any case) or a number. The request summaries
        are written whatever it is: ``request.summary`` gets level INFO unless the application
        set one.
    :raises ValueError: ``level`` is not a logging level; then nothing is changed.
    """
    summary_logger = logging.getLogger(SUMMARY_LOGGER_NAME)
    root = logging.getLogger()
    try:
        root.setLevel(level.upper() if isinstance(level, str) else level)
    except (TypeError, ValueError):
        raise ValueError(
            f"configure(level={level!r}): {level!r} is not a logging level "
            "(a name such as 'INFO' or a number)"
        ) from None
    handler = MozlogHandler(name=name)
    for earlier in root.handlers[:]:
        if isinstance(earlier, MozlogHandler):
            root.removeHandler(earlier)
    root.addHandler(handler)
    if summary_logger.level == logging.NOTSET:
        summary_logger.setLevel(logging.INFO)
    return handler
