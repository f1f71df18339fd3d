"""The migrations check against real Alembic projects on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.checks import INFO, WARNING
from dockerflow_wsgi.checks.alembic import check_migrations_applied

W001 = "dockerflow.health.W001"
I001 = "dockerflow.health.I001"
E008 = "dockerflow.health.E008"
CHECK = "check_migrations_applied"
PASSWORD = "s3cr3t-pw"

# Written instead of the generated env.py, whose fileConfig() would reconfigure (and
# disable) the loggers of the whole test session.
ENV_PY = '''\
"""Run the migrations online against the URL the caller put in the config."""

from alembic import context
from sqlalchemy import create_engine

engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
'''

# rev_id: (message, upgrade body, downgrade body)
REVISIONS = {
    "0001": (
        "create widgets",
        'op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("widgets")',
    ),
    "0002": (
        "create gadgets",
        'op.create_table("gadgets", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("gadgets")',
    ),
}


@dataclass(frozen=True)
class AlembicProject:
    ini: Path
    url: str
    unreachable_url: str

    def config(self) -> Config:
        config = Config(str(self.ini), stdout=io.StringIO())
        # configparser interpolation: a literal '%' is written '%%'.
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def upgrade(self, revision: str) -> None:
        command.upgrade(self.config(), revision)


def _fill(source: str, function: str, body: str) -> str:
    """Replace the ``pass`` of the generated ``upgrade()`` or ``downgrade()`` with ``body``."""
    start = source.index(f"def {function}()")
    at = source.index("    pass\n", start)
    return source[:at] + f"    {body}\n" + source[at + len("    pass\n") :]


def make_project(directory: Path, url: str, unreachable_url: str) -> AlembicProject:
    ini = directory / "alembic.ini"
    command.init(Config(str(ini), stdout=io.StringIO()), str(directory / "migrations"))
    ini.write_text(
        re.sub(
            r"^script_location = .*$",
            "script_location = %(here)s/migrations",
            ini.read_text(),
            flags=re.MULTILINE,
        )
    )
    (directory / "migrations" / "env.py").write_text(ENV_PY)
    config = Config(str(ini), stdout=io.StringIO())
    for rev_id, (message, upgrade, downgrade) in REVISIONS.items():
        script = command.revision(config, message, rev_id=rev_id)
        assert script is not None
        path = Path(script.path)
        path.write_text(_fill(_fill(path.read_text(), "upgrade", upgrade), "downgrade", downgrade))
    return AlembicProject(ini, url, unreachable_url)


@pytest.fixture
def sqlite_project(tmp_path: Path) -> AlembicProject:
    return make_project(
        tmp_path,
        f"sqlite:///{tmp_path / 'app.db'}",
        f"sqlite:///{tmp_path / 'missing-directory' / 'app.db'}",
    )


@pytest.fixture
def postgresql_project(
    tmp_path: Path, postgres_url: str, unused_port: Callable[[], int]
) -> Iterator[AlembicProject]:
    """A project whose tables, ``alembic_version`` included, live in a schema of their own:
    the database ``test`` is shared."""
    schema = f"dockerflow_alembic_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    search_path = f"?options=-csearch_path%3D{schema}"
    try:
        yield make_project(
            tmp_path,
            postgres_url + search_path,
            f"postgresql+psycopg://postgres@127.0.0.1:{unused_port()}/test{search_path}",
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def project(request: pytest.FixtureRequest) -> AlembicProject:
    return request.getfixturevalue(f"{request.param}_project")


@pytest.fixture
def engines() -> Iterator[Callable[[str], Any]]:
    """``engines(url)``: an engine that is disposed of after the test."""
    made: list[Any] = []

    def make(url: str) -> Any:
        made.append(create_engine(url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def heartbeat(middleware: DockerflowMiddleware) -> Any:
    return TestApp(middleware).get("/__heartbeat__", status="*")


def messages_of(messages: list[Any]) -> list[tuple[str, int]]:
    return [(message.id, message.level) for message in messages]


# -- check_migrations_applied ----------------------------------------------------------------


@pytest.mark.parametrize("as_config", [False, True], ids=["ini-path", "config-object"])
def test_no_migration_applied_is_w001(
    project: AlembicProject, engines: Callable[[str], Any], as_config: bool
) -> None:
    alembic_config = project.config() if as_config else str(project.ini)

    messages = check_migrations_applied(engines(project.url), alembic_config)

    assert messages_of(messages) == [(W001, WARNING)]
    assert "0002" in messages[0].msg


def test_some_migrations_applied_is_w001(
    project: AlembicProject, engines: Callable[[str], Any]
) -> None:
    project.upgrade("0001")

    messages = check_migrations_applied(engines(project.url), str(project.ini))

    assert messages_of(messages) == [(W001, WARNING)]
    assert "0001" in messages[0].msg
    assert "0002" in messages[0].msg


@pytest.mark.parametrize("as_config", [False, True], ids=["ini-path", "config-object"])
def test_all_migrations_applied_is_ok(
    project: AlembicProject, engines: Callable[[str], Any], as_config: bool
) -> None:
    project.upgrade("head")
    alembic_config = project.config() if as_config else str(project.ini)

    assert check_migrations_applied(engines(project.url), alembic_config) == []


def test_unreachable_database_is_i001(
    project: AlembicProject, engines: Callable[[str], Any]
) -> None:
    messages = check_migrations_applied(engines(project.unreachable_url), str(project.ini))

    assert messages_of(messages) == [(I001, INFO)]


def test_i001_never_shows_the_password(
    sqlite_project: AlembicProject, engines: Callable[[str], Any], unused_port: Callable[[], int]
) -> None:
    engine = engines(f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:{unused_port()}/test")

    [message] = check_migrations_applied(engine, str(sqlite_project.ini))

    assert message.id == I001
    assert PASSWORD not in message.msg


def test_unreadable_migration_scripts_are_i001(
    sqlite_project: AlembicProject, engines: Callable[[str], Any], tmp_path: Path
) -> None:
    config = sqlite_project.config()
    config.set_main_option("script_location", str(tmp_path / "no-such-directory"))

    messages = check_migrations_applied(engines(sqlite_project.url), config)

    assert messages_of(messages) == [(I001, INFO)]


# -- through the middleware ------------------------------------------------------------------


def test_heartbeat_with_unapplied_migrations_is_a_healthy_warning(
    project: AlembicProject, hello_app: Any
) -> None:
    project.upgrade("0001")
    middleware = DockerflowMiddleware(hello_app, db=project.url, alembic_config=str(project.ini))

    response = heartbeat(middleware)

    assert response.status_int == 200
    assert response.json["status"] == "warning"
    assert response.json["checks"] == {"check_database_connected": "ok", CHECK: "warning"}
    assert list(response.json["details"][CHECK]["messages"]) == [W001]


def test_heartbeat_with_all_migrations_applied_is_ok(
    project: AlembicProject, hello_app: Any
) -> None:
    project.upgrade("head")
    middleware = DockerflowMiddleware(hello_app, db=project.url, alembic_config=project.ini)

    response = heartbeat(middleware)

    assert response.status_int == 200
    assert response.json == {
        "status": "ok",
        "checks": {"check_database_connected": "ok", CHECK: "ok"},
        "details": {},
    }


def test_heartbeat_with_unreachable_database_reports_i001(
    project: AlembicProject, hello_app: Any
) -> None:
    middleware = DockerflowMiddleware(
        hello_app,
        db=project.unreachable_url,
        alembic_config=str(project.ini),
        check_timeout=2,
    )

    response = heartbeat(middleware)

    # The outage itself is the database check's error; the migrations check only informs.
    assert response.status_int == 500
    assert response.json["checks"] == {"check_database_connected": "error", CHECK: "info"}
    assert list(response.json["details"][CHECK]["messages"]) == [I001]


def test_heartbeat_with_only_i001_is_healthy_info(project: AlembicProject, hello_app: Any) -> None:
    middleware = DockerflowMiddleware(
        hello_app,
        db=project.unreachable_url,
        alembic_config=str(project.ini),
        silenced_checks=[E008],
        check_timeout=2,
    )

    response = heartbeat(middleware)

    assert response.status_int == 200
    assert response.json["status"] == "info"
    assert response.json["details"][CHECK]["status"] == "info"
    assert list(response.json["details"][CHECK]["messages"]) == [I001]


def test_heartbeat_with_alembic_config_environment(
    sqlite_project: AlembicProject, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_project.url)
    monkeypatch.setenv("ALEMBIC_CONFIG", str(sqlite_project.ini))

    response = heartbeat(DockerflowMiddleware(hello_app))

    assert response.status_int == 200
    assert response.json["checks"] == {"check_database_connected": "ok", CHECK: "warning"}


def test_alembic_config_environment_without_a_database_fails_at_construction(
    sqlite_project: AlembicProject, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("ALEMBIC_CONFIG", str(sqlite_project.ini))

    with pytest.raises(ValueError, match="ALEMBIC_CONFIG") as raised:
        DockerflowMiddleware(hello_app)

    assert "DATABASE_URL" in str(raised.value)


def test_alembic_config_without_a_database_fails_at_construction(
    sqlite_project: AlembicProject, hello_app: Any
) -> None:
    with pytest.raises(ValueError, match="ALEMBIC_CONFIG"):
        DockerflowMiddleware(hello_app, alembic_config=str(sqlite_project.ini))


@pytest.mark.parametrize("from_environment", [False, True], ids=["keyword", "environment"])
def test_missing_alembic_ini_fails_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hello_app: Any, from_environment: bool
) -> None:
    missing = str(tmp_path / "alembic.ini")
    db = f"sqlite:///{tmp_path / 'app.db'}"
    if from_environment:
        monkeypatch.setenv("ALEMBIC_CONFIG", missing)
        options: dict[str, Any] = {"db": db}
    else:
        options = {"db": db, "alembic_config": missing}

    with pytest.raises(ValueError, match="ALEMBIC_CONFIG"):
        DockerflowMiddleware(hello_app, **options)


def test_repeated_checks_neither_grow_sys_path_nor_fill_the_log(
    sqlite_project: AlembicProject, engines: Callable[[str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The generated alembic.ini has prepend_sys_path = . ; Alembic logs two INFO lines for
    # every migration context it makes.
    caplog.set_level(logging.INFO)
    engine = engines(sqlite_project.url)
    check_migrations_applied(engine, str(sqlite_project.ini))
    path_after_first_check = list(sys.path)

    for _ in range(5):
        assert check_migrations_applied(engine, str(sqlite_project.ini))[0].id == W001

    assert sys.path == path_after_first_check
    assert not [record for record in caplog.records if record.name.startswith("alembic")]
    # Only the check's own lines are dropped: Alembic still logs a real migration.
    sqlite_project.upgrade("head")
    assert [record for record in caplog.records if record.name == "alembic.runtime.migration"]


def test_an_alembic_config_object_is_accepted_by_the_middleware(
    sqlite_project: AlembicProject, hello_app: Any
) -> None:
    middleware = DockerflowMiddleware(
        hello_app, db=sqlite_project.url, alembic_config=sqlite_project.config()
    )
    response = TestApp(middleware).get("/__heartbeat__")
    assert response.json["checks"]["check_migrations_applied"] == "warning"
