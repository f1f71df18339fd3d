"""The migrations check: has the database every migration the code ships? (``[alembic]``)"""

from __future__ import annotations

import logging
import threading
import weakref
from contextvars import ContextVar
from typing import Union

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .. import health
from ..redact import mask_secrets
from .messages import CheckMessage, Info, Warning
from .sqlalchemy import first_line, url_secrets

__all__ = ["check_migrations_applied"]

# Alembic logs two INFO lines each time a migration context is made. A heartbeat makes one
# every run; those lines would be noise in the service's log, so they are dropped while (and
# only while) this check runs.
_checking = ContextVar("dockerflow_checking_migrations", default=False)


def _not_from_this_check(record: logging.LogRecord) -> bool:
    return not (_checking.get() and record.levelno <= logging.INFO)


logging.getLogger("alembic.runtime.migration").addFilter(_not_from_this_check)

# The migration scripts do not change while the process runs. Reading them once per config
# also keeps ScriptDirectory.from_config from prepending to sys.path at every heartbeat.
_heads_by_config: weakref.WeakKeyDictionary[Config, frozenset[str]] = weakref.WeakKeyDictionary()
_configs_by_path: dict[str, Config] = {}
_cache_lock = threading.Lock()


def _config(alembic_config: Union[Config, str]) -> Config:
    if isinstance(alembic_config, Config):
        return alembic_config
    with _cache_lock:
        if alembic_config not in _configs_by_path:
            _configs_by_path[alembic_config] = Config(alembic_config)
        return _configs_by_path[alembic_config]


def _expected_heads(config: Config) -> frozenset[str]:
    with _cache_lock:
        heads = _heads_by_config.get(config)
        if heads is None:
            heads = frozenset(ScriptDirectory.from_config(config).get_heads())
            _heads_by_config[config] = heads
        return heads


def check_migrations_applied(
    engine: Engine, alembic_config: Union[Config, str]
) -> list[CheckMessage]:
    """Compare the database's current heads with the heads of the script directory.

    Unapplied migrations are a Warning (W001): the service is still healthy, but a
    deployment step was probably missed. When the database cannot be asked, Info (I001): the
    database check reports the outage itself.

    :param alembic_config: an :class:`alembic.config.Config` or the path to ``alembic.ini``.
    """
    try:
        expected = _expected_heads(_config(alembic_config))
    except Exception as exc:
        return [
            Info(
                f"Cannot read the migration scripts: {type(exc).__name__}: {exc}",
                id=health.INFO_CANT_CHECK_MIGRATIONS,
            )
        ]
    token = _checking.set(True)
    try:
        with engine.connect() as connection:
            applied = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        detail = mask_secrets(first_line(exc), *url_secrets(engine))
        return [Info(f"Cannot check migrations: {detail}", id=health.INFO_CANT_CHECK_MIGRATIONS)]
    finally:
        _checking.reset(token)
    if applied != expected:
        return [
            Warning(
                f"Unapplied migrations found: database at {_revisions(applied)}, "
                f"code at {_revisions(expected)}",
                hint="run the migrations (alembic upgrade head)",
                id=health.WARNING_UNAPPLIED_MIGRATION,
            )
        ]
    return []


def _revisions(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) if revisions else "no revision"
