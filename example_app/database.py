"""Where the service keeps its data: the database URL, and migrations for the SQLite default."""

from __future__ import annotations

import os
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, make_url

HERE = os.path.dirname(os.path.abspath(__file__))
#: Without DATABASE_URL the service keeps its data in a SQLite file beside this module.
DEFAULT_DATABASE_URL = f"sqlite:///{os.path.join(HERE, 'example.sqlite3')}"
#: The Alembic project: ``migrations/``, also read by the heartbeat's migrations check.
ALEMBIC_INI = os.path.join(HERE, "alembic.ini")


def database_url() -> str:
    """``DATABASE_URL``, or the SQLite file beside this module when it is unset or empty."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def upgrade_sqlite(url: str) -> None:
    """Bring a SQLite database to the latest migration (``alembic upgrade head``).

    This is what lets ``make run`` work on a fresh clone with no setup. A real deployment
    runs its migrations once per release, as a step of its own (``alembic upgrade head`` in
    this directory) before the new code serves; the app then only checks them, through the
    heartbeat's migrations check.

    Every worker process calls this while importing the app, at the same time, so the whole
    upgrade runs in one transaction holding SQLite's write lock (``BEGIN IMMEDIATE``; SQLite
    DDL is transactional): the first worker migrates, the others wait for the lock, then find
    nothing left to do.
    """
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would begin (and commit around DDL) on its own; SQLAlchemy begins instead.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _take_write_lock(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    config = Config(ALEMBIC_INI)
    try:
        with engine.begin() as connection:
            # migrations/env.py runs on this connection, inside this transaction.
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
