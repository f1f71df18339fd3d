"""Alembic's entry point for the example's migrations, run by two kinds of caller.

* The app, starting on SQLite (``database.upgrade_sqlite``): it hands over its connection,
  in a transaction it owns, as ``config.attributes["connection"]``, and has configured
  logging already.
* The ``alembic`` command (``alembic upgrade head``, a real deployment's release step): a
  process of its own, which connects to ``DATABASE_URL`` (the app's SQLite default when it is
  unset) and logs the way the app does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

config = context.config


def run_migrations(connection: Connection, target_metadata: object = None) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_from_command_line() -> None:
    # The alembic command may run from any directory; the example's modules are one level up.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from database import database_url
    from logging_config import configure_logging
    from models import Base

    if context.is_offline_mode():
        # The SQL script goes to stdout; log lines there would corrupt it.
        context.configure(url=database_url(), target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    configure_logging()
    engine = create_engine(database_url())
    try:
        with engine.connect() as connection:
            run_migrations(connection, Base.metadata)
    finally:
        engine.dispose()


app_connection = config.attributes.get("connection")
if app_connection is None:
    run_from_command_line()
else:
    run_migrations(app_connection)
