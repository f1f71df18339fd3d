"""DockerflowMiddleware: the Dockerflow paths, pass-through, request ids and request.summary."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import uuid
from typing import Any, Callable
from wsgiref.util import FileWrapper

import pytest
import webtest
from werkzeug.wsgi import ClosingIterator

import dockerflow_wsgi.exchange as exchange_module
from dockerflow_wsgi import DeliberateError, DockerflowMiddleware, checks, signals
from dockerflow_wsgi.request_id import current_request_id
from dockerflow_wsgi.summary import TRUNCATION_MARKER

DOCKERFLOW_PATHS = ["/__lbheartbeat__", "/__heartbeat__", "/__version__"]
REFUSED_METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
NEW_ID = re.compile(r"[0-9a-f]{32}")
VERSION = {"source": "https://github.com/acme/app", "version": "1.2.3", "commit": "abc"}

SUMMARY_FIELDS = ("agent", "lang", "method", "path", "code", "errno", "t", "rid", "uid")


def version_callback(version_path: str) -> dict[str, Any]:
    return dict(VERSION)


class RecordingApp:
    """A pass-through app that remembers each environ it was called with."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.environs.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"from the app"]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(exchange_module, "perf_counter", fake)
    return fake


@pytest.fixture
def app() -> RecordingApp:
    return RecordingApp()


def summary_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in SUMMARY_FIELDS}


def is_new_request_id(value: str) -> bool:
    return bool(NEW_ID.fullmatch(value)) and uuid.UUID(hex=value).version == 4


def heartbeat(middleware: DockerflowMiddleware) -> webtest.TestResponse:
    return webtest.TestApp(middleware).get("/__heartbeat__", status="*")


# -- the Dockerflow paths ---------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_get_is_answered_as_json_and_never_cached(path, app):
    response = webtest.TestApp(DockerflowMiddleware(app, version_callback=version_callback)).get(
        path
    )

    assert response.status_int == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-cache"
    assert isinstance(json.loads(response.body), dict)
    assert app.environs == []


@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_head_has_the_status_and_headers_of_get_and_no_body(path, app, make_environ, call_wsgi):
    middleware = DockerflowMiddleware(app, version_callback=version_callback)
    same_id = {"HTTP_X_REQUEST_ID": "probe-1"}

    get = call_wsgi(middleware, make_environ(path, "GET", **same_id))
    head = call_wsgi(middleware, make_environ(path, "HEAD", **same_id))

    assert get.body != b""
    assert head.body == b""
    assert head.status == get.status
    assert head.headers == get.headers
    assert app.environs == []


@pytest.mark.parametrize("method", REFUSED_METHODS)
@pytest.mark.parametrize("path", [*DOCKERFLOW_PATHS, "/__error__"])
def test_other_methods_are_refused_with_405(path, method, app):
    middleware = DockerflowMiddleware(app, version_callback=version_callback, error_endpoint=True)

    response = webtest.TestApp(middleware).request(path, method=method, status="*")

    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-cache"
    assert isinstance(json.loads(response.body), dict)
    assert app.environs == []


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="healthy"),
        pytest.param(
            {
                "checks": [("broken", lambda: [checks.Critical("down", id="x.E1")])],
                "version_callback": lambda path: None,
            },
            id="failing",
        ),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", *REFUSED_METHODS])
@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_every_dockerflow_answer_is_uncached_json_and_never_calls_the_app(
    path, method, options, app, make_environ, call_wsgi
):
    options = {"version_callback": version_callback, **options}

    result = call_wsgi(DockerflowMiddleware(app, **options), make_environ(path, method))

    assert result.header_values("Content-Type") == ["application/json"]
    assert result.header_values("Cache-Control") == ["no-cache"]
    if method != "HEAD":
        assert isinstance(json.loads(result.body), dict)
    assert app.environs == []


def test_lbheartbeat_runs_no_check(app):
    calls = []
    checks.register(lambda: calls.append("ran") or [], name="spy")
    middleware = DockerflowMiddleware(app, checks=[("spy2", lambda: calls.append("ran") or [])])

    response = webtest.TestApp(middleware).get("/__lbheartbeat__")

    assert response.status_int == 200
    assert calls == []


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_error_path_reaches_the_app_when_the_error_endpoint_is_off(method, app):
    response = webtest.TestApp(DockerflowMiddleware(app)).request("/__error__", method=method)

    assert response.status_int == 200
    assert [environ["PATH_INFO"] for environ in app.environs] == ["/__error__"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_error_endpoint_logs_an_error_and_raises(
    method, app, make_environ, fake_server, dockerflow_records, summary_records
):
    middleware = DockerflowMiddleware(app, error_endpoint=True)

    with pytest.raises(DeliberateError) as raised:
        middleware(make_environ("/__error__", method), fake_server.start_response)

    assert app.environs == []
    assert [record.levelno for record in dockerflow_records] == [logging.ERROR]
    [summary] = summary_records
    assert summary.levelno == logging.ERROR
    assert summary.exc_info[1] is raised.value
    assert (summary.code, summary.errno, summary.path) == (500, 500, "/__error__")
    assert current_request_id() is None


# -- pass-through -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/__lbheartbeat__/", "/__heartbeat__/", "/__version__/"])
def test_the_paths_are_answered_with_one_trailing_slash(path, app):
    """Probes configured for the dockerflow package's Django views end in a slash."""
    client = webtest.TestApp(
        DockerflowMiddleware(app, version_callback=lambda path: {"version": "1"})
    )

    response = client.get(path)

    assert response.status_int == 200
    assert response.content_type == "application/json"
    assert app.environs == []
    assert client.post(path, status=405).headers["Allow"] == "GET, HEAD"


def test_the_error_endpoint_is_answered_with_one_trailing_slash(app):
    client = webtest.TestApp(DockerflowMiddleware(app, error_endpoint=True))

    with pytest.raises(DeliberateError):
        client.get("/__error__/")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/hello",
        "/__heartbeat__//",
        "/__heartbeat",
        "/__HEARTBEAT__",
        "/__version__.json",
        "/x/__lbheartbeat__",
        "//__lbheartbeat__",
        "/__lbheartbeat__%20",
        "",
    ],
)
def test_other_paths_reach_the_app(path, app):
    response = webtest.TestApp(DockerflowMiddleware(app)).get(
        "/", extra_environ={"PATH_INFO": path}
    )

    assert response.body == b"from the app"
    assert [environ["PATH_INFO"] for environ in app.environs] == [path]


