"""The migrations check: has the database every migration the code ships? (``[alembic]``)"""

from __future__ import annotations

from typing import Union

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..redact import scrub
from .messages import CheckMessage, Info, Warning

__all__ = ["check_migrations_applied"]


def check_migrations_applied(
    engine: Engine, alembic_config: Union[Config, str]
) -> list[CheckMessage]:
    """Compare the database's current heads with the heads of the script directory.

    Unapplied migrations are a Warning (W001): the service is still healthy, but a
    deployment step was probably missed. When the database cannot be asked, Info (I001): the
    database check reports the outage itself.

    :param alembic_config: an :class:`alembic.config.Config` or the path to ``alembic.ini``.
    """
    config = alembic_config if isinstance(alembic_config, Config) else Config(alembic_config)
    try:
        expected = set(ScriptDirectory.from_config(config).get_heads())
    except Exception as exc:
        return [
            Info(
                f"Cannot read the migration scripts: {type(exc).__name__}: {exc}",
                id="dockerflow.health.I001",
            )
        ]
    try:
        with engine.connect() as connection:
            applied = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        secret = engine.url.password if isinstance(engine.url.password, str) else None
        detail = scrub(str(exc).strip().splitlines()[0], secret)
        return [Info(f"Cannot check migrations: {detail}", id="dockerflow.health.I001")]
    if applied != expected:
        return [
            Warning(
                f"Unapplied migrations found: database at {_revisions(applied)}, "
                f"code at {_revisions(expected)}",
                hint="run the migrations (alembic upgrade head)",
                id="dockerflow.health.W001",
            )
        ]
    return []


def _revisions(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) if revisions else "no revision"
