"""State that belongs to one process and starts fresh in a forked child, noticed by process id.

Servers fork workers after the application is imported: gunicorn with ``--preload``, uWSGI
without ``lazy-apps``. A child inherits the parent's memory but none of its threads, so a
future that a parent's thread was to complete is never completed, and a lock that a parent's
thread held stays held forever. uWSGI forks in C, where Python's ``os.register_at_fork`` hooks
do not run: comparing the process id is what notices every kind of fork.
"""

from __future__ import annotations

import os
import threading

__all__ = ["ProcessLocal"]

# One lock per process id, made in the process that uses it: a lock inherited from a parent
# may have been held by one of its threads at the fork. ``setdefault`` is atomic, so the
# threads of a new child all get the same lock.
_renewal_locks: dict[int, threading.Lock] = {}


class ProcessLocal:
    """An object whose state (locks included) is made anew in each process that uses it.

    A subclass makes its state in :meth:`_start_fresh`, calls :meth:`_fresh` first thing in
    each public method that uses that state, and never holds on to the state across a fork.
    The check costs one ``os.getpid()``.
    """

    _pid = -1

    def _start_fresh(self) -> None:
        """Make this object's per-process state; called once in each process."""
        raise NotImplementedError

    def _fresh(self) -> None:
        """Make the state anew if this process is not the one that made it."""
        if self._pid != os.getpid():
            pid = os.getpid()
            with _renewal_locks.setdefault(pid, threading.Lock()):
                if self._pid != pid:
                    self._start_fresh()
                    self._pid = pid
