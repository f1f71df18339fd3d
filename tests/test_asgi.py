"""The ASGI middleware, called as a server calls it: raw scopes, receive and send."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from typing import Any, Optional

import pytest
from asgi_scope import http_scope

from dockerflow_wsgi import checks
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import RequestIdLogFilter
from dockerflow_wsgi.request_id import current_request_id


class Call:
    """What the server saw of one request: the messages sent, the exception raised."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.raised: Optional[BaseException] = None

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: Any, scope: dict, requests: Optional[list] = None) -> Call:
    """Run one request through ``app`` on a fresh loop."""
    seen = Call()
    incoming = list(requests or [{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> dict:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # like a server: nothing more until the client leaves
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        seen.messages.append(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            seen.raised = exc

    asyncio.run(run())
    return seen


async def hello(scope: dict, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


class Recorder:
    """An app that records what it was given, then answers hello."""

    def __init__(self) -> None:
        self.scopes: list[dict] = []
        self.request_ids: list[Optional[str]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.request_ids.append(current_request_id())
        if scope["type"] == "http":
            await hello(scope, receive, send)


# -- scopes that are not http -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_other_scopes_pass_through_untouched(kind, summary_records):
    seen = []

    async def app(scope, receive, send):
        seen.append((scope, receive, send))

    scope = {"type": kind, "asgi": {"version": "3.0"}, "path": "/__heartbeat__"}

    async def receive():
        return {}

    async def send(message):
        pass

    asyncio.run(DockerflowASGIMiddleware(app)(scope, receive, send))

    assert seen == [(scope, receive, send)]
    assert "dockerflow.request_id" not in scope
    assert summary_records == []


# -- the Dockerflow paths -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/__lbheartbeat__", "/__lbheartbeat__/"])
def test_lbheartbeat_is_answered_before_the_app(path):
    app = Recorder()

    seen = call(DockerflowASGIMiddleware(app), http_scope(path))

    assert (seen.status, seen.json()) == (200, {})
    assert seen.headers[b"content-type"] == b"application/json"
    assert seen.headers[b"cache-control"] == b"no-cache"
    assert app.scopes == []


def test_heartbeat_awaits_async_checks_and_runs_the_others_off_the_loop():
    threads = {}

    async def on_loop():
        threads["async"] = threading.get_ident()
        return [checks.Warning("slow", id="a.W1")]

    def off_loop():
        threads["sync"] = threading.get_ident()
        return []

    middleware = DockerflowASGIMiddleware(
        Recorder(), checks=[("on_loop", on_loop), ("off_loop", off_loop)]
    )
    seen = call(middleware, http_scope("/__heartbeat__"))

    assert seen.status == 200
    assert seen.json() == {
        "status": "warning",
        "checks": {"on_loop": "warning", "off_loop": "ok"},
        "details": {"on_loop": {"status": "warning", "level": 30, "messages": {"a.W1": "slow"}}},
    }
    # call() runs the loop on this thread: the async check ran on it, the other did not.
    assert threads["async"] == threading.get_ident() != threads["sync"]


def test_a_failing_heartbeat_is_the_configured_5xx():
    middleware = DockerflowASGIMiddleware(
        Recorder(),
        checks=[("db", lambda: [checks.Error("down", id="x.E1")])],
        heartbeat_failed_status_code=503,
    )

    seen = call(middleware, http_scope("/__heartbeat__"))

    assert seen.status == 503
    assert seen.json()["status"] == "error"


def test_version_is_read_and_served(tmp_path):
    (tmp_path / "version.json").write_text(json.dumps({"version": "1.2.3"}))

    seen = call(
        DockerflowASGIMiddleware(Recorder(), version_path=tmp_path), http_scope("/__version__")
    )
    missing = call(
        DockerflowASGIMiddleware(Recorder(), version_path=tmp_path / "x"),
        http_scope("/__version__"),
    )

    assert (seen.status, seen.json()) == (200, {"version": "1.2.3"})
    assert (missing.status, missing.json()) == (404, {"error": "version.json not found"})


def test_head_has_the_headers_of_get_and_no_body():
    middleware = DockerflowASGIMiddleware(Recorder())

    get = call(middleware, http_scope("/__lbheartbeat__"))
    head = call(middleware, http_scope("/__lbheartbeat__", method="HEAD"))

    assert head.status == get.status
    assert head.headers[b"content-length"] == get.headers[b"content-length"] == b"2"
    assert head.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(method):
    seen = call(DockerflowASGIMiddleware(Recorder()), http_scope("/__heartbeat__", method=method))

    assert seen.status == 405
    assert seen.headers[b"allow"] == b"GET, HEAD"


@pytest.mark.parametrize("path", ["/", "/__heartbeat", "/x/__heartbeat__", "/__heartbeat__//"])
def test_other_paths_reach_the_app(path):
    app = Recorder()

    seen = call(DockerflowASGIMiddleware(app), http_scope(path))

    assert seen.body == b"hello"
    assert [scope["path"] for scope in app.scopes] == [path]


def test_paths_are_matched_below_the_root_path_of_a_mounted_app():
    middleware = DockerflowASGIMiddleware(Recorder())

    # Today's servers put the root path in front of path; older ones did not.
    with_root = call(middleware, http_scope("/api/__lbheartbeat__", root_path="/api"))
    without_root = call(middleware, http_scope("/__lbheartbeat__", root_path="/api"))

    assert with_root.status == without_root.status == 200


# -- request ids ----------------------------------------------------------------------------------


def test_a_valid_request_id_is_used_echoed_and_in_the_context():
    app = Recorder()
    scope = http_scope(headers=[(b"x-request-id", b"abc-123")])

    seen = call(DockerflowASGIMiddleware(app), scope)

    assert seen.headers[b"x-request-id"] == b"abc-123"
    assert app.scopes[0]["dockerflow.request_id"] == "abc-123"
    assert app.request_ids == ["abc-123"]
    assert "dockerflow.request_id" not in scope, "the server's scope is left as it is"


@pytest.mark.parametrize("sent", [b"", b"a b", b"x" * 129, b"caf\xc3\xa9", b"bad\nline"])
def test_an_unsafe_request_id_is_replaced(sent):
    seen = call(DockerflowASGIMiddleware(Recorder()), http_scope(headers=[(b"x-request-id", sent)]))

    echoed = seen.headers[b"x-request-id"]
    assert echoed != sent
    assert len(echoed) == 32


def test_the_apps_own_request_id_header_is_kept():
    async def app(scope, receive, send):
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"X-Request-ID", b"own")]}
        )
        await send({"type": "http.response.body", "body": b""})

    seen = call(DockerflowASGIMiddleware(app), http_scope())

    assert seen.messages[0]["headers"] == [(b"X-Request-ID", b"own")]


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_the_apps_own_headers_are_read_as_bytes_or_bytearray(kind):
    own = [(kind(b"Content-Type"), kind(b"text/plain")), (kind(b"X-Request-ID"), kind(b"own"))]
    cors = [(kind(b"Access-Control-Allow-Origin"), kind(b"*"))]

    async def app(scope, receive, send):
        headers = own if scope["path"] == "/own" else cors
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    middleware = DockerflowASGIMiddleware(app)
    kept = call(middleware, http_scope("/own"))
    assert kept.messages[0]["headers"] == own  # the app's own id, not a second one
    exposed = call(middleware, http_scope("/cors", headers=[(b"x-request-id", b"abc-123")]))
    assert exposed.headers[b"access-control-expose-headers"] == b"X-Request-ID"
    assert exposed.headers[b"x-request-id"] == b"abc-123"


def test_a_response_sent_again_carries_each_requests_own_id():
    """The application's header list is its own: a module-level response sent for every
    request must not keep the first request's id."""
    headers = [(b"content-type", b"text/plain")]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"same"})

    middleware = DockerflowASGIMiddleware(app)
    first = call(middleware, http_scope(headers=[(b"x-request-id", b"first-1")]))
    second = call(middleware, http_scope(headers=[(b"x-request-id", b"second-2")]))

    assert first.headers[b"x-request-id"] == b"first-1"
    assert second.headers[b"x-request-id"] == b"second-2"
    assert headers == [(b"content-type", b"text/plain")]


