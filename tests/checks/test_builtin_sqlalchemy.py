"""The database check against real databases: SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import contextlib
import importlib.util
import sqlite3
import time
from typing import Any, Callable
from urllib.parse import unquote

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, event
from sqlalchemy.pool import QueuePool
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.checks import ERROR
from dockerflow_wsgi.checks.sqlalchemy import check_database_connected, engine_from_url

E008 = "dockerflow.health.E008"
E009 = "dockerflow.health.E009"
PASSWORD = "s3cr3t-pw"
CHECK = "check_database_connected"

# Generous: the check must answer within its timeout, with room for a slow machine.
SLACK = 2.0


def heartbeat(middleware: DockerflowMiddleware) -> Any:
    return TestApp(middleware).get("/__heartbeat__", status="*")


def refused_url(scheme: str, port: int, password: str | None = None) -> str:
    user = "app" if password is None else f"app:{password}"
    return f"{scheme}://{user}@127.0.0.1:{port}/test"


# -- check_database_connected ----------------------------------------------------------------


def test_sqlite_file_is_connected(tmp_path: Any) -> None:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'app.db'}", connect_timeout=5)

    assert check_database_connected(engine) == []


def test_sqlite_in_memory_is_connected() -> None:
    engine = engine_from_url("sqlite://", connect_timeout=5)

    assert check_database_connected(engine) == []


@pytest.mark.services
@pytest.mark.parametrize("url_fixture", ["postgres_url", "mariadb_url"])
def test_running_server_is_connected(request: pytest.FixtureRequest, url_fixture: str) -> None:
    engine = engine_from_url(request.getfixturevalue(url_fixture), connect_timeout=5)
    try:
        assert check_database_connected(engine) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_refused_connection_is_one_e008(scheme: str, unused_port: Callable[[], int]) -> None:
    engine = engine_from_url(refused_url(scheme, unused_port()), connect_timeout=2)

    started = time.monotonic()
    messages = check_database_connected(engine)

    assert time.monotonic() - started < 2 + SLACK
    assert [(message.id, message.level) for message in messages] == [(E008, ERROR)]


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "s3cr3t%40pw", "s3:cr3t/pw"],
    ids=["plain", "percent-encoded-at", "colon-and-slash"],
)
@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_e008_never_shows_the_password(
    scheme: str, password: str, unused_port: Callable[[], int]
) -> None:
    engine = engine_from_url(refused_url(scheme, unused_port(), password), connect_timeout=2)

    [message] = check_database_connected(engine)

    assert message.id == E008
    assert password not in message.msg
    assert unquote(password) not in message.msg
    assert "127.0.0.1" in message.msg


@pytest.mark.services
def test_rejected_mariadb_password_is_e008_without_the_password(mariadb_url: str) -> None:
    # MariaDB's root has no password here, so any password is rejected by the server.
    engine = engine_from_url(mariadb_url.replace("root@", f"root:{PASSWORD}@"), connect_timeout=5)

    [message] = check_database_connected(engine)

    assert message.id == E008
    assert "Access denied" in message.msg
    assert PASSWORD not in message.msg


def test_exhausted_pool_is_e009(tmp_path: Any) -> None:
    # The pool's own timeout is a SQLAlchemy error that did not come from the driver.
    engine = create_engine(
        f"sqlite:///{tmp_path / 'app.db'}",
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.1,
    )
    with engine.connect():
        messages = check_database_connected(engine)

    assert [(message.id, message.level) for message in messages] == [(E009, ERROR)]
    assert check_database_connected(engine) == []


@pytest.mark.services
def test_exhausted_pool_of_engine_from_url_is_e009_within_the_timeout(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@")
    engine = engine_from_url(url, connect_timeout=1)
    with contextlib.ExitStack() as held:
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            for _ in range(50):
                held.enter_context(engine.connect())

        started = time.monotonic()
        [message] = check_database_connected(engine)
        elapsed = time.monotonic() - started

    engine.dispose()
    assert message.id == E009
    assert PASSWORD not in message.msg
    assert elapsed < 1 + SLACK


# -- engine_from_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connect_timeout", "expected"),
    [(2, 2), (3.0, 3)],
)
@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_engine_from_url_passes_connect_timeout_to_the_driver(
    scheme: str, connect_timeout: float, expected: int, unused_port: Callable[[], int]
) -> None:
    engine = engine_from_url(refused_url(scheme, unused_port()), connect_timeout=connect_timeout)
    seen = _driver_arguments(engine)

    assert seen["connect_timeout"] == expected


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_sub_second_connect_timeout_still_limits_the_connect(
    scheme: str, unused_port: Callable[[], int]
) -> None:
    # For libpq a connect_timeout of 0 means "wait forever".
    engine = engine_from_url(refused_url(scheme, unused_port()), connect_timeout=0.3)

    assert _driver_arguments(engine)["connect_timeout"] > 0


def _driver_arguments(engine: Any) -> dict[str, Any]:
    """The keyword arguments the engine hands to the driver's ``connect()``."""
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def record(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)

    with pytest.raises(sqlalchemy.exc.OperationalError):
        engine.connect()
    return seen


# -- a server that goes away and comes back --------------------------------------------------


@pytest.mark.services
def test_postgresql_stopped_then_started_with_the_same_engine(
    postgres_url: str, servers: Any, postgresql_server: Any
) -> None:
    engine = engine_from_url(postgres_url, connect_timeout=2)
    assert check_database_connected(engine) == []

    servers.stop(postgresql_server)
    started = time.monotonic()
    messages = check_database_connected(engine)
    elapsed = time.monotonic() - started

    assert [message.id for message in messages] == [E008]
    assert elapsed < 2 + SLACK

    servers.start(postgresql_server)
    # The pooled connection died with the server; the pre-ping replaces it.
    assert check_database_connected(engine) == []
    engine.dispose()


