"""The Sanic integration on Sanic's own server.

The applications below run in subprocesses (``app.run``, and the ``sanic`` command for the
documentation's example), are driven over HTTP, and their stdout is read as the mozlog lines an
operator sees. Side by side, the ``dockerflow`` package's own Sanic integration serves the same
checks, to show that a migrated service answers its probes as before. Option handling, which
needs no server, is tested in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest
from sanic import Request, Sanic, Websocket, response
from server_process import ServerProcess, unused_port
from websockets.sync.client import connect as websocket_connect

from dockerflow_wsgi import checks, current_request_id
from dockerflow_wsgi.sanic import Dockerflow
from dockerflow_wsgi.signals import heartbeat_failed, heartbeat_passed

TESTS = Path(__file__).resolve().parent
SNIPPETS = TESTS.parent / "docs" / "snippets"


VERSION = {
    "source": "https://github.com/acme/orders",
    "version": "2.1.0",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/42",
}


# -- the applications the servers run -----------------------------------------------------------


def main_app() -> Sanic:
    """A route for every kind of response, a check of each kind, options from ``app.config``."""
    app = Sanic("main", configure_logging=False)
    app.config.DOCKERFLOW_ERROR_ENDPOINT = True
    app.config["DOCKERFLOW_SUMMARY_LOG_QUERYSTRING"] = "yes"
    # Each run's messages logged, however soon the next: the tests read them per request.
    app.config["DOCKERFLOW_HEALTH_LOG_REPEAT"] = 0
    logger = logging.getLogger("app")

    @app.signal("http.lifecycle.handle")
    async def handling(request: Request) -> None:
        logger.info("handling")

    @app.on_request
    async def app_middleware(request: Request) -> Optional[response.HTTPResponse]:
        logger.info("app middleware")
        if "x-block" in request.headers:
            return response.text("the app's middleware says no", status=403)
        return None

    @app.get("/")
    async def index(request: Request) -> response.HTTPResponse:
        logger.info("handled")
        return response.json({"ctx": request.ctx.request_id, "var": current_request_id()})

    @app.get("/café")
    async def signed_in(request: Request) -> response.HTTPResponse:
        request.ctx.user_id = "alice"
        return response.text("bonjour")

    @app.get("/<prefix>/__heartbeat__")
    async def not_dockerflow(request: Request, prefix: str) -> response.HTTPResponse:
        return response.text("the app's own")

    @app.get("/own-id")
    async def own_id(request: Request) -> response.HTTPResponse:
        return response.text("mine", headers={"X-Request-ID": "chosen-by-the-app"})

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise ValueError("boom")

    @app.get("/order/<number>")
    async def order(request: Request, number: str) -> None:
        raise KeyError(number)

    @app.exception(KeyError)
    async def no_such_order(request: Request, exception: KeyError) -> response.HTTPResponse:
        return response.json({"error": "no such order"}, status=400)

    @app.get("/task")
    async def in_a_task(request: Request) -> response.HTTPResponse:
        async def work() -> None:
            logger.info("in a task")

        await asyncio.create_task(work())
        return response.text("done")

    @app.get("/stream")
    async def stream(request: Request) -> None:
        streamed = await request.respond(content_type="text/plain")
        await streamed.send("one ")
        await asyncio.sleep(0.2)
        await streamed.send("two")
        await streamed.eof()

    @app.get("/stream-then-raise")
    async def stream_then_raise(request: Request) -> None:
        streamed = await request.respond(content_type="text/plain")
        await streamed.send("one ")
        raise RuntimeError("mid-stream")

    @app.get("/endless")
    async def endless(request: Request) -> None:
        streamed = await request.respond(content_type="text/plain")
        while True:  # until the client goes away
            await streamed.send("tick\n")
            await asyncio.sleep(0.02)

    @app.websocket("/ws")
    async def echo(request: Request, websocket: Websocket) -> None:
        message = await websocket.recv()
        logger.info("websocket message")
        await websocket.send(f"{message} {current_request_id()}")

    @checks.register
    def sync_check() -> list[checks.CheckMessage]:
        request_id = current_request_id() or ""
        if request_id.startswith("slow-"):
            # Held until the test releases it: the test sees the loop answer meanwhile.
            gate = Path(tempfile.gettempdir()) / request_id
            gate.with_suffix(".started").touch()
            deadline = time.monotonic() + 30
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return [checks.Warning(f"ran on {threading.current_thread().name}", id="test.W001")]

    @checks.register
    async def async_check() -> list[checks.CheckMessage]:
        await asyncio.sleep(0)
        return [checks.Info(f"ran on {threading.current_thread().name}", id="test.I001")]

    @heartbeat_passed.connect_via(app)
    def passed(sender: Any, level: int, **extra: Any) -> None:
        logger.info("heartbeat passed for %s at level %s", sender.name, level)

    Dockerflow(app)
    return app


def options_app() -> Sanic:
    """Options from ``app.config`` and a keyword, against environment variables that say
    otherwise (see ``OPTIONS_ENVIRONMENT``), and a failing check."""
    app = Sanic("options", configure_logging=False)
    app.config["DOCKERFLOW_REQUEST_ID_HEADER_NAME"] = "X-Trace-ID"
    app.config["DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"] = 503
    logger = logging.getLogger("app")

    @app.get("/")
    async def index(request: Request) -> response.HTTPResponse:
        return response.text("hello")

    @checks.register
    def queue() -> list[checks.CheckMessage]:
        return [checks.Error("queue is full", id="test.E001")]

    @heartbeat_failed.connect_via(app)
    def failed(sender: Any, level: int, **extra: Any) -> None:
        logger.info("heartbeat failed for %s at level %s", sender.name, level)

    Dockerflow(app, log_probes=False)
    return app


OPTIONS_ENVIRONMENT = {
    "DOCKERFLOW_REQUEST_ID_HEADER_NAME": "X-Environment-ID",
    "DOCKERFLOW_SUMMARY_LOG_PROBES": "true",
    "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE": "500",
    "DOCKERFLOW_METRICS": "on",
    "DOCKERFLOW_HEARTBEAT_GROUPS": "jobs=queue",
}


def compared_app(library: str) -> Sanic:
    """The same service on the ``dockerflow`` package's integration or on ours: the same
    checks, ``app.config`` and ``version.json``."""
    if library == "dockerflow":
        from dockerflow import checks as library_checks
        from dockerflow.sanic import Dockerflow as Extension
    else:
        library_checks = checks
        Extension = Dockerflow
    app = Sanic(library, configure_logging=False)
    app.config["DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"] = 503

    @app.get("/")
    async def index(request: Request) -> response.HTTPResponse:
        return response.text("hello")

    @library_checks.register
    def database() -> list[Any]:
        return []

    @library_checks.register
    def redis() -> list[Any]:
        return [library_checks.Warning("slow ping", id="acme.health.W001")]

    @library_checks.register(name="queue")
    async def queue_check() -> list[Any]:
        return [library_checks.Error("queue is full", id="acme.health.E001")]

    Extension(app)
    return app


# -- running them -------------------------------------------------------------------------------

# Runs an application factory of this module under Sanic's server, logging to stdout in mozlog.
SERVE = """\
import logging, sys
from dockerflow_wsgi.logging import MozlogHandler
logging.basicConfig(handlers=[MozlogHandler(name="test")], level=logging.INFO)
sys.path.insert(0, sys.argv[1])
import test_sanic
app = getattr(test_sanic, sys.argv[2])(*sys.argv[4:])
app.run(host="127.0.0.1", port=int(sys.argv[3]), single_process=True, motd=False)
"""


def is_summary(record: dict[str, Any], rid: Optional[str] = None) -> bool:
    return record["Type"] == "request.summary" and (rid is None or record["Fields"]["rid"] == rid)


class Server:
    """A Sanic server in a subprocess, its stdout in a file, read as mozlog lines."""

    def __init__(
        self,
        output: Path,
        name: str,
        arguments: list[str],
        cwd: Optional[Path] = None,
        environment: Optional[dict[str, str]] = None,
        request_id_header: str = "X-Request-ID",
    ) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.request_id_header = request_id_header
        self.stdout = output / f"{name}.out"
        self.stderr = output / f"{name}.err"
        self.command = [
            arg.replace("{port}", str(self.port)) for arg in [sys.executable, "-u", *arguments]
        ]
        self.cwd = cwd or output
        # The developer's DOCKERFLOW_* variables must not change what the tests see.
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("DOCKERFLOW_") and key not in ("DATABASE_URL", "REDIS_URL")
        }
        self.env.update(environment or {}, PYTHONDONTWRITEBYTECODE="1")
        self.process = ServerProcess(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout_path=self.stdout,
            stderr_path=self.stderr,
            name=name,
            stop_signal=signal.SIGINT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def start(self) -> None:
        self.process.start()

    def wait_until_ready(self, timeout: float = 30) -> None:
        self.process.wait_until(self.answers_lbheartbeat, timeout)

    def answers_lbheartbeat(self) -> bool:
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/__lbheartbeat__", timeout=1).status_code == 200
        return False

    def stop(self) -> None:
        self.client.close()
        self.process.stop(timeout=10)

    def get(self, path: str, rid: Optional[str] = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, rid, **kwargs)

    def request(
        self, method: str, path: str, rid: Optional[str] = None, **kwargs: Any
    ) -> httpx.Response:
        headers = httpx.Headers(kwargs.pop("headers", {}))
        if rid is not None:
            headers[self.request_id_header] = rid
        return self.client.request(method, path, headers=headers, **kwargs)

    def records(self) -> list[dict[str, Any]]:
        """Every line written so far; each must be a mozlog record."""
        lines = self.stdout.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        for record in records:
            assert_mozlog(record)
        return records

    def wait_for(self, found: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The records, once one of them is ``found``."""
        deadline = time.monotonic() + 10
        while True:
            records = self.records()
            if any(found(record) for record in records):
                return records
            assert time.monotonic() < deadline, "no such record"
            time.sleep(0.02)

    def summaries(self, rid: str, sentinel_path: str = "/__lbheartbeat__") -> list[dict[str, Any]]:
        """The summaries of the requests with id ``rid``, once the summary of a later request
        is written: a second summary would be written before it."""
        sentinel = uuid.uuid4().hex
        assert self.get(sentinel_path, sentinel).status_code == 200
        records = self.wait_for(lambda record: is_summary(record, sentinel))
        return [record for record in records if is_summary(record, rid)]

    def summary(self, rid: str, sentinel_path: str = "/__lbheartbeat__") -> dict[str, Any]:
        """The one summary of the request with id ``rid``."""
        (summary,) = self.summaries(rid, sentinel_path)
        return summary

    def logged(self, rid: str, logger: str) -> list[str]:
        """The messages logged on ``logger`` with ``rid``."""
        return [
            record["Fields"].get("msg", "")
            for record in self.records()
            if record["Type"] == logger and record["Fields"].get("rid") == rid
        ]