def test_another_header_name_is_read_and_echoed():
    seen = call(
        DockerflowASGIMiddleware(Recorder(), request_id_header="X-Correlation-Id"),
        http_scope(headers=[(b"x-correlation-id", b"corr-1")]),
    )

    assert seen.headers[b"x-correlation-id"] == b"corr-1"


def test_log_records_made_by_the_app_carry_the_request_id(caplog):
    caplog.set_level(logging.INFO, logger="acme")
    caplog.handler.addFilter(RequestIdLogFilter())

    async def app(scope, receive, send):
        logging.getLogger("acme").info("handling")
        await asyncio.sleep(0)
        await hello(scope, receive, send)
        logging.getLogger("acme").info("after the body")

    call(DockerflowASGIMiddleware(app), http_scope(headers=[(b"x-request-id", b"log-1")]))

    assert [r.rid for r in caplog.records if r.name == "acme"] == ["log-1", "log-1"]


def test_an_outer_middleware_handles_the_request_alone(summary_records):
    inner = DockerflowASGIMiddleware(Recorder())
    seen = call(DockerflowASGIMiddleware(inner), http_scope())

    assert seen.body == b"hello"
    assert len(summary_records) == 1


# -- the summary ----------------------------------------------------------------------------------


def test_one_summary_per_request_with_the_mozlog_fields(summary_records):
    scope = http_scope(
        "/caf\u00e9",
        headers=[
            (b"x-request-id", b"sum-1"),
            (b"user-agent", b"curl/8"),
            (b"accept-language", b"fr"),
        ],
        query_string="q=caf\u00e9&token=secret".encode(),
        **{"dockerflow.user_id": 42},
    )

    call(DockerflowASGIMiddleware(Recorder(), log_querystring=True), scope)

    [record] = summary_records
    assert record.levelno == logging.INFO
    assert (record.method, record.path, record.code, record.errno) == ("GET", "/caf\u00e9", 200, 0)
    assert (record.agent, record.lang, record.rid, record.uid) == ("curl/8", "fr", "sum-1", "42")
    assert record.querystring == "q=caf\u00e9&token=***"


