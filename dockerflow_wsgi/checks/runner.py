"""Running checks and folding their messages into the heartbeat's result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from .messages import OK, CheckMessage, Error, level_to_text
from .registry import Check, get_checks

__all__ = ["CheckResults", "check_raised", "evaluate", "fold_results", "run_checks"]

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


def check_raised(exc: BaseException) -> list[CheckMessage]:
    """The message standing for a check that raised instead of answering (E101)."""
    return [
        Error(
            f"{type(exc).__name__}: {exc}",
            hint="the check raised an exception; see the log for its traceback",
            id=HEALTH_ID.format("E101"),
        )
    ]


def evaluate(check: Check) -> list[CheckMessage]:
    """Call ``check`` and return its messages, turning any failure into an E101 Error.

    A result that is not a list of :class:`CheckMessage` is a bug in the check, reported the
    same way as an exception it raised.
    """
    try:
        result = check()
    except Exception as exc:
        return check_raised(exc)
    if result is None:
        return []
    if not isinstance(result, (list, tuple)) or not all(
        isinstance(message, CheckMessage) for message in result
    ):
        return check_raised(
            TypeError(f"check returned {_describe(result)}, expected a list of CheckMessage")
        )
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
    """Run ``checks`` (the registered ones by default) one after another and fold the results."""
    pairs = get_checks().items() if checks is None else checks
    return fold_results({name: evaluate(check) for name, check in pairs}, silenced_check_ids)
