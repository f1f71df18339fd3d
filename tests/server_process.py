"""A server run in a subprocess for a test: a free port, start, wait until ready, its output,
stop with its workers. The one way the tests start gunicorn, uWSGI, uvicorn, hypercorn, Sanic,
celery, Prometheus or ``make run``.

The process runs in a session of its own, so that it and every worker it forks can be killed
together; its stdout and stderr go to files, which a test reads while it runs or after. A test
that starts one must carry the ``servers`` marker (``pytest -m "not servers"`` is the fast
inner loop): :meth:`ServerProcess.start` fails the test that does not.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Callable, Optional, Union

import pytest

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0

#: The test being set up or run, set by ``tests/conftest.py``; ``None`` outside pytest (soak).
running_test: Optional[pytest.Item] = None

_ports_given: set[int] = set()


def unused_port() -> int:
    """A loopback TCP port nothing listens on now, and that this process never handed out
    before: a test may choose several ports before it starts their servers, and a port freed
    by the first choice could come back for the next."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def served_environment(tests: Path, **variables: str) -> dict[str, str]:
    """The environment of a server a test starts serving an app of ``tests``: this process's,
    without the developer's ``DOCKERFLOW_*`` settings, ``tests`` importable, output unbuffered
    (the test reads it as it comes), then ``variables``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOCKERFLOW_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(tests), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        **variables,
    )
    return env


def require_servers_marker() -> None:
    """Fail the running test unless it carries the ``servers`` marker."""
    if running_test is not None and running_test.get_closest_marker("servers") is None:
        pytest.fail(
            f"{running_test.nodeid} starts a server in a subprocess without the `servers` "
            "marker: `pytest -m 'not servers'` would run it",
            pytrace=False,
        )


class ServerProcess:
    """``command`` run in ``cwd`` with the environment ``env``, its stdout in ``stdout_path``
    and its stderr in ``stderr_path`` (with stdout when not given), appended to.

    ``stop_signal`` is what asks it to stop (SIGTERM, as a container runtime sends; Sanic's
    server expects SIGINT); ``signal_group`` sends it to the whole session rather than to the
    process started (``make``, which does not pass signals on). As a context manager it is
    started on entry and stopped on exit.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout_path: Path,
        stderr_path: Optional[Path] = None,
        name: Optional[str] = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        signal_group: bool = False,
    ) -> None:
        self.command = [str(part) for part in command]
        self.cwd = cwd
        self.env = dict(env)
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.name = name or Path(self.command[0]).name
        self.stop_signal = stop_signal
        self.signal_group = signal_group
        self.process: Optional[subprocess.Popen[bytes]] = None
        #: Whether the last :meth:`stop` had to kill it.
        self.killed = False

    # -- the process ----------------------------------------------------------------------------

    def start(self) -> ServerProcess:
        require_servers_marker()
        self.killed = False
        with self.stdout_path.open("ab") as stdout:
            if self.stderr_path is None:
                self.process = self._popen(stdout, subprocess.STDOUT)
            else:
                with self.stderr_path.open("ab") as stderr:
                    self.process = self._popen(stdout, stderr)
        return self

    def _popen(self, stdout: IO[bytes], stderr: Union[IO[bytes], int]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def returncode(self) -> Optional[int]:
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(
        self,
        ready: Callable[[], object],
        timeout: float = STARTUP_TIMEOUT,
        interval: float = 0.05,
    ) -> None:
        """Poll ``ready()`` until it returns something true (an ``OSError`` counts as not yet).

        Fails at once if the process exits meanwhile, and kills it if ``timeout`` passes.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise AssertionError(
                    f"{self.name} exited with {self.returncode} while starting:\n"
                    + self.errors()[-3000:]
                )
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    f"{self.name} not ready within {timeout:g} s:\n" + self.errors()[-3000:]
                )
            time.sleep(interval)

    def wait_for_output(
        self, pattern: Union[str, re.Pattern[str]], timeout: float = STARTUP_TIMEOUT
    ) -> re.Match[str]:
        """The first match of ``pattern`` in what the process wrote, once there is one."""
        found: list[re.Match[str]] = []

        def matched() -> bool:
            written = self.output() if self.stderr_path is None else self.output() + self.errors()
            match = re.search(pattern, written)
            if match is not None:
                found.append(match)
            return match is not None

        self.wait_until(matched, timeout)
        return found[0]

    def wait(self, timeout: float) -> Optional[int]:
        """Its exit status once it exits by itself, or ``None`` if it still runs after
        ``timeout`` (a server that must refuse to start)."""
        assert self.process is not None, f"{self.name} was never started"
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> Optional[int]:
        """Ask it to stop and wait; kill its whole session if it has not after ``timeout``.

        :returns: its exit status, or ``None`` when it had to be killed (:attr:`killed`).
        """
        if self.process is None:
            return None
        if self.process.poll() is None:
            if self.signal_group:
                os.killpg(self.process.pid, self.stop_signal)
            else:
                self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._kill_leftovers()
        return self.process.returncode

    def kill(self) -> None:
        """Kill it and its workers (its session), if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.killed = True
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        """Workers that outlived the process started (a ``make`` killed before its server)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    # -- the output -----------------------------------------------------------------------------

    def output(self) -> str:
        """What it wrote on stdout so far (with stderr, when that has no file of its own)."""
        return _read(self.stdout_path)

    def errors(self) -> str:
        """What it wrote on stderr so far (its stdout too, when they share a file)."""
        return _read(self.stderr_path or self.stdout_path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
