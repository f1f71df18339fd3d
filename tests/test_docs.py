"""The documentation's examples run, and its tables say what the code does.

Every file in ``docs/snippets/`` is included by a page and exercised here: the framework
examples are driven with WebTest, the server configurations start the real gunicorn and uWSGI,
the logging recipes are applied and their output read, and every ``dockerflow-wsgi`` command the
docs show is run. The option, field and migration tables are parsed with docutils and compared
with the code (and the option table with DESIGN.md), so the docs cannot drift from either.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import importlib
import importlib.util
import inspect
import json
import logging
import logging.config
import os
import re
import runpy
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
import webtest
from docutils import nodes
from docutils.core import publish_doctree
from dotted_names import resolve
from prometheus_client.parser import text_string_to_metric_families
from server_process import ServerProcess, unused_port

from dockerflow_wsgi import DockerflowMiddleware, checks, current_request_id
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.config import Config
from dockerflow_wsgi.logging import MozlogHandler

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SNIPPETS = DOCS / "snippets"
DESIGN = REPO.parent / "shared" / "DESIGN.md"
BIN = Path(sys.executable).parent

PAGES = [
    "quickstart",
    "django",
    "asgi",
    "sanic",
    "configuration",
    "checks",
    "logging",
    "request-ids",
    "deployment",
    "probes",
    "observability",
    "opentelemetry",
    "migration",
    "performance",
    "changelog",
    "api",
]

# A commit for the commands that write version.json.
COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Variables that change what the middleware or `dockerflow-wsgi version-json` do.
_CI_VARIABLES = (
    "GITHUB_ACTIONS",
    "CIRCLECI",
    "GITLAB_CI",
    "GIT_COMMIT",
    "VERSION",
    "SOURCE_URL",
    "BUILD_URL",
)
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY")


# -- reading the docs ----------------------------------------------------------------------------


def read(page: str) -> str:
    return (DOCS / f"{page}.rst").read_text(encoding="utf-8")


def rst_tables(page: str) -> list[list[list[nodes.entry]]]:
    """Every table of ``page`` as rows of cells (docutils ``entry`` nodes), header row first.

    Plain docutils does not know Sphinx's roles and directives; it reports them and goes on,
    which leaves the tables intact.
    """
    doctree = publish_doctree(
        read(page),
        settings_overrides={"report_level": 5, "halt_level": 5, "file_insertion_enabled": False},
    )
    return [
        [list(row.findall(nodes.entry)) for row in table.findall(nodes.row)]
        for table in doctree.findall(nodes.table)
    ]


def text(cell: nodes.entry) -> str:
    return " ".join(cell.astext().split())


def literals(cell: nodes.entry) -> list[str]:
    return [literal.astext() for literal in cell.findall(nodes.literal)]


def tables(page: str, *header: str) -> list[list[list[nodes.entry]]]:
    """The rows (without the header) of each table of ``page`` whose header starts so."""
    found = [
        rows[1:]
        for rows in rst_tables(page)
        if tuple(text(cell) for cell in rows[0][: len(header)]) == header
    ]
    assert found, f"{page}.rst has no table headed {header}"
    return found


def table(page: str, *header: str) -> list[list[nodes.entry]]:
    """The rows (without the header) of the one table of ``page`` whose header starts so."""
    (rows,) = tables(page, *header)
    return rows


def named(cell: nodes.entry, package: str) -> list[str]:
    """The dotted names a cell gives: ``a.b.C``, ``D`` (short for ``a.b.D``), ...

    A short name counts only right after a comma that follows a name of ``package``.
    """
    names: list[str] = []
    for paragraph in cell.findall(nodes.paragraph):
        base = None
        for child in paragraph.children:
            if not isinstance(child, nodes.literal):
                if child.astext().strip() != ",":
                    base = None
                continue
            literal = child.astext()
            if literal.startswith(package + ".") and re.fullmatch(r"[\w.]+", literal):
                names.append(literal)
                base = literal.rsplit(".", 1)[0]
            elif base is not None and literal.isidentifier():
                names.append(f"{base}.{literal}")
            else:
                base = None
    return names


# -- running the snippets ------------------------------------------------------------------------


def snippet(name: str) -> Any:
    """Import ``docs/snippets/<name>.py`` (once) as the module ``name``.

    The logging an example sets up for itself (``dockerflow_wsgi.logging.configure()``) is
    undone, or every later test would write its records to stdout.
    """
    if str(SNIPPETS) not in sys.path:
        sys.path.insert(0, str(SNIPPETS))
    with isolated_logging():
        return importlib.import_module(name)


def fresh_snippet(name: str) -> Any:
    """Import ``docs/snippets/<name>.py`` anew, running its registrations again."""
    sys.modules.pop(name, None)
    return snippet(name)


@contextlib.contextmanager
def isolated_logging() -> Iterator[None]:
    """Let a test call dictConfig, then put every logger back as it was."""
    manager = logging.root.manager

    def every_logger() -> list[logging.Logger]:
        found = [item for item in manager.loggerDict.values() if isinstance(item, logging.Logger)]
        return [logging.root, *found]

    saved = {
        logger: (logger.level, list(logger.handlers), list(logger.filters), logger.propagate)
        for logger in every_logger()
    }
    disabled = {logger: logger.disabled for logger in every_logger()}
    try:
        yield
    finally:
        for logger in every_logger():
            level, handlers, filters, propagate = saved.get(logger, (logging.NOTSET, [], [], True))
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers = handlers
            logger.filters = filters
            logger.propagate = propagate
            logger.disabled = disabled.get(logger, False)
            logger.setLevel(level)


def clean_environment(**extra: str) -> dict[str, str]:
    """The environment for a subprocess, without anything that would change the defaults."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DOCKERFLOW_", "GITHUB_", "CIRCLE_", "CI_"))
        and name not in ("DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", *_CI_VARIABLES)
    }
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``dockerflow-wsgi args`` as the docs do (through ``python -m``, same code)."""
    return subprocess.run(
        [sys.executable, "-m", "dockerflow_wsgi", *args],
        cwd=cwd,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@contextlib.contextmanager
def server_process(command: list[str], port: int, **env: str) -> Iterator[dict[str, str]]:
    """Start a server from ``docs/snippets``, wait for it to answer, stop it with SIGTERM.

    Yields a dict that holds the server's ``stdout`` once it has stopped.
    """
    output: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="docs-server-") as logs:
        server = ServerProcess(
            command,
            cwd=SNIPPETS,
            env=clean_environment(PORT=str(port), **env),
            stdout_path=Path(logs) / "stdout",
            stderr_path=Path(logs) / "stderr",
        ).start()
        try:
            server.wait_until(
                lambda: get(f"http://127.0.0.1:{port}/__lbheartbeat__")[0] == 200, 30, 0.1
            )
            yield output
        finally:
            server.stop()
            output["stdout"] = server.output()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def wsgi_server(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    logging.getLogger("myservice.views").info("Saying hello")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- the pages -----------------------------------------------------------------------------------


def test_the_index_lists_every_page_in_order() -> None:
    toctree = read("index").split(".. toctree::", 1)[1]
    listed = [line.strip() for line in toctree.splitlines()[1:] if line.strip()]
    assert [entry for entry in listed if not entry.startswith(":")] == PAGES


def test_every_snippet_is_shown_on_a_page() -> None:
    included = set()
    for page in PAGES:
        included.update(re.findall(r"\.\. literalinclude:: snippets/(\S+)", read(page)))
    on_disk = {path.name for path in SNIPPETS.iterdir() if path.is_file()}
    assert on_disk - included == set(), "snippets no page shows"
    assert included - on_disk == set(), "pages include missing snippets"


# -- quickstart ----------------------------------------------------------------------------------

FRAMEWORK_SNIPPETS = [
    # (snippet, how to get the WSGI app from it, framework it needs)
    ("flask_explicit", "app", "flask"),
    ("flask_shim", "app", "flask"),
    ("flask_factory", "create_app()", "flask"),
    ("django_wsgi", "application", "django"),
    ("pyramid_app", "app", "pyramid"),
    ("falcon_app", "app", "falcon"),
    ("bare_wsgi", "app", None),
]


@pytest.mark.parametrize(("name", "attribute", "framework"), FRAMEWORK_SNIPPETS)
def test_quickstart_snippet_follows_dockerflow(
    name: str,
    attribute: str,
    framework: Optional[str],
    summary_records: list[logging.LogRecord],
) -> None:
    if framework is not None:
        pytest.importorskip(framework, reason=f"{framework} is not installed")
    assert f".. literalinclude:: snippets/{name}.py" in read("quickstart")
    module = snippet(name)
    with isolated_logging():  # a factory sets up the example's logging too
        app = module.create_app() if attribute == "create_app()" else getattr(module, attribute)
    client = webtest.TestApp(app)

    assert client.get("/__lbheartbeat__").status_int == 200
    heartbeat = client.get("/__heartbeat__")
    assert heartbeat.content_type == "application/json"
    assert heartbeat.json == {"status": "ok", "checks": {}, "details": {}}
    version = client.get("/__version__", status=[200, 404])  # 404 unless the cwd has one
    assert version.content_type == "application/json"

    response = client.get("/", headers={"X-Request-ID": f"docs-{name}"})
    assert response.status_int == 200
    assert response.headers["X-Request-ID"] == f"docs-{name}"
    assert response.json == {"message": "hello", "request_id": f"docs-{name}"}

    summary = [record for record in summary_records if record.path == "/"]
    assert len(summary) == 1
    assert (summary[0].rid, summary[0].code, summary[0].method) == (f"docs-{name}", 200, "GET")


def test_the_flask_shim_keeps_an_id_the_app_set_itself() -> None:
    pytest.importorskip("flask")
    from flask import Flask, g

    from dockerflow_wsgi.flask import Dockerflow

    app = Flask(__name__)
    Dockerflow(app)

    @app.before_request
    def own_id() -> None:
        g.request_id = "from-the-app"

    @app.get("/")
    def view() -> str:
        return g.request_id

    assert webtest.TestApp(app).get("/").text == "from-the-app"


def _gunicorn() -> Path:
    gunicorn = BIN / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed")
    return gunicorn


@pytest.mark.servers
def test_gunicorn_serves_a_snippet_with_the_documented_config() -> None:
    pytest.importorskip("flask")
    port = unused_port()
    command = [str(_gunicorn()), "--config", "gunicorn.conf.py", "flask_shim:app"]
    with server_process(command, port, WEB_CONCURRENCY="1") as output:
        status, headers, body = get(f"http://127.0.0.1:{port}/", **{"X-Request-ID": "gun-1"})
        assert status == 200
        assert headers["X-Request-ID"] == "gun-1"
        assert json.loads(body)["request_id"] == "gun-1"
        assert get(f"http://127.0.0.1:{port}/__heartbeat__")[0] == 200
    lines = json_lines(output["stdout"])
    summaries = [line for line in lines if line["Type"] == "request.summary"]
    (summary,) = [line for line in summaries if line["Fields"]["rid"] == "gun-1"]
    assert (summary["Fields"]["path"], summary["Fields"]["code"]) == ("/", 200)
    assert all(line["Logger"] == "myservice" for line in lines)
    assert any(line["Type"] == "gunicorn.error" for line in lines), "gunicorn's messages as JSON"


def _posts_counted(url: str) -> float:
    return _scrape_posts(url)[0]


def _scrape_posts(url: str) -> tuple[float, str]:
    """The POSTs a scrape counts, and what it was: its status and, when the count is not in
    it, the start of its body (a failure should say which scrape went wrong, and how)."""
    status, _, body = get(f"{url}/__metrics__")
    text = body.decode(errors="replace")
    found = re.search(
        r'^dockerflow_requests_total\{code="200",method="POST",route=""\} (\S+)$', text, re.M
    )
    if found:
        return float(found.group(1)), f"{status}"
    return 0.0, f"{status} without the POST count: {text[:600]!r}"


@pytest.mark.servers
def test_gunicorn_adds_up_the_metrics_of_its_workers(tmp_path: Path) -> None:
    command = [str(_gunicorn()), "--config", "gunicorn_prometheus.conf.py", "bare_wsgi:app"]
    environment = {
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DOCKERFLOW_METRICS": "true",
        # Workers replaced every 15 requests: the values of those gone must still count.
        "GUNICORN_CMD_ARGS": "--max-requests 15",
    }
    for _ in ("an earlier run", "this run"):
        port = unused_port()
        with server_process(command, port, **environment):
            url = f"http://127.0.0.1:{port}"
            # Each run counts from its start: the earlier run's files were wiped.
            assert _posts_counted(url) == 0
            for _ in range(30):
                request = urllib.request.Request(f"{url}/", data=b"", method="POST")
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 200
            # A request is counted once its response is closed, just after the client has it.
            deadline = time.monotonic() + 10
            while (counted := _posts_counted(url)) < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            # Whichever worker answers, it counts every worker's requests, gone ones' too.
            scrapes = [(counted, "polled"), *(_scrape_posts(url) for _ in range(5))]
            assert [count for count, _ in scrapes] == [30.0] * 6, scrapes
        writers = {path.name.rsplit("_", 1)[1] for path in tmp_path.glob("counter_*.db")}
        assert len(writers) >= 3, "several workers served and wrote their values"


def test_the_scrape_config_asks_for_the_metrics_path() -> None:
    (job,) = _yaml("prometheus-scrape.yaml")["scrape_configs"]
    assert job["metrics_path"] == "/__metrics__"


def test_the_dashboard_queries_name_metrics_the_middleware_exposes() -> None:
    app = webtest.TestApp(DockerflowMiddleware(hello, metrics=True, checks=[("disk", lambda: [])]))
    app.get("/")
    app.get("/__heartbeat__")
    exposed = {
        sample.name
        for family in text_string_to_metric_families(app.get("/__metrics__").text)
        for sample in family.samples
    }
    queries = (SNIPPETS / "dashboard.promql").read_text(encoding="utf-8")
    named = set(re.findall(r"\bdockerflow_[a-z_]+", queries))
    assert len(named) == 5
    assert named <= exposed


def test_records_of_a_traced_request_carry_its_span(capsys: pytest.CaptureFixture[str]) -> None:
    module = snippet("otel_logging")
    with isolated_logging():
        handler = MozlogHandler(stream=sys.stdout, name="myservice")
        logging.getLogger("myservice").addHandler(handler)
        logging.getLogger("myservice").setLevel(logging.INFO)
        response = webtest.TestApp(module.app).get("/")
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    fields = line["Fields"]
    assert fields["rid"] == response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", fields["otelTraceID"])
    assert re.fullmatch(r"[0-9a-f]{16}", fields["otelSpanID"])
    assert fields["otelTraceSampled"] is True


@pytest.mark.servers
def test_uwsgi_serves_a_snippet_with_the_documented_ini(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    uwsgi = BIN / "uwsgi"
    if not uwsgi.exists():
        pytest.skip("uWSGI is not installed")
    pytest.importorskip("sqlalchemy")
    ini = (SNIPPETS / "uwsgi.ini").read_text(encoding="utf-8")
    assert "module = myservice.wsgi:application" in ini
    config = tmp_path / "uwsgi.ini"
    # An app with checks: they run on the middleware's threads, which enable-threads allows.
    config.write_text(ini.replace("myservice.wsgi:application", "migrated_flask:app"))
    port = unused_port()
    command = [str(uwsgi), "--ini", str(config), "--processes", "1"]
    with server_process(command, port, DOCKERFLOW_CHECK_TIMEOUT="2"):
        status, headers, _ = get(f"http://127.0.0.1:{port}/", **{"X-Request-ID": "uwsgi-1"})
        assert (status, headers["X-Request-ID"]) == (404, "uwsgi-1")
        status, _, body = get(f"http://127.0.0.1:{port}/__heartbeat__")
        assert (status, json.loads(body)["checks"]) == (
            200,
            {"storage": "ok", "check_database_connected": "ok"},
        )


# -- configuration -------------------------------------------------------------------------------


def option_table() -> list[list[nodes.entry]]:
    """The rows of the configuration page's options table, as the docs build renders it from
    ``dockerflow_wsgi.options`` (the ``dockerflow-options`` directive of ``docs/conf.py``)."""
    if str(DOCS) not in sys.path:
        sys.path.insert(0, str(DOCS))
    from option_table import option_table_rst

    doctree = publish_doctree(option_table_rst(), settings_overrides={"report_level": 5})
    (rows,) = [list(table.findall(nodes.row)) for table in doctree.findall(nodes.table)]
    header, *options = [list(row.findall(nodes.entry)) for row in rows]
    assert [text(cell) for cell in header] == [
        "keyword",
        "environment variable",
        "default",
        "meaning",
    ]
    return options


def test_the_configuration_page_shows_the_option_table() -> None:
    options_section = read("configuration").split("\nOptions\n-------\n", 1)[1].split("\n---", 1)[0]
    assert "\n.. dockerflow-options::\n" in options_section


def documented_options() -> list[tuple[str, Optional[str], str]]:
    """(keyword, variable or None, default) for each row of the configuration table."""
    rows = option_table()
    options = []
    for keyword, variable, default, _ in rows:
        names = literals(variable)
        options.append((text(keyword), names[0] if names else None, text(default)))
    return options


def design_options() -> dict[str, Optional[str]]:
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} is not beside the repository")
    section = DESIGN.read_text(encoding="utf-8").split("## DockerflowMiddleware", 1)[1]
    section = section.split("\n## ", 1)[0]
    options = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            variable = re.search(r"`([A-Z][A-Z0-9_]+)`", cells[1])
            options[cells[0].strip("`")] = variable.group(1) if variable else None
    return options


def test_the_option_table_lists_every_keyword_in_signature_order() -> None:
    parameters = inspect.signature(DockerflowMiddleware.__init__).parameters.values()
    keywords = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert [keyword for keyword, _, _ in documented_options()] == keywords


#: Options DESIGN.md already describes whose issue has not landed, by that issue's number: the
#: table leaves them out until they exist. Each landing issue takes its options out of here.
NOT_YET_BUILT: dict[str, int] = {}


def test_the_option_table_matches_design_md() -> None:
    documented = {keyword: variable for keyword, variable, _ in documented_options()}
    designed = design_options()
    assert set(NOT_YET_BUILT) <= set(designed)
    assert documented == {k: v for k, v in designed.items() if k not in NOT_YET_BUILT}


@pytest.mark.parametrize("keyword", sorted(NOT_YET_BUILT))
def test_an_option_not_yet_built_is_refused(keyword: str) -> None:
    """Once an option exists, it belongs in the table: this fails until it leaves the list."""
    with pytest.raises(TypeError, match=keyword):
        DockerflowMiddleware(lambda environ, start_response: [], **{keyword: None})


# A valid value of each variable, different from its default.
ENVIRONMENT_SAMPLES = {
    "DOCKERFLOW_VERSION_PATH": "/srv/myservice",
    "DOCKERFLOW_SILENCED_CHECKS": "myservice.health.W001,myservice.health.W002",
    "DOCKERFLOW_CHECK_TIMEOUT": "2.5",
    "DOCKERFLOW_HEARTBEAT_CACHE_TTL": "10",
    "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE": "503",
    "DOCKERFLOW_REQUEST_ID_HEADER_NAME": "X-Correlation-ID",
    "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING": "on",
    "DOCKERFLOW_HEARTBEAT_DETAILS": "off",
    "DOCKERFLOW_ERROR_ENDPOINT": "yes",
    "DOCKERFLOW_SUMMARY_LOG_PROBES": "0",
    "DATABASE_URL": "sqlite://",
    "REDIS_URL": "redis://localhost:6379/0",
    "ALEMBIC_CONFIG": "alembic.ini",
    "DOCKERFLOW_HEARTBEAT_GROUPS": "readiness=database,redis;startup=migrations",
    "DOCKERFLOW_CHECK_TIMEOUTS": "redis=0.5,database=2",
    "DOCKERFLOW_NON_CRITICAL_CHECKS": "search,recommendations",
    "DOCKERFLOW_HEARTBEAT_INTERVAL": "1",
    "DOCKERFLOW_METRICS": "on",
    "DOCKERFLOW_STATE_DIR": "/run/myservice",
    "DOCKERFLOW_DRAIN_GROUPS": "readiness,startup",
    "DOCKERFLOW_HEARTBEAT_SHARED": "on",
    "DOCKERFLOW_TRANSITION_RUNS": "3",
    "DOCKERFLOW_HEALTH_LOG_REPEAT": "60",
    "DOCKERFLOW_SUMMARY_SAMPLE_RATE": "0.25",
    "DOCKERFLOW_SUMMARY_SLOW_MS": "250",
}


def test_each_documented_variable_sets_its_option() -> None:
    with_variables = [(kw, var) for kw, var, _ in documented_options() if var is not None]
    assert {var for _, var in with_variables} == set(ENVIRONMENT_SAMPLES)
    default = Config.from_options(environ={})
    for keyword, variable in with_variables:
        configured = Config.from_options(environ={variable: ENVIRONMENT_SAMPLES[variable]})
        assert getattr(configured, keyword) != getattr(default, keyword), variable


def test_the_keyword_wins_over_the_variable() -> None:
    environ = {"DOCKERFLOW_CHECK_TIMEOUT": "2", "DOCKERFLOW_HEARTBEAT_DETAILS": "off"}
    config = Config.from_options(check_timeout=1, heartbeat_details=True, environ=environ)
    assert (config.check_timeout, config.heartbeat_details) == (1, True)


def _as_documented(value: Any) -> str:
    if value is None or value == frozenset() or value == {}:
        return "none"
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_the_documented_defaults_are_the_defaults() -> None:
    default = Config.from_options(environ={})
    for keyword, _, documented in documented_options():
        if keyword in ("version_path", "version_callback", "checks", "state_dir"):
            continue
        assert documented.split(" (")[0] == _as_documented(getattr(default, keyword)), keyword
    assert Config.from_options(environ={}).version_path == os.getcwd()
    uid = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    state_dir = os.path.join(tempfile.gettempdir(), f"dockerflow-{uid}")
    assert Config.from_options(environ={}).state_dir == state_dir


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        *[(w, True) for w in ("1", "true", "yes", "on", "TRUE", "Yes", "ON")],
        *[(w, False) for w in ("0", "false", "no", "off", "FALSE", "No", "Off")],
    ],
)
def test_documented_boolean_words(word: str, expected: bool) -> None:
    assert Config.from_options(environ={"DOCKERFLOW_ERROR_ENDPOINT": word}).error_endpoint is (
        expected
    )


def test_a_blank_variable_counts_as_unset() -> None:
    assert Config.from_options(environ={"DOCKERFLOW_CHECK_TIMEOUT": "  "}).check_timeout == 5


def test_the_documented_invalid_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    page = read("configuration")
    value = re.search(r"# with DOCKERFLOW_CHECK_TIMEOUT=(\S+)", page).group(1)  # type: ignore[union-attr]
    message = re.search(r"ValueError: (.+)", page).group(1)  # type: ignore[union-attr]
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", value)
    with pytest.raises(ValueError) as raised:
        DockerflowMiddleware(hello)
    assert str(raised.value) == message


# -- checks --------------------------------------------------------------------------------------


def _yaml(name: str) -> Any:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    return yaml.safe_load((SNIPPETS / name).read_text(encoding="utf-8"))


def _container(name: str) -> dict[str, Any]:
    """The one container of the Deployment in snippet ``name``."""
    (container,) = _yaml(name)["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def _probe_container() -> tuple[dict[str, Any], dict[str, str]]:
    """The probes' container and its plain environment (not the variables from Secrets)."""
    container = _container("kubernetes-probes.yaml")
    return container, {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_kubernetes_probes_use_the_right_paths_and_timeouts() -> None:
    container, env = _probe_container()
    config = Config.from_options(environ=env)
    port = int(env["PORT"])
    probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "liveness", "readiness")}
    assert probes["liveness"]["httpGet"] == {"path": "/__lbheartbeat__", "port": port}
    assert probes["startup"]["httpGet"] == {"path": "/__heartbeat__/startup", "port": port}
    assert probes["readiness"]["httpGet"] == {"path": "/__heartbeat__/readiness", "port": port}
    for kind in ("startup", "readiness"):
        assert probes[kind]["timeoutSeconds"] > config.check_timeout
    # The readiness group holds no check of a dependency that every pod shares.
    shared = {"check_database_connected", "check_redis_connected", "check_migrations_applied"}
    assert config.heartbeat_groups["readiness"]
    assert not set(config.heartbeat_groups["readiness"]) & shared
    assert config.heartbeat_interval > 0