# -- through the middleware ------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("url_fixture", ["postgres_url", "mariadb_url"])
def test_heartbeat_with_db_url(
    request: pytest.FixtureRequest, url_fixture: str, hello_app: Any
) -> None:
    middleware = DockerflowMiddleware(hello_app, db=request.getfixturevalue(url_fixture))

    response = heartbeat(middleware)

    assert response.status_int == 200
    assert response.json == {"status": "ok", "checks": {CHECK: "ok"}, "details": {}}


def test_heartbeat_with_database_url_environment(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")

    response = heartbeat(DockerflowMiddleware(hello_app))

    assert response.status_int == 200
    assert response.json["checks"] == {CHECK: "ok"}


@pytest.mark.services
def test_heartbeat_with_database_url_environment_on_postgresql(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)

    response = heartbeat(DockerflowMiddleware(hello_app))

    assert response.json == {"status": "ok", "checks": {CHECK: "ok"}, "details": {}}


def test_db_keyword_wins_over_database_url(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    hello_app: Any,
    unused_port: Callable[[], int],
) -> None:
    monkeypatch.setenv("DATABASE_URL", refused_url("postgresql+psycopg", unused_port()))

    middleware = DockerflowMiddleware(hello_app, db=f"sqlite:///{tmp_path / 'app.db'}")

    assert heartbeat(middleware).json["checks"] == {CHECK: "ok"}


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_heartbeat_of_unreachable_database_fails_without_the_password(
    scheme: str, hello_app: Any, unused_port: Callable[[], int]
) -> None:
    url = refused_url(scheme, unused_port(), PASSWORD)
    middleware = DockerflowMiddleware(hello_app, db=url, check_timeout=2)

    started = time.monotonic()
    response = heartbeat(middleware)

    assert time.monotonic() - started < 2 + SLACK
    assert response.status_int == 500
    assert response.json["status"] == "error"
    assert response.json["checks"] == {CHECK: "error"}
    assert list(response.json["details"][CHECK]["messages"]) == [E008]
    assert PASSWORD not in response.text


@pytest.mark.services
def test_heartbeat_of_rejected_mariadb_password_hides_it(mariadb_url: str, hello_app: Any) -> None:
    url = mariadb_url.replace("root@", f"root:{PASSWORD}@")

    response = heartbeat(DockerflowMiddleware(hello_app, db=url))

    assert response.status_int == 500
    assert list(response.json["details"][CHECK]["messages"]) == [E008]
    assert PASSWORD not in response.text


def test_db_engine_is_used_as_it_is(tmp_path: Any, hello_app: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    checkouts: list[object] = []
    event.listen(engine, "engine_connect", checkouts.append)

    response = heartbeat(DockerflowMiddleware(hello_app, db=engine))

    assert response.json["checks"] == {CHECK: "ok"}
    assert checkouts


def test_db_engine_of_unreachable_server_is_reported(
    hello_app: Any, unused_port: Callable[[], int]
) -> None:
    engine = create_engine(refused_url("postgresql+psycopg", unused_port(), PASSWORD))

    response = heartbeat(DockerflowMiddleware(hello_app, db=engine))

    assert list(response.json["details"][CHECK]["messages"]) == [E008]
    assert PASSWORD not in response.text


# A PostgreSQL driver this project's environment does not install.
needs_pg8000_absent = pytest.mark.skipif(
    importlib.util.find_spec("pg8000") is not None, reason="pg8000 is installed"
)

UNUSABLE_URLS = [
    pytest.param(
        f"postgresql+pg8000://app:{PASSWORD}@db/app",
        id="driver-not-installed",
        marks=needs_pg8000_absent,
    ),
    pytest.param(f"nosuchdb://app:{PASSWORD}@db/app", id="unknown-dialect"),
    pytest.param(f"postgresql://app:{PASSWORD}@db:notaport/app", id="bad-port"),
    pytest.param("not a url", id="not-a-url"),
]


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_unusable_db_url_fails_at_construction(url: str, hello_app: Any) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL") as raised:
        DockerflowMiddleware(hello_app, db=url)

    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_unusable_database_url_environment_fails_at_construction(
    url: str, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    with pytest.raises(ValueError, match="DATABASE_URL") as raised:
        DockerflowMiddleware(hello_app)

    assert PASSWORD not in str(raised.value)


@needs_pg8000_absent
def test_missing_driver_is_named(hello_app: Any) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL") as raised:
        DockerflowMiddleware(hello_app, db=f"postgresql+pg8000://app:{PASSWORD}@db/app")

    assert "pg8000" in str(raised.value)


def test_db_of_another_type_fails_at_construction(hello_app: Any) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        DockerflowMiddleware(hello_app, db=42)


def test_a_driver_error_without_a_message_is_still_e008() -> None:
    def refuse() -> Any:
        raise sqlite3.OperationalError()  # a driver's error may have no text at all

    engine = create_engine("sqlite://", creator=refuse)

    [message] = check_database_connected(engine)

    assert message.id == E008
    assert message.msg == "DB-API error on sqlite://: OperationalError"


def test_a_postgres_url_as_heroku_writes_it_is_read_as_postgresql() -> None:
    engine = engine_from_url("postgres://app:pw@db.invalid:5432/app", connect_timeout=1)

    assert engine.url.drivername == "postgresql"
    assert engine.url.database == "app"
