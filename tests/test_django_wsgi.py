"""Requests through ``dockerflow_wsgi.django``: the test project served by
``get_wsgi_application()``, with ``DockerflowDjangoMiddleware`` in its ``MIDDLEWARE``.

Collected only in a process set up for the test project (``tests/test_django.py`` runs this
file in one, on SQLite): Django is set up once per process, and other test files set it up
differently. By hand::

    DJANGO_SETTINGS_MODULE=project.settings PYTHONPATH=tests/django_project \\
        PROJECT_DATABASE=sqlite:////tmp/db.sqlite3 python -m pytest tests/test_django_wsgi.py
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
import webtest
from django.core.management import call_command
from django.core.signals import got_request_exception, request_started
from django.test import AsyncRequestFactory, override_settings

from dockerflow_wsgi.django import DockerflowDjangoMiddleware, get_wsgi_application
from dockerflow_wsgi.logging import JsonLogFormatter

__test__ = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets"
NEW_ID = re.compile(r"[0-9a-f]{32}")
POD_IP_HOST = "10.12.0.7:8000"


@pytest.fixture(scope="module", autouse=True)
def _migrated() -> None:
    get_wsgi_application()  # sets Django up
    call_command("migrate", verbosity=0)


@pytest.fixture
def app() -> webtest.TestApp:
    return webtest.TestApp(get_wsgi_application())


@pytest.fixture
def user() -> Iterator[Any]:
    from django.contrib.auth.models import User

    user = User.objects.create_user("ada", password="lovelace")
    yield user
    user.delete()


@pytest.fixture
def django_requests() -> Iterator[list[str]]:
    """The paths of the requests Django itself started to handle."""
    started: list[str] = []

    def record(sender: Any, environ: dict[str, Any], **kwargs: Any) -> None:
        started.append(environ["PATH_INFO"])

    request_started.connect(record)
    yield started
    request_started.disconnect(record)


# -- the Dockerflow paths ------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"], ids=["exact", "trailing slash"])
def test_the_dockerflow_paths_are_answered_before_django(app, slash, django_requests):
    lbheartbeat = app.get(f"/__lbheartbeat__{slash}")
    heartbeat = app.get(f"/__heartbeat__{slash}")
    version = app.get(f"/__version__{slash}", status=404)

    assert (lbheartbeat.status_int, lbheartbeat.json) == (200, {})
    assert heartbeat.content_type == "application/json"
    assert heartbeat.json["status"] == "ok"
    assert heartbeat.json["checks"]["check_database_connected"] == "ok"
    assert version.json == {"error": "version.json not found"}
    assert django_requests == []


def test_probes_to_a_pod_ip_are_answered_while_django_refuses_the_host(app):
    """Kubernetes probes a pod at its IP, a host no ALLOWED_HOSTS lists."""
    headers = {"Host": POD_IP_HOST}

    assert app.get("/__lbheartbeat__", headers=headers).status_int == 200
    assert app.get("/__heartbeat__/", headers=headers).status_int == 200
    assert app.get("/__version__", headers=headers, status=404).json["error"]
    assert app.get("/", headers=headers, status=400).status_int == 400


def test_version_json_is_read_from_base_dir(tmp_path):
    (tmp_path / "version.json").write_text(json.dumps({"version": "from BASE_DIR"}))

    with override_settings(BASE_DIR=tmp_path):
        app = webtest.TestApp(get_wsgi_application())

    assert app.get("/__version__").json == {"version": "from BASE_DIR"}


def test_the_version_callback_setting_is_a_dotted_path(tmp_path):
    with override_settings(DOCKERFLOW_VERSION_CALLBACK="test_django_wsgi.version_of"):
        app = webtest.TestApp(get_wsgi_application(version_path=str(tmp_path)))

    assert app.get("/__version__").json == {"version": "called", "path": str(tmp_path)}


def version_of(path: str) -> dict[str, str]:
    return {"version": "called", "path": path}


@pytest.mark.parametrize(
    ("value", "problem"),
    [("test_django_wsgi.no_such_callback", "cannot import"), (42, "must be a callable")],
)
def test_a_bad_version_callback_setting_fails_naming_it(value, problem):
    with (
        override_settings(DOCKERFLOW_VERSION_CALLBACK=value),
        pytest.raises(ValueError, match=rf"settings\.DOCKERFLOW_VERSION_CALLBACK.*{problem}"),
    ):
        get_wsgi_application()


# -- request ids ---------------------------------------------------------------------------------


def test_the_request_id_reaches_the_view_and_comes_back(app):
    sent = app.get("/", headers={"X-Request-ID": "from-the-client"})
    generated = app.get("/", headers={"X-Request-ID": "not valid\tat all"})

    assert sent.headers["X-Request-ID"] == "from-the-client"
    assert sent.json == {"message": "hello", "request_id": "from-the-client"}
    new_id = generated.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(new_id)
    assert generated.json["request_id"] == new_id


# -- the summary ---------------------------------------------------------------------------------


def test_one_summary_per_request_with_the_logged_in_user_as_uid(app, user, summary_records):
    app.get("/", headers={"X-Request-ID": "anonymous"})
    app.post(
        "/login/", {"username": "ada", "password": "lovelace"}, headers={"X-Request-ID": "login"}
    )
    app.get("/me/", headers={"X-Request-ID": "me"})
    app.post("/logout/", headers={"X-Request-ID": "logout"})
    app.get("/me/", headers={"X-Request-ID": "gone"}, status=302)

    assert [(record.rid, record.uid) for record in summary_records] == [
        ("anonymous", ""),
        ("login", str(user.pk)),  # the user as the response leaves
        ("me", str(user.pk)),
        ("logout", ""),
        ("gone", ""),
    ]


def test_a_view_exception_is_an_error_summary_while_django_answers_500(app, summary_records):
    response = app.get("/boom/", status=500)

    assert "Server Error" in response.text  # Django's own page
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert (record.code, record.errno) == (500, 500)
    assert isinstance(record.exc_info[1], LookupError)
    line = json.loads(JsonLogFormatter().format(record))
    assert line["Severity"] == 3
    assert line["Fields"]["error"] == "LookupError('the view failed')"
    assert "in boom" in line["Fields"]["traceback"]


def test_an_exception_in_another_middleware_is_an_error_summary(app, summary_records):
    app.get("/", headers={"X-Fail-In-Middleware": "yes"}, status=500)

    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert type(record.exc_info[1]).__name__ == "MiddlewareFailure"


@pytest.mark.parametrize(("path", "status"), [("/missing/", 404), ("/forbidden/", 403)])
def test_http404_and_permission_denied_are_answers_not_errors(app, path, status, summary_records):
    app.get(path, status=status)

    [record] = summary_records
    assert record.levelno == logging.INFO
    assert (record.code, record.errno) == (status, status)
    assert not record.exc_info


def test_without_the_django_middleware_the_summary_has_no_uid(user, summary_records):
    from django.conf import settings

    ours = "dockerflow_wsgi.django.DockerflowDjangoMiddleware"
    with override_settings(MIDDLEWARE=[name for name in settings.MIDDLEWARE if name != ours]):
        app = webtest.TestApp(get_wsgi_application())
    app.post("/login/", {"username": "ada", "password": "lovelace"})
    app.get("/me/")

    assert [record.uid for record in summary_records] == ["", ""]


def test_the_stack_is_valid_wsgi(user):
    app = webtest.TestApp(validator(get_wsgi_application()))

    app.get("/__heartbeat__")
    app.head("/__lbheartbeat__")
    app.post("/login/", {"username": "ada", "password": "lovelace"})
    app.get("/me/")
    app.get("/boom/", status=500)
    app.get("/missing/", status=404)


def test_an_asgi_request_reports_to_its_scope(user):
    """Under ASGI, Django's request has the scope instead of the environ."""
    request = AsyncRequestFactory().get("/")
    request.user = user
    middleware = DockerflowDjangoMiddleware(lambda request: None)

    middleware(request)
    try:
        raise LookupError("under ASGI")
    except LookupError:
        got_request_exception.send(sender=None, request=request)

    assert request.scope["dockerflow.user_id"] == str(user.pk)
    assert isinstance(request.scope["dockerflow.exc_info"][1], LookupError)


