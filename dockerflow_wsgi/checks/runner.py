"""Running checks and folding their messages into the heartbeat's result."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, Optional

from ..redact import mask_url
from .messages import OK, CheckMessage, Error, level_to_text
from .pool import DaemonThreadPool
from .registry import Check, get_checks

__all__ = ["CheckResults", "CheckRunner", "evaluate", "fold_results", "run_checks"]

logger = logging.getLogger("dockerflow_wsgi")

HEALTH_ID = "dockerflow.health.{}"


@dataclass(frozen=True)
class CheckResults:
    """What one heartbeat run found.

    ``statuses`` maps every check to its status text, ``details`` holds the checks above ok
    (status, level and their messages keyed by id) and ``level`` is the highest level seen.
    """

    statuses: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    level: int = OK


def _check_raised(exc: BaseException) -> list[CheckMessage]:
    # The text is the check's, shown by a public endpoint: a driver's error may quote a URL.
    return [
        Error(
            mask_url(f"{type(exc).__name__}: {exc}"),
            hint="the check raised an exception; its traceback is in the log",
            id=HEALTH_ID.format("E101"),
        )
    ]


def _check_timed_out(timeout: float) -> list[CheckMessage]:
    return [
        Error(
            f"check did not finish within {timeout:g} seconds",
            hint="the check is still running; later heartbeats wait for the same run",
            id=HEALTH_ID.format("E102"),
        )
    ]


def evaluate(name: str, check: Check) -> list[CheckMessage]:
    """Call ``check`` and return its messages, turning any failure into an E101 Error.

    A result that is not a list of :class:`CheckMessage` is a bug in the check, reported the
    same way as an exception it raised.
    """
    try:
        result = check()
    except Exception as exc:
        logger.error("Check %r raised", name, exc_info=True)
        return _check_raised(exc)
    if result is None:
        return []
    if not isinstance(result, (list, tuple)) or not all(
        isinstance(message, CheckMessage) for message in result
    ):
        problem = f"check returned {_describe(result)}, expected a list of CheckMessage"
        logger.error("Check %r is broken: %s", name, problem)
        return _check_raised(TypeError(problem))
    return list(result)


def _describe(result: Any) -> str:
    text = repr(result)
    return text if len(text) <= 80 else text[:77] + "..."


def fold_results(
    messages_by_check: Mapping[str, Iterable[CheckMessage]],
    silenced_check_ids: Iterable[str] = (),
) -> CheckResults:
    """Combine each check's messages into statuses, details and the overall level."""
    silenced = frozenset(silenced_check_ids)
    statuses: dict[str, str] = {}
    details: dict[str, dict[str, Any]] = {}
    level = OK
    for name, messages in messages_by_check.items():
        kept = [message for message in messages if message.id not in silenced]
        check_level = max((message.level for message in kept), default=OK)
        statuses[name] = level_to_text(check_level)
        if check_level > OK:
            details[name] = {
                "status": level_to_text(check_level),
                "level": check_level,
                "messages": {
                    (message.id or f"{name}.{index}"): message.msg
                    for index, message in enumerate(kept)
                },
            }
        level = max(level, check_level)
    return CheckResults(statuses, details, level)


def run_checks(
    checks: Optional[Iterable[tuple[str, Check]]] = None,
    silenced_check_ids: Iterable[str] = (),
) -> CheckResults:
    """Run ``checks`` (the registered ones by default) one after another, without time limit.

    This is the ``dockerflow`` package's function, for scripts and tests; the middleware
    runs checks concurrently and bounded in time with :class:`CheckRunner`.
    """
    pairs = get_checks().items() if checks is None else checks
    return fold_results({name: evaluate(name, check) for name, check in pairs}, silenced_check_ids)


class CheckRunner:
    """Run a set of checks concurrently, each bounded by ``timeout`` seconds.

    A check still running when its time is up is reported as E102 and left to finish on its
    thread. Until it does, later runs wait on that same call instead of starting another
    copy, so a check that hangs holds one thread, not one per heartbeat.

    :param timeout: seconds a run waits for its checks.
    :param max_workers: the most threads the pool may start; it starts them only as needed.
    """

    def __init__(self, timeout: float, max_workers: int = 32) -> None:
        self.timeout = timeout
        self.pool = DaemonThreadPool(max_workers)
        # Keyed by identity: a check need not be hashable.
        self._in_flight: dict[tuple[str, int], Future[list[CheckMessage]]] = {}
        # Reentrant: a future that is already done runs its callback at once, in this thread.
        self._lock = threading.RLock()

    def run(
        self, checks: Iterable[tuple[str, Check]], silenced_check_ids: Iterable[str] = ()
    ) -> CheckResults:
        """Run ``checks`` and fold their messages; returns within about ``timeout``."""
        futures: dict[str, Future[list[CheckMessage]]] = {}
        with self._lock:
            for name, check in checks:
                key = (name, id(check))
                future = self._in_flight.get(key)
                if future is None:
                    future = self.pool.submit(evaluate, name, check)
                    self._in_flight[key] = future
                    future.add_done_callback(lambda done, key=key: self._forget(key, done))
                futures[name] = future
        wait_for(futures.values(), timeout=self.timeout)
        messages = {
            name: future.result() if future.done() else _check_timed_out(self.timeout)
            for name, future in futures.items()
        }
        return fold_results(messages, silenced_check_ids)

    def _forget(self, key: tuple[str, int], future: Future[list[CheckMessage]]) -> None:
        with self._lock:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
