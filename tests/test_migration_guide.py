"""What stays different from the ``dockerflow`` package is what the migration guide says.

The ``dockerflow`` package's own test suite, ported by its imports, found a few differences
that are kept on purpose; a service's suite meets the same ones. The guide lists them in one
section, each under a bold label; each label has a test here that shows the difference against
the installed ``dockerflow`` package, so the list and the code cannot drift apart. The Django
section's warning about ``LOGGING`` is shown the same way, in a Django process of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "migration.rst"

pytest.importorskip("dockerflow.logging", reason="the dockerflow package is not installed")

SECTION = "What a ported test suite notices"
LABELS = {
    "Tracebacks",
    "A message that looks like JSON",
    "The Flask extension reads app.config once",
    "The querystring is logged as it was received",
    'url_for("dockerflow.heartbeat")',
}


def plain(text: str) -> str:
    return " ".join(text.replace("``", "").split())


def section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n{'-' * len(title)}\n")
    rest = text[start + 2 * len(title) + 3 :]
    end = re.search(r"\n[^\n]+\n-+\n", rest)
    return plain(rest[: end.start()] if end else rest)


def bullet(label: str) -> str:
    """The text of the section's item that starts with ``**label**``."""
    items = re.split(r"(?=\* \*\*)", section(SECTION))
    (found,) = [item for item in items if item.startswith(f"* **{label}**")]
    return found


@pytest.fixture
def summaries() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("request.summary")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_the_guide_lists_each_difference_a_ported_suite_meets() -> None:
    labels = set(re.findall(r"\* \*\*(.+?)\*\*", section(SECTION)))
    assert labels == LABELS


def _error_record(message: str) -> logging.LogRecord:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        exc_info = sys.exc_info()
    return logging.LogRecord("app", logging.ERROR, __file__, 1, message, None, exc_info)


def fields(formatter: logging.Formatter, message: str) -> dict[str, Any]:
    return json.loads(formatter.format(_error_record(message)))["Fields"]


def test_tracebacks_are_pythons_own_format() -> None:
    from dockerflow.logging import MozlogFormatter as TheirFormatter

    ours = fields(JsonLogFormatter(), "boom")
    theirs = fields(TheirFormatter(), "boom")

    assert ours["traceback"].startswith("Traceback (most recent call last):\n")
    assert ours["traceback"].endswith("\nValueError: bad\nvalue")
    assert theirs["traceback"].startswith("Uncaught exception:\n")
    assert theirs["traceback"].endswith("<class 'ValueError'>\nValueError('bad\\nvalue')\n")
    assert ours["error"] == theirs["error"] == "ValueError('bad\\nvalue')"
    described = bullet("Tracebacks")
    assert "Traceback (most recent call last):" in described
    assert "Uncaught exception:" in described


def test_a_message_that_looks_like_json_is_kept() -> None:
    from dockerflow.logging import MozlogFormatter as TheirFormatter

    assert fields(JsonLogFormatter(), '{"a": 1}')["msg"] == '{"a": 1}'
    assert "msg" not in fields(TheirFormatter(), '{"a": 1}')
    assert "Fields.msg" in bullet("A message that looks like JSON")


def test_the_flask_extension_reads_app_config_once(summaries: list[logging.LogRecord]) -> None:
    flask = pytest.importorskip("flask")
    from dockerflow.flask import Dockerflow as TheirDockerflow

    from dockerflow_wsgi.flask import Dockerflow

    logged = {}
    for name, extension in (("ours", Dockerflow), ("theirs", TheirDockerflow)):
        app = flask.Flask(name)
        app.add_url_rule("/", "index", lambda: "hello")
        extension(app)
        app.config["DOCKERFLOW_SUMMARY_LOG_QUERYSTRING"] = True  # after the set-up
        summaries.clear()
        webtest.TestApp(app).get("/?q=1")
        logged[name] = getattr(summaries[-1], "querystring", None)

    assert logged == {"ours": None, "theirs": "q=1"}
    assert "when Dockerflow(app) (or init_app) is called" in bullet(
        "The Flask extension reads app.config once"
    )


def _asgi_get(app: Any, path: str, query: bytes) -> None:
    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"testserver")],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1234),
        }
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:
                await asyncio.sleep(3600)
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, send)

    asyncio.run(call())


QUERY = "q=caf%C3%A9&next=%2Fhome"