def assert_mozlog(record: dict[str, Any]) -> None:
    assert set(record) == {
        "Timestamp",
        "Type",
        "Logger",
        "Hostname",
        "EnvVersion",
        "Severity",
        "Pid",
        "Fields",
    }
    assert isinstance(record["Timestamp"], int)
    assert record["EnvVersion"] == "2.0"
    assert isinstance(record["Severity"], int)
    assert isinstance(record["Fields"], dict)
    assert not any(isinstance(value, (dict, list)) for value in record["Fields"].values())


class Servers:
    """Every server of this module, started together: their start-ups overlap."""

    def __init__(self, directory: Path) -> None:
        (directory / "version.json").write_text(json.dumps(VERSION))

        def serve(name: str, factory: str, *arguments: str, **options: Any) -> Server:
            command = ["-c", SERVE, str(TESTS), factory, "{port}", *arguments]
            return Server(directory, name, command, **options)

        self.main = serve("main", "main_app")
        self.options = serve(
            "options",
            "options_app",
            environment=OPTIONS_ENVIRONMENT,
            request_id_header="X-Trace-ID",
        )
        self.theirs = serve("theirs", "compared_app", "dockerflow")
        self.ours = serve("ours", "compared_app", "dockerflow_wsgi")
        # The documentation's example, as its docstring says to run it: with the sanic command,
        # which starts a worker process.
        self.snippet = Server(
            directory,
            "snippet",
            ["-m", "sanic", "sanic_app:app", "--host", "127.0.0.1", "--port", "{port}"],
            cwd=SNIPPETS,
        )
        self.all = [self.main, self.options, self.theirs, self.ours, self.snippet]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("sanic"))
    try:
        for server in started.all:
            server.start()
        for server in started.all:
            server.wait_until_ready()
        yield started
    finally:
        for server in started.all:
            server.stop()


