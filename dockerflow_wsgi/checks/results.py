"""What a heartbeat run found, folded from each check's messages, and its ``/__heartbeat__`` JSON.

Plain data and pure functions, apart from running the checks: the heartbeat, the answers and
the ``dockerflow-wsgi heartbeat`` command each read results without importing one another,
which keeps the answers, the heartbeat and the metrics out of an import circle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .messages import OK, WARNING, CheckMessage, level_to_text

__all__ = ["CheckResults", "fold_results", "heartbeat_payload"]


@dataclass(frozen=True)
class CheckResults:
    """What one heartbeat run found.

    ``statuses`` maps every check to its status text, ``details`` holds the checks above ok
    (status, level and their messages keyed by id), ``level`` is the highest level seen, and
    ``messages`` holds each check's messages that were not silenced, and ``durations`` the
    seconds each check took, when the run measured them.
    """

    statuses: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    level: int = OK
    messages: dict[str, list[CheckMessage]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)


def fold_results(
    messages_by_check: Mapping[str, Iterable[CheckMessage]],
    silenced_check_ids: Iterable[str] = (),
    non_critical_checks: Iterable[str] = (),
) -> CheckResults:
    """Combine each check's messages into statuses, details and the overall level.

    Messages with a silenced id are left out. The ERROR and CRITICAL messages of a non-critical
    check count as WARNING: the dependency degrades the service, it does not fail it.
    """
    silenced = frozenset(silenced_check_ids)
    non_critical = frozenset(non_critical_checks)
    statuses: dict[str, str] = {}
    details: dict[str, dict[str, Any]] = {}
    kept_by_check: dict[str, list[CheckMessage]] = {}
    level = OK
    for name, messages in messages_by_check.items():
        kept = [message for message in messages if message.id not in silenced]
        if name in non_critical:
            kept = [_at_most_warning(message) for message in kept]
        kept_by_check[name] = kept
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
    durations = getattr(messages_by_check, "durations", {})
    return CheckResults(statuses, details, level, kept_by_check, durations)


def _at_most_warning(message: CheckMessage) -> CheckMessage:
    if message.level <= WARNING:
        return message
    return CheckMessage(
        message.msg, level=WARNING, hint=message.hint, obj=message.obj, id=message.id
    )


def heartbeat_payload(results: CheckResults, *, details: bool = True) -> dict[str, Any]:
    """The ``/__heartbeat__`` JSON body: ``status``, and ``checks`` and ``details`` if asked.

    The middleware leaves the details out where ``heartbeat_details`` is off; the log record
    of a run that found problems and the ``dockerflow-wsgi heartbeat`` command always have them.
    """
    payload: dict[str, Any] = {"status": level_to_text(results.level)}
    if details:
        payload["checks"] = results.statuses
        payload["details"] = results.details
    return payload
