"""The pod's drain: a mark in ``state_dir`` that turns every process's load-balancer probe to 503.

A pod being stopped must leave its load balancer before it stops listening. The
``dockerflow-wsgi drain`` command (a Kubernetes ``preStop`` hook) or the gunicorn hook puts a
mark into the folder the pod's processes share; each process that serves through this library
sees it within :data:`POLL_SECONDS` and answers ``/__lbheartbeat__`` (and the ``drain_groups``)
with ``503`` while serving everything else as before.

No ordinary request pays for this. One thread per process looks at the folder four times a second
(one ``stat``), and a probe looks for itself (one ``stat``), so that a process whose thread is
not running (a worker forked by a server that runs no fork hooks) still answers right.

The mark is a small JSON file written whole (a temporary file renamed over it). It holds when it
expires, so that a mark left behind cannot drain a later server for ever, and which start of
the container made it: a container started again (``docker restart``) keeps its files but not
its drain.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from time import monotonic
from typing import Callable, Optional

from .checks.process_local import ProcessLocal
from .state_dir import prepare_state_dir

__all__ = [
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_HOLD_SECONDS",
    "MARK_NAME",
    "POLL_SECONDS",
    "DrainWatch",
    "cancel_mark",
    "drain_settings_from_environment",
    "make_mark",
    "seconds_from",
    "watch_drain",
]

logger = logging.getLogger("dockerflow_wsgi")

#: The mark's file name in ``state_dir``.
MARK_NAME = "drain"
#: How long ``dockerflow-wsgi drain`` waits by default (``DOCKERFLOW_DRAIN_SECONDS``).
DEFAULT_DRAIN_SECONDS = 10.0
#: How long a mark outlives its wait by default (``DOCKERFLOW_DRAIN_HOLD``): long enough for any
#: graceful stop, short enough that a mark nobody removed ends.
DEFAULT_HOLD_SECONDS = 600.0
#: How often each process looks for the mark: every process sees it well within a second, with
#: room for a busy machine.
POLL_SECONDS = 0.25
# A look younger than this is a probe's answer: two of the thread's rounds, with room for a
# busy machine, and the mark still seen well within a second.
_RECENT = 2 * POLL_SECONDS


def seconds_from(text: str, name: str) -> float:
    """``text`` as a number of seconds, zero or more.

    :raises ValueError: naming ``name``, for anything else.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{name} must be a number of seconds, zero or more, got {text!r}")
    return seconds


def drain_settings_from_environment(
    environ: Mapping[str, str] = os.environ,
) -> tuple[Optional[str], float, float]:
    """The drain's settings from the environment: the state folder (``DOCKERFLOW_STATE_DIR``,
    ``None`` when unset), the wait (``DOCKERFLOW_DRAIN_SECONDS``) and the hold
    (``DOCKERFLOW_DRAIN_HOLD``).

    :raises ValueError: for a bad number, naming its variable.
    """
    seconds = environ.get("DOCKERFLOW_DRAIN_SECONDS", "").strip()
    hold = environ.get("DOCKERFLOW_DRAIN_HOLD", "").strip()
    return (
        environ.get("DOCKERFLOW_STATE_DIR") or None,
        seconds_from(seconds, "DOCKERFLOW_DRAIN_SECONDS") if seconds else DEFAULT_DRAIN_SECONDS,
        seconds_from(hold, "DOCKERFLOW_DRAIN_HOLD") if hold else DEFAULT_HOLD_SECONDS,
    )


