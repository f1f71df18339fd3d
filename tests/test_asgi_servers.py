"""``DockerflowASGIMiddleware`` under the real uvicorn and hypercorn, over HTTP, and the ASGI page
of the docs.

Each server serves, in turn, a FastAPI and a Starlette service with the middleware added as
their middleware (``app.add_middleware``), and the Django test project through
``dockerflow_wsgi.django.get_asgi_application()`` (``tests/asgi_apps/``). Each pair is started
once, when its first test needs it, and checked as a client and a log reader see it: the
Dockerflow paths, request ids, the mozlog ``request.summary`` lines on stdout, errors, streams,
clients that go away, checks that must not stop the event loop, websockets; then it is stopped
with SIGTERM, as a container is, and its lifespan and its whole log are checked. No test
measures time: what happens "while" something else does is shown by holding that other thing
(a check, a stream) until the test lets it go.

The snippets of ``docs/asgi.rst`` run here too: in-process through httpx's ``ASGITransport``,
and the three quickstarts under uvicorn as they are.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.server
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from asgi_apps.harness import (
    APPS,
    BIN,
    HOST,
    MOZLOG_KEYS,
    REQUEST_TIMEOUT,
    SERVERS,
    Served,
    environment,
    manage_django_project,
)

from dockerflow_wsgi.request_id import is_valid_request_id

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SNIPPETS = DOCS / "snippets"

VERSION = {
    "source": "https://github.com/example/dockerflow-wsgi",
    "version": "1.2.3",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/42",
}
DOCKERFLOW_PATHS = ["/__lbheartbeat__", "/__heartbeat__", "/__version__"]
NEW_ID = re.compile(r"[0-9a-f]{32}")
STREAM_REST = b"".join(f"chunk {number}\n".encode() for number in range(1, 5))
WAIT_TIMEOUT = 10.0


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so the server tests must run, not skip")
    pytest.skip(message)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT_TIMEOUT:g} s: {what}")
        time.sleep(0.02)


# -- the servers -----------------------------------------------------------------------------------


DJANGO_USER = {"username": "ada", "password": "lovelace"}


@pytest.fixture(scope="session")
def django_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with the test project's tables and one user, shared by the Django
    runs."""
    database = tmp_path_factory.mktemp("django") / "db.sqlite3"
    manage_django_project(database, "migrate", "--verbosity", "0")
    manage_django_project(
        database,
        "createsuperuser",
        "--noinput",
        DJANGO_SUPERUSER_USERNAME=DJANGO_USER["username"],
        DJANGO_SUPERUSER_PASSWORD=DJANGO_USER["password"],
        DJANGO_SUPERUSER_EMAIL="ada@example.com",
    )
    return database