@pytest.fixture
def main(servers: Servers) -> Server:
    return servers.main


def new_id() -> str:
    return f"test-{uuid.uuid4().hex}"


# -- the Dockerflow paths -----------------------------------------------------------------------


@pytest.mark.servers
@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/__lbheartbeat__", 200, {}),
        ("/__lbheartbeat__/", 200, {}),
        ("/__version__", 200, VERSION),
        ("/__version__/", 200, VERSION),
    ],
)
def test_probes_are_answered_before_the_apps_middleware(main, path, status, body):
    rid = new_id()
    # The app's own request middleware refuses requests with X-Block: it never sees a probe.
    answer = main.get(path, rid, headers={"X-Block": "1"})
    assert answer.status_code == status
    assert answer.json() == body
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["X-Request-ID"] == rid
    assert main.summary(rid)["Fields"]["path"] == path
    assert main.logged(rid, "app") == ["handling"]


@pytest.mark.servers
@pytest.mark.parametrize("path", ["/__heartbeat__", "/__heartbeat__/"])
def test_the_heartbeat_awaits_async_checks_and_runs_sync_ones_on_threads(main, path):
    rid = new_id()
    answer = main.get(path, rid)
    assert answer.status_code == 200  # warnings are healthy
    payload = answer.json()
    assert payload["status"] == "warning"
    assert payload["checks"] == {"sync_check": "warning", "async_check": "info"}
    sync_thread = payload["details"]["sync_check"]["messages"]["test.W001"]
    assert sync_thread.startswith("ran on ") and sync_thread != "ran on MainThread"
    # Sanic's loop runs on the main thread of its single process.
    assert payload["details"]["async_check"]["messages"]["test.I001"] == "ran on MainThread"
    # Each check's record carries the request's id (its message's; the first run's also the
    # transition to its level); the signal has the Sanic app as sender.
    records = main.logged(rid, "dockerflow_wsgi.checks")
    assert len([record for record in records if " is now " not in record]) == 2
    assert main.logged(rid, "app") == ["handling", "heartbeat passed for main at level 30"]
    assert main.summary(rid)["Fields"]["code"] == 200


