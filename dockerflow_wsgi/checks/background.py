"""Checks run in the background, every interval, so that probes never reach a dependency.

With ``heartbeat_interval`` above zero, a backend sees at most one run per interval per process,
whatever the probe rate: every heartbeat answers from the latest run, without waiting for one.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Callable, NamedTuple, Optional

from .. import health
from .messages import CheckMessage, Error
from .process_local import ProcessLocal
from .registry import Check
from .runner import CheckRunner

__all__ = ["BackgroundRuns", "LatestRun"]

logger = logging.getLogger("dockerflow_wsgi")


def _monotonic() -> float:
    # Looked up at each call, so that a test may move this module's clock.
    return time.monotonic()


class LatestRun(NamedTuple):
    """The messages of the latest background run, by check, and when it ended (by the clock of
    the runs that made it)."""

    messages: dict[str, list[CheckMessage]]
    ended: float


class BackgroundRuns(ProcessLocal):
    """Run the checks every ``interval`` seconds on one daemon thread of this process.

    The thread starts with the first call of :meth:`start` in a process (the first request), is
    started again in a forked child (its parent's thread is not there), and stops at exit.

    :param checks: returns the ``(name, check)`` pairs to run; called at every run.
    :param runner: runs them, each under its timeout.
    :param interval: seconds from the end of one run to the start of the next.
    :param after_run: called with the messages of each run (the heartbeat's logs and signals).
    :param clock: the clock of :attr:`LatestRun.ended` and of its age; ``time.monotonic`` by
        default.
    """

    #: The thread's name.
    thread_name = "dockerflow-heartbeat"

    def __init__(
        self,
        checks: Callable[[], Iterable[tuple[str, Check]]],
        runner: CheckRunner,
        interval: float,
        after_run: Callable[[dict[str, list[CheckMessage]]], None],
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self._checks = checks
        self.runner = runner
        self.interval = interval
        self._after_run = after_run
        self._clock = clock or _monotonic
        self._fresh()

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        #: Settled with the first run's result: the first requests may wait for it.
        self.first: Future[LatestRun] = Future()
        self.latest: Optional[LatestRun] = None

    @property
    def stale_after(self) -> float:
        """Seconds after which a result means the runner is stuck or dead: three intervals
        plus the longest a run may take."""
        return 3 * self.interval + self.runner.longest_timeout()

    def start(self) -> None:
        """Start the runs in this process, unless they run already."""
        self._fresh()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run_forever, name=self.thread_name, daemon=True
                    )
                    self._thread.start()
                    atexit.register(self._stop.set)

    def stop(self) -> None:
        """Stop after the run under way, if any."""
        self._stop.set()

    def _run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                # A trace of its own: no probe's span is the parent of a background run.
                messages = self.runner.messages(self._checks(), root=True)
            except Exception:
                # The checks cannot even be listed: the results go stale, and say so.
                logger.exception("The background heartbeat run failed")
            else:
                self._settle(LatestRun(messages, self._clock()))
                self._report(messages)
            self._stop.wait(self.interval)

    def _settle(self, latest: LatestRun) -> None:
        """Make ``latest`` the result heartbeats answer from."""
        self.latest = latest
        if not self.first.done():
            self.first.set_result(latest)

    def _report(self, messages: dict[str, list[CheckMessage]]) -> None:
        try:
            self._after_run(messages)
        except Exception:
            logger.exception("Reporting a background heartbeat run failed")

    def is_stale(self, latest: Optional[LatestRun]) -> bool:
        """Whether ``latest`` is no result to trust: none yet, or older than
        :attr:`stale_after`."""
        return latest is None or self._clock() - latest.ended > self.stale_after

    def messages_of(
        self, names: Iterable[str], latest: Optional[LatestRun]
    ) -> dict[str, list[CheckMessage]]:
        """The messages of ``names`` in ``latest``, with E105 where there is no result fresh
        enough to trust (a check that has not run yet counts as one without a result)."""
        now = self._clock()
        if latest is None or self.is_stale(latest):
            age = "none yet" if latest is None else f"the latest is {now - latest.ended:.3g} s old"
            stale = [
                Error(
                    f"the background heartbeat runner has no fresh result ({age})",
                    hint="the runner is stuck or dead: see the log",
                    id=health.ERROR_STALE_RESULT,
                )
            ]
            return {name: stale for name in names}
        not_run = [
            Error(
                "not run yet by the background heartbeat runner",
                hint="it runs every heartbeat_interval seconds",
                id=health.ERROR_STALE_RESULT,
            )
        ]
        return {name: latest.messages.get(name, not_run) for name in names}
