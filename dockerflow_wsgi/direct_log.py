"""Write a record's line straight to plain handlers, when that is exactly what logging would do.

The request summary is written once per request, and going through :mod:`logging` (a
``LogRecord``, ``Logger.handle``, ``Handler.handle``, the formatter's generic pipeline) costs
several times what the line itself costs. Where the configuration makes the outcome certain,
the summary skips that machinery and writes the very line logging would have written:

* the logger is enabled, has no filters, and records come from the stdlib's ``LogRecord``
  (no custom record factory that could add attributes);
* every handler the record would reach is a plain :class:`logging.StreamHandler` or a
  :class:`~.logging.MozlogHandler` (not another subclass, which may emit differently)
  formatted by :class:`~.logging.JsonLogFormatter` (not a subclass), with no filters other
  than :class:`~.logging.RequestIdLogFilter`, which leaves a record that already has ``rid``
  as it is.

Anything else (pytest's capture, a ``QueueHandler``, a Sentry handler, another formatter)
gets a real record through ``Logger.handle``. The configuration is read on every call, so a
change made while serving takes effect at the next request.

Two private parts of :mod:`logging` are read, here only: ``logging._logRecordFactory`` (what
:func:`logging.getLogRecordFactory` returns, without the call) and a logger's ``_cache`` (what
:meth:`logging.Logger.isEnabledFor` answered, by level: :func:`level_cache`). Where they are not
as expected (:data:`AVAILABLE`, decided once at import), or the direct write is turned off
(:func:`set_enabled`), neither is read and every record goes through ``Logger.handle``.
"""

from __future__ import annotations

import logging
from os import getpid
from time import time_ns
from typing import Any, Callable, Optional

from .logging import JsonLogFormatter, MozlogHandler, RequestIdLogFilter, orjson

__all__ = [
    "AVAILABLE",
    "is_enabled",
    "level_cache",
    "make_record",
    "on_switch",
    "set_enabled",
    "write_direct",
]

# Filters that leave a summary record as it is: it has its ``rid`` already.
_HARMLESS_FILTERS = frozenset({RequestIdLogFilter})
# Handlers whose emit() is StreamHandler's own: write the formatted line, then flush.
_PLAIN_HANDLERS = frozenset({logging.StreamHandler, MozlogHandler})


def _private_parts_as_expected() -> bool:
    """Whether logging's private parts read here are as every CPython since 3.7 has them: the
    factory that :func:`logging.getLogRecordFactory` returns in ``logging._logRecordFactory``,
    and a logger's answers of ``isEnabledFor`` by level in a dict ``_cache`` that the call fills.
    """
    # Made directly, not by getLogger: a logger of its own, registered nowhere.
    probe = logging.Logger(__name__)
    enabled = probe.isEnabledFor(logging.INFO)
    cache = getattr(probe, "_cache", None)
    return (
        getattr(logging, "_logRecordFactory", None) is logging.getLogRecordFactory()
        and type(cache) is dict
        and cache.get(logging.INFO) is enabled
    )


#: Whether the private parts of :mod:`logging` that the direct write reads are there, as
#: expected: decided once, at import. Where not, every record goes through ``Logger.handle``.
AVAILABLE: bool = _private_parts_as_expected()

# Whether the direct write is on; only set_enabled changes it.
_enabled = AVAILABLE
# The handler classes write_direct serves: none while the direct write is off, so that it
# returns False at the first handler it meets, before it reads any private part of logging.
# The switch itself then costs write_direct no test of its own. Set with _enabled.
_served_handlers: frozenset[type] = _PLAIN_HANDLERS if _enabled else frozenset()
# Called after each set_enabled(), by the modules keeping a dict that level_cache() gave them.
_switch_listeners: list[Callable[[], None]] = []


def set_enabled(enabled: bool) -> None:
    """Turn the direct write on or off for the whole process (on only where :data:`AVAILABLE`).

    Off, :func:`write_direct` writes nothing and returns ``False`` and :func:`level_cache` gives
    an empty dict, so the summary is written exactly as plain logging writes a record, and no
    private part of logging is read. For the tests: ``DOCKERFLOW_TEST_NO_DIRECT_LOG=1`` turns it
    off for a whole run (``tests/conftest.py``), and ``make test`` runs the summary's and
    logging's tests so too, since both ways must write the same lines.
    """
    global _enabled, _served_handlers
    _enabled = enabled and AVAILABLE
    _served_handlers = _PLAIN_HANDLERS if _enabled else frozenset()
    for listener in _switch_listeners:
        listener()