@pytest.mark.servers
def test_a_heartbeat_waiting_for_a_sync_check_leaves_the_loop_free(main):
    request_id = f"slow-{uuid.uuid4().hex}"
    gate = Path(tempfile.gettempdir()) / request_id
    started = gate.with_suffix(".started")
    try:
        with ThreadPoolExecutor(1) as pool:
            heartbeat = pool.submit(
                httpx.get,
                f"{main.url}/__heartbeat__",
                headers={"X-Request-ID": request_id},
                timeout=60,
            )
            deadline = time.monotonic() + 30
            while not started.exists():
                assert time.monotonic() < deadline, "the check never started"
                time.sleep(0.01)
            # The sync check is held on its thread: the loop still answers.
            assert httpx.get(f"{main.url}/__lbheartbeat__", timeout=10).status_code == 200
            assert not heartbeat.done()
            gate.touch()
            assert heartbeat.result().status_code == 200
    finally:
        gate.unlink(missing_ok=True)
        started.unlink(missing_ok=True)


@pytest.mark.servers
@pytest.mark.parametrize("path", ["/__lbheartbeat__", "/__heartbeat__", "/__version__"])
def test_head_has_the_status_and_headers_of_get_and_no_body(main, path):
    get = main.get(path)
    head = main.request("HEAD", path)
    assert head.status_code == get.status_code
    assert head.content == b""
    ignored = {"x-request-id"}
    assert {k: v for k, v in head.headers.items() if k not in ignored} == {
        k: v for k, v in get.headers.items() if k not in ignored
    }
    assert int(head.headers["Content-Length"]) == len(get.content)


