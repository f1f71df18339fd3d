"""Options of the middleware from Django's settings.

Each option is read from ``settings`` under its environment variable's name
(``settings.DOCKERFLOW_CHECK_TIMEOUT``, ``settings.REDIS_URL``), between the keyword and the
environment; ``DATABASE_URL`` registers no check here, the project's ``DATABASES`` being checked
already. Two defaults are the ``dockerflow`` package's: ``version.json`` is looked for in
``settings.BASE_DIR``, and ``settings.DOCKERFLOW_VERSION_CALLBACK`` names the version callback.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from ..config import Config, FrameworkSettings

__all__ = ["configured_check_timeout", "settings_options", "settings_source"]


class _SettingsValues:
    """``settings`` with the ``get(name)`` that :class:`FrameworkSettings` reads with."""

    def get(self, name: str) -> Any:
        return getattr(settings, name, None)


def settings_source() -> FrameworkSettings:
    """Django's settings as the options' source; a bad value is named ``settings.NAME``."""
    base_dir = getattr(settings, "BASE_DIR", None)
    return FrameworkSettings(
        _SettingsValues(),
        "settings.{}",
        default_version_path=(
            os.fspath(base_dir) if isinstance(base_dir, (str, os.PathLike)) else None
        ),
        # The app checks every alias of DATABASES: DATABASE_URL, dj-database-url's in most
        # projects, would check one of them again, through SQLAlchemy.
        covered_builtins=frozenset({"database"}),
    )


def settings_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``version_callback`` from ``settings.DOCKERFLOW_VERSION_CALLBACK``
    (a dotted path or a callable) when the keyword does not give one.

    :raises ValueError: naming the setting, when its value cannot be imported or called.
    """
    value = getattr(settings, "DOCKERFLOW_VERSION_CALLBACK", None)
    if options.get("version_callback") is not None or value is None:
        return options
    name = "settings.DOCKERFLOW_VERSION_CALLBACK"
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ValueError(f"{name}: cannot import {value!r}: {exc}") from exc
    if not callable(value):
        raise ValueError(f"{name} must be a callable or its dotted path, got {value!r}")
    return {**options, "version_callback": value}


def configured_check_timeout(check_name: str) -> float:
    """The seconds the heartbeat gives the check ``check_name``, as settings and the
    environment say: its ``DOCKERFLOW_CHECK_TIMEOUTS`` entry, else ``DOCKERFLOW_CHECK_TIMEOUT``,
    else 5.

    For the built-in checks, which are plain Django checks and do not know the middleware
    running them, to bound their own waits; read at each call, as the checks read ``DATABASES``.
    A timeout given as a keyword of :func:`~dockerflow_wsgi.django.get_wsgi_application` is not
    seen here: the check then gives up after the configured one.
    """
    config = Config.from_options(framework=settings_source())
    return config.check_timeouts.get(check_name, config.check_timeout)
