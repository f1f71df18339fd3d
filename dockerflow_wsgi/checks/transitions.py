"""What a process tells of its checks' runs: each change of a check's level once, and its
messages when they appear, then at most every ``health_log_repeat`` seconds.

A heartbeat under ``heartbeat_interval=1`` runs its checks 3,600 times an hour; an operator wants
one line when a dependency broke and one when it healed, not one per run. :class:`Transitions`
keeps, for each check, the level last reported and how many consecutive runs have disagreed with
it, so that a dependency flapping faster than ``transition_runs`` runs is no news at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import signals
from .messages import OK, CheckMessage, level_to_text
from .process_local import ProcessLocal

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["Transitions"]

logger = logging.getLogger("dockerflow_wsgi")
checks_logger = logging.getLogger("dockerflow_wsgi.checks")

#: What tells one message from another across runs: its level, and its id, or its text when it
#: has no id (a message's text may change from run to run, a latency in it, where its id stays).
_MessageKey = tuple[int, Optional[str], Optional[str]]


def _key(message: CheckMessage) -> _MessageKey:
    if message.id:
        return (message.level, message.id, None)
    return (message.level, None, message.msg)


@dataclass
class _Check:
    """One check's state: the level reported, the level runs have agreed on since (and how many
    in a row), and when each of its current messages was last logged."""

    reported: int = OK
    pending: Optional[tuple[int, int]] = None
    logged: dict[_MessageKey, float] = field(default_factory=dict)


class Transitions(ProcessLocal):
    """The reports of one process's check runs (one per middleware, whatever heartbeat or group
    ran a check): transitions, and messages at most every ``log_repeat`` seconds.

    A run's messages, by check, go to :meth:`observe`, after silencing and the non-critical
    rule, as the heartbeat reports them. For each check it keeps the level reported (``ok``
    before its first run). When ``runs`` consecutive runs agree on a level other than the
    reported one, that is a transition: one record on ``dockerflow_wsgi.checks`` at the new
    level (INFO when back to ok), ``"<check> is now <level>"``, with the fields ``check``,
    ``previous``, ``level`` (level texts) and ``ids`` (the ids of the check's messages above ok,
    comma-separated); the signal :data:`~dockerflow_wsgi.signals.check_changed`; and, with
    metrics, ``dockerflow_check_transitions_total``. Each message above ok is logged at its
    level (fields ``check`` and ``id``) when it appears, then at most every ``log_repeat``
    seconds while it persists; one absent from a run appears anew when it returns.

    The state belongs to the process (a forked worker starts afresh), is safe to share between
    threads, and travels as plain values: :meth:`state` and :meth:`restore`.

    :param runs: consecutive runs that must agree before a new level counts (``transition_runs``).
    :param log_repeat: seconds between two records of a message that persists
        (``health_log_repeat``); 0 logs it after every run.
    :param metrics: where transitions are counted, when Prometheus metrics are on.
    :param clock: monotonic seconds; tests give their own.
    """

    def __init__(
        self,
        runs: int = 1,
        log_repeat: float = 300.0,
        *,
        metrics: Optional[Metrics] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runs = runs
        self.log_repeat = log_repeat
        self.metrics = metrics
        self._clock = clock
        self._fresh()

    def _start_fresh(self) -> None:
        # Reentrant: a signal receiver is sent under it, and may run a heartbeat itself.
        self._lock = threading.RLock()
        self._checks: dict[str, _Check] = {}
        #: Each heartbeat's status (by name, ``""`` the main one) and when it was last logged.
        self._statuses: dict[str, tuple[str, float]] = {}

    def observe(
        self, messages: Mapping[str, Sequence[CheckMessage]], *, sender: Any = None
    ) -> None:
        """Report one run of the checks in ``messages`` (a check's messages by its name); the
        checks the run left out keep their state. ``sender`` sends the signal. Whatever a
        signal receiver raises is logged at ERROR, never raised."""
        self._fresh()
        with self._lock:
            now = self._clock()
            for name, found in messages.items():
                check = self._checks.setdefault(name, _Check())
                self._observe(name, check, found, now, sender)
                if check.reported == OK and check.pending is None and not check.logged:
                    del self._checks[name]

    def _observe(
        self, name: str, check: _Check, found: Sequence[CheckMessage], now: float, sender: Any
    ) -> None:
        above = [message for message in found if message.level > OK]
        level = max((message.level for message in above), default=OK)
        if level == check.reported:
            check.pending = None
        else:
            agreeing = 1
            if check.pending is not None and check.pending[0] == level:
                agreeing = check.pending[1] + 1
            check.pending = (level, agreeing)
            if agreeing >= self.runs:
                previous, check.reported, check.pending = check.reported, level, None
                self._transition(name, previous, level, above, sender)
        earlier, check.logged = check.logged, {}
        due: set[_MessageKey] = set()
        for message in above:
            key = _key(message)
            if key not in check.logged:
                last = earlier.get(key)
                if last is None or now - last >= self.log_repeat:
                    due.add(key)
                    last = now
                check.logged[key] = last
            if key in due:
                _log_message(name, message)

    def _transition(
        self, name: str, previous: int, level: int, above: list[CheckMessage], sender: Any
    ) -> None:
        text = level_to_text(level)
        ids = ",".join(dict.fromkeys(message.id for message in above if message.id))
        checks_logger.log(
            level if level > OK else logging.INFO,
            "%s is now %s",
            name,
            text,
            extra={"check": name, "previous": level_to_text(previous), "level": text, "ids": ids},
        )
        if self.metrics is not None:
            self.metrics.observe_transition(name, text)
        try:
            signals.check_changed.send(sender, check=name, previous=previous, level=level)
        except BaseException:
            # As for the heartbeat's signals: the application's code must not change the
            # health answer, nor end a worker.
            logger.error("A receiver of %s raised", signals.check_changed.name, exc_info=True)

    def status_due(self, heartbeat: str, status: str) -> bool:
        """Whether the run of ``heartbeat`` (``""``: ``/__heartbeat__``, else its group's name)
        that answered ``status`` is to be logged: its status changed, or it was last logged
        ``log_repeat`` seconds ago or more. A ``True`` counts as logged now."""
        self._fresh()
        with self._lock:
            now = self._clock()
            last = self._statuses.get(heartbeat)
            if last is not None and last[0] == status and now - last[1] < self.log_repeat:
                return False
            self._statuses[heartbeat] = (status, now)
            return True

    def state(self) -> dict[str, Any]:
        """What this object knows, as JSON-serialisable plain values, for :meth:`restore` in
        another process: the levels reported, the runs agreeing on a new one, and how many
        seconds ago each current message and heartbeat status was logged."""
        self._fresh()
        with self._lock:
            now = self._clock()
            return {
                "checks": {
                    name: {
                        "reported": check.reported,
                        "pending": list(check.pending) if check.pending is not None else None,
                        "messages": [
                            [level, id_, text, now - logged]
                            for (level, id_, text), logged in check.logged.items()
                        ],
                    }
                    for name, check in self._checks.items()
                },
                "statuses": {
                    heartbeat: [status, now - logged]
                    for heartbeat, (status, logged) in self._statuses.items()
                },
            }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace what this object knows with ``state``, made by :meth:`state` (here or in
        another process): the reported levels go on, so that a new runner taking over reports
        no transition, and a message logged recently is not logged again at once.

        :raises ValueError: when ``state`` is not of that form; nothing is changed then.
        """
        try:
            checks = {
                str(name): _Check(
                    reported=int(check["reported"]),
                    pending=_pending(check["pending"]),
                    logged={
                        (int(level), id_, text): float(age)
                        for level, id_, text, age in check["messages"]
                    },
                )
                for name, check in state["checks"].items()
            }
            statuses = {
                str(heartbeat): (str(status), float(age))
                for heartbeat, (status, age) in state["statuses"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a state of Transitions: {exc!r}") from None
        self._fresh()
        with self._lock:
            now = self._clock()
            for check in checks.values():
                check.logged = {key: now - age for key, age in check.logged.items()}
            self._checks = checks
            self._statuses = {name: (status, now - age) for name, (status, age) in statuses.items()}


def _pending(value: Any) -> Optional[tuple[int, int]]:
    if value is None:
        return None
    level, agreeing = value
    return (int(level), int(agreeing))


def _log_message(name: str, message: CheckMessage) -> None:
    extra = {"check": name, "id": message.id}
    traceback = getattr(message, "traceback", None)
    if traceback:
        extra["traceback"] = traceback
    checks_logger.log(message.level, "%s", message.msg, extra=extra)