@pytest.mark.servers
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PROPFIND"])
@pytest.mark.parametrize("path", ["/__heartbeat__", "/__lbheartbeat__/"])
def test_other_methods_are_405(main, method, path):
    rid = new_id()
    answer = main.request(method, path, rid)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET, HEAD"
    assert answer.json() == {"error": "method not allowed"}
    assert main.summary(rid)["Fields"]["errno"] == 405


@pytest.mark.servers
def test_other_paths_reach_the_app(main):
    answer = main.get("/x/__heartbeat__")
    assert answer.text == "the app's own"


@pytest.mark.servers
def test_the_error_endpoint_from_app_config_makes_an_error_summary(main):
    rid = new_id()
    assert main.get("/__error__", rid).status_code == 500
    summary = main.summary(rid)
    assert summary["Severity"] == 3
    assert summary["Fields"]["errno"] == 500
    assert "DeliberateError" in summary["Fields"]["traceback"]
    assert main.logged(rid, "dockerflow_wsgi") == ["The __error__ endpoint was called"]


# -- request ids --------------------------------------------------------------------------------


@pytest.mark.servers
def test_a_valid_request_id_is_used_echoed_and_seen_by_the_handler(main):
    rid = new_id()
    answer = main.get("/", rid)
    assert answer.headers["X-Request-ID"] == rid
    # request.ctx.request_id, and the context variable in the handler's task.
    assert answer.json() == {"ctx": rid, "var": rid}
    assert main.logged(rid, "app") == ["handling", "app middleware", "handled"]
    assert main.summary(rid)["Fields"]["rid"] == rid


@pytest.mark.servers
def test_a_task_the_handler_creates_has_the_request_id(main):
    rid = new_id()
    assert main.get("/task", rid).text == "done"
    assert main.logged(rid, "app") == ["handling", "app middleware", "in a task"]