@pytest.mark.parametrize(
    ("status", "headers", "chunks"),
    [
        ("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")], [b"hello"]),
        ("201 Created", [("Location", "/items/1"), ("Set-Cookie", "a=1")], [b"a", b"", b"bc"]),
        ("299 Whatever We Like", [("X-Custom", "x"), ("X-Custom", "y")], []),
        ("404 Not Found", [("Content-Type", "text/html; charset=utf-8")], [b"<h1>no</h1>"]),
    ],
)
def test_pass_through_leaves_status_headers_body_and_environ_untouched(
    status, headers, chunks, make_environ, call_wsgi
):
    seen: list[dict[str, Any]] = []

    def app(environ, start_response):
        seen.append(dict(environ))
        start_response(status, list(headers))
        return list(chunks)

    environ = make_environ(
        "/items", "POST", QUERY_STRING="a=1&b=2", HTTP_USER_AGENT="test", HTTP_COOKIE="c=1"
    )
    sent = dict(environ)

    result = call_wsgi(DockerflowMiddleware(app), environ)

    [request_id] = result.header_values("X-Request-ID")
    assert seen == [{**sent, "dockerflow.request_id": request_id}]
    assert result.status == status
    assert result.headers == [*headers, ("X-Request-ID", request_id)]
    assert result.body == b"".join(chunks)


def test_body_chunks_are_passed_on_as_they_come(make_environ, fake_server):
    produced = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        for chunk in (b"a", b"b", b"c"):
            produced.append(chunk)
            yield chunk

    body = DockerflowMiddleware(app)(make_environ("/stream"), fake_server.start_response)
    iterator = iter(body)

    assert next(iterator) == b"a"
    assert produced == [b"a"]
    assert next(iterator) == b"b"
    assert produced == [b"a", b"b"]
    body.close()


def test_generator_app_status_is_recorded_when_it_starts(
    streaming_app, make_environ, call_wsgi, summary_records
):
    result = call_wsgi(DockerflowMiddleware(streaming_app), make_environ("/stream"))

    assert result.body == b"one two three"
    assert len(result.header_values("X-Request-ID")) == 1
    [summary] = summary_records
    assert (summary.code, summary.errno) == (200, 0)


# -- mounting under SCRIPT_NAME ---------------------------------------------------------------


@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_paths_are_routed_on_path_info_under_a_script_name(
    path, app, make_environ, call_wsgi, summary_records
):
    middleware = DockerflowMiddleware(app, version_callback=version_callback)

    result = call_wsgi(middleware, make_environ(path, SCRIPT_NAME="/api"))

    assert result.code == 200
    assert result.header_values("Content-Type") == ["application/json"]
    assert app.environs == []
    [summary] = summary_records
    assert summary.path == "/api" + path


@pytest.mark.parametrize("path", DOCKERFLOW_PATHS)
def test_mount_prefix_in_path_info_is_not_a_dockerflow_path(
    path, app, make_environ, call_wsgi, summary_records
):
    result = call_wsgi(DockerflowMiddleware(app), make_environ("/api" + path, SCRIPT_NAME=""))

    assert result.body == b"from the app"
    [summary] = summary_records
    assert summary.path == "/api" + path


def test_summary_path_of_a_mounted_app_includes_the_script_name(
    app, make_environ, call_wsgi, summary_records
):
    call_wsgi(DockerflowMiddleware(app), make_environ("/items/7", SCRIPT_NAME="/api"))

    [summary] = summary_records
    assert summary.path == "/api/items/7"
    assert app.environs[0]["SCRIPT_NAME"] == "/api"
    assert app.environs[0]["PATH_INFO"] == "/items/7"


# -- heartbeat --------------------------------------------------------------------------------


def test_heartbeat_without_checks_is_ok(app):
    response = heartbeat(DockerflowMiddleware(app))

    assert response.status_int == 200
    assert json.loads(response.body) == {"status": "ok", "checks": {}, "details": {}}