def test_under_asgi_the_request_id_is_in_meta_as_under_wsgi():
    """Django builds an ASGI request's META from the scope's headers only."""
    request = AsyncRequestFactory().get("/")
    request.scope["dockerflow.request_id"] = "asgi-meta-1"
    seen = []

    DockerflowDjangoMiddleware(
        lambda request: seen.append(request.META.get("dockerflow.request_id"))
    )(request)

    assert seen == ["asgi-meta-1"]


def test_the_docs_recipe_for_django_tests_passes():
    spec = importlib.util.spec_from_file_location("django_tests", SNIPPETS / "django_tests.py")
    assert spec is not None and spec.loader is not None
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)

    result = unittest.TextTestRunner(stream=sys.stderr).run(
        unittest.defaultTestLoader.loadTestsFromModule(recipe)
    )

    assert result.wasSuccessful()
    assert result.testsRun >= 2


# -- options from settings -----------------------------------------------------------------------


def test_options_come_from_settings(summary_records):
    with override_settings(
        DOCKERFLOW_REQUEST_ID_HEADER_NAME="X-Trace",
        DOCKERFLOW_SUMMARY_LOG_QUERYSTRING=True,
        DOCKERFLOW_CHECK_TIMEOUT=1.5,
    ):
        application = get_wsgi_application()

    response = webtest.TestApp(application).get("/?q=1", headers={"X-Trace": "from-settings"})

    assert response.headers["X-Trace"] == "from-settings"
    assert application.config.check_timeout == 1.5
    [record] = summary_records
    assert record.querystring == "q=1"