def is_enabled() -> bool:
    """Whether the direct write is on: :data:`AVAILABLE` and not turned off."""
    return _enabled


def on_switch(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every :func:`set_enabled`: for a module that keeps what
    :func:`level_cache` gave it (the summary's, read at every request) to ask again."""
    _switch_listeners.append(listener)


def level_cache(logger: logging.Logger) -> dict[int, bool]:
    """``logger``'s own cache of :meth:`~logging.Logger.isEnabledFor`'s answers by level, to
    read them without the call: the call fills it, logging empties it at every change of levels
    (the same dict, so it may be kept). It knows nothing of a disabled logger, which the call
    checks first.

    A new, empty dict while the direct write is off (:func:`set_enabled`) or not
    :data:`AVAILABLE`: every lookup then misses, and the caller asks ``isEnabledFor``.
    """
    return logger._cache if _enabled else {}


def write_direct(logger: logging.Logger, level: int, fields: dict[str, Any]) -> bool:
    """Write the line of a record of ``level`` from ``logger`` (enabled for it), with no
    message and ``fields`` as its extra attributes, to every handler it reaches, as
    ``StreamHandler.emit`` does, if that is exactly what logging would do; else write nothing
    and return ``False``, for the caller to log a record.

    A failure to write goes to the handler's ``handleError`` with the record it would have had.
    Every value of ``fields`` is a str, an int or a finite float (the summary makes them so).
    One function, not one to choose the handlers and one to write to them: the summary pays for
    every call.
    Nothing is written while the direct write is off (:func:`set_enabled`).
    """
    if logger.filters:
        return False
    reached: list[logging.StreamHandler] = []
    current: Optional[logging.Logger] = logger
    while current is not None:
        for handler in current.handlers:
            if level < handler.level:
                continue
            if (
                type(handler) not in _served_handlers
                or type(handler.formatter) is not JsonLogFormatter
            ):
                return False
            # Usually none, or MozlogHandler's one: a loop costs less than building a set.
            for item in handler.filters:
                if type(item) not in _HARMLESS_FILTERS:
                    return False
            reached.append(handler)
        current = current.parent if current.propagate else None
    if not reached:
        # No handler at all means logging's last resort, which is not ours to imitate.
        return False
    # The factory as getLogRecordFactory() returns it, without the call: read once a handler
    # was served, so never while the direct write is off.
    if logging._logRecordFactory is not logging.LogRecord:
        return False
    name = logger.name
    timestamp = time_ns()
    process = getpid() if logging.logProcesses else None
    for handler in reached:
        try:
            formatter: JsonLogFormatter = handler.formatter  # type: ignore[assignment]
            try:
                line = fields_line(
                    formatter, name, level, timestamp, process, fields, handler.terminator
                )
            except Exception:
                # The formatter's format() never raises: it describes what it cannot write.
                line = formatter.format(make_record(name, level, fields)) + handler.terminator
            # StreamHandler.emit's write and flush, the handler's lock held once for both
            # (what acquire() and release() do, without their two calls; and cheaper than
            # ``with``).
            lock = handler.lock
            lock.acquire()  # type: ignore[union-attr]
            try:
                stream = handler.stream
                stream.write(line)
                # A stream may have no flush(), which StreamHandler.flush() then skips: called
                # directly, as looking it up first would cost as much again.
                try:
                    stream.flush()
                except AttributeError:
                    if hasattr(stream, "flush"):
                        raise
            finally:
                lock.release()  # type: ignore[union-attr]
        except RecursionError:
            raise
        except Exception:
            handler.handleError(make_record(name, level, fields))
    return True


def make_record(
    name: str, level: int, fields: dict[str, Any], exc_info: Any = None
) -> logging.LogRecord:
    """A record of ``name`` with no message and ``fields`` as its extra attributes.

    Made through the record factory, so an application's custom factory still applies;
    ``Logger.log`` would also walk the stack for a file and line that such a record never
    shows, and copy ``extra`` key by key.
    """
    record = logging.getLogRecordFactory()(name, level, "", 0, "", (), exc_info)
    record.__dict__.update(fields)
    return record


# The envelope's members between Timestamp and Fields: the same for every line of one formatter
# for the records of one logger name and level made by one process.
_MIDDLE_MEMBERS = ("Type", "Logger", "Hostname", "EnvVersion", "Severity", "Pid")
# The most formatters _middles holds: see _middle_text.
_MAX_FORMATTERS = 64
# Per formatter: the logger name, level and process of the last line made with it, and that
# line's text between Timestamp and Fields.
_middles: dict[JsonLogFormatter, tuple[str, int, Optional[int], str]] = {}


def fields_line(
    formatter: JsonLogFormatter,
    name: str,
    levelno: int,
    timestamp_ns: int,
    process: int | None,
    fields: dict[str, Any],
    terminator: str,
) -> str:
    """The line ``formatter.format()`` writes for a record of ``name`` at ``levelno`` made by
    ``process``, with no message, no exception and ``fields`` as its extra attributes, made
    without the record at ``timestamp_ns`` (nanoseconds since the epoch), ``terminator`` (the
    handler's) after it.

    Every value of ``fields`` must be a str, an int or a finite float, as the summary's are.
    """
    if not formatter.prefix:
        # The usual line, made from the envelope's unchanging members encoded once: only the
        # timestamp and the fields are encoded per line, by the encoder format() uses (orjson
        # where installed, else the stdlib's, whose lines are ASCII always). Anything unusual
        # (an encoding error, a character orjson leaves as it is) takes the general way below.
        # A subscript, not get(), and names, not a tuple's items: the summary pays for every
        # step. Where there is none yet, the first test fails and the others are not reached.
        try:
            known_name, known_level, known_process, middle = _middles[formatter]
        except KeyError:
            known_name = None
        if known_name != name or known_level != levelno or known_process != process:
            middle = _middle_text(formatter, name, levelno, process)
        if middle:
            # orjson without format()'s default=: a value it cannot encode (none of the
            # summary's) raises, and the general way below writes it as format() does. Passing
            # the keyword costs every line ~250 instructions (callgrind).
            try:
                text = (
                    formatter._encoder.encode(fields)
                    if orjson is None
                    else orjson.dumps(fields).decode()
                )
            except (TypeError, ValueError, RecursionError):
                pass
            else:
                if text.isascii():
                    # The terminator in the same join: adding it after would copy the line.
                    return f'{{"Timestamp":{timestamp_ns}{middle}{text}}}{terminator}'
    log_data = formatter._envelope(name, levelno, timestamp_ns, process, fields)
    # What serialize_log_record(process_log_record(...)) gives, for this exact class (the only
    # one the direct write serves): process_log_record is the identity.
    return formatter.prefix + formatter.jsonify_log_record(log_data) + terminator


def _middle_text(formatter: JsonLogFormatter, name: str, levelno: int, process: int | None) -> str:
    """The JSON text between the ``Timestamp``'s value and the ``Fields``' of ``formatter``'s
    lines of the records of ``name`` at ``levelno`` made by ``process``, the same for every one
    of them: its commas and ``"Fields":`` included (``""`` when it is not ASCII, which the line
    then escapes). Kept as the formatter's last one.

    Kept here, not on the formatter, whose attributes are ``format()``'s. Keyed on the formatter
    object, which stands for its ``logger_name`` and ``hostname``: both are set when it is made
    (``renamed()`` makes a copy), and comparing them at every line would cost the summary more
    than the three comparisons it makes. The key holds the formatter: a weak one would cost a
    Python-level call per line (``WeakKeyDictionary``), for formatters that are a handful per
    process, made at configuration. Those made over and over (an app factory run once per test)
    are held ``_MAX_FORMATTERS`` at most: the cache is emptied when full.
    """
    envelope = formatter._envelope(name, levelno, 0, process, {})
    members = {key: envelope[key] for key in _MIDDLE_MEMBERS}
    try:
        encoded = formatter._encode(members)
    except (TypeError, ValueError, RecursionError):
        encoded = "{}"
    text = f',{encoded[1:-1]},"Fields":' if len(encoded) > 2 else ""
    if not text.isascii():
        text = ""
    if len(_middles) >= _MAX_FORMATTERS:
        _middles.clear()
    _middles[formatter] = (name, levelno, process, text)
    return text
