"""Which checks a heartbeat runs: the explicit ones, or the registry, entry points, built-ins and
framework check sources, read again at every run."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Optional

from .. import health
from ..config import Config
from .builtins import builtin_checks
from .messages import CheckMessage, Error
from .plugins import load_entry_point_checks
from .registry import Check, CheckSource, get_check_sources, get_checks

__all__ = ["CheckSelection", "UnknownCheck"]

logger = logging.getLogger("dockerflow_wsgi")


class CheckSelection:
    """The checks of one middleware, made into ``(name, check)`` pairs at each heartbeat run.

    Entry points are loaded and built-ins (with their engines and clients) made once, here, at
    construction.

    :param config: the options that ask for built-ins (``db``, ``redis``, ``alembic_config``).
    :param checks: ``checks=``: when given, it replaces the registry, the entry points and the
        framework check sources.
    :raises ValueError: for a ``checks=`` that is not made of ``(name, callable)`` pairs, or a
        built-in that cannot work.
    """

    def __init__(self, config: Config, checks: Optional[Iterable[tuple[str, Check]]]) -> None:
        self.explicit = None if checks is None else _check_pairs(checks)
        self._entry_point_checks = load_entry_point_checks() if checks is None else {}
        self._builtin_checks = builtin_checks(config)
        self._reported_clashes: set[str] = set()

    def current(self) -> list[tuple[str, Check]]:
        """The checks a heartbeat runs now.

        ``checks=`` if it was given, else the entry points overlaid by the registry (read now,
        so late registrations count); then the built-ins the options asked for; then, unless
        ``checks=`` was given, those of the registered check sources (a framework's own), each
        of which takes ``<source>.<name>`` where its name is taken. Where an explicit
        registration and an entry point share a name, the registration wins and the clash is
        logged once.
        """
        sources: list[tuple[str, CheckSource]] = []
        if self.explicit is not None:
            selected = dict(self.explicit)
        else:
            sources = get_check_sources()
            registered = get_checks()
            selected = dict(self._entry_point_checks)
            for name in (registered.keys() & selected.keys()) - self._reported_clashes:
                self._reported_clashes.add(name)
                logger.warning(
                    "Check %r is both registered and published as an entry point; "
                    "using the registered one",
                    name,
                )
            selected.update(registered)
        for name, check in self._builtin_checks:
            selected.setdefault(name, check)
        for source_name, source in sources:
            for name, check in _checks_of(source_name, source):
                # A framework's check named like another keeps a name of its own.
                selected.setdefault(
                    name if name not in selected else f"{source_name}.{name}", check
                )
        return list(selected.items())

    def group(self, names: Iterable[str]) -> list[tuple[str, Check]]:
        """The checks of a heartbeat group, by name, an :class:`UnknownCheck` for a name that
        no check has now."""
        current = dict(self.current())
        return [(name, current.get(name) or UnknownCheck(name)) for name in names]


class UnknownCheck:
    """What a heartbeat group runs for a check name that no check has: E104."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> list[CheckMessage]:
        return [
            Error(
                f"no check is named {self.name!r}",
                hint="the heartbeat group names a check that is neither registered, published "
                "nor built in",
                id=health.ERROR_UNKNOWN_CHECK,
            )
        ]


def _checks_of(name: str, source: CheckSource) -> list[tuple[str, Check]]:
    """What ``source`` finds now; a source that fails is one failing check of its name."""
    try:
        return list(source())
    except Exception as exc:
        failure = exc

        def check_source_failed() -> list[Any]:
            raise failure

        return [(name, check_source_failed)]


def _check_pairs(checks: Iterable[tuple[str, Check]]) -> list[tuple[str, Check]]:
    """``checks=`` as a list, each pair a name (a non-empty str) and a callable."""
    pairs = []
    for pair in checks:
        try:
            name, check = pair
        except (TypeError, ValueError):
            raise ValueError(f"checks must hold (name, check) pairs, got {pair!r}") from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"checks: a check's name must be a non-empty str, got {name!r}")
        if not callable(check):
            raise ValueError(f"checks: check {name!r} is not callable: {check!r}")
        pairs.append((name, check))
    return pairs
