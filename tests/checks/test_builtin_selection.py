"""Which built-ins ``DATABASE_URL``, ``REDIS_URL``, ``ALEMBIC_CONFIG`` and ``AMQP_URL``
register, as ``DOCKERFLOW_BUILTIN_CHECKS`` says, and under the Django integration's settings
source.

Nothing here connects: engines and clients are made without connecting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.config import FrameworkSettings

ALL = [
    "check_database_connected",
    "check_redis_connected",
    "check_migrations_applied",
    "check_amqp_connected",
]


def app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


@pytest.fixture
def alembic_ini(tmp_path: Path) -> str:
    path = tmp_path / "alembic.ini"
    path.write_text("[alembic]\nscript_location = migrations\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def every_variable(monkeypatch: pytest.MonkeyPatch, alembic_ini: str) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("ALEMBIC_CONFIG", alembic_ini)
    monkeypatch.setenv("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def builtin_names(middleware: DockerflowMiddleware) -> list[str]:
    return [name for name, _ in middleware.current_checks() if name in ALL]


@pytest.mark.parametrize(
    ("selection", "registered"),
    [
        (None, ALL),
        ("  ", ALL),  # blank is unset
        ("database,redis,migrations,amqp", ALL),
        ("none", []),
        ("redis", ["check_redis_connected"]),
        (" Database , REDIS ", ["check_database_connected", "check_redis_connected"]),
        # The migrations check uses DATABASE_URL's engine without the database check.
        ("migrations", ["check_migrations_applied"]),
        ("amqp", ["check_amqp_connected"]),
    ],
)
def test_the_variable_says_which_builtins_the_urls_register(
    every_variable: None,
    monkeypatch: pytest.MonkeyPatch,
    selection: Optional[str],
    registered: list[str],
) -> None:
    if selection is not None:
        monkeypatch.setenv("DOCKERFLOW_BUILTIN_CHECKS", selection)

    assert builtin_names(DockerflowMiddleware(app)) == registered


@pytest.mark.parametrize(
    ("selection", "problem"),
    [
        ("database,redis,cache", "'cache'"),
        ("databases", "'databases'"),
        ("none,redis", "'none' alone"),
        ("redis,", "''"),
    ],
)
def test_an_unknown_word_stops_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, selection: str, problem: str
) -> None:
    monkeypatch.setenv("DOCKERFLOW_BUILTIN_CHECKS", selection)

    with pytest.raises(ValueError, match="DOCKERFLOW_BUILTIN_CHECKS") as raised:
        DockerflowMiddleware(app)

    assert problem in str(raised.value)
    assert "database, redis, migrations, amqp or none" in str(raised.value)


def test_a_url_left_out_is_not_even_made_into_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``DATABASE_URL`` kept for the framework's own use needs no SQLAlchemy driver."""
    monkeypatch.setenv("DATABASE_URL", "mysql+mysqldb://app@db.internal/app")  # not installed
    monkeypatch.setenv("DOCKERFLOW_BUILTIN_CHECKS", "none")

    assert builtin_names(DockerflowMiddleware(app)) == []

    monkeypatch.delenv("DOCKERFLOW_BUILTIN_CHECKS")
    with pytest.raises(ValueError, match=r"DATABASE_URL.*driver is not installed"):
        DockerflowMiddleware(app)


def test_a_keyword_registers_its_builtin_whatever_the_variable_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKERFLOW_BUILTIN_CHECKS", "none")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")

    middleware = DockerflowMiddleware(app, db="sqlite://")

    assert builtin_names(middleware) == ["check_database_connected"]


class Values(dict):
    """A framework's configuration (``app.config``): ``get(name)``."""


def framework(**values: Any) -> FrameworkSettings:
    return FrameworkSettings(Values(values), "app.config[{!r}]")


def test_the_framework_configuration_may_select_too(every_variable: None) -> None:
    middleware = DockerflowMiddleware.with_framework_settings(
        app, framework(DOCKERFLOW_BUILTIN_CHECKS=["redis", "migrations"])
    )

    assert builtin_names(middleware) == ["check_redis_connected", "check_migrations_applied"]


def test_a_bad_framework_value_is_named_by_its_key(every_variable: None) -> None:
    with pytest.raises(ValueError, match=r"app.config\['DOCKERFLOW_BUILTIN_CHECKS'\].*'sql'"):
        DockerflowMiddleware.with_framework_settings(
            app, framework(DOCKERFLOW_BUILTIN_CHECKS="sql")
        )


def test_a_framework_that_checks_its_databases_takes_no_database_url(
    every_variable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Django's: its DATABASES are checked already, DATABASE_URL is dj-database-url's."""
    monkeypatch.setenv("DOCKERFLOW_BUILTIN_CHECKS", "database,redis")
    django_like = FrameworkSettings(
        Values(DATABASE_URL="sqlite://"), "settings.{}", covered_builtins=frozenset({"database"})
    )

    middleware = DockerflowMiddleware.with_framework_settings(app, django_like)

    assert builtin_names(middleware) == ["check_redis_connected"]


def _asgi(**options: Any) -> Any:
    from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    return DockerflowASGIMiddleware(app, **options)


def _flask(**options: Any) -> Any:
    from flask import Flask

    from dockerflow_wsgi.flask import Dockerflow

    return Dockerflow(Flask(__name__), **options)


@pytest.mark.parametrize(
    "build",
    [lambda **options: DockerflowMiddleware(lambda e, s: [], **options), _asgi, _flask],
    ids=["wsgi", "asgi", "flask"],
)
def test_no_adapter_takes_the_selection_as_a_keyword(build: Any) -> None:
    """DESIGN gives DOCKERFLOW_BUILTIN_CHECKS no keyword: a keyword of db, redis or
    alembic_config is the code asking for its built-in already."""
    with pytest.raises(TypeError, match="builtin_checks"):
        build(builtin_checks="none")
