"""The built-in Django checks: every database answers, every migration is applied.

Django checks (``check(app_configs, **kwargs)`` returning Django's messages) under the names
and ids of the ``dockerflow`` package's, so the heartbeat's ``checks`` keys and the ids that
alerts and ``SILENCED_SYSTEM_CHECKS`` use stay the same. They are what
``settings.DOCKERFLOW_CHECKS`` lists by default. Each uses a connection of its own, bounded by
the check's timeout and closed when it returns: they run on the middleware's threads, which
Django never cleans up after, and a database that does not answer must not hold those threads.
"""

from __future__ import annotations

from typing import Any, Optional

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections
from django.db.migrations.loader import MigrationLoader

from .. import health
from ..redact import mask_secrets
from .connections import checking_connection
from .options import configured_check_timeout

__all__ = ["LISTED_MIGRATIONS", "check_database_connected", "check_migrations_applied"]

#: How many unapplied migrations W001 names; the others are counted.
LISTED_MIGRATIONS = 10


def _detail(exc: BaseException, alias: str) -> str:
    """The first line of an error's text, without the database's password."""
    lines = str(exc).strip().splitlines()
    password = connections.settings.get(alias, {}).get("PASSWORD")
    return mask_secrets(lines[0] if lines else type(exc).__name__, password)


def _database_errors(alias: str, timeout: float) -> list[checks.CheckMessage]:
    try:
        with checking_connection(alias, timeout) as connection:
            return _connected_errors(connection, alias)
    except ImproperlyConfigured as exc:
        # The backend cannot be loaded, or its settings cannot work (no NAME, for one).
        return [_misconfigured(exc, alias)]


def _misconfigured(exc: ImproperlyConfigured, alias: str) -> checks.CheckMessage:
    return checks.Error(
        f"Database {alias!r} misconfigured: {_detail(exc, alias)}",
        id=health.ERROR_MISCONFIGURED_DATABASE,
    )


def _connected_errors(connection: Any, alias: str) -> list[checks.CheckMessage]:
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        return [
            checks.Error(
                f"Could not connect to database {alias!r}: {_detail(exc, alias)}",
                id=health.ERROR_CANNOT_CONNECT_DATABASE,
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
    answers the connection but not the query; each message names the database's alias. A
    database that does not answer is given up a second under the check's timeout
    (``DOCKERFLOW_CHECK_TIMEOUTS`` or ``DOCKERFLOW_CHECK_TIMEOUT``, from settings or the
    environment), after libpq's 2 seconds at the least.
    """
    timeout = configured_check_timeout("check_database_connected")
    return [message for alias in connections for message in _database_errors(alias, timeout)]


def check_migrations_applied(
    app_configs: Optional[list[Any]] = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """One Warning W001 naming the migrations not applied to the default database.

    Warnings, not Errors: a service whose migrations are still running is healthy, and an
    Error would stop ``migrate`` itself where this check is registered with Django. Only the
    default database, as ``runserver``'s reminder does: other databases may be migrated apart
    or not at all. One message, not one per migration: the heartbeat keeps one message per id,
    so the others would be lost; it counts them and names the first
    :data:`LISTED_MIGRATIONS`. Info I001 when the database cannot tell, given up after the
    check's timeout as :func:`check_database_connected` does.
    """
    timeout = configured_check_timeout("check_migrations_applied")
    try:
        with checking_connection(DEFAULT_DB_ALIAS, timeout) as connection:
            loader = MigrationLoader(connection, ignore_no_migrations=True)
    except (ImproperlyConfigured, DatabaseError) as exc:
        return [
            checks.Info(
                "Can't connect to database to check migrations: " + _detail(exc, DEFAULT_DB_ALIAS),
                id=health.INFO_CANT_CHECK_MIGRATIONS,
            )
        ]
    labels = {config.label for config in app_configs} if app_configs else loader.migrated_apps
    unapplied = [
        f"{app_label}.{name}"
        for app_label, name in sorted(loader.graph.nodes)
        if app_label in labels and (app_label, name) not in loader.applied_migrations
    ]
    if not unapplied:
        return []
    return [
        checks.Warning(
            _unapplied_text(unapplied),
            hint="run manage.py migrate",
            id=health.WARNING_UNAPPLIED_MIGRATION,
        )
    ]


def _unapplied_text(names: list[str]) -> str:
    """``Unapplied migration a.0001`` for one, as the ``dockerflow`` package wrote it; else
    ``18 unapplied migrations: a.0001, ... and 8 more``, short enough for a log line."""
    if len(names) == 1:
        return f"Unapplied migration {names[0]}"
    listed = ", ".join(names[:LISTED_MIGRATIONS])
    rest = len(names) - LISTED_MIGRATIONS
    more = f" and {rest} more" if rest > 0 else ""
    return f"{len(names)} unapplied migrations: {listed}{more}"