def test_the_summary_is_written_when_the_last_body_message_is_sent(summary_records):
    counts = []

    async def streams(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            counts.append(len(summary_records))
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        counts.append(len(summary_records))  # the app goes on: background work

    seen = call(DockerflowASGIMiddleware(streams), http_scope())

    assert seen.body == b"xxx"
    assert counts == [0, 0, 0, 1]
    assert len(summary_records) == 1


@pytest.mark.parametrize("started", [False, True])
def test_an_app_that_raises_gets_an_error_summary_and_the_exception_goes_on(
    started, summary_records
):
    async def fails(scope, receive, send):
        if started:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise LookupError("the view failed")

    seen = call(DockerflowASGIMiddleware(fails), http_scope())

    assert isinstance(seen.raised, LookupError)
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info[1] is seen.raised
    assert (record.code, record.errno) == (200 if started else 500, 500)


def test_an_exception_a_framework_reported_in_the_scope_makes_the_summary_an_error(
    summary_records,
):
    error = LookupError("handled by the framework")

    async def framework(scope, receive, send):
        scope["dockerflow.exc_info"] = error
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"Server Error"})

    call(DockerflowASGIMiddleware(framework), http_scope())

    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info[1] is error


def test_a_client_gone_mid_stream_ends_the_request_with_one_summary(summary_records):
    class Gone(OSError):
        pass

    sent = []

    async def send(message):
        if len(sent) == 2:
            raise Gone("the client went away")
        sent.append(message)

    async def streams(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(10):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})

    async def receive():
        return {"type": "http.request"}

    async def run():
        with pytest.raises(Gone):
            await DockerflowASGIMiddleware(streams)(http_scope(), receive, send)

    asyncio.run(run())

    [record] = summary_records
    assert (record.levelno, record.code) == (logging.INFO, 200)


def test_a_request_the_server_cancels_gets_one_summary(summary_records):
    async def slow(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(60)

    async def run():
        async def receive():
            return {"type": "http.request"}

        async def send(message):
            pass

        task = asyncio.ensure_future(DockerflowASGIMiddleware(slow)(http_scope(), receive, send))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())

    [record] = summary_records
    assert (record.levelno, record.code) == (logging.INFO, 200)


def test_log_probes_off_writes_no_summary_for_the_probes(summary_records):
    middleware = DockerflowASGIMiddleware(Recorder(), log_probes=False)

    call(middleware, http_scope("/__lbheartbeat__"))
    call(middleware, http_scope("/"))

    assert [record.path for record in summary_records] == ["/"]


def test_options_come_from_the_environment_and_are_validated(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "soon")

    with pytest.raises(ValueError, match="DOCKERFLOW_CHECK_TIMEOUT"):
        DockerflowASGIMiddleware(Recorder())
    with pytest.raises(TypeError, match="no option 'check_timeuot'"):
        DockerflowASGIMiddleware(Recorder(), check_timeuot=1)


def test_importing_the_library_and_its_asgi_middleware_imports_no_framework():
    script = (
        "import sys, dockerflow_wsgi, dockerflow_wsgi.asgi\n"
        "frameworks = {'flask', 'django', 'sanic', 'starlette', 'fastapi', 'uvicorn',\n"
        "              'sqlalchemy', 'redis', 'alembic', 'prometheus_client', 'webob'}\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & frameworks))\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert finished.stdout.strip() == "[]"
