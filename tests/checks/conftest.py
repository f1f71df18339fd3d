"""Fixtures of the built-in checks' tests: the real servers (from ``services``), and no
``DATABASE_URL`` / ``REDIS_URL`` / ``ALEMBIC_CONFIG`` / ``AMQP_URL`` from the developer's
environment.
"""

from __future__ import annotations

import pytest
from services import (  # noqa: F401 - fixtures, re-exported for pytest
    _unused_port,
    amqp_url,
    mariadb_url,
    postgres_url,
    postgresql_server,
    rabbitmq_server,
    redis_server,
    redis_url,
    servers,
    silent_port,
)


@pytest.fixture(autouse=True)
def _no_builtin_check_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ``DATABASE_URL`` must not add checks to the middlewares built here."""
    for name in ("DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", "AMQP_URL"):
        monkeypatch.delenv(name, raising=False)
