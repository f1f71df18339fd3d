"""The Django integration as a project meets it: imported before its settings, its suites run
in a Django process of their own, and the test project served by the real gunicorn.

Django is set up once per process and ``tests/test_docs.py`` sets it up its own way in this
one, so the suites that need the test project's settings (``test_django_wsgi.py``,
``test_django_checks.py``, ``test_django_builtins.py``, ``test_django_cache_storage.py``,
``test_django_routes.py``) are run here in a pytest process of their own, which fails this
test with their report.
``test_django_migration.py`` migrates a ``startproject`` project.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_project.harness import PROJECT, environment, gunicorn, manage, run_suite
from services import (
    HOST,
    POSTGRESQL,
    postgres_url,  # noqa: F401 - a fixture, re-exported for pytest
)

POD_IP_HOST = "10.12.0.7:8000"


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"


# -- the suites in a Django process --------------------------------------------------------------


@pytest.mark.parametrize(
    "suite",
    [
        "test_django_wsgi.py",
        "test_django_checks.py",
        "test_django_builtins.py",
        "test_django_cache_storage.py",
        "test_django_routes.py",
        "test_django_opentelemetry.py",
    ],
)
def test_the_suite_passes_on_sqlite(suite: str, tmp_path: Path) -> None:
    assert_passed(run_suite(suite, PROJECT_DATABASE=f"sqlite:///{tmp_path / 'db.sqlite3'}"))


@pytest.fixture
def postgresql_schema(postgres_url: str) -> Iterator[str]:  # noqa: F811 - the fixture
    """The URL of a schema of its own in the real PostgreSQL's ``test`` database, dropped after."""
    import psycopg

    schema = f"django_{uuid.uuid4().hex[:12]}"
    url = f"postgresql://postgres@{HOST}:{POSTGRESQL.port}/test"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}?schema={schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_checks_suite_passes_on_postgresql(postgresql_schema: str) -> None:
    """Also stops and starts the server: the heartbeat must recover on the same threads."""
    result = run_suite("test_django_checks.py", PROJECT_DATABASE=postgresql_schema)

    assert_passed(result)
    assert " skipped" not in result.stdout.splitlines()[-1]


# -- importing -----------------------------------------------------------------------------------


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dockerflow_wsgi_django_imports_before_the_settings_are_configured() -> None:
    """``INSTALLED_APPS`` and ``MIDDLEWARE`` name it: Django imports it while it starts."""
    result = python(
        "import dockerflow_wsgi.django, dockerflow_wsgi.django.apps, "
        "dockerflow_wsgi.django.checks\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "print(dockerflow_wsgi.django.get_wsgi_application.__name__,"
        " dockerflow_wsgi.django.DockerflowDjangoMiddleware.__name__)"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["get_wsgi_application", "DockerflowDjangoMiddleware"]


def test_dockerflow_wsgi_imports_without_django() -> None:
    result = python(
        "import sys\n"
        "sys.modules['django'] = None  # as if it were not installed\n"
        "import dockerflow_wsgi, dockerflow_wsgi.checks, dockerflow_wsgi.logging\n"
        "try:\n"
        "    import dockerflow_wsgi.django\n"
        "except ImportError:\n"
        "    print('only the integration needs Django')\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "only the integration needs Django"


# -- the test project under gunicorn -------------------------------------------------------------


@pytest.mark.servers
def test_gunicorn_serves_the_project(tmp_path: Path) -> None:
    environ = environment(
        PROJECT,
        PROJECT_DATABASE=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_SUPERUSER_USERNAME="ada",
        DJANGO_SUPERUSER_PASSWORD="lovelace",
        DJANGO_SUPERUSER_EMAIL="ada@example.com",
    )
    manage(PROJECT, "migrate", environ=environ)
    manage(PROJECT, "createsuperuser", "--noinput", environ=environ)

    with gunicorn("project.wsgi:application", PROJECT, environ, tmp_path) as server:
        heartbeat = server.get("/__heartbeat__/", **{"X-Request-ID": "heartbeat"})
        version = server.get("/__version__", **{"X-Request-ID": "version"})
        pod_probe = server.get("/__lbheartbeat__", Host=POD_IP_HOST, **{"X-Request-ID": "pod"})
        pod_page = server.get("/", Host=POD_IP_HOST, **{"X-Request-ID": "pod-page"})
        hello = server.get("/", **{"X-Request-ID": "hello"})
        login = server.request(
            "POST",
            "/login/",
            {"username": "ada", "password": "lovelace"},
            **{"X-Request-ID": "login"},
        )
        me = server.get("/me/", **{"X-Request-ID": "me"})
        boom = server.get("/boom/", **{"X-Request-ID": "boom"})

    assert (heartbeat.status, heartbeat.json()["status"]) == (200, "ok")
    assert heartbeat.json()["checks"]["check_database_connected"] == "ok"
    assert version.status == 404  # no version.json in BASE_DIR
    assert (pod_probe.status, pod_page.status) == (200, 400)
    assert hello.json() == {"message": "hello", "request_id": "hello"}
    assert hello.headers["X-Request-ID"] == "hello"
    assert login.status == 200
    assert me.status == 200
    assert boom.status == 500

    summaries = {
        rid: server.summaries(rid)
        for rid in ("heartbeat", "version", "pod", "pod-page", "hello", "login", "me", "boom")
    }
    assert {rid: len(found) for rid, found in summaries.items()} == dict.fromkeys(summaries, 1)
    fields = {rid: found[0]["Fields"] for rid, found in summaries.items()}
    assert (fields["pod-page"]["code"], fields["pod"]["code"]) == (400, 200)
    user_id = str(me.json()["pk"])
    assert [fields[rid]["uid"] for rid in ("hello", "login", "me")] == ["", user_id, user_id]
    assert summaries["boom"][0]["Severity"] == 3
    assert fields["boom"]["error"] == "LookupError('the view failed')"
    assert "in boom" in fields["boom"]["traceback"]
    # The route Django matched, as it writes it (DockerflowDjangoMiddleware reports it); a
    # Dockerflow path's is its path; a request Django refused before routing has none.
    routes = {rid: fields[rid].get("route") for rid in fields}
    assert routes == {
        "heartbeat": "/__heartbeat__",
        "version": "/__version__",
        "pod": "/__lbheartbeat__",
        "pod-page": None,
        "hello": "",
        "login": "login/",
        "me": "me/",
        "boom": "boom/",
    }