def test_heartbeat_answers_in_the_dockerflow_shape(app):
    @checks.register(name="database")
    def database():
        return []

    @checks.register(name="redis")
    def redis():
        return [checks.Warning("slow ping", id="acme.health.W001")]

    response = heartbeat(DockerflowMiddleware(app))

    assert response.status_int == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "status": "warning",
        "checks": {"database": "ok", "redis": "warning"},
        "details": {
            "redis": {
                "status": "warning",
                "level": 30,
                "messages": {"acme.health.W001": "slow ping"},
            }
        },
    }


@pytest.mark.parametrize(
    ("messages", "status", "code"),
    [
        ([], "ok", 200),
        ([checks.Debug("d", id="t.D1")], "debug", 200),
        ([checks.Info("i", id="t.I1")], "info", 200),
        ([checks.Warning("w", id="t.W1")], "warning", 200),
        ([checks.Error("e", id="t.E1")], "error", 500),
        ([checks.Critical("c", id="t.C1")], "critical", 500),
        ([checks.Info("i", id="t.I1"), checks.Error("e", id="t.E1")], "error", 500),
        ([checks.CheckMessage("custom", level=35, id="t.X1")], "warning", 200),
    ],
)
def test_heartbeat_status_is_the_highest_level(messages, status, code, app):
    checks.register(lambda: list(messages), name="only")

    response = heartbeat(DockerflowMiddleware(app))

    body = json.loads(response.body)
    assert response.status_int == code
    assert body["status"] == status
    assert body["checks"] == {"only": status}
    if messages:
        level = max(message.level for message in messages)
        assert body["details"] == {
            "only": {
                "status": status,
                "level": level,
                "messages": {message.id: message.msg for message in messages},
            }
        }
    else:
        assert body["details"] == {}


def test_details_hold_only_checks_above_ok(app):
    checks.register(lambda: [], name="fine")
    checks.register(lambda: [checks.Info("fyi", id="t.I1")], name="chatty")

    body = json.loads(heartbeat(DockerflowMiddleware(app)).body)

    assert body["checks"] == {"fine": "ok", "chatty": "info"}
    assert list(body["details"]) == ["chatty"]


@pytest.mark.parametrize(
    ("level_message", "code"),
    [
        (checks.Warning("w", id="t.W1"), 200),
        (checks.Error("e", id="t.E1"), 503),
        (checks.Critical("c", id="t.C1"), 503),
    ],
)
def test_failed_heartbeat_status_code_is_configurable(level_message, code, app):
    checks.register(lambda: [level_message], name="only")

    response = heartbeat(DockerflowMiddleware(app, heartbeat_failed_status_code=503))

    assert response.status_int == code


def test_checks_option_replaces_the_registered_checks(app):
    checks.register(lambda: [checks.Critical("registered", id="t.C1")], name="registered")

    middleware = DockerflowMiddleware(app, checks=[("given", lambda: [])])
    response = heartbeat(middleware)

    assert response.status_int == 200
    assert json.loads(response.body) == {"status": "ok", "checks": {"given": "ok"}, "details": {}}


def test_check_registered_after_the_middleware_was_built_is_run(app):
    middleware = DockerflowMiddleware(app)

    @checks.register
    def late():
        return [checks.Error("late and broken", id="t.E9")]

    response = heartbeat(middleware)

    assert response.status_int == 500
    assert json.loads(response.body)["checks"] == {"late": "error"}


def test_silenced_checks_are_left_out(app):
    checks.register(lambda: [checks.Error("noisy", id="t.E1")], name="noisy")
    checks.register(
        lambda: [checks.Error("silenced", id="t.E2"), checks.Warning("kept", id="t.W3")],
        name="mixed",
    )

    response = heartbeat(DockerflowMiddleware(app, silenced_checks=["t.E1", "t.E2"]))

    assert response.status_int == 200
    assert json.loads(response.body) == {
        "status": "warning",
        "checks": {"noisy": "ok", "mixed": "warning"},
        "details": {"mixed": {"status": "warning", "level": 30, "messages": {"t.W3": "kept"}}},
    }


def test_without_heartbeat_details_only_the_status_is_answered_but_details_are_logged(
    app, dockerflow_records
):
    checks.register(lambda: [checks.Error("disk full", id="t.E1")], name="disk")

    response = heartbeat(DockerflowMiddleware(app, heartbeat_details=False))

    assert response.status_int == 500
    assert json.loads(response.body) == {"status": "error"}
    logged = [record for record in dockerflow_records if hasattr(record, "details")]
    assert [record.details for record in logged] == [
        {"disk": {"status": "error", "level": 40, "messages": {"t.E1": "disk full"}}}
    ]
    assert logged[0].levelno >= logging.WARNING


def test_a_check_that_raises_is_an_e101_error(app):
    def exploding():
        raise ValueError("database is on fire")

    checks.register(exploding)
    checks.register(lambda: [], name="fine")

    response = heartbeat(DockerflowMiddleware(app))

    body = json.loads(response.body)
    assert response.status_int == 500
    assert body["status"] == "error"
    assert body["checks"] == {"exploding": "error", "fine": "ok"}
    assert body["details"]["exploding"]["messages"] == {
        "dockerflow.health.E101": "ValueError: database is on fire"
    }


