"""The database check: can we connect and run ``SELECT 1``? (``dockerflow-wsgi[sqlalchemy]``)"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .. import health
from ..redact import SECRET_PARAMETERS, mask_secrets
from .messages import CheckMessage, Error

__all__ = ["check_database_connected", "engine_from_url", "first_line", "url_secrets"]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, or its type when it has no text (a driver's
    error may have none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def url_secrets(engine: Engine) -> list[str]:
    """The password of ``engine``'s URL, and the values of its query's secret parameters
    (``?password=`` is honoured by psycopg, ``?passwd=`` by PyMySQL)."""
    url = engine.url
    found = [url.password] if isinstance(url.password, str) else []
    for name, value in url.query.items():
        if name.lower() in SECRET_PARAMETERS:
            found.extend([value] if isinstance(value, str) else value)
    return found


def check_database_connected(engine: Engine) -> list[CheckMessage]:
    """Connect with ``engine`` and run ``SELECT 1``.

    E008 when the database driver reports an error (down, refusing, bad credentials), E009
    for any other SQLAlchemy error. Messages never contain the URL's password.
    """
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        detail = mask_secrets(first_line(exc.orig or exc), *url_secrets(engine))
        return [
            Error(
                f"DB-API error on {_where(engine)}: {detail}",
                id=health.ERROR_DB_API_EXCEPTION,
            )
        ]
    except SQLAlchemyError as exc:
        detail = mask_secrets(first_line(exc), *url_secrets(engine))
        return [
            Error(
                f"Database error on {_where(engine)}: {detail}",
                id=health.ERROR_SQLALCHEMY_EXCEPTION,
            )
        ]
    return []


def _where(engine: Engine) -> str:
    # SQLAlchemy hides the password of user:password@, not one given in the query string.
    return mask_secrets(engine.url.render_as_string(hide_password=True), *url_secrets(engine))


def engine_from_url(url: Any, connect_timeout: float) -> Engine:
    """Create the engine the database check uses, once, from ``DATABASE_URL`` or ``db=``.

    Connections give up after ``connect_timeout`` seconds (where the driver allows it), the
    pool is small (heartbeats are single-flight) and pre-pinged, so a database that was
    restarted is seen as up again on the next heartbeat rather than after one failure.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgres":
        # Heroku's and dj-database-url's spelling, which SQLAlchemy 1.4 stopped reading.
        parsed = parsed.set(drivername="postgresql")
    timeout = max(1, math.ceil(connect_timeout))
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = timeout
    if parsed.get_backend_name() == "sqlite":
        return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    return create_engine(
        parsed,
        connect_args=connect_args,
        pool_size=2,
        max_overflow=2,
        pool_pre_ping=True,
        pool_timeout=timeout,
    )