@pytest.mark.servers
@pytest.mark.parametrize(
    "sent",
    [b"", b"has space", b"x" * 129, b"caf\xc3\xa9", b"tab\tinside"],
    ids=["empty", "space", "too-long", "non-ascii", "control"],
)
def test_an_unsafe_request_id_is_replaced(main, sent):
    answer = main.get("/", headers={"X-Request-ID": sent})
    rid = answer.headers["X-Request-ID"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    assert answer.json() == {"ctx": rid, "var": rid}
    assert main.summary(rid)["Fields"]["rid"] == rid


@pytest.mark.servers
def test_the_apps_own_request_id_header_is_kept(main):
    answer = main.get("/own-id", new_id())
    assert answer.headers.get_list("X-Request-ID") == ["chosen-by-the-app"]


@pytest.mark.servers
def test_requests_on_one_connection_each_have_their_own_id(main):
    """Sanic handles a connection's requests one after the other in one task: an id must not
    outlive its request."""
    connection = http.client.HTTPConnection("127.0.0.1", main.port, timeout=10)
    rids = []
    sockets = []
    try:
        for headers in ({"X-Request-ID": new_id()}, {}):
            connection.request("GET", "/", headers=headers)
            answer = connection.getresponse()
            rids.append(answer.headers["X-Request-ID"])
            assert json.loads(answer.read()) == {"ctx": rids[-1], "var": rids[-1]}
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert sockets[0] is sockets[1]
    assert rids[0] != rids[1]
    for rid in rids:
        assert main.logged(rid, "app") == ["handling", "app middleware", "handled"]


# -- request.summary ----------------------------------------------------------------------------


@pytest.mark.servers
def test_one_summary_with_the_mozlog_fields(main):
    rid = new_id()
    answer = main.get(
        "/café",
        rid,
        params={"q": "1", "password": "hunter2"},
        headers={"User-Agent": "probe/1.0", "Accept-Language": "fr-CA"},
    )
    assert answer.text == "bonjour"
    summary = main.summary(rid)
    assert summary["Severity"] == 6
    assert summary["Fields"] == {
        "agent": "probe/1.0",
        "lang": "fr-CA",
        "method": "GET",
        "path": "/café",
        "querystring": "q=1&password=***",  # DOCKERFLOW_SUMMARY_LOG_QUERYSTRING from app.config
        "code": 200,
        "errno": 0,
        "t": summary["Fields"]["t"],
        "rid": rid,
        "uid": "alice",  # request.ctx.user_id
        "route": "caf%C3%A9",  # request.route.path, as Sanic writes it
    }
    assert isinstance(summary["Fields"]["t"], int)


@pytest.mark.servers
@pytest.mark.parametrize(
    ("traceparents", "logged"),
    [
        (["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], True),
        (["00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"], False),
        (["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"] * 2, False),
    ],
    ids=["valid", "uppercase", "twice"],
)
def test_the_summary_has_the_trace_id_of_a_valid_traceparent(main, traceparents, logged):
    rid = new_id()
    headers = httpx.Headers([("traceparent", value) for value in traceparents])
    assert main.get("/", rid, headers=headers).status_code == 200
    fields = main.summary(rid)["Fields"]
    assert fields.get("trace_id") == ("4bf92f3577b34da6a3ce929d0e0e4736" if logged else None)


@pytest.mark.servers
def test_a_handler_that_raises_makes_an_error_summary_with_its_traceback(main):
    rid = new_id()
    answer = main.get("/boom", rid)
    assert answer.status_code == 500  # Sanic's error page
    assert answer.headers["X-Request-ID"] == rid
    summary = main.summary(rid)
    assert summary["Severity"] == 3
    assert summary["Fields"]["code"] == 500
    assert summary["Fields"]["errno"] == 500
    assert summary["Fields"]["error"] == "ValueError('boom')"
    assert "ValueError: boom" in summary["Fields"]["traceback"]


@pytest.mark.servers
def test_a_path_sanic_does_not_know_is_the_clients_error(main):
    rid = new_id()
    assert main.get("/nowhere%E9", rid).status_code == 404
    summary = main.summary(rid)
    assert summary["Severity"] == 6
    assert summary["Fields"]["errno"] == 404
    assert summary["Fields"]["path"] == "/nowhere\ufffd"  # not UTF-8: replaced, as under WSGI
    assert "traceback" not in summary["Fields"]


@pytest.mark.servers
def test_an_exception_the_apps_error_handler_answers_with_a_4xx_is_the_clients_error(main):
    rid = new_id()
    answer = main.get("/order/42", rid)
    assert answer.json() == {"error": "no such order"}
    summary = main.summary(rid)
    assert summary["Severity"] == 6
    assert summary["Fields"]["errno"] == 400


@pytest.mark.servers
def test_header_bytes_are_logged_as_the_wsgi_and_asgi_adapters_log_them(main):
    rid = new_id()
    main.get("/", rid, headers={"User-Agent": b"caf\xc3\xa9 \xff"})
    assert main.summary(rid)["Fields"]["agent"] == b"caf\xc3\xa9 \xff".decode("latin-1")


@pytest.mark.servers
def test_a_malformed_request_is_sanics_alone(main):
    rid = new_id()
    with socket.create_connection(("127.0.0.1", main.port), timeout=10) as client:
        client.sendall(
            f"GET / HTTP/1.1\r\nX-Request-ID: {rid}\r\nContent-Length: many\r\n\r\n".encode()
        )
        assert client.recv(4096).startswith(b"HTTP/1.1 400 Bad Request")
    assert main.summaries(rid) == []


@pytest.mark.servers
def test_a_streamed_response_is_timed_to_its_end(main):
    rid = new_id()
    answer = main.get("/stream", rid)
    assert answer.text == "one two"
    assert answer.headers["X-Request-ID"] == rid
    summary = main.summary(rid)
    assert summary["Fields"]["code"] == 200
    assert summary["Fields"]["t"] >= 200


@pytest.mark.servers
def test_a_stream_that_raises_after_its_first_chunk_makes_an_error_summary(main):
    rid = new_id()
    answer = main.get("/stream-then-raise", rid)
    assert answer.status_code == 200  # sent before the exception
    summary = main.summary(rid)
    assert summary["Severity"] == 3
    assert summary["Fields"]["code"] == 200
    assert summary["Fields"]["errno"] == 500
    assert "RuntimeError: mid-stream" in summary["Fields"]["traceback"]


@pytest.mark.servers
def test_a_client_gone_mid_stream_gets_one_summary(main):
    rid = new_id()
    with socket.create_connection(("127.0.0.1", main.port), timeout=10) as client:
        client.sendall(f"GET /endless HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n\r\n".encode())
        assert client.recv(4096).startswith(b"HTTP/1.1 200 OK")
    records = main.wait_for(lambda record: is_summary(record, rid))
    (summary,) = [record for record in records if is_summary(record, rid)]
    assert summary["Severity"] == 6
    assert summary["Fields"]["code"] == 200
    assert main.summaries(rid) == [summary]


@pytest.mark.servers
def test_a_websocket_session_has_the_request_id_and_no_summary(main):
    rid = new_id()
    with websocket_connect(
        f"ws://127.0.0.1:{main.port}/ws", additional_headers={"X-Request-ID": rid}
    ) as websocket:
        websocket.send("hello")
        assert websocket.recv(timeout=10) == f"hello {rid}"
    assert main.logged(rid, "app") == ["handling", "app middleware", "websocket message"]
    assert main.summaries(rid) == []


# -- options ------------------------------------------------------------------------------------


@pytest.mark.servers
def test_options_from_app_config_win_over_the_environment(servers):
    server = servers.options
    rid = new_id()
    answer = server.get("/", rid, headers={"X-Request-ID": "ignored", "X-Environment-ID": "no"})
    assert answer.headers["X-Trace-ID"] == rid
    assert "X-Request-ID" not in answer.headers
    fields = server.summary(rid, sentinel_path="/")["Fields"]
    assert fields["rid"] == rid
    assert "querystring" not in fields  # DOCKERFLOW_SUMMARY_LOG_QUERYSTRING is off by default


@pytest.mark.servers
def test_a_failing_heartbeat_has_the_status_from_app_config(servers):
    server = servers.options
    rid = new_id()
    answer = server.get("/__heartbeat__", rid)
    assert answer.status_code == 503
    assert answer.json()["status"] == "error"
    assert server.logged(rid, "app") == ["heartbeat failed for options at level 40"]


@pytest.mark.servers
def test_log_probes_off_as_a_keyword_wins_over_the_environment(servers):
    server = servers.options
    rids = {path: new_id() for path in ("/__lbheartbeat__", "/__heartbeat__", "/__version__")}
    for path, rid in rids.items():
        server.get(path, rid)
    for rid in rids.values():
        assert server.summaries(rid, sentinel_path="/") == []


@pytest.mark.servers
def test_metrics_and_groups_from_the_environment(servers):
    server = servers.options
    assert server.get("/").status_code == 200
    group = server.get("/__heartbeat__/jobs/")
    assert (group.status_code, group.json()["checks"]) == (503, {"queue": "error"})
    assert server.get("/__heartbeat__/nosuch").status_code == 404

    scraped = server.get("/__metrics__")

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    assert 'dockerflow_requests_total{code="200",method="GET",route=""}' in scraped.text
    assert 'dockerflow_check_status{check="queue"} 40.0' in scraped.text
    assert server.request("HEAD", "/__metrics__").content == b""


@pytest.mark.servers
def test_the_error_endpoint_is_off_by_default(servers):
    assert servers.options.get("/__error__").status_code == 404


def new_app() -> Sanic:
    return Sanic(f"app_{uuid.uuid4().hex}", configure_logging=False)


@pytest.mark.parametrize(
    ("keyword", "config", "environment", "expected"),
    [(3, "2", "1", 3.0), (None, 2, "1", 2.0), (None, None, "1", 1.0), (None, None, None, 5.0)],
)
def test_an_option_comes_from_the_keyword_app_config_environment_default(
    monkeypatch, keyword, config, environment, expected
):
    app = new_app()
    if config is not None:
        app.config["DOCKERFLOW_CHECK_TIMEOUT"] = config
    if environment is not None:
        monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", environment)
    options = {} if keyword is None else {"check_timeout": keyword}
    dockerflow = Dockerflow(app, **options)
    assert dockerflow.core is not None
    assert dockerflow.core.config.check_timeout == expected


def test_a_bad_value_in_app_config_fails_at_construction_naming_it():
    app = new_app()
    app.config["DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"] = 200
    with pytest.raises(
        ValueError, match=r"app\.config\['DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE'\]"
    ):
        Dockerflow(app)


def test_an_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="no option 'version_file'"):
        Dockerflow(new_app(), version_file="version.json")


def test_init_app_later_sets_the_app_up_once_with_the_app_as_sender():
    app = new_app()
    dockerflow = Dockerflow(error_endpoint=True)
    dockerflow.init_app(app)
    again = Dockerflow(app)  # no second set of routes: Sanic would refuse them
    assert dockerflow.core is not None
    assert again.core is dockerflow.core
    assert dockerflow.core.heartbeat.sender is app
    assert app.ctx.dockerflow is dockerflow
    assert app.url_for("dockerflow.heartbeat") == "/__heartbeat__"
    assert sorted(route.name for route in app.router.routes) == [
        f"{app.name}.dockerflow.{name}"
        for name in ("error", "heartbeat", "heartbeat_group", "lbheartbeat", "version")
    ]


# -- side by side with the dockerflow package's Sanic integration ------------------------------


@pytest.mark.servers
@pytest.mark.parametrize("path", ["/__heartbeat__", "/__version__"])
def test_a_migrated_service_answers_as_with_dockerflow_sanic(servers, path):
    theirs, ours = servers.theirs.get(path), servers.ours.get(path)
    assert ours.status_code == theirs.status_code
    assert ours.json() == theirs.json()


@pytest.mark.servers
def test_the_heartbeat_of_a_migrated_service_fails_with_the_same_status(servers):
    answer = servers.ours.get("/__heartbeat__")
    assert answer.status_code == 503  # DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE, read by both
    assert answer.json()["checks"] == {"database": "ok", "redis": "warning", "queue": "error"}


@pytest.mark.servers
def test_the_summary_has_every_field_of_dockerflow_sanics(servers):
    fields = []
    for server in (servers.theirs, servers.ours):
        rid = new_id()
        server.get("/", rid, headers={"User-Agent": "probe/1.0", "Accept-Language": "fr"})
        fields.append(server.summary(rid)["Fields"])
    theirs, ours = fields
    assert set(theirs) <= set(ours)
    same = ("agent", "lang", "method", "path", "errno", "uid")
    assert {key: theirs[key] for key in same} == {key: ours[key] for key in same}


def test_the_route_names_are_dockerflow_sanics():
    from dockerflow.sanic import Dockerflow as TheirDockerflow

    theirs, ours = new_app(), new_app()
    TheirDockerflow(theirs)
    Dockerflow(ours, error_endpoint=True)  # dockerflow.sanic always has /__error__
    # And one of ours: /__heartbeat__/<group> (heartbeat groups, a 404 when none has the name).
    assert sorted(r.name.split(".", 1)[1] for r in theirs.router.routes) == sorted(
        r.name.split(".", 1)[1]
        for r in ours.router.routes
        if not r.name.endswith(".heartbeat_group")
    )


# -- the documentation's example ----------------------------------------------------------------


@pytest.mark.servers
def test_the_quickstart_snippet_runs_under_the_sanic_command(servers):
    server = servers.snippet
    rid = new_id()
    answer = server.get("/", rid)
    assert answer.json() == {"orders": [], "request_id": rid}
    assert answer.headers["X-Request-ID"] == rid
    assert server.logged(rid, "orders") == ["Listing orders"]
    assert server.summary(rid)["Fields"]["code"] == 200
    heartbeat = server.get("/__heartbeat__")
    assert heartbeat.json() == {
        "status": "ok",
        "checks": {"payments_reachable": "ok"},
        "details": {},
    }