@pytest.fixture(
    scope="module",
    params=[(server, framework) for server in SERVERS for framework in APPS],
    ids=lambda pair: "-".join(pair),
)
def server_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server serving one app, not started yet; stopped after the module, whatever
    happened."""
    server, framework = request.param
    if not (BIN / server).exists():
        _skip_or_fail(f"{server} is not installed in {BIN}")
    workdir = tmp_path_factory.mktemp(f"{server}-{framework}")
    version_dir = workdir / "version"
    version_dir.mkdir()
    (version_dir / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    variables = {
        "DOCKERFLOW_VERSION_PATH": str(version_dir),
        # Far above what a test holds a check for: a held check is never a timeout.
        "DOCKERFLOW_CHECK_TIMEOUT": "15",
    }
    if framework == "django":
        database = request.getfixturevalue("django_database")
        variables.update(
            DJANGO_SETTINGS_MODULE="django_settings", PROJECT_DATABASE=f"sqlite:///{database}"
        )
    served = Served(
        server,
        APPS[framework],
        workdir,
        environment(**variables),
        framework=framework,
        label=f"{server}-{framework}",
    )
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def served(server_app: Served) -> Served:
    """The server, running: started if it is not (yet, or any more)."""
    if not server_app.running():
        server_app.start()
    return server_app


@pytest.fixture
def stopped(server_app: Served) -> Served:
    """The server after a graceful stop with SIGTERM, its stdout complete.

    The run the tests above used, when there was one; else a run of its own.
    """
    if server_app.process is None:
        server_app.start()
    server_app.stop()
    return server_app


# -- the Dockerflow paths --------------------------------------------------------------------------


@pytest.mark.servers
def test_lbheartbeat_is_answered_with_the_request_id(served: Served) -> None:
    answer = served.get("/__lbheartbeat__", "lbheartbeat-1")

    assert (answer.status, answer.json()) == (200, {})
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["X-Request-ID"] == "lbheartbeat-1"


@pytest.mark.servers
def test_heartbeat_runs_the_apps_checks(served: Served) -> None:
    answer = served.get("/__heartbeat__")

    body = answer.json()
    assert (answer.status, body["status"], body["details"]) == (200, "ok", {})
    assert {name: body["checks"][name] for name in ("async_check", "sync_check")} == {
        "async_check": "ok",
        "sync_check": "ok",
    }


@pytest.mark.servers
def test_version_is_version_json(served: Served) -> None:
    answer = served.get("/__version__")

    assert (answer.status, answer.json()) == (200, VERSION)


@pytest.mark.servers
@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_a_trailing_slash_is_the_same_path(served: Served, path: str) -> None:
    without = served.get(path)
    with_slash = served.get(path + "/")

    assert with_slash.status == without.status == 200
    assert with_slash.json() == without.json()


@pytest.mark.servers
@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_head_has_the_headers_of_get_and_no_body(served: Served, path: str) -> None:
    get = served.get(path)
    head = served.request("HEAD", path)

    assert head.status == get.status == 200
    for header in ("Content-Type", "Content-Length", "Cache-Control"):
        assert head.headers[header] == get.headers[header], header
    assert head.body == b""


@pytest.mark.servers
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(served: Served, method: str) -> None:
    answer = served.request(method, "/__heartbeat__", headers={"Content-Length": "0"})

    assert answer.status == 405
    assert answer.headers["Allow"] == "GET, HEAD"


# -- request ids -----------------------------------------------------------------------------------


@pytest.mark.servers
def test_a_valid_request_id_is_echoed_and_given_to_the_app(served: Served) -> None:
    answer = served.get("/request-id/", "valid-id-1")

    assert answer.headers["X-Request-ID"] == "valid-id-1"
    assert answer.json() == {"scope": "valid-id-1", "context": "valid-id-1"}
    # The app's own log record, made while it handled the request, carries the id.
    assert served.app_records("Reporting the request id")[-1]["Fields"]["rid"] == "valid-id-1"


UNSAFE_IDS = {"space": "a b", "too-long": "x" * 129, "non-ascii": "caf\u00e9"}


@pytest.mark.servers
@pytest.mark.parametrize("sent", UNSAFE_IDS.values(), ids=UNSAFE_IDS.keys())
def test_an_unsafe_request_id_is_replaced_everywhere(served: Served, sent: str) -> None:
    answer = served.get("/request-id/", sent)

    new = answer.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(new), new
    assert answer.json() == {"scope": new, "context": new}
    assert [summary["Fields"]["rid"] for summary in served.wait_for_summaries(new)] == [new]


# -- request.summary -------------------------------------------------------------------------------


@pytest.mark.servers
def test_a_request_has_one_mozlog_summary_with_its_fields(served: Served) -> None:
    served.get(
        "/request-id/?q=1", "summary-1", **{"User-Agent": "probe/1.0", "Accept-Language": "fr"}
    )

    [summary] = served.wait_for_summaries("summary-1")
    assert set(summary) == MOZLOG_KEYS
    assert (summary["Logger"], summary["EnvVersion"], summary["Severity"]) == (
        "asgi-tests",
        "2.0",
        6,
    )
    assert isinstance(summary["Fields"]["t"], int)
    assert summary["Fields"] == {
        "agent": "probe/1.0",
        "lang": "fr",
        "method": "GET",
        "path": "/request-id/",
        "code": 200,
        "errno": 0,
        "t": summary["Fields"]["t"],
        "rid": "summary-1",
        "uid": "",
        # The route the framework matched, as it writes it.
        "route": "request-id/" if served.framework == "django" else "/request-id/",
    }


@pytest.mark.servers
def test_stdout_holds_only_mozlog_json(served: Served) -> None:
    served.get("/request-id/")
    lines = served.stdout_lines()

    assert lines
    for line in lines:
        record = json.loads(line)
        assert set(record) == MOZLOG_KEYS, line
        assert record["Logger"] == "asgi-tests", line


@pytest.mark.servers
def test_a_view_that_raises_is_a_500_and_an_error_summary_with_its_traceback(
    served: Served,
) -> None:
    answer = served.get("/boom/", "boom-1")

    assert answer.status == 500
    [summary] = served.wait_for_summaries("boom-1")
    fields = summary["Fields"]
    assert summary["Severity"] == 3
    assert (fields["code"], fields["errno"]) == (500, 500)
    assert fields["error"] == "LookupError('the view failed')"
    assert "in boom" in fields["traceback"]


@pytest.mark.servers
def test_the_logged_in_users_id_is_the_summarys_uid(served: Served) -> None:
    """``DockerflowDjangoMiddleware`` in the project's ``MIDDLEWARE``, under ASGI."""
    if served.framework != "django":
        pytest.skip("the user is Django's")
    form = "&".join(f"{name}={value}" for name, value in DJANGO_USER.items()).encode()
    login = served.request(
        "POST",
        "/login/",
        "login-1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        body=form,
    )
    cookies = "; ".join(cookie.split(";", 1)[0] for cookie in login.headers.get_all("Set-Cookie"))
    me = served.get("/me/", "me-1", Cookie=cookies)

    assert (login.status, me.status) == (200, 200)
    user_id = str(me.json()["pk"])
    [summary] = served.wait_for_summaries("me-1")
    assert summary["Fields"]["uid"] == user_id


