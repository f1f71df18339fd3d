"""The built-in checks a middleware registers from its options or the environment.

Imports of SQLAlchemy, redis-py, Alembic and kombu happen here only when the matching option
is set, so the core stays importable without them.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from ..config import Config
from ..redact import mask_secrets
from .registry import Check

__all__ = ["builtin_checks"]


def _bind(func: Any, *args: Any) -> Check:
    return functools.update_wrapper(functools.partial(func, *args), func)  # type: ignore[return-value]


def _need_extra(option: str, extra: str, exc: ImportError) -> ValueError:
    return ValueError(
        f"{option} is set but {exc.name} is not installed: pip install 'dockerflow-wsgi[{extra}]'"
    )


def _database_engine(db: Any, timeout: float) -> Any:
    try:
        from sqlalchemy.engine import URL, Engine

        from .sqlalchemy import engine_from_url
    except ImportError as exc:
        raise _need_extra("db (DATABASE_URL)", "sqlalchemy", exc) from exc
    if isinstance(db, Engine):
        return db
    if not isinstance(db, (str, URL)):
        raise ValueError(f"db (DATABASE_URL) must be a SQLAlchemy Engine or URL, got {db!r}")
    try:
        return engine_from_url(db, connect_timeout=timeout)
    except ImportError as exc:
        raise ValueError(
            f"db (DATABASE_URL) {mask_secrets(str(db))}: its database driver is not installed "
            f"({exc.name})"
        ) from exc
    except Exception as exc:
        raise ValueError(
            f"db (DATABASE_URL) {mask_secrets(str(db))} is not a usable SQLAlchemy URL: "
            f"{type(exc).__name__}"
        ) from exc


def _redis_client(client: Any, timeout: float) -> Any:
    try:
        from .redis import client_from_url
    except ImportError as exc:
        raise _need_extra("redis (REDIS_URL)", "redis", exc) from exc
    if isinstance(client, str):
        try:
            return client_from_url(client, timeout)
        except ValueError as exc:
            raise ValueError(
                f"redis (REDIS_URL) {mask_secrets(client)} is not a Redis URL such as "
                f"redis://host:6379/0: {exc}"
            ) from exc
    if not callable(getattr(client, "ping", None)):
        raise ValueError(f"redis (REDIS_URL) must be a redis client or URL, got {client!r}")
    return client


def _alembic_config(path: Any) -> Any:
    try:
        from alembic.config import Config as AlembicConfig
    except ImportError as exc:
        raise _need_extra("alembic_config (ALEMBIC_CONFIG)", "alembic", exc) from exc
    if isinstance(path, AlembicConfig):
        return path
    if not os.path.isfile(path):
        raise ValueError(
            f"alembic_config (ALEMBIC_CONFIG) must be the path of alembic.ini, got {path!r}"
        )
    return AlembicConfig(path)


def _amqp_url(url: Any) -> str:
    try:
        from .amqp import check_amqp_connected
    except ImportError as exc:
        raise _need_extra("AMQP_URL", "amqp", exc) from exc
    if not isinstance(url, str):
        raise ValueError(f"AMQP_URL must be a broker URL, got {url!r}")
    try:
        check_amqp_connected.check_arguments(url)  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ValueError(
            f"AMQP_URL {mask_secrets(url)}: its transport's library is not installed ({exc.name})"
        ) from exc
    except ValueError as exc:
        raise ValueError(f"AMQP_URL is not usable: {exc}") from None
    return url


def builtin_checks(config: Config) -> list[tuple[str, Check]]:
    """The database, Redis, migrations and AMQP checks that ``config`` asks for, bound once.

    Only those of :attr:`Config.builtin_checks <dockerflow_wsgi.config.Config>` are made: a
    ``DATABASE_URL`` left out (the one a Django project gives dj-database-url) is not even made
    into an engine, so it needs no SQLAlchemy driver. Engines and clients made from URLs are
    created here, once, with timeouts no longer than the check timeout; an engine or client
    passed in is used as it is. The AMQP check connects anew at each run (and closes), so only
    its URL is checked here.

    :raises ValueError: for a value that cannot work, naming the option and variable.
    """
    wanted = config.builtin_checks
    migrations = config.alembic_config is not None and "migrations" in wanted
    found: list[tuple[str, Check]] = []
    engine = None
    if config.db is not None and ("database" in wanted or migrations):
        # The migrations check reads DATABASE_URL's database without its check, if need be.
        engine = _database_engine(config.db, config.check_timeout)
    if engine is not None and "database" in wanted:
        from .sqlalchemy import check_database_connected

        found.append(("check_database_connected", _bind(check_database_connected, engine)))
    if config.redis is not None and "redis" in wanted:
        client = _redis_client(config.redis, config.check_timeout)
        from .redis import check_redis_connected

        found.append(("check_redis_connected", _bind(check_redis_connected, client)))
    if migrations:
        if engine is None:
            raise ValueError("alembic_config (ALEMBIC_CONFIG) needs db (DATABASE_URL) as well")
        alembic_config = _alembic_config(config.alembic_config)
        from .alembic import check_migrations_applied

        found.append(
            ("check_migrations_applied", _bind(check_migrations_applied, engine, alembic_config))
        )
    if config.amqp_url is not None and "amqp" in wanted:
        url = _amqp_url(config.amqp_url)
        from .amqp import check_amqp_connected

        found.append(("check_amqp_connected", _bind(check_amqp_connected, url)))
    return found
