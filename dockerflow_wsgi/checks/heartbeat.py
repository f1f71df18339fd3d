"""One heartbeat at a time: single-flight runs, an optional result cache, logs and signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import signals
from .background import BackgroundRuns, LatestRun
from .containment import evaluate
from .messages import ERROR, WARNING, CheckMessage, level_to_text
from .process_local import ProcessLocal
from .registry import Check
from .results import CheckResults, fold_results, heartbeat_payload
from .runner import CheckRunner
from .selection import UnknownCheck
from .transitions import Transitions

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["Heartbeat"]

logger = logging.getLogger("dockerflow_wsgi")


class Heartbeat(ProcessLocal):
    """Answer "is this service healthy?" without letting probes hammer its dependencies.

    On demand, requests that arrive while a run is in progress in this process never start
    their own (single-flight), and at most one request waits for a run: the others answer at
    once from the last completed run, when it ended within the last two check timeouts, so
    that a storm of heartbeats against a slow or late check cannot hold every thread of the
    server (``/__lbheartbeat__`` would queue behind them). Without so recent a run (the
    process's first, or after a quiet spell) they wait for the run in progress, which is then
    the freshest answer there is. With ``cache_ttl`` above zero, a finished result is reused
    for that many seconds, which is what bounds the runs when probes come one after another or
    reach several processes. The run in progress and the last result belong to the process: a
    forked worker starts with neither. With a ``background`` runner, every answer comes from
    its latest run, without waiting for one.

    After each run, ``transitions`` reports it (each check's changes of level, and its messages
    when they appear, then at most every ``health_log_repeat`` seconds), a run that found
    problems is logged on ``dockerflow_wsgi`` when its status changed or was last logged that
    long ago, and the signals are sent.

    :param checks: returns the ``(name, check)`` pairs to run; called at every run, so checks
        registered later are included.
    :param runner: runs the checks concurrently, each under its timeout.
    :param cache_ttl: seconds a result is reused; 0 turns the cache off.
    :param silenced_check_ids: message ids left out of the result.
    :param non_critical_checks: checks whose ERROR and CRITICAL messages count as WARNING.
    :param sender: the sender of the ``heartbeat_passed`` / ``heartbeat_failed`` signals.
    :param background: the runs to answer from, where checks run in the background.
    :param metrics: where each run is recorded, when Prometheus metrics are on.
    :param transitions: what reports the runs; heartbeats that share one (a middleware's main
        heartbeat and its groups) track each check once. By default, one of its own.
    :param name: the heartbeat's name among those sharing ``transitions``: ``""`` for
        ``/__heartbeat__``, the group's name for a group's.
    """

    def __init__(
        self,
        checks: Callable[[], Iterable[tuple[str, Check]]],
        runner: CheckRunner,
        *,
        cache_ttl: float = 0.0,
        silenced_check_ids: Iterable[str] = (),
        non_critical_checks: Iterable[str] = (),
        sender: Any = None,
        background: Optional[BackgroundRuns] = None,
        metrics: Optional[Metrics] = None,
        transitions: Optional[Transitions] = None,
        name: str = "",
    ) -> None:
        self._checks = checks
        self.runner = runner
        self.cache_ttl = cache_ttl
        self.silenced_check_ids = frozenset(silenced_check_ids)
        self.non_critical_checks = frozenset(non_critical_checks)
        #: The sender of the signals; a framework integration may make it its application.
        self.sender = sender
        self.background = background
        self.metrics = metrics
        self.transitions = Transitions() if transitions is None else transitions
        self.name = name
        self._fresh()

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: Future[CheckResults] | None = None
        #: The last completed run's result, and when it ended.
        self._last: CheckResults | None = None
        self._last_ended = 0.0
        self._tasks: set[asyncio.Future[None]] = set()
        #: Requests currently waiting on another request's run (for tests and debugging).
        self.waiting = 0
        #: The result last made from a background run: (that run, whether it was stale, it).
        self._made_from_background: Optional[tuple[Optional[LatestRun], bool, CheckResults]] = None

    def fold(self, messages: dict[str, list[CheckMessage]]) -> CheckResults:
        """The result of a run's messages, under this heartbeat's rules."""
        return fold_results(messages, self.silenced_check_ids, self.non_critical_checks)

    def results(self) -> CheckResults:
        """The current result: the background's latest; or cached, the last one while another
        request waits for a run in progress, shared with that run, or from a new run."""
        if self.background is not None:
            background = self.background
            background.start()
            if background.latest is None:
                # The first requests of a process may wait for its first run, no longer.
                with contextlib.suppress(FutureTimeoutError):
                    background.first.result(self._first_run_wait())
            return self._from_background(background)
        cached, shared, leader = self._join()
        if cached is not None:
            return cached
        if leader:
            try:
                results = self.fold(self.runner.messages(self._checks()))
            except BaseException as exc:
                self._settle(shared, exc)
                raise
            self._settle(shared, results)
            return results
        try:
            return shared.result()
        finally:
            self._leave()

    async def results_async(self) -> CheckResults:
        """:meth:`results` for an event loop's thread: the run in progress is awaited, and a new
        run is a task of its own, which the cancellation of the request that started it (a
        client gone) does not stop, so that the requests sharing it still get its result."""
        if self.background is not None:
            background = self.background
            background.start()
            if background.latest is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(asyncio.wrap_future(background.first)),
                        self._first_run_wait(),
                    )
            return self._from_background(background)
        cached, shared, leader = self._join()
        if cached is not None:
            return cached
        # Shielded: a request cancelled while it waits (its client gone) must not cancel the
        # shared run, which wrap_future would do.
        if leader:
            task = asyncio.ensure_future(self._lead_async(shared))
            self._tasks.add(task)  # a task nobody refers to may be collected mid-run
            task.add_done_callback(self._tasks.discard)
            return await asyncio.shield(asyncio.wrap_future(shared))
        try:
            return await asyncio.shield(asyncio.wrap_future(shared))
        finally:
            self._leave()

    async def _lead_async(self, shared: Future[CheckResults]) -> None:
        try:
            results = self.fold(await self.runner.messages_async(self._checks()))
        except BaseException as exc:
            # Handed to the requests that wait on the run; this task itself is awaited by none.
            self._settle(shared, exc)
            return
        self._settle(shared, results)

    def _first_run_wait(self) -> float:
        return self.runner.longest_timeout() + 1.0

    def _from_background(self, background: BackgroundRuns) -> CheckResults:
        """This heartbeat's checks, from the background's latest run. A check no run could
        have (a group's unknown name) answers for itself: E104, at no cost.

        The result is made once per run (and once more when that run goes stale), not per
        probe: the same object answers every heartbeat until then, so that the answer made
        of it can be reused as well. A check registered since the latest run shows from the
        next one.
        """
        latest = background.latest
        stale = background.is_stale(latest)
        made = self._made_from_background
        if made is not None and made[0] is latest and made[1] == stale:
            return made[2]
        results = self._fold_background(background, latest)
        self._made_from_background = (latest, stale, results)
        return results

    def _fold_background(
        self, background: BackgroundRuns, latest: Optional[LatestRun]
    ) -> CheckResults:
        pairs = list(self._checks())
        messages = background.messages_of(
            [name for name, check in pairs if not isinstance(check, UnknownCheck)], latest
        )
        return self.fold(
            {
                name: evaluate(check) if isinstance(check, UnknownCheck) else messages[name]
                for name, check in pairs
            }
        )

    def _join(self) -> tuple[Optional[CheckResults], Future[CheckResults], bool]:
        """The result to answer at once (cached, or the last one while a run is in progress);
        else the run to share, and whether the caller is to lead it."""
        self._fresh()
        with self._lock:
            age = time.monotonic() - self._last_ended
            if self._last is not None and age < self.cache_ttl:
                return self._last, Future(), False
            if self._in_flight is None:
                self._in_flight = Future()
                return None, self._in_flight, True
            # The leader waits for the run already: a recent enough result answers the others.
            if self._last is not None and age < 2 * self.runner.longest_timeout():
                return self._last, Future(), False
            self.waiting += 1
            return None, self._in_flight, False

    def _leave(self) -> None:
        with self._lock:
            self.waiting -= 1

    def _settle(self, shared: Future[CheckResults], outcome: Any) -> None:
        """End the shared run with its results (kept as the last, reported) or the exception
        it ended in."""
        with self._lock:
            self._in_flight = None
            if isinstance(outcome, CheckResults):
                self._last = outcome
                self._last_ended = time.monotonic()
        if isinstance(outcome, CheckResults):
            shared.set_result(outcome)
            self.report(outcome)
        else:
            shared.set_exception(outcome)

    def report(self, results: CheckResults) -> None:
        """Record the run in the metrics, report its findings through :attr:`transitions`, log
        a status that is news, and tell the signal receivers how it went; whatever a receiver
        raises is logged at ERROR, never raised."""
        if self.metrics is not None:
            self.metrics.observe_run(results)
        self.transitions.observe(results.messages, sender=self.sender)
        failed = results.level >= ERROR
        # Asked after every run, so that a status that comes back after a healthy spell is
        # news again.
        due = self.transitions.status_due(self.name, level_to_text(results.level))
        if due and results.level >= WARNING:
            payload = heartbeat_payload(results)
            logger.log(
                logging.ERROR if failed else logging.WARNING,
                "Heartbeat %s",
                payload["status"],
                extra=payload,
            )
        signal = signals.heartbeat_failed if failed else signals.heartbeat_passed
        try:
            signal.send(self.sender, level=results.level)
        except BaseException:
            # A receiver is the application's code, run for a public endpoint: whatever it
            # raises (SystemExit and KeyboardInterrupt too, which would end a uWSGI worker or
            # an event loop) must leave the health answer as it was.
            logger.error("A receiver of %s raised", signal.name, exc_info=True)
