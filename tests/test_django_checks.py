"""The heartbeat of a Django project: Django's system checks, ``settings.DOCKERFLOW_CHECKS`` and
the built-in database and migrations checks, on the test project's database.

Collected only in a process set up for the test project: ``tests/test_django.py`` runs this file
once on SQLite and once on the real PostgreSQL (in a schema of its own). By hand::

    DJANGO_SETTINGS_MODULE=project.settings PYTHONPATH=tests/django_project \\
        PROJECT_DATABASE=sqlite:////tmp/db.sqlite3 python -m pytest tests/test_django_checks.py
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import webtest
from django.apps import apps
from django.core import checks as django_checks
from django.core.checks.registry import registry
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import OperationalError, connections
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from django.utils.translation import gettext_lazy
from services import POSTGRESQL, ServerControl, unused_port

from dockerflow_wsgi import checks
from dockerflow_wsgi.django import get_wsgi_application
from dockerflow_wsgi.django.checks import check_migrations_applied

__test__ = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"

PASSWORD = "hunter2-not-for-logs"


@pytest.fixture(scope="module", autouse=True)
def _migrated() -> None:
    get_wsgi_application()  # sets Django up
    call_command("migrate", verbosity=0)


@pytest.fixture(scope="module")
def client() -> webtest.TestApp:
    """One application for the module: its check threads serve heartbeat after heartbeat."""
    return webtest.TestApp(get_wsgi_application())


def heartbeat(client: webtest.TestApp) -> webtest.TestResponse:
    return client.get("/__heartbeat__", status="*")


@pytest.fixture
def django_check() -> Iterator[Callable[..., None]]:
    """``django_check(function, deploy=False)``: registered with Django for one test."""
    added = []

    def register(check: Callable[..., Any], deploy: bool = False) -> None:
        registry.register(check, deploy=deploy)
        added.append(check)

    yield register
    for check in added:
        registry.registered_checks.discard(check)
        registry.deployment_checks.discard(check)


@pytest.fixture
def database() -> dict[str, Any]:
    """The default database's settings, as every thread's next connection reads them."""
    return connections.settings["default"]


@pytest.fixture
def postgresql(database: dict[str, Any]) -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL only: tests/test_django.py runs this file on it too")


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch, database: dict[str, Any], tmp_path: Path) -> None:
    """The default database, as new connections see it, refuses them."""
    if connections["default"].vendor == "postgresql":
        monkeypatch.setitem(database, "PORT", str(unused_port()))
    else:
        monkeypatch.setitem(database, "NAME", str(tmp_path / "no such directory" / "db.sqlite3"))


# -- Django's system checks ----------------------------------------------------------------------


def test_djangos_system_checks_run_in_the_heartbeat_under_their_names(client):
    response = heartbeat(client)

    assert response.status_int == 200
    assert response.json["status"] == "ok"
    names = list(response.json["checks"])
    assert names[:2] == ["check_database_connected", "check_migrations_applied"]
    assert {"check_url_config", "check_all_models", "check_user_model"} <= set(names)
    assert set(response.json["checks"].values()) == {"ok"}


@pytest.mark.parametrize(
    ("debug", "silenced", "expected"),
    [
        (False, None, "ok"),  # the project silences security.W008
        (False, [], "warning"),
        (True, [], None),  # no deployment checks while debugging
    ],
)
def test_deployment_checks_run_unless_debug(client, debug, silenced, expected):
    settings = {"DEBUG": debug}
    if silenced is not None:
        settings["SILENCED_SYSTEM_CHECKS"] = silenced

    with override_settings(**settings):
        response = heartbeat(client)

    assert response.status_int == 200  # warnings are healthy
    assert response.json["checks"].get("check_ssl_redirect") == expected
    if expected == "warning":
        assert response.json["status"] == "warning"
        details = response.json["details"]["check_ssl_redirect"]
        assert list(details["messages"]) == ["security.W008"]


def check_widgets(app_configs, **kwargs):
    return [django_checks.Error("the widget is broken", hint="fix the widget", id="notes.E001")]


def test_a_django_check_registered_after_startup_fails_the_heartbeat(client, django_check):
    django_check(check_widgets)

    response = heartbeat(client)

    assert response.status_int == 500
    assert response.json["status"] == "error"
    assert response.json["details"]["check_widgets"] == {
        "status": "error",
        "level": 40,
        "messages": {"notes.E001": "the widget is broken"},
    }


def test_silenced_system_checks_are_left_out_of_the_heartbeat(client, django_check):
    django_check(check_widgets)

    with override_settings(SILENCED_SYSTEM_CHECKS=["notes.E001"]):
        response = heartbeat(client)

    assert response.status_int == 200
    assert response.json["checks"]["check_widgets"] == "ok"


def check_every_level(app_configs, **kwargs):
    return [
        django_checks.Debug("debug text", id="notes.D001"),
        django_checks.Info(
            gettext_lazy("lazy text"), hint=gettext_lazy("lazy hint"), id="notes.I002"
        ),
        django_checks.Warning("warning text", hint="a hint", obj=check_widgets, id="notes.W002"),
        django_checks.Error("error text", id="notes.E002"),
        django_checks.Critical("critical text", id="notes.C001"),
    ]


def test_django_messages_become_ours_with_their_level_id_text_and_hint(django_check):
    django_check(check_every_level)
    application = get_wsgi_application()

    messages = application.heartbeat.results().messages["check_every_level"]

    assert all(type(message) is checks.CheckMessage for message in messages)
    assert [(m.level, m.id, m.msg, m.hint) for m in messages] == [
        (checks.DEBUG, "notes.D001", "debug text", None),
        (checks.INFO, "notes.I002", "lazy text", "lazy hint"),
        (checks.WARNING, "notes.W002", "warning text", "a hint"),
        (checks.ERROR, "notes.E002", "error text", None),
        (checks.CRITICAL, "notes.C001", "critical text", None),
    ]


class Inventory:
    @staticmethod
    def check_widgets(app_configs, **kwargs):
        return [django_checks.Info("counted", id="notes.I003")]


def test_checks_of_the_same_name_are_told_apart_by_their_dotted_path(client, django_check):
    django_check(check_widgets)
    django_check(Inventory.check_widgets)

    response = heartbeat(client)

    # Ordered by dotted path, the class's comes first and keeps the name.
    details = response.json["details"]
    assert details["check_widgets"]["messages"] == {"notes.I003": "counted"}
    dotted = f"{check_widgets.__module__}.check_widgets"
    assert details[dotted]["messages"] == {"notes.E001": "the widget is broken"}


def test_our_checks_stay_out_of_djangos_check_framework(unreachable):
    registered = registry.get_checks(include_deployment_checks=True)
    assert not [check for check in registered if check.__module__.startswith("dockerflow_wsgi")]

    # No database check of ours makes `manage.py check` fail while the database is down.
    call_command("check", stdout=io.StringIO())


# -- settings.DOCKERFLOW_CHECKS ------------------------------------------------------------------


def test_dockerflow_checks_lists_the_checks_to_run_instead_of_the_builtins(client):
    listed = ["notes.checks.check_storage", "notes.checks.check_queue"]

    with override_settings(DOCKERFLOW_CHECKS=listed):
        response = heartbeat(client)

    assert response.status_int == 200
    body = response.json
    assert list(body["checks"])[:2] == ["check_storage", "check_queue"]
    assert "check_database_connected" not in body["checks"]
    assert body["status"] == "warning"
    assert body["details"]["check_storage"]["messages"] == {"notes.W001": "storage is 91% full"}
    assert body["details"]["check_queue"]["messages"] == {"notes.I001": "12 jobs waiting"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["notes.checks.check_nothing"], "cannot import 'notes.checks.check_nothing'"),
        (["notes.no_such_module.check"], "cannot import"),
        (["notes.checks"], "is not callable"),
        ([42], "must hold dotted paths"),
        ("notes.checks.check_storage", "must be a list"),
    ],
)
def test_a_bad_dockerflow_checks_setting_stops_django_from_starting(value, problem):
    with (
        override_settings(DOCKERFLOW_CHECKS=value),
        pytest.raises(ImproperlyConfigured, match=rf"settings\.DOCKERFLOW_CHECKS.*{problem}"),
    ):
        apps.get_app_config("dockerflow_wsgi").ready()


# -- the database and migrations checks ----------------------------------------------------------


def test_a_database_refusing_connections_is_an_error_and_migrations_cannot_be_checked(
    client, unreachable
):
    response = heartbeat(client)

    assert response.status_int == 500
    details = response.json["details"]
    [(ident, text)] = details["check_database_connected"]["messages"].items()
    assert ident == "dockerflow.health.E001"
    assert text.startswith("Could not connect to database 'default': ")
    assert details["check_migrations_applied"]["status"] == "info"
    assert list(details["check_migrations_applied"]["messages"]) == ["dockerflow.health.I001"]


def test_a_database_with_wrong_settings_is_misconfigured(client, database, monkeypatch):
    monkeypatch.setitem(database, "NAME", "")

    response = heartbeat(client)

    messages = response.json["details"]["check_database_connected"]["messages"]
    assert list(messages) == ["dockerflow.health.E003"]
    assert messages["dockerflow.health.E003"].startswith("Database 'default' misconfigured: ")


def test_a_database_that_connects_but_cannot_query_is_unusable(client, monkeypatch):
    features = type(connections["default"].features)
    monkeypatch.setattr(features, "bare_select_suffix", " FROM no_such_table")

    response = heartbeat(client)

    messages = response.json["details"]["check_database_connected"]["messages"]
    assert list(messages) == ["dockerflow.health.E002"]


def test_a_password_in_a_database_error_is_masked(client, database, monkeypatch):
    monkeypatch.setitem(database, "PASSWORD", PASSWORD)

    def refuse(self: Any, *args: Any) -> Any:
        raise OperationalError(f"authentication failed (password {PASSWORD} rejected)")

    monkeypatch.setattr(type(connections["default"]), "get_new_connection", refuse)

    response = heartbeat(client)

    assert PASSWORD.encode() not in response.body
    messages = response.json["details"]["check_database_connected"]["messages"]
    assert messages["dockerflow.health.E001"].endswith("(password *** rejected)")


@pytest.fixture
def unapplied() -> Iterator[Callable[[str, str], None]]:
    """``unapplied(app, name)``: the migration is recorded as not applied, for one test."""
    recorder = MigrationRecorder(connections["default"])
    removed = []

    def unapply(app: str, name: str) -> None:
        recorder.record_unapplied(app, name)
        removed.append((app, name))

    yield unapply
    for app, name in removed:
        recorder.record_applied(app, name)


def test_an_unapplied_migration_is_a_warning_and_the_heartbeat_passes(client, unapplied):
    unapplied("notes", "0002_note_created")

    response = heartbeat(client)

    assert response.status_int == 200
    assert response.json["status"] == "warning"
    assert response.json["details"]["check_migrations_applied"] == {
        "status": "warning",
        "level": 30,
        "messages": {"dockerflow.health.W001": "Unapplied migration notes.0002_note_created"},
    }


def test_the_unapplied_migrations_are_one_message_that_names_each(unapplied):
    """The heartbeat keeps one message per id: one per migration would lose all but one."""
    unapplied("notes", "0002_note_created")
    unapplied("notes", "0001_initial")

    messages = check_migrations_applied()

    assert [(m.id, m.msg, m.level) for m in messages] == [
        (
            "dockerflow.health.W001",
            "2 unapplied migrations: notes.0001_initial, notes.0002_note_created",
            django_checks.WARNING,
        ),
    ]


# -- connections on the check threads (PostgreSQL) -----------------------------------------------


def connections_of_this_process() -> int:
    name = connections["default"].settings_dict["OPTIONS"]["application_name"]
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            [name],
        )
        return cursor.fetchone()[0]


def test_the_checks_close_the_connections_they_open(postgresql, client):
    for _ in range(3):
        assert heartbeat(client).json["status"] == "ok"

    # A backend leaves pg_stat_activity a moment after its client closed the connection.
    deadline = time.monotonic() + 5
    while connections_of_this_process() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connections_of_this_process() == 0


def test_the_heartbeat_recovers_after_the_database_restarts(postgresql, client):
    assert heartbeat(client).json["checks"]["check_database_connected"] == "ok"
    servers = ServerControl()
    try:
        servers.stop(POSTGRESQL)
        down = heartbeat(client)
        servers.start(POSTGRESQL)
        # Enough runs for every check thread that ran a check before the restart.
        after = [heartbeat(client) for _ in range(4)]
    finally:
        servers.restore()  # started again, whatever happened
        connections["default"].close()  # this thread's own, from before the restart

    assert down.status_int == 500
    assert list(down.json["details"]["check_database_connected"]["messages"]) == [
        "dockerflow.health.E001"
    ]
    assert [response.json["status"] for response in after] == ["ok"] * 4
