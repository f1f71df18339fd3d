"""Check messages and levels, named as in the ``dockerflow`` package so checks port unchanged."""

from __future__ import annotations

from typing import Any, ClassVar, Optional

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "INFO",
    "STATUSES",
    "WARNING",
    "CheckMessage",
    "Critical",
    "Debug",
    "Error",
    "Info",
    "Warning",
    "level_to_text",
]

OK = 0
DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
CRITICAL = 50

#: Level to the text used in the heartbeat's ``status`` and ``checks`` values.
STATUSES = {
    OK: "ok",
    DEBUG: "debug",
    INFO: "info",
    WARNING: "warning",
    ERROR: "error",
    CRITICAL: "critical",
}


def level_to_text(level: int) -> str:
    """The status text of ``level``; a custom level takes the text of the nearest one below."""
    if level in STATUSES:
        return STATUSES[level]
    known = [known for known in STATUSES if known <= level]
    return STATUSES[max(known)] if known else STATUSES[OK]


class CheckMessage:
    """One finding of a health check.

    :param msg: what was found, for humans.
    :param level: its severity; the subclasses :class:`Debug` … :class:`Critical` set it.
    :param hint: what to do about it.
    :param obj: the object the finding is about.
    :param id: a stable identifier such as ``"myapp.health.E001"``; the heartbeat keys
        messages by it and ``silenced_checks`` names it.
    """

    default_level: ClassVar[Optional[int]] = None

    def __init__(
        self,
        msg: str,
        level: int | None = None,
        hint: str | None = None,
        obj: Any = None,
        id: str | None = None,
    ) -> None:
        resolved = level if level is not None else self.default_level
        if resolved is None:
            raise TypeError(
                "CheckMessage needs a level: pass level= or use Debug, Info, Warning, Error "
                "or Critical"
            )
        if not isinstance(resolved, int) or isinstance(resolved, bool):
            raise TypeError(f"level must be an int such as checks.ERROR, got {resolved!r}")
        self.msg = msg
        self.level = resolved
        self.hint = hint
        self.obj = obj
        self.id = id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckMessage):
            return NotImplemented
        return (self.level, self.msg, self.hint, self.obj, self.id) == (
            other.level,
            other.msg,
            other.hint,
            other.obj,
            other.id,
        )

    __hash__ = None  # type: ignore[assignment]

    # str() and repr() are the dockerflow package's (and Django's), so that logs, assertions
    # and doctests written against them read the same.
    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: level={self.level!r}, msg={self.msg!r}, "
            f"hint={self.hint!r}, obj={self.obj!r}, id={self.id!r}>"
        )

    def __str__(self) -> str:
        obj = "?" if self.obj is None else self.obj
        ident = f"({self.id}) " if self.id else ""
        hint = f"\n\tHINT: {self.hint}" if self.hint else ""
        return f"{obj}: {ident}{self.msg}{hint}"

    def is_serious(self, level: int = ERROR) -> bool:
        """Whether this message makes the service unhealthy (ERROR or worse by default)."""
        return self.level >= level


class Debug(CheckMessage):
    default_level = DEBUG


class Info(CheckMessage):
    default_level = INFO


class Warning(CheckMessage):
    default_level = WARNING


class Error(CheckMessage):
    default_level = ERROR


class Critical(CheckMessage):
    default_level = CRITICAL
