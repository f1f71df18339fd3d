"""Checks published by installed distributions under the ``dockerflow_wsgi.checks`` group.

A package declares, in its metadata::

    [options.entry_points]
    dockerflow_wsgi.checks =
        search_index = mypackage.health:check_search_index

The entry point's name is the check's name and its object the check. They are loaded once,
when the middleware is built; a plugin that cannot be loaded becomes a failing check
(``dockerflow.health.E103``) so the service still starts and the heartbeat says why.
"""

from __future__ import annotations

import logging
import sys
from importlib import metadata
from typing import Any

from .. import health
from ..redact import describe_exception, masked_traceback
from .messages import CheckMessage, Error
from .registry import Check

__all__ = ["ENTRY_POINT_GROUP", "load_entry_point_checks"]

ENTRY_POINT_GROUP = "dockerflow_wsgi.checks"

logger = logging.getLogger("dockerflow_wsgi")


def _entry_points(group: str) -> list[Any]:
    if sys.version_info >= (3, 10):
        return list(metadata.entry_points(group=group))
    return list(metadata.entry_points().get(group, ()))  # pragma: no cover - Python 3.9


def _distribution_name(entry_point: Any) -> str:
    dist = getattr(entry_point, "dist", None)
    return getattr(dist, "name", None) or "an unknown distribution"


def _failed_plugin(entry_point: Any, problem: str) -> Check:
    message = (
        f"entry point {entry_point.name} = {entry_point.value} "
        f"(from {_distribution_name(entry_point)}) could not be loaded: {problem}"
    )

    def failed_plugin() -> list[CheckMessage]:
        return [Error(message, id=health.ERROR_CHECK_PLUGIN_BROKEN)]

    return failed_plugin


def load_entry_point_checks(group: str = ENTRY_POINT_GROUP) -> dict[str, Check]:
    """Load every check published under ``group``; never raises for a broken plugin."""
    loaded: dict[str, Check] = {}
    origins: dict[str, str] = {}
    for entry_point in _entry_points(group):
        origin = _distribution_name(entry_point)
        if entry_point.name in loaded:
            logger.warning(
                "Check %r is published by both %s and %s; using the one from %s",
                entry_point.name,
                origins[entry_point.name],
                origin,
                origins[entry_point.name],
            )
            continue
        try:
            check = entry_point.load()
        except Exception as exc:
            problem = describe_exception(exc)
            logger.error(
                "Check plugin %r could not be loaded: %s",
                entry_point.name,
                problem,
                extra={"traceback": masked_traceback(exc)},
            )
            check = _failed_plugin(entry_point, problem)
        else:
            if not callable(check):
                logger.error("Check plugin %r is not callable", entry_point.name)
                check = _failed_plugin(entry_point, f"{type(check).__name__} is not callable")
        loaded[entry_point.name] = check
        origins[entry_point.name] = origin
    return loaded