def test_the_kubernetes_probes_are_answered_by_a_service_with_the_containers_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    container, env = _probe_container()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    fresh_snippet("pod_local_check")
    middleware = DockerflowMiddleware(hello)
    try:
        app = webtest.TestApp(middleware)
        for kind in ("startup", "liveness", "readiness"):
            path = container[f"{kind}Probe"]["httpGet"]["path"]
            response = app.get(path)
            assert response.status_int == 200, (kind, response.text)
        # Each group found the checks it names: the built-in one, the snippet's.
        assert app.get("/__heartbeat__/startup").json["checks"] == {
            "check_database_connected": "ok"
        }
        assert app.get("/__heartbeat__/readiness").json["checks"] == {"disk_space": "ok"}
    finally:
        middleware.core.background.stop()


def test_the_pod_local_check_fails_when_the_scratch_disk_is_full() -> None:
    module = fresh_snippet("pod_local_check")
    assert module.disk_space() == []
    assert checks.get_checks() == {"disk_space": module.disk_space}
    # The same check with more than the volume holds as its minimum: as if the disk were full.
    full = functools.partial(module.disk_space, error_below=1 << 62)
    (message,) = full()
    assert message.level == checks.ERROR and message.id == "dockerflow.health.E201"
    assert message.msg.endswith(f"at {module.SCRATCH}, below 4.0 EiB")