# -- streams ---------------------------------------------------------------------------------------


@pytest.mark.servers
def test_a_stream_is_relayed_as_it_comes_and_its_summary_covers_it(served: Served) -> None:
    with served.streaming("/stream/", "stream-1") as response:
        assert response.status == 200
        # The app sends nothing more until it is released: this chunk came on its own.
        assert response.readline() == b"chunk 0\n"
        assert served.summaries("stream-1") == [], "a summary before the stream ended"
        served.post("/stream/release/")
        rest = response.read()

    assert rest == STREAM_REST
    [summary] = served.wait_for_summaries("stream-1")
    assert summary["Fields"]["t"] >= int(served.stats()["stream_ms"])


@pytest.mark.servers
def test_a_client_gone_mid_stream_leaves_one_summary_and_a_serving_server(
    served: Served,
) -> None:
    with served.streaming("/endless/", "gone-1") as response:
        assert [response.readline() for _ in range(3)] == [b"tick 0\n", b"tick 1\n", b"tick 2\n"]
    # The client hung up on a stream that never ends by itself.

    summaries = served.wait_for_summaries("gone-1")
    assert [(summary["Severity"], summary["Fields"]["code"]) for summary in summaries] == [(6, 200)]
    assert served.get("/request-id/", "after-gone-1").json()["scope"] == "after-gone-1"
    assert len(served.summaries("gone-1")) == 1


# -- checks and the event loop ---------------------------------------------------------------------


@pytest.mark.servers
def test_async_checks_are_awaited_on_the_loop_and_sync_checks_run_off_it(served: Served) -> None:
    assert served.get("/__heartbeat__").status == 200

    stats = served.stats()
    loop = stats["loop"]
    assert loop["running_loop"]
    assert stats["async_check"] == loop
    assert stats["sync_check"]["ident"] != loop["ident"]
    assert not stats["sync_check"]["running_loop"]


