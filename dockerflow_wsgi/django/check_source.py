"""The heartbeat's check source from Django: its system checks and ``settings.DOCKERFLOW_CHECKS``.

The app registers :func:`heartbeat_checks` as a check source, called at every heartbeat run, so
``DEBUG``, ``SILENCED_SYSTEM_CHECKS`` and ``DOCKERFLOW_CHECKS`` are read as they are then
(``override_settings`` in a project's tests applies) and a check registered with Django late
is run too. Django's messages are translated into :class:`dockerflow_wsgi.checks.CheckMessage`
here; everything else about running them (threads, timeouts, failures) is the core's.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, Callable

from django.conf import settings
from django.core import checks as django_checks
from django.core.checks.registry import registry
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..checks import CheckMessage
from ..checks.containment import is_async
from ..checks.registry import Check
from .connections import closing_new_connections

__all__ = ["DEFAULT_CHECKS", "SHORT_NAMES", "heartbeat_checks", "listed_checks"]

#: ``settings.DOCKERFLOW_CHECKS`` when it is not set, as in the ``dockerflow`` package: the
#: database and migrations checks.
DEFAULT_CHECKS = (
    "dockerflow_wsgi.django.checks.check_database_connected",
    "dockerflow_wsgi.django.checks.check_migrations_applied",
)

#: The names ``settings.DOCKERFLOW_CHECKS`` may give instead of a dotted path, each run in the
#: heartbeat under that name: django-health-check's names for the same checks.
SHORT_NAMES = {
    "cache": "dockerflow_wsgi.django.checks.check_cache",
    "storage": "dockerflow_wsgi.django.checks.check_storage",
}


def listed_checks() -> list[tuple[str, Callable[..., Any]]]:
    """The checks ``settings.DOCKERFLOW_CHECKS`` names, imported, with the names they run
    under: a short name of :data:`SHORT_NAMES` as it is, a dotted path's function by its name.

    :raises ImproperlyConfigured: naming the setting, for a value that is not a list of dotted
        paths of callables or short names.
    """
    paths = getattr(settings, "DOCKERFLOW_CHECKS", DEFAULT_CHECKS)
    if isinstance(paths, str) or not isinstance(paths, Iterable):
        raise ImproperlyConfigured(
            f"settings.DOCKERFLOW_CHECKS must be a list of dotted paths, got {paths!r}"
        )
    found = []
    for path in paths:
        if not isinstance(path, str):
            raise ImproperlyConfigured(
                f"settings.DOCKERFLOW_CHECKS must hold dotted paths, got {path!r}"
            )
        try:
            check = import_string(SHORT_NAMES.get(path, path))
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"settings.DOCKERFLOW_CHECKS: cannot import {path!r}: {exc}"
            ) from exc
        if not callable(check):
            raise ImproperlyConfigured(f"settings.DOCKERFLOW_CHECKS: {path!r} is not callable")
        found.append((path if path in SHORT_NAMES else _name(check), check))
    return found


def heartbeat_checks() -> list[tuple[str, Check]]:
    """The ``(name, check)`` pairs of a heartbeat run, each under its function's name (a short
    name of ``DOCKERFLOW_CHECKS`` under that name).

    First the checks of ``DOCKERFLOW_CHECKS``, in their order, then Django's system checks
    (with the deployment checks unless ``DEBUG``, as ``manage.py check --deploy``) in the order
    of their dotted paths: Django keeps them in a set, and the order decides which of two
    functions of the same name keeps it, the other being named by its dotted path.
    """
    silenced = frozenset(settings.SILENCED_SYSTEM_CHECKS)
    listed = listed_checks()
    listed_functions = [check for _, check in listed]
    system = [
        check
        for check in registry.get_checks(include_deployment_checks=not settings.DEBUG)
        if check not in listed_functions
    ]
    system.sort(key=_dotted_path)
    calls = [(name, check, _takes_arguments(check)) for name, check in listed]
    calls += [(_name(check), check, True) for check in system]
    pairs: list[tuple[str, Check]] = []
    names: set[str] = set()
    for name, check, django_style in calls:
        if name in names:
            name = _dotted_path(check)
        names.add(name)
        pairs.append((name, _heartbeat_check(check, django_style, silenced)))
    return pairs


def _name(check: Callable[..., Any]) -> str:
    return getattr(check, "__name__", None) or type(check).__name__


def _dotted_path(check: Callable[..., Any]) -> str:
    module = getattr(check, "__module__", None) or type(check).__module__
    return f"{module}.{getattr(check, '__qualname__', None) or _name(check)}"


def _takes_arguments(check: Callable[..., Any]) -> bool:
    """Whether a listed check is a Django check (``f(app_configs, **kwargs)``) rather than a
    dockerflow-wsgi one (``f()``)."""
    try:
        return bool(inspect.signature(check).parameters)
    except (TypeError, ValueError):
        return True


def _heartbeat_check(
    check: Callable[..., Any], django_style: bool, silenced: frozenset[str]
) -> Check:
    """``check`` as the heartbeat calls a check: no arguments, our messages, connections closed.

    A Django check is called as the ``dockerflow`` package called it, ``check(app_configs=None)``.
    """

    if is_async(check):

        async def run_async() -> Any:
            # An async check cannot use Django's synchronous database connections: none to close.
            result = check(app_configs=None) if django_style else check()
            return _translated(await result, silenced)

        return run_async

    def run() -> Any:
        with closing_new_connections():
            result = check(app_configs=None) if django_style else check()
        return _translated(result, silenced)

    return run


def _translated(result: Any, silenced: frozenset[str]) -> Any:
    """Django's messages as ours (same level, id, text, hint), without the silenced ids.

    Anything but a list is returned as it is, for the check boundary to report.
    """
    if not isinstance(result, (list, tuple)):
        return result
    return [_message(message) for message in result if getattr(message, "id", None) not in silenced]


def _message(message: Any) -> Any:
    if not isinstance(message, django_checks.CheckMessage):
        return message
    return CheckMessage(
        message.msg,
        level=message.level,
        # Django's texts may be lazy translations: text now, where the settings are at hand.
        hint=None if message.hint is None else str(message.hint),
        obj=message.obj,
        id=message.id,
    )