def test_the_ready_made_checks_are_registered_under_their_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path))
    monkeypatch.setenv("SIDECAR_HEALTH_URL", f"http://127.0.0.1:{unused_port()}/health")
    fresh_snippet("ready_made_checks")

    results = checks.run_checks()

    assert results.statuses == {"uploads_disk": "ok", "sidecar": "error"}
    assert list(results.details["sidecar"]["messages"]) == ["dockerflow.health.E210"]


def test_the_exec_probe_runs_the_heartbeat_command() -> None:
    probe = _container("kubernetes-exec-probe.yaml")["readinessProbe"]
    program, *args = probe["exec"]["command"]
    assert program == "dockerflow-wsgi"
    assert args == [
        "heartbeat",
        "--app",
        "myservice.wsgi:application",
        "--group",
        "readiness",
    ]
    assert probe["timeoutSeconds"] > Config.from_options(environ={}).check_timeout


def _healthcheck_command(name: str) -> list[str]:
    dockerfile = (SNIPPETS / name).read_text(encoding="utf-8").replace("\\\n", " ")
    return json.loads(re.search(r"HEALTHCHECK .*?CMD (\[.*\])", dockerfile).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize(("failing", "healthy"), [(False, True), (True, False)])
def test_the_http_healthcheck_reports_the_heartbeat(failing: bool, healthy: bool) -> None:
    program, flag, code = _healthcheck_command("healthcheck-http.Dockerfile")
    assert (program, flag) == ("python", "-c")

    def disk() -> list[checks.CheckMessage]:
        return [checks.Error("disk full", id="myservice.health.E001")] if failing else []

    app = DockerflowMiddleware(hello, checks=[("disk", disk)], log_probes=False)
    with wsgi_server(app) as url:
        port = url.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-c", code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert (result.returncode == 0) is healthy


def test_the_cli_healthcheck_is_the_exec_probe() -> None:
    command = _healthcheck_command("healthcheck-cli.Dockerfile")
    # Docker's health is the whole heartbeat's; the readiness probe asks its group only.
    probe = _container("kubernetes-exec-probe.yaml")["readinessProbe"]
    assert command == probe["exec"]["command"][:4]


def test_the_heartbeat_without_details_still_logs_them(
    dockerflow_records: list[logging.LogRecord],
) -> None:
    def disk() -> list[checks.CheckMessage]:
        return [checks.Error("disk full", id="myservice.health.E001")]

    app = DockerflowMiddleware(hello, checks=[("disk", disk)], heartbeat_details=False)
    response = webtest.TestApp(app).get("/__heartbeat__", status=500)
    assert response.json == {"status": "error"}
    (record,) = [r for r in dockerflow_records if getattr(r, "details", None)]
    assert record.levelno == logging.ERROR
    assert record.details["disk"]["messages"] == {"myservice.health.E001": "disk full"}


# -- logging -------------------------------------------------------------------------------------


def _request(app: Callable[..., Any], request_id: str, path: str = "/notes?tag=x") -> None:
    webtest.TestApp(app).get(path, headers={"X-Request-ID": request_id, "User-Agent": "docs"})


def test_the_json_recipe_writes_mozlog_with_request_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = snippet("logging_json")
    with isolated_logging():
        logging.config.dictConfig(recipe.LOGGING)
        _request(DockerflowMiddleware(hello, log_querystring=True), "docs-json-1")
        lines = json_lines(capsys.readouterr().out)

    by_type = {line["Type"]: line for line in lines}
    view, summary = by_type["myservice.views"], by_type["request.summary"]
    assert view["Fields"] == {"rid": "docs-json-1", "msg": "Saying hello"}
    assert summary["Logger"] == "myservice"
    assert summary["Fields"]["rid"] == "docs-json-1"

    mozlog, fields = (
        [literals(row[0])[0] for row in rows] for rows in tables("logging", "field", "value")
    )
    assert set(summary) == set(mozlog), "the mozlog fields table"
    # Every field the table lists, but those a request has only sometimes: this one has no
    # traceparent and no OpenTelemetry span, no route (a bare app), and no sampling.
    conditional = {"trace_id", "span_id", "route", "sample_rate"}
    assert set(summary["Fields"]) == set(fields) - conditional, "the request.summary fields table"
    assert summary["Severity"] == 6
    assert summary["EnvVersion"] == "2.0"


def test_the_json_recipe_keeps_loggers_made_before_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    early = logging.getLogger("myservice.early")
    recipe = snippet("logging_json")
    with isolated_logging():
        logging.config.dictConfig(recipe.LOGGING)
        early.warning("Still here")
        assert json_lines(capsys.readouterr().out)[-1]["Fields"]["msg"] == "Still here"


def test_client_values_are_clipped_as_documented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = " ".join(read("logging").split())
    assert "cut to 1024 characters, followed by ``...[truncated]``" in page
    recipe = snippet("logging_json")
    with isolated_logging():
        logging.config.dictConfig(recipe.LOGGING)
        webtest.TestApp(DockerflowMiddleware(hello)).get("/", headers={"User-Agent": "a" * 5000})
        (summary,) = [
            line
            for line in json_lines(capsys.readouterr().out)
            if line["Type"] == "request.summary"
        ]
    assert summary["Fields"]["agent"] == "a" * 1024 + "...[truncated]"


def test_log_probes_off_writes_no_summary_for_probes(
    summary_records: list[logging.LogRecord],
) -> None:
    client = webtest.TestApp(DockerflowMiddleware(hello, log_probes=False))
    for path in ("/__lbheartbeat__", "/__heartbeat__"):
        client.get(path)
    client.get("/__version__", status=404)
    client.get("/")
    assert [record.path for record in summary_records] == ["/"]


@pytest.mark.skipif(sys.version_info < (3, 10), reason="Formatter defaults need Python 3.10")
def test_the_readable_recipe_shows_request_ids(capsys: pytest.CaptureFixture[str]) -> None:
    recipe = snippet("logging_dev")
    with isolated_logging():
        logging.config.dictConfig(recipe.LOGGING)
        logging.getLogger("myservice").info("Service starting")
        _request(DockerflowMiddleware(hello), "docs-dev-1")
        lines = capsys.readouterr().err.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(rf"{stamp} INFO \[-\] myservice: Service starting", lines[0])
    assert re.fullmatch(rf"{stamp} INFO \[docs-dev-1\] myservice.views: Saying hello", lines[1])
    assert len(lines) == 2, "request.summary is quiet below WARNING"


def test_the_django_recipe_writes_mozlog(capsys: pytest.CaptureFixture[str]) -> None:
    recipe = snippet("django_logging")
    with isolated_logging():
        logging.config.dictConfig(recipe.LOGGING)
        _request(DockerflowMiddleware(hello), "docs-django-1")
        logging.getLogger("django.request").warning("Not Found: /nowhere")
        lines = json_lines(capsys.readouterr().out)
    assert [line["Type"] for line in lines] == [
        "myservice.views",
        "request.summary",
        "django.request",
    ]
    assert {line["Logger"] for line in lines} == {"myproject"}


def test_the_gunicorn_config_is_what_the_logging_page_shows() -> None:
    settings = runpy.run_path(str(SNIPPETS / "gunicorn.conf.py"))
    assert settings["accesslog"] is None
    assert settings["worker_class"] == "gthread"
    logconfig = settings["logconfig_dict"]
    assert logconfig["disable_existing_loggers"] is False
    # A MozlogHandler, which the application's configure() call replaces rather than doubles.
    assert logconfig["handlers"]["stdout"]["()"] == "dockerflow_wsgi.logging.MozlogHandler"
    assert logconfig["root"]["handlers"] == logconfig["loggers"]["gunicorn.error"]["handlers"]


# -- request ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("a" * 128, True),
        ("Root=1-5e1b4151-5ac6c58f5b5daa0c8d7f6c1a;Sampled=1", True),
        ("a" * 129, False),
        ("", False),
        ("two words", False),
        ("tab\there", False),
        ("caf\u00e9", False),
    ],
)
def test_request_id_rules(sent: str, kept: bool, summary_records: list[logging.LogRecord]) -> None:
    environ = {"HTTP_X_REQUEST_ID": sent.encode().decode("latin-1")}
    response = webtest.TestApp(DockerflowMiddleware(hello)).get("/", extra_environ=environ)
    echoed = response.headers["X-Request-ID"]
    if kept:
        assert echoed == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)
        assert echoed[12] == "4", "a version 4 UUID"
    assert summary_records[-1].rid == echoed


