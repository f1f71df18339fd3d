"""Health checks: messages, the registry and the runner, named as in the ``dockerflow`` package.

A check is a callable with no arguments returning a list of :class:`CheckMessage`; an empty
list means healthy::

    from dockerflow_wsgi import checks

    @checks.register
    def storage():
        if not bucket_reachable():
            return [checks.Error("bucket unreachable", id="myapp.health.E001")]
        return []
"""

from .messages import (
    CRITICAL,
    DEBUG,
    ERROR,
    INFO,
    STATUSES,
    WARNING,
    CheckMessage,
    Critical,
    Debug,
    Error,
    Info,
    Warning,
    level_to_text,
)
from .registry import clear_checks, get_checks, register, register_partial
from .results import CheckResults
from .runner import run_checks, run_checks_async

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "INFO",
    "STATUSES",
    "WARNING",
    "CheckMessage",
    "CheckResults",
    "Critical",
    "Debug",
    "Error",
    "Info",
    "Warning",
    "clear_checks",
    "get_checks",
    "level_to_text",
    "register",
    "register_partial",
    "run_checks",
    "run_checks_async",
]