def test_the_keyword_beats_settings_which_beat_the_environment(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "9")
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_CACHE_TTL", "8")
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE", "502")

    with override_settings(DOCKERFLOW_CHECK_TIMEOUT="2", DOCKERFLOW_HEARTBEAT_CACHE_TTL="3"):
        config = get_wsgi_application(check_timeout=1).config

    assert (config.check_timeout, config.heartbeat_cache_ttl) == (1.0, 3.0)
    assert config.heartbeat_failed_status_code == 502


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE", 404),
        ("DOCKERFLOW_CHECK_TIMEOUT", "soon"),
        ("DOCKERFLOW_HEARTBEAT_DETAILS", "maybe"),
        ("DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X Request ID"),
    ],
)
def test_a_bad_setting_fails_at_startup_naming_it(setting, value):
    with (
        override_settings(**{setting: value}),
        pytest.raises(ValueError, match=rf"settings\.{setting}\b"),
    ):
        get_wsgi_application()


@pytest.mark.parametrize(
    ("setting", "option", "value"),
    [
        ("REDIS_URL", "redis", "redis://127.0.0.1:6379/0"),
        ("DOCKERFLOW_VERSION_PATH", "version_path", "/srv/app"),
    ],
)
def test_every_variable_of_the_options_table_is_a_setting(setting, option, value):
    with override_settings(**{setting: value}):
        config = get_wsgi_application().config

    assert getattr(config, option) == value


def test_the_documented_options_apply(monkeypatch):
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    spec = importlib.util.spec_from_file_location("django_options", SNIPPETS / "django_options.py")
    assert spec is not None and spec.loader is not None
    documented = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(documented)
    settings = {name: getattr(documented, name) for name in dir(documented) if name.isupper()}

    with override_settings(**settings):
        config = get_wsgi_application().config

    assert config.check_timeout == 2.0
    assert config.heartbeat_failed_status_code == 503
    assert config.heartbeat_details is False  # follows DEBUG, off in production
    assert config.version_path == "/app"