def test_the_request_id_is_in_the_environ_and_the_context() -> None:
    seen = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen["environ"] = environ["dockerflow.request_id"]
        seen["context"] = current_request_id()
        start_response("200 OK", [])
        return []

    webtest.TestApp(DockerflowMiddleware(app)).get("/", headers={"X-Request-ID": "ctx-1"})
    assert seen == {"environ": "ctx-1", "context": "ctx-1"}
    assert current_request_id() is None


def test_another_request_id_header(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "DOCKERFLOW_REQUEST_ID_HEADER_NAME=X-Correlation-ID" in read("request-ids")
    monkeypatch.setenv("DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X-Correlation-ID")
    response = webtest.TestApp(DockerflowMiddleware(hello)).get(
        "/", headers={"X-Correlation-ID": "corr-1", "X-Request-ID": "ignored"}
    )
    assert response.headers["X-Correlation-ID"] == "corr-1"
    monkeypatch.setenv("DOCKERFLOW_REQUEST_ID_HEADER_NAME", "not a header")
    with pytest.raises(ValueError, match="DOCKERFLOW_REQUEST_ID_HEADER_NAME"):
        DockerflowMiddleware(hello)


def test_the_propagation_examples_pass_the_id_on(no_proxy: None) -> None:
    pytest.importorskip("httpx")
    pytest.importorskip("requests")
    propagation = snippet("propagation")
    received: list[Optional[str]] = []

    def downstream(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        received.append(environ.get("HTTP_X_REQUEST_ID"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"[]" if environ["PATH_INFO"].endswith("/orders") else b'{"name": "Ada"}']

    with wsgi_server(downstream) as base_url:

        def upstream(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            assert propagation.fetch_profile("42", base_url) == {"name": "Ada"}
            propagation.session.get(f"{base_url}/orders", timeout=5)
            propagation.fetch_status(base_url)
            start_response("204 No Content", [])
            return []

        client = webtest.TestApp(DockerflowMiddleware(upstream))
        client.get("/", headers={"X-Request-ID": "trace-42"}, status=204)
        assert received == ["trace-42"] * 3

        async def async_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert await propagation.fetch_orders("42", base_url) == []
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def call_async_upstream() -> None:
            transport = httpx.ASGITransport(app=DockerflowASGIMiddleware(async_upstream))
            async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as c:
                response = await c.get("/", headers={"X-Request-ID": "trace-43"})
            assert response.status_code == 204

        asyncio.run(call_async_upstream())
        assert received[-1] == "trace-43"

        propagation.fetch_profile("42", base_url)
        propagation.session.get(f"{base_url}/outside", timeout=5)
        propagation.fetch_status(base_url)
        assert received[-3:] == [None] * 3, "no header outside a request"


# -- deployment ----------------------------------------------------------------------------------


def test_the_dockerfile_follows_dockerflow() -> None:
    dockerfile = (SNIPPETS / "Dockerfile").read_text(encoding="utf-8")
    assert "useradd --uid 10001 --gid 10001" in dockerfile
    assert "groupadd --gid 10001 app" in dockerfile
    assert "WORKDIR /app" in dockerfile
    assert "USER app" in dockerfile
    assert "RUN dockerflow-wsgi version-json --output /app/version.json" in dockerfile
    assert set(re.findall(r"^ARG (\w+)", dockerfile, re.MULTILINE)) == {
        "GIT_COMMIT",
        "VERSION",
        "SOURCE_URL",
        "BUILD_URL",
    }
    assert re.search(r"DOCKERFLOW_VERSION_PATH=/app\b", dockerfile)


def test_the_build_arguments_make_version_json(tmp_path: Path) -> None:
    result = cli(
        "version-json",
        "--output",
        str(tmp_path / "version.json"),
        cwd=tmp_path,
        GIT_COMMIT=COMMIT,
        VERSION="v1.4.2",
        SOURCE_URL="https://github.com/acme/myservice",
        BUILD_URL="https://ci.example.com/builds/1234",
    )
    assert result.returncode == 0, result.stderr
    documented = re.search(r"(\{\s*\"source\".*?\})", read("deployment"), re.DOTALL).group(1)  # type: ignore[union-attr]
    written = json.loads((tmp_path / "version.json").read_text(encoding="utf-8"))
    assert written == json.loads(documented)


def test_without_a_commit_version_json_fails_the_build(tmp_path: Path) -> None:
    result = cli("version-json", "--output", str(tmp_path / "version.json"), cwd=tmp_path)
    assert result.returncode == 1
    assert not (tmp_path / "version.json").exists()


CI_PROVIDERS = {
    "github-actions.yml": {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": COMMIT,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/myservice",
        "GITHUB_RUN_ID": "42",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "v1.4.2",
    },
    "circleci.yml": {
        "CIRCLECI": "true",
        "CIRCLE_SHA1": COMMIT,
        "CIRCLE_REPOSITORY_URL": "git@github.com:acme/myservice.git",
        "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/myservice/42",
        "CIRCLE_TAG": "v1.4.2",
    },
    "gitlab-ci.yml": {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": COMMIT,
        "CI_PROJECT_URL": "https://gitlab.com/acme/myservice",
        "CI_JOB_URL": "https://gitlab.com/acme/myservice/-/jobs/42",
        "CI_COMMIT_TAG": "v1.4.2",
    },
}


@pytest.mark.parametrize("name", sorted(CI_PROVIDERS))
def test_version_json_in_ci(name: str, tmp_path: Path) -> None:
    variables = CI_PROVIDERS[name]
    config = (SNIPPETS / name).read_text(encoding="utf-8")
    assert "dockerflow-wsgi version-json --output version.json" in config
    deployment = read("deployment")
    for variable in variables:
        assert variable in deployment, f"{variable} is not in the variables table"
    result = cli("version-json", "--output", "version.json", cwd=tmp_path, **variables)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "version.json").read_text(encoding="utf-8"))
    assert written["commit"] == COMMIT
    assert written["version"] == "v1.4.2"
    assert written["source"].startswith("https://") and written["source"].endswith("/myservice")
    assert written["build"].endswith("42")


def _documented_commands() -> list[list[str]]:
    """Every ``dockerflow-wsgi`` command line in the pages and the snippets."""
    found: set[tuple[str, ...]] = set()
    sources = [DOCS / f"{page}.rst" for page in PAGES] + sorted(SNIPPETS.iterdir())
    for path in sources:
        content = path.read_text(encoding="utf-8")
        for array in re.findall(r'\[\s*"dockerflow-wsgi"[^\]]*\]', content):
            found.add(tuple(json.loads(array)[1:]))
        for command, rest in re.findall(
            r"dockerflow-wsgi (heartbeat|version-json|check-config)\b([^\n`\"\]#]*)", content
        ):
            found.add((command, *shlex.split(rest)))
    return [list(command) for command in sorted(found)]


@pytest.mark.parametrize("command", _documented_commands(), ids=" ".join)
def test_documented_command_runs(command: list[str], tmp_path: Path) -> None:
    pytest.importorskip("flask")
    args = ["flask_shim:app" if arg == "myservice.wsgi:application" else arg for arg in command]
    for flag in ("--output", "-o"):
        if flag in args:
            args[args.index(flag) + 1] = str(tmp_path / "version.json")
    if "--seconds" in args:
        # The drain's wait is the docs' to choose; the test's is short.
        args[args.index("--seconds") + 1] = "0"
    # A drain mark goes into a folder of the test's: the machine's default would drain every
    # service on it that uses that folder, the tests' own servers included.
    state_dir = tmp_path / "state"
    result = cli(*args, cwd=SNIPPETS, GIT_COMMIT=COMMIT, DOCKERFLOW_STATE_DIR=str(state_dir))
    assert result.returncode == 0, result.stderr
    if args[0] == "drain":
        assert (state_dir / "drain").exists()


# -- migration -----------------------------------------------------------------------------------


def _migration_rows() -> list[list[nodes.entry]]:
    return table("migration", "dockerflow", "dockerflow-wsgi", "notes")


def test_every_new_name_in_the_migration_table_exists() -> None:
    pytest.importorskip("flask")
    new_names = [name for row in _migration_rows() for name in named(row[1], "dockerflow_wsgi")]
    for name in new_names:
        resolve(name)
    wanted = {
        "dockerflow_wsgi.flask.Dockerflow",
        "dockerflow_wsgi.sanic.Dockerflow",
        "dockerflow_wsgi.asgi.DockerflowASGIMiddleware",
        *(f"dockerflow_wsgi.checks.{name}" for name in checks.__all__ if name != "CheckResults"),
        "dockerflow_wsgi.logging.JsonLogFormatter",
        "dockerflow_wsgi.logging.MozlogFormatter",
        "dockerflow_wsgi.logging.RequestIdLogFilter",
        "dockerflow_wsgi.checks.sqlalchemy.check_database_connected",
        "dockerflow_wsgi.checks.redis.check_redis_connected",
        "dockerflow_wsgi.checks.alembic.check_migrations_applied",
        "dockerflow_wsgi.signals.heartbeat_passed",
        "dockerflow_wsgi.signals.heartbeat_failed",
    }
    assert wanted - set(new_names) == set()


def test_the_migration_table_names_real_options_and_variables() -> None:
    parameters = inspect.signature(DockerflowMiddleware.__init__).parameters
    variables = {variable for _, variable, _ in documented_options() if variable}
    try:
        from dockerflow.flask import Dockerflow as OldDockerflow
    except ImportError:  # the dockerflow package is only there to compare with
        OldDockerflow = None
    for old, new, _ in _migration_rows():
        for literal in literals(new):
            if "(Django setting)" in text(new):
                continue  # a setting of the Django integration: see django.rst
            if text(new).endswith(("option", "options")):
                assert literal.rstrip("=") in parameters, literal
            elif re.fullmatch(r"DOCKERFLOW_[A-Z_]+", literal):
                assert literal in variables, literal
        for literal in literals(old):
            call = re.fullmatch(r"Dockerflow\(app, (.*)\)", literal)
            if call is not None and OldDockerflow is not None:
                old_parameters = inspect.signature(OldDockerflow).parameters
                for keyword in re.findall(r"(\w+)=", call.group(1)):
                    assert keyword in old_parameters, keyword


def test_every_old_name_in_the_migration_table_exists() -> None:
    pytest.importorskip("dockerflow.flask", reason="the dockerflow package is not installed")
    with_django = importlib.util.find_spec("django") is not None
    if with_django:
        snippet("django_wsgi")  # dockerflow.django reads the settings when imported
    old_names = [name for row in _migration_rows() for name in named(row[0], "dockerflow")]
    assert len(old_names) > 20
    for name in set(old_names) - FASTAPI_NAMES:  # their frameworks are not installed
        if with_django or not name.startswith("dockerflow.django."):
            resolve(name)


# Public names of the dockerflow package's FastAPI integration, which needs asgiref: they must
# be in the table all the same.
FASTAPI_NAMES = {
    "dockerflow.fastapi.router",
    "dockerflow.fastapi.middleware.RequestIdMiddleware",
    "dockerflow.fastapi.middleware.MozlogRequestSummaryLogger",
    "dockerflow.fastapi.views.heartbeat",
    "dockerflow.fastapi.views.lbheartbeat",
    "dockerflow.fastapi.views.version",
    "dockerflow.fastapi.views.error",
}
DOCKERFLOW_MODULES = [
    "dockerflow.checks.messages",
    "dockerflow.checks.registry",
    "dockerflow.flask.app",
    "dockerflow.flask.checks",
    "dockerflow.flask.signals",
    "dockerflow.logging",
    "dockerflow.health",
    "dockerflow.version",
    "dockerflow.sanic.app",
    "dockerflow.sanic.checks",
]
DJANGO_MODULES = [
    "dockerflow.django.checks",
    "dockerflow.django.middleware",
    "dockerflow.django.signals",
    "dockerflow.django.views",
]


def dockerflow_public_names() -> dict[str, Any]:
    """``module.name`` to object, for every public name a module of the package defines."""
    modules = list(DOCKERFLOW_MODULES)
    if importlib.util.find_spec("django") is not None:
        snippet("django_wsgi")  # dockerflow.django reads the settings when imported
        modules += DJANGO_MODULES
    found = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith("_") or inspect.ismodule(value):
                continue
            constant = isinstance(value, (str, int, dict)) and name.isupper()
            signal = type(value).__name__.endswith("Signal")
            if constant or signal or getattr(value, "__module__", None) == module_name:
                found[f"{module_name}.{name}"] = value
    return found


def test_the_migration_table_names_every_public_name_of_the_dockerflow_package() -> None:
    pytest.importorskip("dockerflow.flask")
    public = dockerflow_public_names()  # first: it sets Django up, which dockerflow.django needs
    old_names = {name for row in _migration_rows() for name in named(row[0], "dockerflow")}
    listed = [resolve(name) for name in old_names - FASTAPI_NAMES]
    missing = [
        name
        for name, value in public.items()
        if name not in old_names
        and name.rsplit(".", 1)[0] not in old_names  # the whole module is listed
        and not any(value is other for other in listed)
        and not (isinstance(value, str) and name.startswith("dockerflow.checks."))
    ]
    assert missing == []
    assert old_names >= FASTAPI_NAMES


# A Flask service as the dockerflow package's documentation has it, before it is migrated.
FLASK_SERVICE = """\
from dockerflow import checks
from dockerflow.flask import Dockerflow
from dockerflow.flask.signals import heartbeat_failed
from flask import Flask

app = Flask(__name__)
app.config["DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"] = 503
dockerflow = Dockerflow(app)
failures = []


@checks.register
def storage():
    return [checks.Error("bucket unreachable", id="acme.health.E001")]


@heartbeat_failed.connect
def count_failure(sender, level, **extra):
    failures.append(level)


@app.route("/")
def index():
    return "hello"


@app.route("/boom")
def boom():
    raise RuntimeError("the view failed")
"""


def migrated(source: str) -> str:
    """``source`` with each line of the guide's "Change the imports" table replaced."""
    for before, after in table("migration", "before", "after"):
        source = source.replace(text(before), text(after))
    return source


def test_a_flask_service_migrated_by_the_guide_behaves_as_before(
    tmp_path: Path, summary_records: list[logging.LogRecord]
) -> None:
    pytest.importorskip("dockerflow.flask")
    package = tmp_path / "service"
    package.mkdir()
    (package / "before.py").write_text(FLASK_SERVICE)
    (package / "after.py").write_text(migrated(FLASK_SERVICE))
    assert "dockerflow." not in migrated(FLASK_SERVICE).replace("dockerflow_wsgi", "")
    version = {"source": "s", "version": "1.0", "commit": "c" * 40, "build": "b"}
    (tmp_path / "version.json").write_text(json.dumps(version))
    sys.path.insert(0, str(package))
    try:
        services = [importlib.import_module(name) for name in ("before", "after")]
    finally:
        sys.path.remove(str(package))
    answers = {}
    summaries = {}
    for service in services:
        client = webtest.TestApp(service.app)
        summary_records.clear()
        answers[service.__name__] = {
            path: (
                response.status_int,
                response.json if path.startswith("/__") else response.body,
            )
            for path, response in (
                (path, client.get(path, expect_errors=True))
                for path in ("/", "/__heartbeat__", "/__version__", "/boom")
            )
        }
        summaries[service.__name__] = [(record.levelno, record.path) for record in summary_records]
        if service.__name__ == "after":
            # Better than before: the ERROR summary carries the view's exception itself.
            assert isinstance(summary_records[-1].exc_info[1], RuntimeError)
        assert service.failures == [checks.ERROR]

    assert answers["after"] == answers["before"]
    assert answers["after"]["/__heartbeat__"][0] == 503
    assert summaries["after"] == summaries["before"]
    assert summaries["after"] == [
        (logging.INFO, "/"),
        (logging.INFO, "/__heartbeat__"),
        (logging.INFO, "/__version__"),
        (logging.ERROR, "/boom"),
    ]


def test_the_migrated_flask_service_works() -> None:
    pytest.importorskip("flask")
    pytest.importorskip("sqlalchemy")
    from dockerflow_wsgi.signals import heartbeat_failed

    migrated = fresh_snippet("migrated_flask")
    try:
        client = webtest.TestApp(migrated.app)
        heartbeat = client.get("/__heartbeat__")
        assert heartbeat.json == {
            "status": "ok",  # the storage warning is silenced
            "checks": {"storage": "ok", "check_database_connected": "ok"},
            "details": {},
        }
        assert client.get("/__version__").json["version"] == "1.4.2"
    finally:
        heartbeat_failed.disconnect(migrated.count_failure)


def test_the_flask_migrate_check(tmp_path: Path) -> None:
    pytest.importorskip("alembic")
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "migrations" / "alembic.ini").write_text("[alembic]\n")
    (versions / "abc123_first.py").write_text(
        'revision = "abc123"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n'
    )
    module = snippet("flask_migrate_check")
    check = module.register_migrations_check(
        f"sqlite:///{tmp_path / 'db.sqlite3'}", directory=str(tmp_path / "migrations")
    )
    assert checks.get_checks() == {"check_migrations_applied": check}
    (message,) = check()
    assert message.id == "dockerflow.health.W001"


def test_the_django_database_check() -> None:
    pytest.importorskip("django")
    script = f"""
import sys
sys.path.insert(0, {str(SNIPPETS)!r})
from django.conf import settings
settings.configure(DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                            "NAME": ":memory:"}}}})
import django
django.setup()
import django_checks
from dockerflow_wsgi import checks
assert checks.run_checks().statuses == {{"check_database_connected": "ok"}}, checks.run_checks()
settings.DATABASES["default"]["NAME"] = "/nonexistent/directory/db.sqlite3"
from django.db import connections
del connections["default"]
results = checks.run_checks()
assert results.statuses == {{"check_database_connected": "error"}}, results
print(results.details)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "dockerflow.health.E001" in result.stdout


# -- performance ---------------------------------------------------------------------------------


def test_the_performance_page_describes_the_benchmark() -> None:
    page = read("performance")
    bench = (REPO / "benchmarks" / "bench.py").read_text(encoding="utf-8")
    for flag in re.findall(r"BENCH_ARGS=(--[\w-]+)", page):
        assert f'"{flag}"' in bench, flag
    for path in re.findall(r"``((?:docs|benchmarks)/[\w/.-]+)``", page):
        written_by_bench = all(f'"{part}"' in bench for part in path.split("/")[1:])
        assert (REPO / path).exists() or written_by_bench, path


def test_the_flask_test_client_recipe_passes(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("flask")
    snippet("test_flask_summary").test_the_orders_request_is_logged(caplog)