@pytest.mark.parametrize(
    "garbage",
    ["not a list", 42, {"a": 1}, ["a string"], [checks.Warning("w", id="t.W1"), object()]],
    ids=["str", "int", "dict", "list-of-str", "list-with-object"],
)
def test_a_check_returning_garbage_is_an_e101_error(garbage, app):
    checks.register(lambda: garbage, name="sloppy")

    response = heartbeat(DockerflowMiddleware(app))

    body = json.loads(response.body)
    assert response.status_int == 500
    assert body["checks"] == {"sloppy": "error"}
    assert list(body["details"]["sloppy"]["messages"]) == ["dockerflow.health.E101"]


@pytest.mark.parametrize(
    ("messages", "sent", "level"),
    [
        ([], "passed", 0),
        ([checks.Warning("w", id="t.W1")], "passed", checks.WARNING),
        ([checks.Error("e", id="t.E1")], "failed", checks.ERROR),
        ([checks.Critical("c", id="t.C1")], "failed", checks.CRITICAL),
    ],
)
def test_heartbeat_sends_a_signal_with_the_level(messages, sent, level, app):
    checks.register(lambda: list(messages), name="only")
    middleware = DockerflowMiddleware(app)
    received = []

    def on_passed(sender, **kwargs):
        received.append(("passed", sender, kwargs))

    def on_failed(sender, **kwargs):
        received.append(("failed", sender, kwargs))

    passed = signals.heartbeat_passed.connected_to(on_passed)
    failed = signals.heartbeat_failed.connected_to(on_failed)
    with passed, failed:
        heartbeat(middleware)

    assert received == [(sent, middleware, {"level": level})]


# -- request id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    [
        "x",
        "a" * 128,
        "0f7c3a2e-9d55-4b0e-8d1c-5a3f2e1b0c9d",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    ],
)
def test_a_valid_request_id_is_used_and_echoed(request_id, make_environ, call_wsgi):
    app = RecordingApp()

    result = call_wsgi(DockerflowMiddleware(app), make_environ(HTTP_X_REQUEST_ID=request_id))

    assert result.header_values("X-Request-ID") == [request_id]
    assert app.environs[0]["dockerflow.request_id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("a" * 129, id="too-long"),
        pytest.param("", id="empty"),
        pytest.param("with space", id="space"),
        pytest.param("tab\there", id="tab"),
        pytest.param("line\r\nX-Injected: 1", id="crlf"),
        pytest.param("nul\x00", id="nul"),
        pytest.param("del\x7f", id="del"),
        pytest.param("esc\x1b[31m", id="escape"),
        pytest.param("caf\xe9", id="latin-1"),
        pytest.param("caf\xc3\xa9", id="utf-8-as-latin-1"),
        pytest.param("\xa0nbsp", id="nbsp"),
    ],
)
def test_an_unusable_request_id_is_replaced_by_a_new_one(request_id, make_environ, call_wsgi):
    app = RecordingApp()

    result = call_wsgi(DockerflowMiddleware(app), make_environ(HTTP_X_REQUEST_ID=request_id))

    [echoed] = result.header_values("X-Request-ID")
    assert is_new_request_id(echoed)
    assert app.environs[0]["dockerflow.request_id"] == echoed


def test_without_a_request_id_each_request_gets_a_new_one(make_environ, call_wsgi, hello_app):
    middleware = DockerflowMiddleware(hello_app)

    ids = [call_wsgi(middleware, make_environ()).header_values("X-Request-ID")[0] for _ in "abc"]

    assert all(is_new_request_id(request_id) for request_id in ids)
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    ("keyword", "environment"),
    [
        ("X-Amzn-Trace-Id", None),
        (None, "X-Amzn-Trace-Id"),
        ("X-Amzn-Trace-Id", "X-Correlation-ID"),
    ],
    ids=["keyword", "environment", "keyword-wins"],
)
def test_request_id_header_is_configurable(
    keyword, environment, monkeypatch, make_environ, call_wsgi
):
    if environment is not None:
        monkeypatch.setenv("DOCKERFLOW_REQUEST_ID_HEADER_NAME", environment)
    app = RecordingApp()
    middleware = DockerflowMiddleware(app, request_id_header=keyword)
    environ = make_environ(
        HTTP_X_AMZN_TRACE_ID="Root=1-abc",
        HTTP_X_CORRELATION_ID="correlation",
        HTTP_X_REQUEST_ID="default-header",
    )

    result = call_wsgi(middleware, environ)

    assert result.header_values("X-Amzn-Trace-Id") == ["Root=1-abc"]
    assert result.header_values("X-Request-ID") == []
    assert result.header_values("X-Correlation-ID") == []
    assert app.environs[0]["dockerflow.request_id"] == "Root=1-abc"


def test_request_id_is_in_the_environ_and_the_context_during_the_request(make_environ, fake_server):
    seen = []

    def app(environ, start_response):
        seen.append(("call", environ["dockerflow.request_id"], current_request_id()))
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"a"
        seen.append(("iteration", environ["dockerflow.request_id"], current_request_id()))
        yield b"b"

    assert current_request_id() is None
    body = DockerflowMiddleware(app)(
        make_environ(HTTP_X_REQUEST_ID="rid-1"), fake_server.start_response
    )
    # Between the application's turns (the server sending a chunk) the id is not current.
    assert current_request_id() is None
    assert list(body) == [b"a", b"b"]
    assert current_request_id() is None

    body.close()

    assert seen == [("call", "rid-1", "rid-1"), ("iteration", "rid-1", "rid-1")]
    assert current_request_id() is None


