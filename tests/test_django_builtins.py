"""The Django integration's built-ins on the test project: a database that accepts and never
answers is given up after the check's timeout, many unapplied migrations are one message that
names them, and ``DATABASE_URL`` adds no second database check.

Collected only in a process set up for the test project: ``tests/test_django.py`` runs it. By
hand::

    DJANGO_SETTINGS_MODULE=project.settings PYTHONPATH=tests/django_project \\
        PROJECT_DATABASE=sqlite:////tmp/db.sqlite3 python -m pytest tests/test_django_builtins.py
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import webtest
from django.core.management import call_command
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from services import silent_port  # noqa: F401 - a fixture, re-exported for pytest

from dockerflow_wsgi import health
from dockerflow_wsgi.django import get_wsgi_application
from dockerflow_wsgi.django.checks import check_database_connected, check_migrations_applied

__test__ = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"

HOST = "127.0.0.1"
PASSWORD = "hunter2-not-for-logs"
CHECK_TIMEOUT = 1
# libpq waits 2 s at the least; a few times the timeout, well under a driver's own wait.
GIVEN_UP_WITHIN = 5.0


@pytest.fixture(scope="module", autouse=True)
def _migrated() -> None:
    get_wsgi_application()  # sets Django up
    call_command("migrate", verbosity=0)


# -- a database that accepts and never answers ---------------------------------------------------


@pytest.fixture(params=["postgresql", "mysql"])
def silent_database(
    request: pytest.FixtureRequest,
    silent_port: int,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """The default database's settings, pointing at the silent port, without any timeout of
    the project's own."""
    if request.param == "mysql":
        import pymysql

        pymysql.install_as_MySQLdb()  # Django's MySQL backend on PyMySQL, as projects do
    settings = {
        **connections.settings["default"],
        "ENGINE": f"django.db.backends.{request.param}",
        "NAME": "test",
        "USER": "root",
        "PASSWORD": PASSWORD,
        "HOST": HOST,
        "PORT": str(silent_port),
        "OPTIONS": {},
    }
    monkeypatch.setitem(connections.settings, "default", settings)
    return settings


def within(seconds: float, check: Callable[[], Any]) -> tuple[Any, float]:
    """``check()``'s result and how long it took, run on a thread of its own as the heartbeat
    runs it; fails when it has not returned after ``seconds``, rather than hang the suite."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(check()), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    took = time.monotonic() - started
    assert outcome, f"{check.__name__} still waiting after {took:.1f} s"
    return outcome[0], took


def test_a_database_that_never_answers_is_given_up_after_the_check_timeout(silent_database):
    with override_settings(DOCKERFLOW_CHECK_TIMEOUT=CHECK_TIMEOUT):
        messages, took = within(3 * GIVEN_UP_WITHIN, check_database_connected)

    assert took < GIVEN_UP_WITHIN
    [message] = messages
    assert message.id == health.ERROR_CANNOT_CONNECT_DATABASE
    assert message.msg.startswith("Could not connect to database 'default': ")
    assert PASSWORD not in message.msg
    # The project's own connections keep their settings.
    assert silent_database["OPTIONS"] == {}


def test_the_migrations_of_a_database_that_never_answers_cannot_be_checked(silent_database):
    with override_settings(DOCKERFLOW_CHECK_TIMEOUTS={"check_migrations_applied": CHECK_TIMEOUT}):
        messages, took = within(3 * GIVEN_UP_WITHIN, check_migrations_applied)

    assert took < GIVEN_UP_WITHIN
    assert [message.id for message in messages] == [health.INFO_CANT_CHECK_MIGRATIONS]
    assert silent_database["OPTIONS"] == {}


def test_the_heartbeat_reports_the_checks_own_error_before_its_timeout(silent_database):
    """Given up a second under the check's timeout: E001 says more than E102 (timed out)."""
    with override_settings(DOCKERFLOW_CHECK_TIMEOUT=3):
        client = webtest.TestApp(get_wsgi_application())
        started = time.monotonic()
        response = client.get("/__heartbeat__", status="*")
        took = time.monotonic() - started

    assert took < 3
    assert response.status_int == 500
    details = response.json["details"]
    assert list(details["check_database_connected"]["messages"]) == [
        health.ERROR_CANNOT_CONNECT_DATABASE
    ]
    assert list(details["check_migrations_applied"]["messages"]) == [
        health.INFO_CANT_CHECK_MIGRATIONS
    ]


def test_a_closer_timeout_of_the_project_is_kept(silent_database):
    """The check's timeout bounds the wait; a project's own shorter one still applies."""
    if silent_database["ENGINE"].endswith("mysql"):
        silent_database["OPTIONS"] = {"connect_timeout": 1, "read_timeout": 1}
    else:
        silent_database["OPTIONS"] = {"connect_timeout": 2}

    with override_settings(DOCKERFLOW_CHECK_TIMEOUT=60):
        messages, took = within(3 * GIVEN_UP_WITHIN, check_database_connected)

    assert took < GIVEN_UP_WITHIN
    assert [message.id for message in messages] == [health.ERROR_CANNOT_CONNECT_DATABASE]


# -- many unapplied migrations -------------------------------------------------------------------


@pytest.fixture
def unapplied() -> Iterator[Callable[[str], list[str]]]:
    """``unapplied(app)``: every migration of ``app`` recorded as not applied, for one test;
    their names."""
    recorder = MigrationRecorder(connections["default"])
    removed: list[tuple[str, str]] = []

    def unapply(app: str) -> list[str]:
        names = sorted(name for label, name in recorder.applied_migrations() if label == app)
        for name in names:
            recorder.record_unapplied(app, name)
            removed.append((app, name))
        return [f"{app}.{name}" for name in names]

    yield unapply
    for app, name in removed:
        recorder.record_applied(app, name)


def test_many_unapplied_migrations_are_one_message_that_counts_and_names_them(unapplied):
    names = unapplied("auth") + unapplied("notes")
    assert len(names) > 10

    heartbeat = webtest.TestApp(get_wsgi_application()).get("/__heartbeat__", status="*")

    assert heartbeat.status_int == 200  # warnings are healthy
    details = heartbeat.json["details"]["check_migrations_applied"]
    assert details["messages"] == {
        health.WARNING_UNAPPLIED_MIGRATION: f"{len(names)} unapplied migrations: "
        + ", ".join(names[:10])
        + f" and {len(names) - 10} more"
    }


def test_a_few_unapplied_migrations_are_all_named(unapplied):
    names = unapplied("notes")

    [message] = check_migrations_applied()

    assert message.msg == f"2 unapplied migrations: {', '.join(names)}"
    assert message.hint == "run manage.py migrate"


# -- DATABASE_URL ----------------------------------------------------------------------------------


def database_checks() -> list[str]:
    """The names of the database checks a heartbeat runs."""
    names = [name for name, _ in get_wsgi_application().current_checks()]
    return [name for name in names if name.endswith("check_database_connected")]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        # dj-database-url's, for a driver SQLAlchemy does not have here: not even read.
        "mysql://app:secret@db.internal:3306/app",
    ],
)
def test_database_url_adds_no_second_database_check(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)

    assert database_checks() == ["check_database_connected"]


def test_nor_does_a_database_url_setting():
    with override_settings(DATABASE_URL="sqlite://"):
        assert database_checks() == ["check_database_connected"]


def test_redis_url_still_registers_the_redis_check(monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://{HOST}:6379/0")

    names = [name for name, _ in get_wsgi_application().current_checks()]

    assert "check_redis_connected" in names
