"""The time limit of the check running now, so that a built-in can bound its own waits by it.

A built-in that waits on a service (a URL, a broker) should give up a little before the
heartbeat stops waiting for it: it then reports what it found (refused, timed out, which URL)
instead of the heartbeat's bare E102. :class:`~dockerflow_wsgi.checks.runner.CheckRunner` sets
the limit of each check it starts (its ``check_timeouts`` entry, else ``check_timeout``) in the
context the check runs in.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Optional

__all__ = ["DEFAULT_TIME_LIMIT", "WAIT_SHARE", "running_time_limit", "service_wait"]

#: The limit assumed outside a runner (``run_checks``, a check called by hand): the default
#: ``check_timeout``.
DEFAULT_TIME_LIMIT = 5.0

#: The share of its limit a built-in waits on its service; the rest is left to report.
WAIT_SHARE = 0.8

time_limit_var: ContextVar[Optional[float]] = ContextVar(
    "dockerflow_check_time_limit", default=None
)


def running_time_limit() -> Optional[float]:
    """The seconds the runner gives the check running in this context, ``None`` outside one."""
    return time_limit_var.get()


def service_wait(timeout: Optional[float] = None) -> float:
    """How long a built-in waits on its service: ``timeout`` when given, else
    :data:`WAIT_SHARE` of the running check's limit (of :data:`DEFAULT_TIME_LIMIT` outside a
    runner): 4 seconds under the default ``check_timeout`` of 5."""
    if timeout is not None:
        return timeout
    limit = running_time_limit()
    return WAIT_SHARE * (DEFAULT_TIME_LIMIT if limit is None else limit)
