"""The built-in Django checks: every database answers, every migration is applied, every
cache keeps a key, the default storage keeps a file.

Django checks (``check(app_configs, **kwargs)`` returning Django's messages). The database and
migrations checks have the names and ids of the ``dockerflow`` package's, so the heartbeat's
``checks`` keys and the ids that alerts and ``SILENCED_SYSTEM_CHECKS`` use stay the same; they
are what ``settings.DOCKERFLOW_CHECKS`` lists by default. The cache and storage checks are what
``DOCKERFLOW_CHECKS`` names ``cache`` and ``storage``, as django-health-check users know them.
Each uses a connection of its own, bounded by the check's timeout and closed when it returns:
they run on the middleware's threads, which Django never cleans up after, and a database or
cache that does not answer must not hold those threads.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import urlsplit

from django.conf import DEFAULT_STORAGE_ALIAS
from django.core import checks
from django.core.cache import CacheHandler, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections
from django.db.migrations.loader import MigrationLoader
from django.utils.module_loading import import_string

from .. import health
from ..checks.time_limit import WAIT_SHARE, running_time_limit
from ..redact import describe_exception, mask_secrets
from .connections import checking_connection
from .options import configured_check_timeout

__all__ = [
    "LISTED_MIGRATIONS",
    "check_cache",
    "check_database_connected",
    "check_migrations_applied",
    "check_storage",
]

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


def _wait(check_name: str) -> float:
    """How long a check waits on its service: four fifths of its time limit, the runner's, or
    the configured one when it runs outside the middleware."""
    limit = running_time_limit()
    return WAIT_SHARE * (configured_check_timeout(check_name) if limit is None else limit)


def _cache_secrets(params: Mapping[str, Any]) -> list[str]:
    """The passwords of a cache's settings: in its ``LOCATION`` URLs, and ``OPTIONS``'."""
    location = params.get("LOCATION", "")
    servers = (
        location
        if isinstance(location, (list, tuple))
        else str(location).replace(",", ";").split(";")
    )
    found = []
    for server in servers:
        try:
            password = urlsplit(str(server)).password
        except ValueError:
            continue
        if password:
            found.append(password)
    options = params.get("OPTIONS") or {}
    password = options.get("password") if isinstance(options, Mapping) else None
    if isinstance(password, str) and password:
        found.append(password)
    return found


def _bounded_cache_params(params: Mapping[str, Any], wait: float) -> dict[str, Any]:
    """``params`` of a cache with, for Django's Redis backend, socket timeouts of ``wait``
    seconds unless its ``OPTIONS`` give closer ones: a Redis that accepts and never answers is
    then an E230 naming the alias, not the whole check's E102. Other backends keep theirs."""
    bounded = dict(params)
    try:
        backend = import_string(params["BACKEND"])
    except ImportError:
        return bounded  # Django says what is wrong with it, as for the project
    if isinstance(backend, type) and issubclass(backend, RedisCache):
        options = dict(params.get("OPTIONS") or {})
        for name in ("socket_connect_timeout", "socket_timeout"):
            given = options.get(name)
            if not (isinstance(given, (int, float)) and 0 < given <= wait):
                options[name] = wait
        bounded["OPTIONS"] = options
    return bounded


def _release(cache: BaseCache) -> None:
    """Close a cache backend made for one check. Django's Redis backend keeps its connection
    pools for the thread's next request (its ``close()`` does nothing): this one has no next
    request, so its pools are disconnected too."""
    cache.close()
    client = cache.__dict__.get("_cache")
    for pool in getattr(client, "_pools", {}).values():
        pool.disconnect()


def _cache_errors(
    alias: str, params: Mapping[str, Any], deadline: float
) -> list[checks.CheckMessage]:
    secrets = _cache_secrets(params)
    named = f"Cache {alias!r} ({str(params.get('BACKEND', '')).rsplit('.', 1)[-1]})"
    wait = deadline - time.monotonic()
    if wait <= 0:
        return [
            checks.Error(
                f"{named} not checked: the check's time ran out on the caches before it",
                id=health.ERROR_CACHE_FAILED,
            )
        ]
    key = f"dockerflow-health-check-{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    cache = None
    step = "be made"
    try:
        cache = CacheHandler({alias: _bounded_cache_params(params, wait)}).create_connection(alias)
        if isinstance(cache, DummyCache):
            return []  # caches nothing by design: no key to read back
        step = "set a key"
        cache.set(key, value, timeout=60)
        step = "get the key back"
        found = cache.get(key)
        step = "delete the key"
        cache.delete(key)
    except Exception as exc:  # any backend's own errors: one alias failing hides no other
        return [
            checks.Error(
                f"{named} failed to {step}: {mask_secrets(describe_exception(exc), *secrets)}",
                id=health.ERROR_CACHE_FAILED,
            )
        ]
    finally:
        if cache is not None:
            _release(cache)
    if found != value:
        return [
            checks.Error(
                f"{named} did not give back the value it was given"
                + (" (nothing)" if found is None else ""),
                id=health.ERROR_CACHE_FAILED,
            )
        ]
    return []


def check_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Set, get and delete a random key in every cache of ``settings.CACHES``.

    One E230 for each alias that fails, naming it and the step that failed (an alias with
    ``DummyCache``, which keeps nothing by design, is left out). Each alias is checked with a
    backend made for the check and closed after it; Django's Redis backend gets socket timeouts
    within the check's timeout, unless its ``OPTIONS`` give closer ones. No message contains a
    password from ``LOCATION`` or ``OPTIONS``. ``DOCKERFLOW_CHECKS`` names it ``cache``.
    """
    deadline = time.monotonic() + _wait("cache")
    return [
        message
        for alias, params in caches.settings.items()
        for message in _cache_errors(alias, params, deadline)
    ]


def check_storage(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Save a small file in the default storage (``STORAGES["default"]``), read it back and
    delete it.

    E231 when a step fails or the file does not read back the same, naming the storage's class
    and the step. The file is named ``dockerflow-health-check-<random>.txt``, at the top of the
    storage, and deleted whatever happens. ``DOCKERFLOW_CHECKS`` names it ``storage``.
    """
    content = f"dockerflow-wsgi health check {uuid.uuid4().hex}\n".encode()
    kind = "'default'"
    saved: Optional[str] = None
    step = "be made"
    try:
        storage = storages[DEFAULT_STORAGE_ALIAS]
        kind = type(storage).__name__
        step = "save a file"
        saved = storage.save(
            f"dockerflow-health-check-{uuid.uuid4().hex}.txt", ContentFile(content)
        )
        step = "read the file back"
        with storage.open(saved, "rb") as file:
            found = file.read()
        step = "delete the file"
        storage.delete(saved)
        saved = None
    except Exception as exc:  # any storage's own errors (OSError, a cloud client's)
        return [
            checks.Error(
                f"Storage {kind} failed to {step}: {describe_exception(exc)}",
                id=health.ERROR_STORAGE_FAILED,
            )
        ]
    finally:
        if saved is not None:
            # What a failed step left; that step's error is the one reported.
            with contextlib.suppress(Exception):
                storage.delete(saved)
    if found != content:
        return [
            checks.Error(
                f"Storage {kind} did not read back the file it saved",
                id=health.ERROR_STORAGE_FAILED,
            )
        ]
    return []
