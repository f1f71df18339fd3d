"""Django's database connections on the threads that run checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DatabaseError, connections

__all__ = ["closing_new_connections"]


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
                # A connection that cannot even be closed cleanly is gone: Django drops it.
                with contextlib.suppress(DatabaseError):
                    connection.close()
