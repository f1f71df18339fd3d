"""Running checks concurrently under a time limit; :mod:`.results` folds what they found."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from typing import Any, Callable, Optional, TypeVar

from .. import health
from ..redact import describe_exception
from .containment import MAX_MESSAGE_LENGTH, CheckFailure, evaluate, evaluate_async, is_async
from .loop import background_loop
from .messages import CheckMessage, Error
from .pool import DaemonThreadPool
from .process_local import ProcessLocal
from .registry import Check, get_checks
from .results import CheckResults, fold_results
from .spans import Fold, RunTrace, start_run_trace
from .time_limit import time_limit_var

__all__ = [
    "CheckRunner",
    "RunMessages",
    "run_checks",
    "run_checks_async",
]


def _timed_out(timeout: float) -> list[CheckMessage]:
    return [
        Error(
            f"check did not finish within {timeout:g} seconds",
            hint="the check is still running; heartbeats report it at once until it returns",
            id=health.ERROR_CHECK_TIMED_OUT,
        )
    ]


def _still_running(started: float, now: float) -> list[CheckMessage]:
    return [
        Error(
            f"check still running after {now - started:.3g} seconds, started by an earlier "
            "heartbeat",
            hint="a check that hangs holds one thread; it is not started again until it returns",
            id=health.ERROR_CHECK_TIMED_OUT,
        )
    ]


def run_checks(
    checks: Optional[Iterable[tuple[str, Check]]] = None,
    silenced_check_ids: Iterable[str] = (),
) -> CheckResults:
    """Run ``checks`` (the registered ones by default) one after another, without time limit.

    This is the ``dockerflow`` package's function, for scripts and tests; the middleware
    runs checks concurrently and bounded in time with a ``CheckRunner``. Each check still
    runs behind the check boundary: nothing it raises escapes.
    """
    pairs = get_checks().items() if checks is None else checks
    return fold_results({name: evaluate(check) for name, check in pairs}, silenced_check_ids)


async def run_checks_async(
    checks: Optional[Iterable[tuple[str, Check]]] = None,
    silenced_check_ids: Iterable[str] = (),
) -> CheckResults:
    """Run ``checks`` (the registered ones by default) concurrently, without time limit.

    The ``dockerflow`` package's function: ``async def`` checks are awaited on the running
    loop, the others run on the loop's default executor, never on its thread.
    """
    pairs = list(get_checks().items() if checks is None else checks)
    loop = asyncio.get_running_loop()

    async def outcome(check: Check) -> list[CheckMessage]:
        if is_async(check):
            return await evaluate_async(check)
        context = contextvars.copy_context()
        return await loop.run_in_executor(None, context.run, evaluate, check)

    messages = await asyncio.gather(*(outcome(check) for _, check in pairs))
    return fold_results(
        {name: found for (name, _), found in zip(pairs, messages)}, silenced_check_ids
    )


class _Call:
    """A check's call that is under way, when its caller stops waiting for it, and when it
    returned (set by the future's callback)."""

    __slots__ = ("deadline", "ended", "future", "started", "timeout")

    def __init__(self, future: Future[list[CheckMessage]], started: float, timeout: float) -> None:
        self.future = future
        self.started = started
        self.deadline = started + timeout
        self.timeout = timeout
        self.ended: Optional[float] = None


class RunMessages(dict):  # type: ignore[type-arg]
    """Each check's messages of one run (a ``dict``), and :attr:`durations`: the seconds each
    check took, or has taken so far when the run stopped waiting for it."""

    def __init__(self, messages: dict[str, list[CheckMessage]], durations: dict[str, float]):
        super().__init__(messages)
        self.durations = durations


class CheckRunner(ProcessLocal):
    """Run a set of checks concurrently, each bounded by its timeout.

    A synchronous check runs on a pool thread, never on an event loop's; an ``async def``
    check is awaited on the caller's event loop (:meth:`messages_async`, under ASGI) or on the
    process's background loop (:meth:`messages`, under WSGI). Each runs in a copy of the
    caller's context, so log records it makes carry the request's id. A check still running
    when its time is up is reported as E102 and left to finish. Until it does, it is not
    started again: a run that finds it past its time reports E102 at once, without waiting; a
    run that finds it within its time waits only for what is left of it. A check is known by
    its name, whatever callable carries it at each run (a check source may build new ones
    every time), so a check that hangs holds one thread (or task), and no heartbeat waits for
    it twice.

    Where the application traces with OpenTelemetry, each run is a span with a child span per
    check (:mod:`.spans`).

    :param timeout: seconds a run waits for a check.
    :param max_workers: the most threads the pool may start; it starts them only as needed.
    :param timeouts: seconds of the checks whose timeout is not ``timeout``, by name.
    :param fold: folds a run's messages as the heartbeats do (their silenced ids and
        non-critical checks), for the levels the spans report.
    """

    def __init__(
        self,
        timeout: float,
        max_workers: int = 32,
        timeouts: Optional[Mapping[str, float]] = None,
        fold: Fold = fold_results,
    ) -> None:
        self.timeout = timeout
        self.timeouts = dict(timeouts or {})
        self.pool = DaemonThreadPool(max_workers)
        self.fold = fold
        self._fresh()

    def _start_fresh(self) -> None:
        # Keyed by name, not by the callable: a check source may build new callables at each
        # run (the Django integration does), and each must still find the call under way.
        self._in_flight: dict[str, _Call] = {}
        # Reentrant: a future that is already done runs its callback at once, in this thread.
        self._lock = threading.RLock()

    def longest_timeout(self) -> float:
        """The longest any check may take."""
        return max([self.timeout, *self.timeouts.values()])

    def run(
        self, checks: Iterable[tuple[str, Check]], silenced_check_ids: Iterable[str] = ()
    ) -> CheckResults:
        """Run ``checks`` and fold their messages; returns within about their timeouts."""
        return fold_results(self.messages(checks), silenced_check_ids)

    async def run_async(
        self, checks: Iterable[tuple[str, Check]], silenced_check_ids: Iterable[str] = ()
    ) -> CheckResults:
        """:meth:`run` for an event loop's thread, which it never blocks."""
        return fold_results(await self.messages_async(checks), silenced_check_ids)

    def messages(self, checks: Iterable[tuple[str, Check]], *, root: bool = False) -> RunMessages:
        """Run ``checks``: each one's messages; returns within about their timeouts.

        :param root: whether the run's span begins a trace of its own (a run in the
            background), rather than being a child of the span current now.
        """
        self._fresh()
        trace = start_run_trace(root=root, fold=self.fold)
        now = time.monotonic()
        calls = self._calls(checks, now, self._start_on_threads, trace)
        waiting = {call.future: call.deadline for call in calls.values() if call.deadline > now}
        while waiting:
            wait_for(waiting, timeout=_until_soonest(waiting))
            waiting = _still_waiting(waiting)
        return _outcomes(calls, now, trace)

    async def messages_async(self, checks: Iterable[tuple[str, Check]]) -> RunMessages:
        """:meth:`messages` for an event loop's thread, which it never blocks; its span is a
        child of the one current (the probe's)."""
        self._fresh()
        trace = start_run_trace(root=False, fold=self.fold)
        now = time.monotonic()
        calls = self._calls(checks, now, self._start_on_this_loop, trace)
        waiting = {
            asyncio.wrap_future(call.future): call.deadline
            for call in calls.values()
            if call.deadline > now
        }
        while waiting:
            # asyncio.wait, unlike wait_for, cancels nothing at the timeout: a late check goes
            # on and is reported once it returns, as under WSGI.
            await asyncio.wait(waiting, timeout=_until_soonest(waiting))
            waiting = _still_waiting(waiting)
        return _outcomes(calls, now, trace)

    def _calls(
        self,
        checks: Iterable[tuple[str, Check]],
        now: float,
        start: Callable[[Check, contextvars.Context], Future[list[CheckMessage]]],
        trace: Optional[RunTrace],
    ) -> dict[str, _Call]:
        """Each check's call: the one under way, or one ``start`` begins now, in a copy of the
        current context (where the check's span is current, when the run is traced, and
        :func:`~dockerflow_wsgi.checks.time_limit.running_time_limit` is its time limit)."""
        calls: dict[str, _Call] = {}
        with self._lock:
            for name, check in checks:
                call = self._in_flight.get(name)
                context = contextvars.copy_context() if trace is None else trace.check_context(name)
                # A finished call is forgotten by its done-callback, which may not have run yet.
                if call is None or call.future.done():
                    # The time limit is read before the check starts: a call's limit is the
                    # one in force when it began, whatever changes while it runs.
                    timeout = self.timeouts.get(name, self.timeout)
                    # In the copy only: the check reads its limit to bound its own waits.
                    context.run(time_limit_var.set, timeout)
                    call = _Call(start(check, context), now, timeout)
                    self._in_flight[name] = call
                    call.future.add_done_callback(functools.partial(self._forget, name, call))
                calls[name] = call
        return calls

    def _start_on_threads(
        self, check: Check, context: contextvars.Context
    ) -> Future[list[CheckMessage]]:
        if is_async(check):
            return background_loop.submit(evaluate_async(check), context)
        return self.pool.submit(context.run, evaluate, check)

    def _start_on_this_loop(
        self, check: Check, context: contextvars.Context
    ) -> Future[list[CheckMessage]]:
        if is_async(check):
            # A task copies the context it is made in: ``context``.
            return _settled_by(context.run(asyncio.ensure_future, evaluate_async(check)))
        return self.pool.submit(context.run, evaluate, check)

    def _forget(self, name: str, call: _Call, future: Future[Any]) -> None:
        call.ended = time.monotonic()
        with self._lock:
            if self._in_flight.get(name) is call:
                del self._in_flight[name]


def _outcomes(calls: dict[str, _Call], now: float, trace: Optional[RunTrace]) -> RunMessages:
    """Each call's messages: its own, or E102 for one that has not returned; and durations.
    The run's spans, if traced, end with them."""
    ended = time.monotonic()
    messages = {}
    durations = {name: (call.ended or ended) - call.started for name, call in calls.items()}
    for name, call in calls.items():
        if call.future.done():
            # The boundary never raises; should the thread or task running it fail, the
            # boundary still holds.
            failure = (
                asyncio.CancelledError() if call.future.cancelled() else call.future.exception()
            )
            messages[name] = (
                call.future.result()
                if failure is None
                else [CheckFailure(describe_exception(failure, limit=MAX_MESSAGE_LENGTH))]
            )
        elif call.started < now:
            messages[name] = _still_running(call.started, ended)
        else:
            messages[name] = _timed_out(call.timeout)
    if trace is not None:
        trace.end(
            messages,
            {name: call.ended or ended for name, call in calls.items() if call.future.done()},
        )
    return RunMessages(messages, durations)


_Waitable = TypeVar("_Waitable", Future, asyncio.Future)


def _until_soonest(waiting: dict[_Waitable, float]) -> float:
    """Seconds until the soonest deadline among ``waiting``: a wait for all of them that
    ends then has waited for each no longer than its own timeout."""
    return max(0.0, min(waiting.values()) - time.monotonic())


def _still_waiting(waiting: dict[_Waitable, float]) -> dict[_Waitable, float]:
    """The calls of ``waiting`` that are neither done nor past their deadline."""
    now = time.monotonic()
    return {
        call: deadline for call, deadline in waiting.items() if not call.done() and deadline > now
    }


def _settled_by(task: asyncio.Future[list[CheckMessage]]) -> Future[list[CheckMessage]]:
    """A thread-safe future that ``task`` settles: the runner's calls are all of that kind, so
    that a run on a thread and a run on a loop can share one."""
    future: Future[list[CheckMessage]] = Future()
    future.set_running_or_notify_cancel()

    def settle(done: asyncio.Future[list[CheckMessage]]) -> None:
        if done.cancelled():
            future.set_exception(asyncio.CancelledError())
        elif done.exception() is not None:
            future.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            future.set_result(done.result())

    task.add_done_callback(settle)
    return future