def test_the_id_is_current_while_the_application_closes_its_body(make_environ, fake_server):
    seen = []

    class Body(list):
        def close(self):
            seen.append(current_request_id())

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"body"])

    body = DockerflowMiddleware(app)(
        make_environ(HTTP_X_REQUEST_ID="rid-2"), fake_server.start_response
    )
    list(body)
    body.close()

    assert seen == ["rid-2"]
    assert current_request_id() is None


def test_a_response_never_closed_leaves_no_id_behind(make_environ, fake_server):
    """A test client that never closes a response: the next test sees no id of it."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"streamed"

    body = DockerflowMiddleware(app)(
        make_environ(HTTP_X_REQUEST_ID="rid-3"), fake_server.start_response
    )
    assert list(body) == [b"streamed"]

    assert current_request_id() is None


@pytest.mark.parametrize("when", ["before_start_response", "after_start_response"])
def test_request_id_does_not_leak_into_the_next_request_on_the_thread(
    when, raising_app, make_environ, fake_server, call_wsgi
):
    seen = []

    def next_app(environ, start_response):
        seen.append(current_request_id())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    call_wsgi(DockerflowMiddleware(RecordingApp()), make_environ(HTTP_X_REQUEST_ID="first"))
    assert current_request_id() is None
    failing = raising_app(when)
    with pytest.raises(type(failing.error)):
        DockerflowMiddleware(failing)(
            make_environ(HTTP_X_REQUEST_ID="second"), fake_server.start_response
        )
    assert current_request_id() is None

    call_wsgi(DockerflowMiddleware(next_app), make_environ())

    assert seen[0] not in ("first", "second")
    assert is_new_request_id(seen[0])
    assert current_request_id() is None


def test_concurrent_requests_on_one_instance_keep_their_own_ids(
    make_environ, call_wsgi, summary_records
):
    slow_started = threading.Event()
    fast_done = threading.Event()
    seen: dict[str, Any] = {}

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen[path + " called"] = current_request_id()
        if path == "/slow":
            slow_started.set()
            fast_done.wait(timeout=10)
        yield b"body"
        seen[path + " iterated"] = current_request_id()

    middleware = DockerflowMiddleware(app)
    slow = threading.Thread(
        target=call_wsgi, args=(middleware, make_environ("/slow", HTTP_X_REQUEST_ID="slow-id"))
    )
    slow.start()
    assert slow_started.wait(timeout=10)
    call_wsgi(middleware, make_environ("/fast", HTTP_X_REQUEST_ID="fast-id"))
    fast_done.set()
    slow.join(timeout=10)

    assert seen == {
        "/slow called": "slow-id",
        "/fast called": "fast-id",
        "/fast iterated": "fast-id",
        "/slow iterated": "slow-id",
    }
    assert sorted((record.path, record.rid) for record in summary_records) == [
        ("/fast", "fast-id"),
        ("/slow", "slow-id"),
    ]
    assert current_request_id() is None


@pytest.mark.parametrize(
    ("request_id_header", "app_header"),
    [
        ("X-Request-ID", "X-Request-ID"),
        ("X-Request-ID", "x-request-id"),
        ("X-Amzn-Trace-Id", "X-AMZN-TRACE-ID"),
    ],
)
def test_an_app_that_sets_the_request_id_header_does_not_get_a_second_one(
    request_id_header, app_header, make_environ, call_wsgi
):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), (app_header, "from-the-app")])
        return [b""]

    middleware = DockerflowMiddleware(app, request_id_header=request_id_header)
    result = call_wsgi(middleware, make_environ())

    assert result.header_values(request_id_header) == ["from-the-app"]


# -- request.summary --------------------------------------------------------------------------


def test_summary_has_every_field(clock, make_environ, fake_server, summary_records):
    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain")])
        clock.advance(0.125)
        return [b"created"]

    environ = make_environ(
        "/items/1",
        "PUT",
        SCRIPT_NAME="/api",
        QUERY_STRING="secret=1",
        HTTP_USER_AGENT="curl/8.5.0",
        HTTP_ACCEPT_LANGUAGE="fr-CA,fr;q=0.9",
        HTTP_X_REQUEST_ID="rid-42",
        REMOTE_USER="alice",
    )
    body = DockerflowMiddleware(app)(environ, fake_server.start_response)
    list(body)
    body.close()

    [record] = summary_records
    assert record.name == "request.summary"
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert summary_fields(record) == {
        "agent": "curl/8.5.0",
        "lang": "fr-CA,fr;q=0.9",
        "method": "PUT",
        "path": "/api/items/1",
        "code": 201,
        "errno": 0,
        "t": 125,
        "rid": "rid-42",
        "uid": "alice",
    }
    assert type(record.code) is int
    assert type(record.t) is int
    assert not hasattr(record, "querystring")


def test_summary_fields_default_to_empty_strings(make_environ, call_wsgi, summary_records):
    environ = make_environ("/")
    for key in ("HTTP_USER_AGENT", "HTTP_ACCEPT_LANGUAGE", "REMOTE_USER"):
        environ.pop(key, None)

    call_wsgi(DockerflowMiddleware(RecordingApp()), environ)

    [record] = summary_records
    assert (record.agent, record.lang, record.uid) == ("", "", "")
    assert is_new_request_id(record.rid)


@pytest.mark.parametrize(
    ("status", "code", "errno"),
    [
        ("200 OK", 200, 0),
        ("204 No Content", 204, 0),
        ("302 Found", 302, 0),
        ("399 Odd", 399, 0),
        ("400 Bad Request", 400, 400),
        ("404 Not Found", 404, 404),
        ("418 I'm a teapot", 418, 418),
        ("500 Internal Server Error", 500, 500),
        ("503 Service Unavailable", 503, 503),
    ],
)
def test_summary_errno_follows_the_mozlog_convention(
    status, code, errno, make_environ, call_wsgi, summary_records
):
    def app(environ, start_response):
        start_response(status, [("Content-Type", "text/plain")])
        return [b""]

    call_wsgi(DockerflowMiddleware(app), make_environ())

    [record] = summary_records
    assert (record.code, record.errno) == (code, errno)
    assert record.levelno == logging.INFO


@pytest.mark.parametrize(
    ("user_id", "remote_user", "uid"),
    [
        ("42", "alice", "42"),
        (None, "alice", "alice"),
        (None, None, ""),
    ],
)
def test_summary_uid(user_id, remote_user, uid, make_environ, call_wsgi, summary_records):
    def app(environ, start_response):
        # Set during the request, as the Flask shim does after the view ran.
        if user_id is not None:
            environ["dockerflow.user_id"] = user_id
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    environ = make_environ()
    if remote_user is not None:
        environ["REMOTE_USER"] = remote_user

    call_wsgi(DockerflowMiddleware(app), environ)

    [record] = summary_records
    assert record.uid == uid


@pytest.mark.parametrize("log_querystring", [False, True])
def test_querystring_is_logged_only_when_asked(
    log_querystring, make_environ, call_wsgi, summary_records
):
    middleware = DockerflowMiddleware(RecordingApp(), log_querystring=log_querystring)

    call_wsgi(middleware, make_environ("/search", QUERY_STRING="q=dockerflow&page=2"))

    [record] = summary_records
    if log_querystring:
        assert record.querystring == "q=dockerflow&page=2"
    else:
        assert not hasattr(record, "querystring")


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("/caf\u00c3\u00a9", "/caf\u00e9"),  # what a server makes of b"/caf\xc3\xa9"
        ("/\u00e2\u0082\u00ac/\u00f0\u009f\u0090\u008d", "/\u20ac/\U0001f40d"),
        ("/bad\u00ff\u00fe", "/bad\ufffd\ufffd"),  # not UTF-8: U+FFFD for each byte
        ("/plain", "/plain"),
        ("/set-by-an-app-\u20ac", "/set-by-an-app-\u20ac"),  # no byte of a request
    ],
)
def test_the_summary_logs_the_requests_utf8_text(
    raw, logged, make_environ, call_wsgi, summary_records
):
    middleware = DockerflowMiddleware(RecordingApp(), log_querystring=True)

    call_wsgi(middleware, make_environ(raw, QUERY_STRING="q=" + raw))

    [record] = summary_records
    assert record.path == logged
    assert record.querystring == "q=" + logged


def test_an_exception_a_framework_reported_makes_the_summary_an_error(
    make_environ, call_wsgi, summary_records
):
    try:
        raise LookupError("the view failed")
    except LookupError:
        reported = sys.exc_info()

    def framework(environ, start_response):
        # As Flask or Django do: the view raised, the framework answers a 500 page itself.
        environ["dockerflow.exc_info"] = reported
        start_response("500 Internal Server Error", [("Content-Type", "text/html")])
        return [b"<h1>Server Error</h1>"]

    result = call_wsgi(DockerflowMiddleware(framework), make_environ("/view"))

    assert result.code == 500
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info == reported
    assert (record.code, record.errno) == (500, 500)


def test_an_exception_reported_as_an_instance_is_taken_too(
    make_environ, call_wsgi, summary_records
):
    error = LookupError("reported as it is")

    def framework(environ, start_response):
        environ["dockerflow.exc_info"] = error
        start_response("500 Internal Server Error", [])
        return [b""]

    call_wsgi(DockerflowMiddleware(framework), make_environ("/view"))

    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info[1] is error


def test_secrets_in_the_querystring_and_the_path_are_masked_in_the_summary(
    make_environ, call_wsgi, summary_records
):
    middleware = DockerflowMiddleware(RecordingApp(), log_querystring=True)
    environ = make_environ(
        "/proxy/redis://:hunter2@cache/0",
        QUERY_STRING="q=dockerflow&access_token=s3cr3t-token&page=2",
    )

    call_wsgi(middleware, environ)

    [record] = summary_records
    assert record.querystring == "q=dockerflow&access_token=***&page=2"
    assert record.path == "/proxy/redis://:***@cache/0"


@pytest.mark.parametrize(
    ("path", "logged_by_default", "logged_without_probes"),
    [
        ("/__lbheartbeat__", True, False),
        ("/__heartbeat__", True, False),
        ("/__version__", True, False),
        ("/__heartbeat__/", True, False),
        ("/__lbheartbeat__/", True, False),
        ("/__heartbeat__//", True, True),
        ("/hello", True, True),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_log_probes_off_silences_only_the_dockerflow_paths(
    path, method, logged_by_default, logged_without_probes, make_environ, call_wsgi, summary_records
):
    default = DockerflowMiddleware(RecordingApp(), version_callback=version_callback)
    quiet = DockerflowMiddleware(
        RecordingApp(), version_callback=version_callback, log_probes=False
    )

    call_wsgi(default, make_environ(path, method))
    assert len(summary_records) == int(logged_by_default)
    summary_records.clear()
    call_wsgi(quiet, make_environ(path, method))
    assert len(summary_records) == int(logged_without_probes)


def test_probe_summary_has_the_answered_status(make_environ, call_wsgi, summary_records):
    checks.register(lambda: [checks.Error("down", id="t.E1")], name="down")

    call_wsgi(DockerflowMiddleware(RecordingApp()), make_environ("/__heartbeat__"))

    [record] = summary_records
    assert (record.path, record.code, record.errno) == ("/__heartbeat__", 500, 500)
    assert record.levelno == logging.INFO


def test_summary_is_written_when_the_body_is_closed(
    clock, streaming_app, make_environ, fake_server, summary_records
):
    body = DockerflowMiddleware(streaming_app)(make_environ("/stream"), fake_server.start_response)
    assert summary_records == []

    iterator = iter(body)
    assert next(iterator) == b"one "
    clock.advance(0.25)
    assert list(iterator) == [b"two ", b"three"]
    clock.advance(1.5)
    assert summary_records == []

    body.close()

    [record] = summary_records
    assert record.t == 1750
    assert record.code == 200


@pytest.mark.parametrize("when", ["before_start_response", "after_start_response"])
def test_app_raising_in_its_call_gives_an_error_summary_and_the_same_exception(
    when, raising_app, make_environ, fake_server, summary_records
):
    app = raising_app(when)

    with pytest.raises(type(app.error)) as raised:
        DockerflowMiddleware(app)(make_environ("/boom"), fake_server.start_response)

    assert raised.value is app.error
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info[1] is app.error
    assert record.errno == 500
    assert current_request_id() is None


@pytest.mark.parametrize("when", ["before_start_response", "after_start_response"])
def test_app_raising_before_sending_headers_is_logged_as_a_500(
    when, raising_app, make_environ, fake_server, summary_records
):
    # Nothing was sent, so the server answers 500, whatever status the app had started.
    app = raising_app(when)

    with pytest.raises(type(app.error)):
        DockerflowMiddleware(app)(make_environ("/boom"), fake_server.start_response)

    [record] = summary_records
    assert record.code == 500


def test_app_raising_mid_stream_gives_an_error_summary_at_close(
    raising_app, make_environ, fake_server, summary_records
):
    app = raising_app("mid_stream")
    body = DockerflowMiddleware(app)(make_environ("/boom"), fake_server.start_response)
    iterator = iter(body)
    assert next(iterator) == b"first chunk"

    with pytest.raises(type(app.error)) as raised:
        next(iterator)
    assert raised.value is app.error
    assert summary_records == []

    body.close()

    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info[1] is app.error
    assert (record.code, record.errno) == (200, 500)
    assert current_request_id() is None


def test_close_raising_still_writes_the_summary_and_resets_the_context(
    make_environ, fake_server, summary_records
):
    error = RuntimeError("close failed")

    class Body:
        def __iter__(self):
            return iter([b"x"])

        def close(self):
            raise error

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    body = DockerflowMiddleware(app)(make_environ(), fake_server.start_response)
    assert list(body) == [b"x"]

    with pytest.raises(RuntimeError) as raised:
        body.close()

    assert raised.value is error
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert record.exc_info[1] is error
    assert current_request_id() is None


@pytest.mark.parametrize(
    ("chunks_read", "fail_at", "server_closes"),
    [
        pytest.param(None, None, 1, id="read-to-the-end"),
        pytest.param(1, None, 1, id="client-went-away"),
        pytest.param(0, None, 1, id="never-iterated"),
        pytest.param(None, 1, 1, id="iteration-raised"),
        pytest.param(None, None, 2, id="server-closes-twice"),
    ],
)
def test_app_iterable_is_closed_exactly_once(
    chunks_read, fail_at, server_closes, closing_app, make_environ, fake_server, summary_records
):
    app = closing_app([b"a", b"b", b"c"], fail_at=fail_at)
    body = DockerflowMiddleware(app)(make_environ(), fake_server.start_response)

    iterator = iter(body)
    try:
        for _ in range(3 if chunks_read is None else chunks_read):
            next(iterator)
    except type(app.body.error):
        pass
    assert app.body.close_calls == 0
    for _ in range(server_closes):
        body.close()

    assert app.body.close_calls == 1
    assert len(summary_records) == 1
    assert summary_records[0].levelno == (logging.INFO if fail_at is None else logging.ERROR)


@pytest.mark.parametrize("chunks_read", [0, 1, 2, 3], ids=lambda n: f"{n}-chunks-read")
def test_an_iterator_body_is_closed_once_however_far_it_was_read(
    chunks_read, make_environ, fake_server, summary_records
):
    # An iterator body (werkzeug's ClosingIterator, Flask's responses) is its own iterator:
    # closing the middleware's relay of it must not close it a second time.
    closes = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIterator(iter([b"a", b"b"]), callbacks=[lambda: closes.append(1)])

    body = DockerflowMiddleware(app)(make_environ(), fake_server.start_response)
    iterator = iter(body)
    for _ in range(chunks_read):
        next(iterator, None)
    body.close()

    assert closes == [1]
    assert len(summary_records) == 1


def test_wrapped_start_response_returns_the_servers_write(make_environ, fake_server):
    received = []

    def legacy_app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        received.append(write)
        write(b"written ")
        return [b"returned"]

    body = DockerflowMiddleware(legacy_app)(make_environ(), fake_server.start_response)
    assert list(body) == [b"returned"]
    body.close()

    assert received == [fake_server.write]
    assert fake_server.written == [b"written "]


def test_exc_info_is_passed_to_start_response_only_when_given(
    make_environ, fake_server, summary_records
):
    caught = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("rendering failed")
        except ValueError:
            caught.append(sys.exc_info())
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], caught[0])
        return [b"error page"]

    body = DockerflowMiddleware(app)(make_environ(), fake_server.start_response)
    list(body)
    body.close()

    first, second = fake_server.calls
    assert len(first) == 2
    assert len(second) == 3
    assert second[2] is caught[0]
    [record] = summary_records
    assert (record.code, record.errno) == (500, 500)


@pytest.mark.parametrize(
    ("environ_key", "field"),
    [("HTTP_USER_AGENT", "agent"), ("HTTP_ACCEPT_LANGUAGE", "lang")],
)
@pytest.mark.parametrize("length", [1024, 1025, 10_000])
def test_long_client_values_are_clipped(
    environ_key, field, length, make_environ, call_wsgi, summary_records
):
    value = ("Mozilla/5.0 " * 1000)[:length]

    call_wsgi(DockerflowMiddleware(RecordingApp()), make_environ(**{environ_key: value}))

    [record] = summary_records
    if length <= 1024:
        assert getattr(record, field) == value
    else:
        assert getattr(record, field) == value[:1024] + TRUNCATION_MARKER


# -- wsgi.file_wrapper ------------------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "download.bin"
    path.write_bytes(bytes(range(256)) * 400)
    return path


def file_app(path, opened):
    def app(environ, start_response):
        handle = open(path, "rb")  # noqa: SIM115 - the response closes it
        opened.append(handle)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](handle, 4096)

    return app


def test_file_wrapper_response_stays_a_file_wrapper(
    big_file, make_environ, fake_server, summary_records
):
    opened = []
    environ = make_environ("/download", **{"wsgi.file_wrapper": FileWrapper})

    body = DockerflowMiddleware(file_app(big_file, opened))(environ, fake_server.start_response)

    assert type(body) is FileWrapper
    assert b"".join(body) == big_file.read_bytes()
    assert summary_records == []
    assert len([name for name, _ in fake_server.headers if name == "X-Request-ID"]) == 1

    body.close()
    body.close()

    assert opened[0].closed
    assert len(summary_records) == 1
    assert summary_records[0].code == 200
    assert current_request_id() is None


def test_file_wrapper_that_is_not_a_class_still_closes_and_logs(
    big_file, make_environ, call_wsgi, summary_records
):
    opened = []
    environ = make_environ(
        "/download", **{"wsgi.file_wrapper": lambda f, size=8192: FileWrapper(f, size)}
    )

    result = call_wsgi(DockerflowMiddleware(file_app(big_file, opened)), environ)

    assert result.body == big_file.read_bytes()
    assert opened[0].closed
    assert len(summary_records) == 1


# -- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/hello", "/__lbheartbeat__", "/__heartbeat__"])
def test_nested_middlewares_log_and_echo_once(path, make_environ, call_wsgi, summary_records):
    app = RecordingApp()
    nested = DockerflowMiddleware(DockerflowMiddleware(app))

    result = call_wsgi(nested, make_environ(path))

    [request_id] = result.header_values("X-Request-ID")
    [record] = summary_records
    assert record.rid == request_id
    if app.environs:
        assert app.environs[0]["dockerflow.request_id"] == request_id


def test_log_probes_off_still_logs_the_error_endpoint(make_environ, fake_server, summary_records):
    middleware = DockerflowMiddleware(lambda e, s: [], error_endpoint=True, log_probes=False)
    with pytest.raises(DeliberateError):
        middleware(make_environ("/__error__"), fake_server.start_response)
    [record] = summary_records
    assert (record.levelno, record.code, record.errno) == (logging.ERROR, 500, 500)


def test_calling_iter_twice_iterates_a_streamed_body_once(
    make_environ, fake_server, summary_records
):
    def streaming(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"from "
        yield b"the app"

    body = DockerflowMiddleware(streaming)(make_environ("/hello"), fake_server.start_response)
    first = iter(body)
    second = iter(body)
    chunks = list(first) + list(second)
    body.close()
    assert b"".join(chunks) == b"from the app"
    assert len(summary_records) == 1


def test_a_list_body_is_walked_as_a_list(make_environ, fake_server, summary_records):
    """The server walks the application's own list (nothing of ours runs per chunk); closing
    the response writes the summary, once."""
    body = DockerflowMiddleware(RecordingApp())(make_environ("/hello"), fake_server.start_response)
    assert type(iter(body)) is type(iter([]))
    assert list(body) == [b"from the app"]
    assert summary_records == []
    body.close()
    body.close()
    assert len(summary_records) == 1
