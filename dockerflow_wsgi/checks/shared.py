"""The checks run once per interval per pod: one process runs them, every process answers from
the result it writes (``heartbeat_shared``).

With ``heartbeat_interval`` alone, a dependency sees one run per interval per *process*; a pod of
eight workers asks it the same question eight times. With ``heartbeat_shared``, the processes
that share ``state_dir`` and run the same checks elect one runner through a lease in the folder,
and the others read what it wrote. Three files per set of checks, named by a hash of the check
names (:func:`checks_key`), so that two services sharing a folder never serve each other's
health:

``heartbeat-<key>.lease``
    the runner's pid, a token of its own and when its lease expires (JSON, written whole);
``heartbeat-<key>.lock``
    empty; a process changes the lease, and the runner writes its result, only while it holds a
    POSIX lock on it (``fcntl.lockf``), so that two processes never both win a lease, and a
    runner that was stopped while another took over never writes again;
``heartbeat-<key>.json``
    the latest result (JSON, written whole): each check's messages as level, id and text, the
    wall-clock time the run ended, and the ``reported`` state of whoever reports the runs.

The runner renews its lease before each run, for ``interval + longest timeout + 1`` seconds:
a runner that dies, or is stopped, is replaced within that bound by the first process whose
background thread sees the lease expired (each one looks every :data:`POLL_SECONDS`, and wakes
when the lease it saw expires). A runner whose pid is gone is replaced at once. Nothing is
released on exit: a worker that ends (``--max-requests``, a crash) leaves a lease that expires,
or whose pid is gone. A request never reads these files or waits on the lock: it answers from
the result the process's background thread last read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable, NamedTuple, Optional

from .background import BackgroundRuns, LatestRun
from .messages import CheckMessage
from .registry import Check
from .runner import CheckRunner

__all__ = ["POLL_SECONDS", "Lease", "SharedRuns", "checks_key"]

logger = logging.getLogger("dockerflow_wsgi")

#: How often a process looks at the lease and the result: a follower answers with the
#: runner's result a quarter of a second after it is written, at worst.
POLL_SECONDS = 0.25
#: How long a process tries for the lock before it leaves the lease for its next look: the lock
#: is held for a read and a small write, so only a stopped holder keeps it longer.
_LOCK_PATIENCE = 0.1
#: The shortest wait between two looks, when a lease expired but could not be taken yet.
_LEAST_WAIT = 0.01

# The lock file may be locked once per process at a time: a POSIX lock belongs to the process,
# so two threads of one process would both get it.
_process_locks: dict[tuple[int, str], threading.Lock] = {}


def checks_key(names: Iterable[str]) -> str:
    """The key of a set of check names: the same for the same names in any order."""
    text = "\n".join(sorted(set(names)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def encode_messages(messages: dict[str, list[CheckMessage]]) -> dict[str, list[dict[str, Any]]]:
    """Each check's messages as level, id and text: what crosses processes (a hint, an object
    or a traceback stays in the runner's logs)."""
    return {
        name: [{"level": m.level, "id": m.id, "text": str(m.msg)} for m in found]
        for name, found in messages.items()
    }


def decode_messages(encoded: Any) -> dict[str, list[CheckMessage]]:
    """The messages :func:`encode_messages` wrote.

    :raises ValueError: for anything else.
    """
    if not isinstance(encoded, dict):
        raise ValueError("the messages are no mapping")
    try:
        return {
            str(name): [
                CheckMessage(str(m["text"]), level=int(m["level"]), id=m["id"]) for m in found
            ]
            for name, found in encoded.items()
        }
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a message is malformed: {exc!r}") from None


