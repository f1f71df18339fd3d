"""Django's database connections on the threads that run checks."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

__all__ = ["checking_connection", "closing_new_connections"]


@contextlib.contextmanager
def closing_new_connections() -> Iterator[None]:
    """Close, on the way out, every connection this thread opened inside the block.

    Django's connections belong to a thread, and Django closes them when a request finishes;
    checks run on the middleware's pool threads, where no request ever finishes. A connection
    left open there outlives a database restart and fails every later heartbeat run on that
    thread. A connection the thread had open before is its owner's and stays open.
    """
    open_before = {
        connection.alias
        for connection in connections.all(initialized_only=True)
        if connection.connection is not None
    }
    try:
        yield
    finally:
        for connection in connections.all(initialized_only=True):
            if connection.alias not in open_before:
                _close(connection)


@contextlib.contextmanager
def checking_connection(alias: str, timeout: float) -> Iterator[BaseDatabaseWrapper]:
    """A connection of its own to the database ``alias``, that gives up after about
    ``timeout`` seconds when the database does not answer; closed on the way out.

    Not the thread's ``connections[alias]``: that one has the project's settings, which may let
    a database that accepts and never answers hold a check's thread as long as the driver waits
    (psycopg: 130 s; PyMySQL: for good), and a check must not change what the project's views
    get. This one is made from a copy of the alias's settings whose ``OPTIONS`` bound the wait;
    without the ``pool`` option, whose pool Django shares between every connection of the
    alias, so the check connects afresh and no pool is made with the check's options.
    """
    settings = connections.settings[alias]
    backend = load_backend(settings["ENGINE"])
    options = {key: value for key, value in settings["OPTIONS"].items() if key != "pool"}
    options.update(_bounded(backend.DatabaseWrapper.vendor, options, timeout))
    connection = backend.DatabaseWrapper({**settings, "OPTIONS": options}, alias)
    try:
        yield connection
    finally:
        _close(connection)


def _bounded(vendor: str, options: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """The driver options of ``vendor`` that bound connecting (and, for MySQL, reading the
    server's greeting and answers) by ``timeout``, unless ``options`` bound them closer.

    Whole seconds, as libpq and libmysqlclient take them, one under the timeout where there is
    one to spare: the check then reports its own E001 before the heartbeat stops waiting for it
    (E102). libpq waits 2 s at the least. PyMySQL stops waiting for the server at
    ``connect_timeout`` only for the TCP connection: its greeting is read under
    ``read_timeout``.
    """
    seconds: float = max(1, math.ceil(timeout) - 1)
    if vendor == "postgresql":
        names: tuple[str, ...] = ("connect_timeout",)
    elif vendor == "mysql":
        names = ("connect_timeout", "read_timeout")
    elif vendor == "sqlite":
        # How long to wait for another connection's lock; seconds as a float.
        names, seconds = ("timeout",), timeout
    else:
        return {}
    bounded = {}
    for name in names:
        given = options.get(name)
        try:
            closer = given is not None and 0 < float(given) <= seconds
        except (TypeError, ValueError):
            closer = False  # the driver says what is wrong with it, as for the project
        if not closer:
            bounded[name] = seconds
    return bounded


def _close(connection: BaseDatabaseWrapper) -> None:
    # A connection that cannot even be closed cleanly is gone: Django drops it.
    with contextlib.suppress(DatabaseError):
        connection.close()
