"""Request ids: accept a client's id only when it is safe to log and echo, else make one.

The id ends up in a response header and in every log line of the request, so a value from
the client is only trusted when it is 1-128 characters of printable ASCII without
whitespace: nothing that could split a header, forge a log line or bloat every record.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextvars import ContextVar
from os import getpid
from typing import Optional

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "accept_request_id",
    "current_request_id",
    "current_request_id_header",
    "generate_request_id",
    "is_valid_request_id",
    "mark_exception",
    "request_id_header_var",
    "request_id_var",
]

MAX_REQUEST_ID_LENGTH = 128

#: The id of the request being handled on this thread (or task), ``None`` outside one.
request_id_var: ContextVar[Optional[str]] = ContextVar("dockerflow_request_id", default=None)

DEFAULT_REQUEST_ID_HEADER = "X-Request-ID"
#: The request id header of the middleware handling the request, set by a middleware only when
#: it is not :data:`DEFAULT_REQUEST_ID_HEADER` (so the usual request pays nothing for it).
request_id_header_var: ContextVar[str] = ContextVar(
    "dockerflow_request_id_header", default=DEFAULT_REQUEST_ID_HEADER
)

#: Ids made per read of the system's random source.
ID_BATCH_SIZE = 256

# os.urandom is a system call that releases the GIL. On a threaded server (gunicorn's
# gthread, uWSGI threads) the request's thread then waits for the GIL to come back from
# whichever thread took it, which costs far more than the call: read once per batch instead.
# The ids stay as unpredictable as uuid4's; next() on a list iterator hands each id out once,
# whichever thread asks.
#
# A batch belongs to the process that read it. A forked child inherits its parent's unused
# ids, and must never hand them out: the batch is kept with its process id, compared at each
# id. That notices every fork, also uWSGI's (without ``lazy-apps``), which is made in C where
# Python's fork hooks never run.
_batch_ids: Iterator[str] = iter(())
# Set after _batch_ids, so that a thread that sees a process's id also sees its batch.
_batch_pid = -1

# A uuid4 is 128 random bits but for its version (byte 6's high nibble: 4) and variant (byte
# 8's two high bits: 10). Setting them with translate() on every 16th byte of the batch does
# a whole batch in a few C calls, where building a UUID object per id would cost microseconds.
_VERSION_4 = bytes(byte & 0x0F | 0x40 for byte in range(256))
_VARIANT_RFC_4122 = bytes(byte & 0x3F | 0x80 for byte in range(256))


def _new_batch() -> Iterator[str]:
    random_bytes = bytearray(os.urandom(16 * ID_BATCH_SIZE))
    random_bytes[6::16] = random_bytes[6::16].translate(_VERSION_4)
    random_bytes[8::16] = random_bytes[8::16].translate(_VARIANT_RFC_4122)
    # A space after every 16 bytes, then split: the ids cut in C, not in a Python loop (at the
    # given separator: split() with none tests every character for any kind of space).
    return iter(random_bytes.hex(" ", 16).split(" "))


def generate_request_id() -> str:
    """Return a new random (version 4) UUID as 32 lowercase hex digits."""
    global _batch_ids, _batch_pid
    try:
        if _batch_pid == getpid():
            return next(_batch_ids)
    except StopIteration:
        pass
    ids = _new_batch()
    request_id = next(ids)
    _batch_ids = ids
    _batch_pid = getpid()
    return request_id


def is_valid_request_id(value: str) -> bool:
    """Whether a client-supplied id may be used as it is.

    ``isascii`` + ``isprintable`` admit exactly U+0020..U+007E; excluding the space leaves the
    visible characters. WSGI servers decode header bytes as latin-1, so anything non-ASCII the
    client sent fails ``isascii``.
    """
    return (
        0 < len(value) <= MAX_REQUEST_ID_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return request_id_var.get()


def current_request_id_header() -> str:
    """The header that carries the request id to and from the middleware handling the request
    in this context (its ``request_id_header``): the name to pass the id on under."""
    return request_id_header_var.get()


#: The attribute under which an exception that leaves the middleware carries the id of the
#: request it ended, for error reporters wrapped around the middleware (Sentry's), which see
#: it after the request's context is gone.
EXCEPTION_ATTRIBUTE = "dockerflow_request_id"


def mark_exception(exc: Optional[BaseException], request_id: str) -> None:
    """Let ``exc`` carry the id of the request it leaves, unless it carries one already (it
    left an inner request first). An exception that takes no attributes is left as it is."""
    if exc is not None and not hasattr(exc, EXCEPTION_ATTRIBUTE):
        try:
            setattr(exc, EXCEPTION_ATTRIBUTE, request_id)
        except (AttributeError, TypeError):
            pass


def accept_request_id(sent: Optional[str]) -> str:
    """The id of a request that sent ``sent`` in the request id header: it, when it is safe
    to log and echo, else a new one."""
    if sent is None or not is_valid_request_id(sent):
        return generate_request_id()
    return sent