@pytest.mark.servers
def test_a_slow_sync_check_does_not_hold_up_the_event_loop(served: Served) -> None:
    served.post("/sync-check/hold/")
    try:
        with ThreadPoolExecutor(1) as client:
            heartbeat = client.submit(served.get, "/__heartbeat__", "held-heartbeat")
            wait_until(lambda: served.stats()["sync_check_waiting"], "the sync check started")
            lbheartbeat = served.get("/__lbheartbeat__")
            request_id = served.get("/request-id/")
            still_waiting = served.stats()["sync_check_waiting"]
            served.post("/sync-check/release/")
            answer = heartbeat.result(timeout=REQUEST_TIMEOUT)
    finally:
        served.post("/sync-check/release/")

    assert (lbheartbeat.status, request_id.status) == (200, 200)
    assert still_waiting, "the sync check had ended before the other requests were answered"
    assert answer.status == 200
    assert answer.json()["checks"]["sync_check"] == "ok"


# -- websockets ------------------------------------------------------------------------------------


@pytest.mark.servers
def test_websockets_pass_through_untouched(served: Served) -> None:
    if served.framework == "django":
        pytest.skip("Django serves no websockets without Channels")
    from websockets.sync.client import connect

    url = f"ws://{HOST}:{served.port}/ws/"
    with connect(url, additional_headers={"X-Request-ID": "websocket-1"}) as websocket:
        websocket.send("hello")
        report = json.loads(websocket.recv())

    assert report == {"echo": "hello", "request_id_in_scope": False, "context": None}
    served.get("/request-id/", "after-websocket-1")
    served.wait_for_summaries("after-websocket-1")
    assert served.summaries("websocket-1") == []


# -- stopping --------------------------------------------------------------------------------------


@pytest.mark.servers
def test_lifespan_startup_and_shutdown_reach_the_app(stopped: Served) -> None:
    if stopped.framework == "django":
        pytest.skip("Django's ASGI handler does not speak the lifespan protocol")

    assert not stopped.killed, stopped.stderr()[-3000:]
    assert stopped.lifespan_log.read_text(encoding="utf-8").split() == ["startup", "shutdown"]


@pytest.mark.servers
def test_a_graceful_stop_needs_no_kill(stopped: Served) -> None:
    assert not stopped.killed, stopped.stderr()[-3000:]


@pytest.mark.servers
def test_every_request_of_the_run_has_exactly_one_summary(stopped: Served) -> None:
    """Over the whole stdout of the run: readiness probes, unsafe ids, errors, streams and
    the client that went away included, websockets excepted (they are no requests)."""
    summaries = collections.Counter(summary["Fields"]["rid"] for summary in stopped.summaries())
    valid_ids = [rid for rid in stopped.sent_ids if is_valid_request_id(rid)]

    assert {rid: summaries[rid] for rid in valid_ids} == dict.fromkeys(valid_ids, 1)
    assert sum(summaries.values()) == len(stopped.sent_ids)


# -- two bugs found by these tests, fixed ----------------------------------------------------------


def test_an_exception_raised_to_the_server_after_its_500_page_makes_an_error_summary(
    summary_records: list[logging.LogRecord],
) -> None:
    """``DockerflowASGIMiddleware(starlette_app)``, the "any ASGI 3 app" wiring: Starlette's
    outermost middleware sends its 500 page, then raises the view's exception on to the
    server, through the middleware."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

    async def boom(request: Any) -> None:
        raise LookupError("the view failed")

    app = DockerflowASGIMiddleware(Starlette(routes=[Route("/boom", boom)]))
    response = asgi_request(app, "GET", "/boom", raise_app_exceptions=False)

    assert response.status_code == 500
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], LookupError)


ASYNC_CHECK_IN_SETTINGS = """
import asyncio, json
import httpx
from django.test.utils import override_settings
from project.asgi import application