def _container_start() -> Optional[str]:
    """Which start of this container (or of this machine, outside one) this is: the kernel's
    boot id and the start time of process 1. ``None`` where ``/proc`` does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot_file:
            boot = boot_file.read().strip()
        with open("/proc/1/stat") as init_file:
            # The fields after the command, whose name may hold spaces: the start time is
            # the 22nd field of the line, the 20th after the closing parenthesis.
            started = init_file.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    return f"{boot}/{started}"


def make_mark(state_dir: str, seconds: float, hold: float = DEFAULT_HOLD_SECONDS) -> str:
    """Put a drain mark into ``state_dir`` (made if absent) that expires ``seconds + hold``
    from now; return its path.

    :raises OSError: when the folder or the mark cannot be written.
    """
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    now = time.time()
    mark = {
        "made": now,
        "until": now + seconds + hold,
        "seconds": seconds,
        "pid": os.getpid(),
        "start": _container_start(),
    }
    path = os.path.join(state_dir, MARK_NAME)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{MARK_NAME}.", dir=state_dir)
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(mark, file)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def cancel_mark(state_dir: str) -> bool:
    """Remove the drain mark from ``state_dir``; ``False`` when there was none.

    :raises OSError: when it is there but cannot be removed.
    """
    try:
        os.unlink(os.path.join(state_dir, MARK_NAME))
    except FileNotFoundError:
        return False
    return True


def _read_expiry(path: str) -> Optional[float]:
    """When the mark at ``path`` expires; ``None`` for a mark another start of the container
    left behind.

    :raises OSError: when it cannot be read.
    :raises ValueError: when it is not a mark.
    """
    with open(path, "rb") as file:
        mark = json.loads(file.read(4096))
    until = mark.get("until") if isinstance(mark, dict) else None
    if not isinstance(until, (int, float)) or isinstance(until, bool):
        raise ValueError("it holds no expiry")
    start = mark.get("start")
    if start is not None and start != _container_start():
        return None
    return float(until)


class DrainWatch(ProcessLocal):
    """Whether the pod drains, as the mark in one state folder says, for this process.

    One per folder per process (:func:`watch_drain`). Each process notices the mark itself,
    logs ``draining`` once when it does and tells its listeners (the ``dockerflow_draining``
    gauge); a forked child starts undrained and notices again.
    """

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.mark_path = os.path.join(state_dir, MARK_NAME)
        self._listeners: list[Callable[[str, bool], None]] = []
        self._fresh()

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        #: Whether the process drains, as of the last look.
        self.draining = False
        # The mark's identity (inode, modification time, size) at the last look, and the
        # expiry read then: the file is read again only when it changed.
        self._seen: Optional[tuple[int, int, int]] = None
        self._until: Optional[float] = None
        # When the mark was last looked at (monotonic), by the thread or a probe.
        self._looked = -_RECENT

    def add_listener(self, listener: Callable[[str, bool], None]) -> None:
        """Call ``listener(state_dir, draining)`` now and whenever this process starts or stops
        draining."""
        if listener not in self._listeners:
            self._listeners.append(listener)
        listener(self.state_dir, self.draining)

    def draining_now(self) -> bool:
        """Whether the pod drains, for a probe: as this process's thread last saw it when that
        was a moment ago (nearly always), else as :meth:`check` sees it now. The thread's look
        spares the probe its ``stat`` (which costs it more than the rest of its answer); the
        probe's own keeps it right where no thread runs (a worker forked without hooks, or by
        a server that lets no thread run between requests)."""
        if monotonic() - self._looked < _RECENT:
            return self.draining
        return self.check()

    def check(self) -> bool:
        """Look at the mark now (one ``stat``; a read when it changed) and say whether the pod
        drains."""
        self._fresh()
        _WATCHES.poll_in_this_process()
        self._looked = monotonic()
        try:
            info = os.stat(self.mark_path)
        except OSError:
            seen = None
        else:
            seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        with self._lock:
            if seen != self._seen:
                self._seen = seen
                self._until = None if seen is None else self._expiry()
            draining = self._until is not None and time.time() < self._until
            if draining == self.draining:
                return draining
            self.draining = draining
        logger.info("draining" if draining else "drain over", extra={"state_dir": self.state_dir})
        for listener in self._listeners:
            listener(self.state_dir, draining)
        return draining

    def _expiry(self) -> Optional[float]:
        """The new mark's expiry; ``None``, with one WARNING, for a file that is no mark."""
        try:
            return _read_expiry(self.mark_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("The drain mark %s is ignored: %s", self.mark_path, exc)
            return None


class _Watches(ProcessLocal):
    """The watches of this process, by folder, and the thread that looks at each of them every
    :data:`POLL_SECONDS`, so that a process no probe reaches still logs and counts its drain.

    The watches outlive a fork (the middlewares that hold them do); the lock and the thread
    are this process's own.
    """

    def __init__(self) -> None:
        # A folder no middleware uses any more is let go.
        self._by_folder: weakref.WeakValueDictionary[str, DrainWatch] = (
            weakref.WeakValueDictionary()
        )
        # Forks are hooked once, for the life of the interpreter (a child inherits the hook).
        self._uwsgi_hooked = False
        self._fresh()

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._resume = False

    def of(self, state_dir: str) -> DrainWatch:
        """The watch of ``state_dir``, made if there is none."""
        self._fresh()
        with self._lock:
            if not self._uwsgi_hooked:
                _run_after_uwsgi_forks(self.after_fork_in_child)
                self._uwsgi_hooked = True
            watch = self._by_folder.get(state_dir)
            if watch is None:
                watch = self._by_folder[state_dir] = DrainWatch(state_dir)
        return watch

    def poll_in_this_process(self) -> None:
        """Start the thread in this process, unless it runs already."""
        self._fresh()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    stop = threading.Event()
                    self._thread = threading.Thread(
                        target=self._poll_until, args=(stop,), name="dockerflow-drain", daemon=True
                    )
                    self._stop = stop
                    self._thread.start()

    def pause_for_fork(self) -> None:
        """Before this process forks: end its thread, so that the fork copies no thread (a
        thread at a fork may hold a lock the child then waits on for ever, and Python 3.12
        warns of it). :meth:`resume_after_fork` starts it again in this process."""
        thread = self._thread if self._pid == os.getpid() else None
        self._resume = thread is not None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=POLL_SECONDS)
            self._thread = None

    def resume_after_fork(self) -> None:
        """In the process that forked: its thread again, if it had one."""
        if self._resume:
            self.poll_in_this_process()

    def after_fork_in_child(self) -> None:
        """A child forked with watches (gunicorn's workers, uWSGI's) looks for the mark at
        once, with a thread of its own."""
        if len(self._by_folder):
            self.poll_in_this_process()

    def _poll_until(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            with self._lock:
                watches = list(self._by_folder.values())
            for watch in watches:
                try:
                    watch.check()
                except Exception:  # pragma: no cover - check() handles what a folder raises
                    logger.exception("Looking for the drain mark failed")


def _run_after_uwsgi_forks(hook: Callable[[], None]) -> None:
    """Run ``hook`` in each worker uWSGI forks: it forks in C, where Python's own fork hooks
    run only with ``py-call-osafterfork``, but its post-fork chain always runs. Nothing
    outside uWSGI (whose ``uwsgi`` module, which ``uwsgidecorators`` needs, exists only there).
    """
    try:
        import uwsgidecorators
    except ImportError:
        return
    uwsgidecorators.postfork(hook)


_WATCHES = _Watches()


def watch_drain(state_dir: str) -> Optional[DrainWatch]:
    """This process's watch of ``state_dir``, looked at once now and then every
    :data:`POLL_SECONDS`; ``None`` (and one WARNING) when the folder cannot be used, so that the
    service serves as if never drained."""
    if not prepare_state_dir(state_dir):
        return None
    watch = _WATCHES.of(state_dir)
    watch.check()
    return watch


if hasattr(os, "register_at_fork"):
    # A fork that runs neither these nor uWSGI's hooks is noticed by the watches themselves, at
    # the first probe.
    os.register_at_fork(
        before=_WATCHES.pause_for_fork,
        after_in_parent=_WATCHES.resume_after_fork,
        after_in_child=_WATCHES.after_fork_in_child,
    )