def _write_whole(path: str, data: dict[str, Any]) -> os.stat_result:
    """Write ``data`` as JSON to ``path`` so that a reader sees the old file or the new one,
    never a part; the new file's stat."""
    folder = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file)
        info = os.stat(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return info


def _read_json(path: str) -> Any:
    """The JSON in ``path``; ``None`` when there is no such file or it is no JSON."""
    try:
        with open(path, "rb") as file:
            return json.loads(file.read())
    except (FileNotFoundError, ValueError):
        return None


def _pid_namespace() -> str:
    """Which pids this process can see: a pid in a lease means a process only to the processes
    of the same pid namespace (a folder mounted into two containers is seen by two)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return socket.gethostname()


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        # Another user's process (EPERM) is still a process.
        return False
    return False


class Holder(NamedTuple):
    """Who holds a lease, and until when (wall-clock seconds)."""

    pid: int
    token: str
    until: float
    where: str


class Lease:
    """The lease of one set of checks in ``state_dir``: who runs them, until when.

    :param folder: the state folder.
    :param key: the checks' :func:`checks_key`.
    :param clock: wall-clock seconds (``time.time``); tests pass their own.
    :param pid_gone: whether a pid names no process; tests pass their own.
    """

    def __init__(
        self,
        folder: str,
        key: str,
        clock: Callable[[], float] = time.time,
        pid_gone: Callable[[int], bool] = _pid_gone,
    ) -> None:
        self.path = os.path.join(folder, f"heartbeat-{key}.lease")
        self.lock_path = os.path.join(folder, f"heartbeat-{key}.lock")
        self._clock = clock
        self._pid_gone = pid_gone
        self._where = _pid_namespace()

    def holder(self) -> Optional[Holder]:
        """Who holds the lease, read without the lock (the file is replaced whole); ``None``
        when nobody ever did, or the file is no lease."""
        data = _read_json(self.path)
        try:
            return Holder(int(data["pid"]), str(data["token"]), float(data["until"]), data["where"])
        except (KeyError, TypeError, ValueError):
            return None

    def is_free(self, holder: Optional[Holder]) -> bool:
        """Whether ``holder``'s lease may be taken: none, expired, or its process gone."""
        if holder is None or self._clock() >= holder.until:
            return True
        return holder.where == self._where and self._pid_gone(holder.pid)

    @contextlib.contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the lock for the block; ``False`` when another process holds it still after a
        short wait (the block then changes nothing).

        A POSIX lock (``lockf``), not ``flock``: a child forked while this process holds it does
        not inherit it, and it goes with the process that dies holding it.
        """
        with _process_locks.setdefault((os.getpid(), self.lock_path), threading.Lock()):
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                deadline = time.monotonic() + _LOCK_PATIENCE
                while True:
                    try:
                        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError:
                        if time.monotonic() >= deadline:
                            yield False
                            return
                        time.sleep(0.005)
                yield True
            finally:
                # Closing the descriptor releases the lock.
                os.close(descriptor)

    def hold(self, token: str, seconds: float) -> bool:
        """Take or renew the lease for ``seconds`` as ``token``, when it is ``token``'s or
        free; whether ``token`` holds it now. Under the lock: two processes never both win."""
        with self.locked() as locked:
            if not locked:
                return False
            holder = self.holder()
            if holder is not None and holder.token != token and not self.is_free(holder):
                return False
            lease = {
                "pid": os.getpid(),
                "token": token,
                "until": self._clock() + seconds,
                "where": self._where,
            }
            _write_whole(self.path, lease)
            return True


class SharedRuns(BackgroundRuns):
    """:class:`~dockerflow_wsgi.checks.background.BackgroundRuns` shared by the processes that
    use one state folder: one of them runs the checks every interval, all of them answer from
    the result it writes.

    Each process's background thread (started as the per-process runs start: with the first
    request) looks every :data:`POLL_SECONDS`: the runner runs when its interval is up; a
    follower reads the result when its ``stat`` changed, and takes the lease when it is free.
    Only the runner calls ``after_run`` (one log record, signal and metric per pod), and the
    state it exports travels with the result, so that whoever takes over reports from where the
    last runner stopped. Where the folder stops working, the process runs its own checks.

    :param state_dir: the folder the processes share, usable (``prepare_state_dir``).
    :param group_names: the check names of the heartbeat groups, part of what must be equal for
        two processes to share results.
    :param export_state: called by the runner as it writes a result; what it returns (JSON-safe)
        is written with it.
    :param import_state: called with the latest result's exported state when this process
        becomes the runner.
    :param clock: wall-clock seconds; tests pass their own.
    :param pid_gone: whether a pid names no process; tests pass their own.

    The other parameters are :class:`~dockerflow_wsgi.checks.background.BackgroundRuns`'.
    """

    thread_name = "dockerflow-shared-heartbeat"

    def __init__(
        self,
        checks: Callable[[], Iterable[tuple[str, Check]]],
        runner: CheckRunner,
        interval: float,
        after_run: Callable[[dict[str, list[CheckMessage]]], None],
        *,
        state_dir: str,
        group_names: Iterable[str] = (),
        export_state: Callable[[], dict[str, Any]] = dict,
        import_state: Callable[[dict[str, Any]], None] = lambda state: None,
        clock: Callable[[], float] = time.time,
        pid_gone: Callable[[int], bool] = _pid_gone,
    ) -> None:
        self.state_dir = state_dir
        self._group_names = frozenset(group_names)
        self._export_state = export_state
        self._import_state = import_state
        self._pid_gone = pid_gone
        super().__init__(checks, runner, interval, after_run, clock=clock)

    def _start_fresh(self) -> None:
        super()._start_fresh()
        # A forked child is a new process: a token of its own, no lease, nothing read yet.
        self._token = f"{os.getpid()}-{secrets.token_hex(8)}"
        self._names: Optional[list[str]] = None
        self._lease: Optional[Lease] = None
        self._result_path: Optional[str] = None
        self._names_due = float("-inf")
        self._next_run = float("-inf")
        self._seen: Optional[tuple[int, int, int]] = None
        self._reported: Optional[dict[str, Any]] = None
        self._alone_since: Optional[str] = None

    @property
    def lease_seconds(self) -> float:
        """How long a renewed lease lasts: one interval, the longest run, and a second to
        spare for a busy machine."""
        return self.interval + self.runner.longest_timeout() + 1.0

    @property
    def result_path(self) -> Optional[str]:
        """The result file of the checks as last listed; ``None`` before."""
        return self._result_path

    @property
    def is_runner(self) -> bool:
        """Whether this process holds the lease, as its file says now."""
        self._fresh()
        holder = None if self._lease is None else self._lease.holder()
        return holder is not None and holder.token == self._token

    def _run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Exception:
                logger.exception("The shared background heartbeat failed")
                wait = POLL_SECONDS
            self._stop.wait(wait)

    def step(self) -> float:
        """One look: run when this process is (or becomes) the runner and its interval is up,
        else read the result if it changed; the seconds until the next look."""
        self._fresh()
        now = self._clock()
        if now >= self._names_due:
            self._list_checks(now)
        lease = self._lease
        assert lease is not None
        try:
            holder = lease.holder()
            mine = holder is not None and holder.token == self._token
            if (mine and now >= self._next_run) or (not mine and lease.is_free(holder)):
                self._run_as_runner(lease, became=not mine)
                holder = lease.holder()
                mine = holder is not None and holder.token == self._token
            else:
                self._read_result()
        except OSError as exc:
            return self._run_alone(exc)
        self._alone_since = None
        if mine:
            return max(self._next_run - self._clock(), 0.0)
        if holder is None:
            return POLL_SECONDS
        # Wake as the lease expires, so that the takeover bound holds to the moment.
        return min(POLL_SECONDS, max(holder.until - self._clock(), _LEAST_WAIT))

    def _list_checks(self, now: float) -> None:
        """The names of the checks (and the groups' members) and so the files to use, listed
        again every interval: a check registered late joins the key at the next one."""
        names = sorted({name for name, _ in self._checks()} | self._group_names)
        if names != self._names:
            key = checks_key(names)
            self._names = names
            self._lease = Lease(self.state_dir, key, self._clock, self._pid_gone)
            self._result_path = os.path.join(self.state_dir, f"heartbeat-{key}.json")
            self._seen = None
        self._names_due = now + self.interval

    def _run_as_runner(self, lease: Lease, became: bool) -> None:
        """Renew (or take) the lease, run the checks, and write the result while the lease is
        still this process's."""
        if not lease.hold(self._token, self.lease_seconds):
            return
        if became:
            self._read_result()
            logger.info("This process runs the shared heartbeat checks")
            if self._reported is not None:
                self._import_state(self._reported)
        pairs = list(self._checks())
        messages = self.runner.messages(pairs, root=True)
        ended = self._clock()
        self._next_run = ended + self.interval
        holder = lease.holder()
        if holder is None or holder.token != self._token:
            # Taken over while this run went on (the process stopped, or too slow): the new
            # runner's results, and its reports, are the pod's.
            logger.info("Another process took over the shared heartbeat checks")
            return
        # Reported first, so that the state written with the result holds this run's levels:
        # a process that takes over from it then reports no transition twice.
        self._report(messages)
        result = {
            "names": self._names,
            "pid": os.getpid(),
            "ended": ended,
            "messages": encode_messages(messages),
            "reported": self._export_state(),
        }
        path = self.result_path
        assert path is not None
        with lease.locked() as locked:
            holder = lease.holder()
            if not locked or holder is None or holder.token != self._token:
                logger.info("Another process took over the shared heartbeat checks")
                return
            info = _write_whole(path, result)
        self._seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        self._reported = result["reported"]
        # What this process answers is what the others read: the same body everywhere.
        self._settle(LatestRun(decode_messages(result["messages"]), ended))

    def _read_result(self) -> None:
        """Read the result when its ``stat`` changed; one too old to trust is only kept for
        the state it holds, until a runner writes a new one."""
        path = self.result_path
        assert path is not None
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        result = _read_json(path)
        try:
            if not isinstance(result, dict) or result.get("names") != self._names:
                raise ValueError("it is not a result of these checks")
            ended = float(result["ended"])
            messages = decode_messages(result["messages"])
            reported = result.get("reported")
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("The shared heartbeat result %s is ignored: %s", path, exc)
            return
        self._reported = reported if isinstance(reported, dict) else None
        latest = LatestRun(messages, ended)
        if self.latest is not None or not self.is_stale(latest):
            self._settle(latest)

    def _run_alone(self, problem: OSError) -> float:
        """Run this process's own checks, the folder failing; say so once until it works."""
        reason = f"{problem.strerror or problem}"
        if self._alone_since != reason:
            self._alone_since = reason
            logger.warning(
                "state_dir %s cannot be used for the shared heartbeat (%s): this process runs "
                "its own checks until it can",
                self.state_dir,
                reason,
            )
        messages = self.runner.messages(self._checks(), root=True)
        self._settle(LatestRun(messages, self._clock()))
        self._report(messages)
        return self.interval
