"""The built-in Django checks: every database answers, every migration is applied.

Django checks (``check(app_configs, **kwargs)`` returning Django's messages) under the names
and ids of the ``dockerflow`` package's, so the heartbeat's ``checks`` keys and the ids that
alerts and ``SILENCED_SYSTEM_CHECKS`` use stay the same. They are what
``settings.DOCKERFLOW_CHECKS`` lists by default, and they close every connection they open:
they run on the middleware's threads, which Django never cleans up after.
"""

from __future__ import annotations

from typing import Any, Optional

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections
from django.db.migrations.loader import MigrationLoader

from .. import health
from ..redact import mask_secrets
from .connections import closing_new_connections

__all__ = ["check_database_connected", "check_migrations_applied"]


def _detail(exc: BaseException, alias: str) -> str:
    """The first line of an error's text, without the database's password."""
    lines = str(exc).strip().splitlines()
    password = connections.settings.get(alias, {}).get("PASSWORD")
    return mask_secrets(lines[0] if lines else type(exc).__name__, password)


def _database_errors(alias: str) -> list[checks.CheckMessage]:
    try:
        connection = connections[alias]
        connection.ensure_connection()
    except OperationalError as exc:
        return [
            checks.Error(
                f"Could not connect to database {alias!r}: {_detail(exc, alias)}",
                id=health.ERROR_CANNOT_CONNECT_DATABASE,
            )
        ]
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                f"Database {alias!r} misconfigured: {_detail(exc, alias)}",
                id=health.ERROR_MISCONFIGURED_DATABASE,
            )
        ]
    try:
        with connection.cursor() as cursor:
            # Oracle has no bare SELECT; its backend knows the suffix.
            cursor.execute("SELECT 1" + connection.features.bare_select_suffix)
    except DatabaseError as exc:
        return [
            checks.Error(
                f"Database {alias!r} connection is not usable: {_detail(exc, alias)}",
                id=health.ERROR_UNUSABLE_DATABASE,
            )
        ]
    return []


def check_database_connected(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Connect to every database in ``settings.DATABASES`` and run ``SELECT 1`` on it.

    E001 when a database cannot be reached, E003 when its settings are wrong, E002 when it
    answers the connection but not the query; each message names the database's alias.
    """
    with closing_new_connections():
        return [message for alias in connections for message in _database_errors(alias)]


def check_migrations_applied(
    app_configs: Optional[list[Any]] = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A Warning W001 for every migration not applied to the default database.

    Warnings, not Errors: a service whose migrations are still running is healthy, and an
    Error would stop ``migrate`` itself where this check is registered with Django. Only the
    default database, as ``runserver``'s reminder does: other databases may be migrated apart
    or not at all. Info I001 when the database cannot tell.
    """
    with closing_new_connections():
        try:
            loader = MigrationLoader(connections[DEFAULT_DB_ALIAS], ignore_no_migrations=True)
        except (ImproperlyConfigured, DatabaseError) as exc:
            return [
                checks.Info(
                    "Can't connect to database to check migrations: "
                    + _detail(exc, DEFAULT_DB_ALIAS),
                    id=health.INFO_CANT_CHECK_MIGRATIONS,
                )
            ]
    labels = {config.label for config in app_configs} if app_configs else loader.migrated_apps
    return [
        checks.Warning(
            f"Unapplied migration {app_label}.{name}",
            hint="run manage.py migrate",
            id=health.WARNING_UNAPPLIED_MIGRATION,
        )
        for app_label, name in sorted(loader.graph.nodes)
        if app_label in labels and (app_label, name) not in loader.applied_migrations
    ]