def test_the_querystring_is_logged_as_received_under_asgi(
    summaries: list[logging.LogRecord],
) -> None:
    fastapi = pytest.importorskip("fastapi")
    pytest.importorskip("asgiref")
    from dockerflow.fastapi.middleware import MozlogRequestSummaryLogger, RequestIdMiddleware

    def service() -> Any:
        app = fastapi.FastAPI()
        app.get("/")(lambda: {"hello": "world"})
        return app

    theirs = service()
    theirs.add_middleware(MozlogRequestSummaryLogger)
    theirs.add_middleware(RequestIdMiddleware)
    theirs.state.DOCKERFLOW_SUMMARY_LOG_QUERYSTRING = True
    ours = DockerflowASGIMiddleware(service(), log_querystring=True)

    logged = []
    for app in (ours, theirs):
        summaries.clear()
        _asgi_get(app, "/", QUERY.encode())
        logged.append(summaries[-1].querystring)

    assert logged == [QUERY, "q=café&next=/home"]
    assert "percent-encoded" in bullet("The querystring is logged as it was received")


# A Django service with one view, its summaries as JSON lines on stdout; argv[1] is "ours" or
# "theirs" (the dockerflow package's middleware), argv[2] the LOGGING setting as JSON.
DJANGO_SERVICE = textwrap.dedent(
    """
    import json, sys
    import dockerflow_wsgi  # imported before the settings, as wsgi.py does
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    which, logging_setting = sys.argv[1], json.loads(sys.argv[2])
    THEIRS = "dockerflow.django.middleware.DockerflowMiddleware"
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[THEIRS] if which == "theirs" else [],
        DOCKERFLOW_SUMMARY_LOG_QUERYSTRING=True,
        LOGGING=logging_setting,
    )
    urlpatterns = [path("", lambda request: HttpResponse("hello"))]

    if which == "theirs":
        from django.core.wsgi import get_wsgi_application
    else:
        from dockerflow_wsgi.django import get_wsgi_application

    import webtest
    webtest.TestApp(get_wsgi_application()).get("/?" + sys.argv[3])
    """
)

MOZLOG_ON_STDOUT = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler"}},
    "root": {"handlers": ["mozlog"], "level": "INFO"},
}


def django_summaries(which: str, logging_setting: dict[str, Any]) -> list[dict[str, Any]]:
    pytest.importorskip("django")
    finished = subprocess.run(
        [sys.executable, "-c", DJANGO_SERVICE, which, json.dumps(logging_setting), QUERY],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    lines = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]
    return [line["Fields"] for line in lines if line["Type"] == "request.summary"]


def test_the_querystring_is_logged_as_received_under_django() -> None:
    [ours] = django_summaries("ours", MOZLOG_ON_STDOUT)
    [theirs] = django_summaries("theirs", MOZLOG_ON_STDOUT)

    assert (ours["querystring"], theirs["querystring"]) == (QUERY, "q=café&next=/home")
    assert "Django" in bullet("The querystring is logged as it was received")


def test_url_for_the_dockerflow_endpoints_is_gone() -> None:
    flask = pytest.importorskip("flask")
    from dockerflow.flask import Dockerflow as TheirDockerflow
    from werkzeug.routing import BuildError

    from dockerflow_wsgi.flask import Dockerflow

    theirs, ours = flask.Flask("theirs"), flask.Flask("ours")
    TheirDockerflow(theirs)
    Dockerflow(ours)
    with theirs.test_request_context():
        assert flask.url_for("dockerflow.heartbeat") == "/__heartbeat__"
    with ours.test_request_context(), pytest.raises(BuildError):
        flask.url_for("dockerflow.heartbeat")
    assert "/__heartbeat__" in bullet('url_for("dockerflow.heartbeat")')


def test_the_django_section_warns_that_logging_needs_existing_loggers_kept() -> None:
    silencing = {key: value for key, value in MOZLOG_ON_STDOUT.items()}
    del silencing["disable_existing_loggers"]  # dictConfig's default: True

    assert len(django_summaries("ours", MOZLOG_ON_STDOUT)) == 1
    assert django_summaries("ours", silencing) == []
    warning = section("A Django service")
    assert '"disable_existing_loggers": False' in warning
    assert "silences" in warning


def import_lines() -> list[tuple[str, str]]:
    """The (before, after) rows of the guide's "Change the imports" table."""
    table = GUIDE.read_text(encoding="utf-8").split("Change the imports\n", 1)[1]
    table = table.split("\n\n", 3)[3].split("\n\n", 1)[0]  # after the prose and the directive
    return re.findall(r"\* - ``(.+?)``\n\s+- ``(.+?)``", table)


@pytest.mark.parametrize(
    "module", ["dockerflow.flask", "dockerflow.sanic", "dockerflow.flask.checks.messages"]
)
def test_the_import_table_replaces_each_checks_import(module: str) -> None:
    befores = [before for before, _ in import_lines()]
    assert any(before.startswith(f"from {module} import") for before in befores), module


@pytest.mark.parametrize(
    ("before", "after"), [row for row in import_lines() if row[0].startswith("from ")]
)
def test_each_import_line_works_before_and_after(before: str, after: str) -> None:
    pytest.importorskip("sanic")
    if "django" in before:
        pytest.importorskip("django")
    for line in (before, after):
        statement = f"{line} *" if line.endswith(" import") else line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            exec(statement, {})