async def heartbeat():
    transport = httpx.ASGITransport(application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return (await client.get("/__heartbeat__")).json()

with override_settings(DOCKERFLOW_CHECKS=["service.async_check"]):
    print("HEARTBEAT", json.dumps(asyncio.run(heartbeat())))
"""


def test_an_async_check_named_in_dockerflow_checks_is_awaited(tmp_path: Path) -> None:
    """``settings.DOCKERFLOW_CHECKS`` names "our checks or Django-style ones", and one of ours
    may be an ``async def``. In a Django process of its own (Django is set up once)."""
    result = subprocess.run(
        [sys.executable, "-c", ASYNC_CHECK_IN_SETTINGS],
        cwd=tmp_path,
        env=environment(
            DJANGO_SETTINGS_MODULE="django_settings",
            PROJECT_DATABASE=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("HEARTBEAT ")]
    heartbeat = json.loads(line.removeprefix("HEARTBEAT "))

    assert heartbeat["checks"]["async_check"] == "ok", heartbeat["details"]


# -- the docs' snippets ----------------------------------------------------------------------------


def asgi_request(
    app: Any,
    method: str,
    path: str,
    headers: Optional[dict[str, str]] = None,
    *,
    root_path: str = "",
    raise_app_exceptions: bool = True,
) -> Any:
    """One request through ``app`` in this process, as a server makes it (httpx's
    ``ASGITransport``, on a loop of its own); the ``httpx.Response``."""
    import httpx

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(
            app, raise_app_exceptions=raise_app_exceptions, root_path=root_path
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(send())


def snippet(name: str, fresh: bool = False) -> Any:
    """``docs/snippets/<name>.py``, imported as the module ``name`` (anew with ``fresh``, to
    run its registrations again)."""
    if str(SNIPPETS) not in sys.path:
        sys.path.insert(0, str(SNIPPETS))
    if fresh:
        sys.modules.pop(name, None)
    # The logging an example sets up for itself (dockerflow_wsgi.logging.configure()) is undone,
    # or every later test would write its records to stdout.
    root, summary = logging.getLogger(), logging.getLogger("request.summary")
    handlers, levels = root.handlers[:], (root.level, summary.level)
    try:
        return importlib.import_module(name)
    finally:
        root.handlers[:] = handlers
        root.setLevel(levels[0])
        summary.setLevel(levels[1])


ASGI_SNIPPETS = [
    "fastapi_app",
    "starlette_app",
    "django_asgi",
    "asgi_checks",
    "asgi_mount",
    "fastapi_dockerflow",
    "fastapi_migrated",
]


def test_the_asgi_page_shows_every_asgi_snippet() -> None:
    page = (DOCS / "asgi.rst").read_text(encoding="utf-8")
    shown = set(re.findall(r"\.\. literalinclude:: snippets/(\S+)\.py", page))

    assert shown == set(ASGI_SNIPPETS)


@pytest.mark.parametrize("name", ["fastapi_app", "starlette_app"])
def test_the_quickstart_follows_dockerflow_in_process(
    name: str, summary_records: list[logging.LogRecord]
) -> None:
    app = snippet(name).app

    assert asgi_request(app, "GET", "/__lbheartbeat__").json() == {}
    heartbeat = asgi_request(app, "GET", "/__heartbeat__")
    assert heartbeat.headers["Content-Type"] == "application/json"
    assert heartbeat.json() == {"status": "ok", "checks": {}, "details": {}}
    response = asgi_request(app, "GET", "/", {"X-Request-ID": f"docs-{name}"})
    assert response.headers["X-Request-ID"] == f"docs-{name}"
    assert response.json() == {"message": "hello", "request_id": f"docs-{name}"}

    [summary] = [record for record in summary_records if record.path == "/"]
    assert (summary.rid, summary.code, summary.method) == (f"docs-{name}", 200, "GET")


@pytest.mark.servers
@pytest.mark.parametrize("app", ["fastapi_app:app", "starlette_app:app", "django_asgi:application"])
def test_the_quickstart_runs_under_uvicorn_as_it_is(app: str, tmp_path: Path) -> None:
    if not (BIN / "uvicorn").exists():
        _skip_or_fail(f"uvicorn is not installed in {BIN}")
    served = Served("uvicorn", app, tmp_path, environment(), cwd=SNIPPETS)
    served.start()
    try:
        hello = served.get("/", "docs-served-1")
        heartbeat = served.get("/__heartbeat__")
    finally:
        served.stop()

    assert hello.headers["X-Request-ID"] == "docs-served-1"
    assert hello.json() == {"message": "hello", "request_id": "docs-served-1"}
    assert (heartbeat.status, heartbeat.json()) == (
        200,
        {"status": "ok", "checks": {}, "details": {}},
    )


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def upstream() -> Iterator[int]:
    """A local HTTP server answering 200 to any GET; yields its port."""
    server = http.server.ThreadingHTTPServer((HOST, 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_checks_snippet_reports_its_services(
    monkeypatch: pytest.MonkeyPatch, no_proxy: None
) -> None:
    from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

    snippet("asgi_checks", fresh=True)
    app = DockerflowASGIMiddleware(snippet("fastapi_app").app)

    with upstream() as port:
        monkeypatch.setenv("SEARCH_API_URL", f"http://{HOST}:{port}/__lbheartbeat__")
        monkeypatch.setenv("MEMCACHED_ADDRESS", f"{HOST}:{port}")
        healthy = asgi_request(app, "GET", "/__heartbeat__")
    gone = asgi_request(app, "GET", "/__heartbeat__")

    assert (healthy.status_code, healthy.json()) == (
        200,
        {"status": "ok", "checks": {"search_api": "ok", "memcached": "ok"}, "details": {}},
    )
    assert gone.status_code == 500
    assert gone.json()["checks"] == {"search_api": "error", "memcached": "error"}
    assert set(gone.json()["details"]["search_api"]["messages"]) == {"myservice.E001"}
    assert set(gone.json()["details"]["memcached"]["messages"]) == {"myservice.E002"}


def test_a_mounted_service_answers_below_its_mount_path(
    summary_records: list[logging.LogRecord],
) -> None:
    mounted = snippet("asgi_mount")

    probe = asgi_request(mounted.app, "GET", "/api/__lbheartbeat__")
    outside = asgi_request(mounted.app, "GET", "/__lbheartbeat__")
    items = asgi_request(mounted.app, "GET", "/api/items", {"X-Request-ID": "mounted-1"})
    # Behind a proxy that strips /api, as `uvicorn --root-path /api` serves it.
    stripped = asgi_request(mounted.api, "GET", "/api/__lbheartbeat__", root_path="/api")

    assert (probe.status_code, probe.json()) == (200, {})
    assert outside.status_code == 404, "only the mounted service has the Dockerflow paths"
    assert (items.status_code, items.headers["X-Request-ID"]) == (200, "mounted-1")
    assert (stripped.status_code, stripped.json()) == (200, {})
    assert [record.path for record in summary_records] == [
        "/api/__lbheartbeat__",
        "/api/items",
        "/api/__lbheartbeat__",
    ]


@pytest.fixture
def dockerflow_fastapi() -> Iterator[Any]:
    """``fastapi_dockerflow``, the service before the migration, freshly imported; afterwards
    the ``dockerflow`` package's registry emptied and the ``request.summary`` logger as it was
    (its ``MozlogRequestSummaryLogger`` adds a handler to it)."""
    pytest.importorskip("dockerflow.fastapi")
    from dockerflow import checks as dockerflow_checks

    logger = logging.getLogger("request.summary")
    handlers, level = list(logger.handlers), logger.level
    dockerflow_checks.clear_checks()
    try:
        yield snippet("fastapi_dockerflow", fresh=True)
    finally:
        dockerflow_checks.clear_checks()
        logger.handlers = handlers
        logger.setLevel(level)


def test_a_service_migrated_from_dockerflow_fastapi_answers_as_before(
    dockerflow_fastapi: Any,
) -> None:
    migrated = snippet("fastapi_migrated", fresh=True)

    for path in ("/__heartbeat__", "/"):
        before = asgi_request(dockerflow_fastapi.app, "GET", path, {"X-Request-ID": "abc-123"})
        after = asgi_request(migrated.app, "GET", path, {"X-Request-ID": "abc-123"})
        assert (after.status_code, after.json()) == (before.status_code, before.json()), path
    assert after.json() == {"request_id": "abc-123"}
    # dockerflow.fastapi redirected the probes' trailing slash.
    with_slash = asgi_request(migrated.app, "GET", "/__heartbeat__/")
    assert with_slash.json() == asgi_request(migrated.app, "GET", "/__heartbeat__").json()


def test_the_summary_keeps_the_old_fields_and_adds_errno_and_uid(
    dockerflow_fastapi: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"X-Request-ID": "abc-123", "User-Agent": "probe/1.0"}
    asgi_request(dockerflow_fastapi.app, "GET", "/?q=1", headers)
    [old] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    logging.getLogger("request.summary").handlers.clear()  # the one the old service added
    migrated = snippet("fastapi_migrated", fresh=True)
    asgi_request(migrated.app, "GET", "/?q=1", headers)
    [new] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert old["Type"] == new["Type"] == "request.summary"
    same = {"agent": "probe/1.0", "method": "GET", "path": "/", "code": 200, "rid": "abc-123"}
    assert old["Fields"] == {**same, "lang": None, "querystring": "q=1", "t": old["Fields"]["t"]}
    assert new["Fields"] == {
        **same,
        "lang": "",
        "querystring": "q=1",
        "errno": 0,
        "uid": "",
        "route": "/",
        "t": new["Fields"]["t"],
    }


# (method, path) -> (status, body) from dockerflow.fastapi, then from the migrated service: the
# differences docs/asgi.rst lists.
DIFFERENCES = {
    "lbheartbeat body": (
        ("GET", "/__lbheartbeat__"),
        (200, '{"status":"ok"}'),
        (200, "{}"),
    ),
    "missing version.json": (
        ("GET", "/__version__"),
        (200, "null"),
        (404, '{"error":"version.json not found"}'),
    ),
    "error endpoint off by default": (
        ("GET", "/__error__"),
        (500, "Internal Server Error"),
        (404, '{"detail":"Not Found"}'),
    ),
    "trailing slash": (("GET", "/__lbheartbeat__/"), (307, ""), (200, "{}")),
    "HEAD of version": (("HEAD", "/__version__"), (405, ""), (404, "")),
}


@pytest.mark.parametrize(("request_line", "before", "after"), DIFFERENCES.values(), ids=DIFFERENCES)
def test_the_documented_differences_from_dockerflow_fastapi(
    dockerflow_fastapi: Any,
    request_line: tuple[str, str],
    before: tuple[int, str],
    after: tuple[int, str],
) -> None:
    method, path = request_line
    migrated = snippet("fastapi_migrated", fresh=True)

    old = asgi_request(dockerflow_fastapi.app, method, path, raise_app_exceptions=False)
    new = asgi_request(migrated.app, method, path)

    assert (old.status_code, old.text) == before
    assert (new.status_code, new.text) == after


def test_request_ids_are_now_echoed_and_validated(dockerflow_fastapi: Any) -> None:
    migrated = snippet("fastapi_migrated", fresh=True)

    old = asgi_request(dockerflow_fastapi.app, "GET", "/", {"X-Request-ID": "a b"})
    new = asgi_request(migrated.app, "GET", "/", {"X-Request-ID": "a b"})

    assert "X-Request-ID" not in old.headers
    assert old.json() == {"request_id": "a b"}
    assert NEW_ID.fullmatch(new.headers["X-Request-ID"])
    assert new.json() == {"request_id": new.headers["X-Request-ID"]}
