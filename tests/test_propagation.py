"""``dockerflow_wsgi.propagation``: the request id passed on, each time through the real library.

httpx calls go through ``httpx.MockTransport`` (the hooks run before any transport), requests
calls reach a local server, Celery tasks are run by a ``celery worker`` process on the real
Redis, and Sentry events are captured by ``sentry_sdk`` into an in-memory transport. The
requests are handled by the real middlewares, WSGI (driven with WebTest) and ASGI (driven with
httpx's ``ASGITransport``). The Celery and Sentry snippets of the docs are the ones run here.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
import redis
import requests
import sentry_sdk
import webtest
from celery import signals
from hypothesis import given, settings
from hypothesis import strategies as st
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware
from sentry_sdk.transport import Transport
from server_process import ServerProcess
from services import HOST, REDIS, _require

from dockerflow_wsgi import DeliberateError, DockerflowMiddleware, current_request_id
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import RequestIdLogFilter
from dockerflow_wsgi.propagation import (
    RequestIdAdapter,
    RequestIdIntegration,
    add_request_id_header,
    async_add_request_id_header,
    install_celery_request_id,
    request_id_headers,
    request_id_session,
)
from dockerflow_wsgi.propagation.celery import TASK_HEADER, TASK_HEADER_NAME

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
SNIPPETS = REPO / "docs" / "snippets"

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def snippet(name: str) -> ModuleType:
    """Import ``docs/snippets/<name>.py`` (once) as the module ``name``."""
    if str(SNIPPETS) not in sys.path:
        sys.path.insert(0, str(SNIPPETS))
    return importlib.import_module(name)


# -- the requests the middlewares handle -----------------------------------------------------


def during_request(
    action: Callable[[], Any], headers: Optional[dict[str, str]] = None, **options: Any
) -> tuple[str, Any]:
    """Run ``action`` while :class:`DockerflowMiddleware` (built with ``options``) handles a
    request sent with ``headers``: the request's id, as its response echoes it, and what
    ``action`` returned."""
    returned = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        returned.append(action())
        start_response("204 No Content", [])
        return []

    response = webtest.TestApp(DockerflowMiddleware(app, **options)).get(
        "/", headers=headers or {}, status=204
    )
    return response.headers[options.get("request_id_header", "X-Request-ID")], returned[0]


def during_asgi_request(
    action: Callable[[], Awaitable[Any]], headers: Optional[dict[str, str]] = None, **options: Any
) -> tuple[str, Any]:
    """:func:`during_request` with :class:`DockerflowASGIMiddleware`; ``action`` returns an
    awaitable, awaited inside the request."""
    returned = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        returned.append(await action())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=DockerflowASGIMiddleware(app, **options))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/", headers=headers)

    response = asyncio.run(run())
    assert response.status_code == 204
    return response.headers[options.get("request_id_header", "X-Request-ID")], returned[0]


# -- httpx -----------------------------------------------------------------------------------


def httpx_call(headers: Optional[dict[str, str]] = None) -> httpx.Request:
    """A GET sent by an ``httpx.Client`` with the hook: the request as the transport got it."""
    sent = []

    def transport(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    with httpx.Client(
        transport=httpx.MockTransport(transport), event_hooks={"request": [add_request_id_header]}
    ) as client:
        client.get("http://downstream.test/profiles/42", headers=headers)
    return sent[0]


async def async_httpx_call(headers: Optional[dict[str, str]] = None) -> httpx.Request:
    """:func:`httpx_call` with an ``httpx.AsyncClient`` and the async hook."""
    sent = []

    def transport(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(transport),
        event_hooks={"request": [async_add_request_id_header]},
    ) as client:
        await client.get("http://downstream.test/profiles/42", headers=headers)
    return sent[0]


def test_an_httpx_call_during_a_request_sends_its_id() -> None:
    rid, request = during_request(httpx_call, headers={"X-Request-ID": "trace-42"})
    assert rid == "trace-42"
    assert request.headers.get_list("X-Request-ID") == ["trace-42"]


def test_an_httpx_call_outside_a_request_sends_no_id() -> None:
    assert "X-Request-ID" not in httpx_call().headers


@pytest.mark.parametrize("name", ["X-Request-ID", "x-request-id"])
def test_an_httpx_call_keeps_the_id_it_was_given(name: str) -> None:
    _, request = during_request(lambda: httpx_call({name: "chosen-id"}))
    assert request.headers.get_list("X-Request-ID") == ["chosen-id"]


@settings(deadline=None)
@given(sent=st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=140))
def test_the_id_an_httpx_call_sends_is_the_one_the_response_echoes(sent: str) -> None:
    """Whatever the client sent, kept or replaced by a new id: the id of the request."""
    rid, request = during_request(httpx_call, headers={"X-Request-ID": sent})
    assert request.headers["X-Request-ID"] == rid


def test_an_async_httpx_call_during_an_asgi_request_sends_its_id() -> None:
    rid, request = during_asgi_request(async_httpx_call, headers={"X-Request-ID": "async-1"})
    assert rid == "async-1"
    assert request.headers.get_list("X-Request-ID") == ["async-1"]


def test_an_async_httpx_call_outside_a_request_sends_no_id() -> None:
    assert "X-Request-ID" not in asyncio.run(async_httpx_call()).headers


async def _explicit_async_call() -> httpx.Request:
    return await async_httpx_call({"X-Request-ID": "chosen-id"})


def test_an_async_httpx_call_keeps_the_id_it_was_given() -> None:
    _, request = during_asgi_request(_explicit_async_call)
    assert request.headers.get_list("X-Request-ID") == ["chosen-id"]


# -- requests --------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Downstream:
    """A local HTTP server that records the headers of every request it gets."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)

    def last(self, header: str) -> Optional[str]:
        return self.received[-1].get(header.lower())


@pytest.fixture(scope="module")
def downstream() -> Iterator[Downstream]:
    server_box: list[Downstream] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        server_box[0].received.append(
            {
                key[5:].replace("_", "-").lower(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
        )
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = make_server(HOST, 0, app, handler_class=_QuietHandler)
    server_box.append(Downstream(f"http://{HOST}:{server.server_port}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[requests.Session]:
    """A :func:`request_id_session`, which no proxy of the environment turns away."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with request_id_session() as made:
        yield made


def test_a_requests_call_during_a_request_sends_its_id(
    session: requests.Session, downstream: Downstream
) -> None:
    rid, _ = during_request(lambda: session.get(downstream.url, timeout=5))
    assert downstream.last("X-Request-ID") == rid


def test_a_requests_call_outside_a_request_sends_no_id(
    session: requests.Session, downstream: Downstream
) -> None:
    session.get(downstream.url, timeout=5)
    assert downstream.last("X-Request-ID") is None


def test_a_requests_call_keeps_the_id_it_was_given(
    session: requests.Session, downstream: Downstream
) -> None:
    during_request(lambda: session.get(downstream.url, headers={"x-request-id": "mine"}, timeout=5))
    assert downstream.last("X-Request-ID") == "mine"


def test_a_session_shared_by_threads_sends_each_threads_request_id(
    session: requests.Session, downstream: Downstream
) -> None:
    both_in_a_request = threading.Barrier(2, timeout=10)
    rids = {}

    def call(name: str) -> None:
        def action() -> requests.Response:
            both_in_a_request.wait()
            return session.get(downstream.url, headers={"X-Caller": name}, timeout=5)

        rids[name], _ = during_request(action)

    threads = [threading.Thread(target=call, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = {headers["x-caller"]: headers["x-request-id"] for headers in downstream.received[-2:]}
    assert sent == rids
    assert rids["first"] != rids["second"]


def test_the_adapter_takes_http_adapter_options() -> None:
    with request_id_session(max_retries=3, pool_block=True) as made:
        for prefix in ("http://", "https://"):
            adapter = made.get_adapter(f"{prefix}downstream.test/")
            assert isinstance(adapter, RequestIdAdapter)
            assert adapter.max_retries.total == 3
            assert adapter._pool_block is True


# -- any client, and the header name ----------------------------------------------------------


def test_the_headers_to_send_hold_the_id_during_a_request_only() -> None:
    rid, headers = during_request(request_id_headers)
    assert headers == {"X-Request-ID": rid}
    assert request_id_headers() == {}


def _requests_call(header: str, url: str) -> Optional[str]:
    with request_id_session() as made:
        return made.get(url, timeout=5).request.headers.get(header)


def _httpx_call(header: str, url: str) -> Optional[str]:
    return httpx_call().headers.get(header)


def _headers_call(header: str, url: str) -> Optional[str]:
    return request_id_headers().get(header)


@pytest.mark.parametrize("call", [_httpx_call, _requests_call, _headers_call])
@pytest.mark.parametrize("header", ["X-Correlation-ID", "X-Amzn-Trace-Id"])
def test_the_id_goes_out_under_the_header_of_the_middleware(
    call: Callable[[str, str], Optional[str]],
    header: str,
    downstream: Downstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    rid, sent = during_request(
        lambda: (call(header, downstream.url), call("X-Request-ID", downstream.url)),
        headers={header: "corr-7", "X-Request-ID": "not-this-one"},
        request_id_header=header,
    )
    assert rid == "corr-7"
    assert sent == ("corr-7", None)


def test_an_async_httpx_call_goes_out_under_the_header_of_the_asgi_middleware() -> None:
    header = "X-Correlation-ID"
    rid, request = during_asgi_request(
        async_httpx_call, headers={header: "corr-8"}, request_id_header=header
    )
    assert rid == "corr-8"
    assert request.headers["X-Correlation-ID"] == "corr-8"
    assert "X-Request-ID" not in request.headers


# -- imported without the libraries ----------------------------------------------------------

_WITHOUT_THE_LIBRARIES = """
import sys

LIBRARIES = ("httpx", "requests", "urllib3", "celery", "kombu", "sentry_sdk")
for name in LIBRARIES:
    sys.modules[name] = None  # any import of it raises ImportError

from dockerflow_wsgi import propagation
from dockerflow_wsgi.propagation import add_request_id_header, request_id_headers

class Request:
    headers = {}

add_request_id_header(Request())
assert Request.headers == {} and request_id_headers() == {}
for name in ("RequestIdAdapter", "install_celery_request_id", "RequestIdIntegration"):
    try:
        getattr(propagation, name)
    except ImportError:
        pass
    else:
        raise AssertionError(name + " without its library")
"""

_WITH_THE_LIBRARIES = """
import sys

from dockerflow_wsgi import propagation

LIBRARIES = ("httpx", "requests", "celery", "sentry_sdk")
print(sorted(name for name in LIBRARIES if name in sys.modules))
"""


def test_the_module_imports_without_the_libraries_it_integrates() -> None:
    subprocess.run([sys.executable, "-c", _WITHOUT_THE_LIBRARIES], check=True, timeout=60)


def test_importing_the_module_imports_none_of_the_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITH_THE_LIBRARIES],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


def test_the_module_lists_its_names_and_no_others() -> None:
    from dockerflow_wsgi import propagation

    assert set(propagation.__all__) <= set(dir(propagation))
    with pytest.raises(AttributeError, match="no_such_name"):
        propagation.no_such_name  # noqa: B018


# -- Celery ----------------------------------------------------------------------------------

WORKER_TIMEOUT = 60.0


@dataclass
class Worker:
    """A ``celery worker`` process running ``tests/propagation_apps/celery_tasks.py``, whose
    log records (mozlog JSON lines, from the docs' logging setup) go to ``log``."""

    process: ServerProcess
    log: Path
    tasks: ModuleType

    def records(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, message: str) -> dict[str, Any]:
        """The record whose message starts with ``message``, once the worker wrote it."""
        deadline = time.monotonic() + WORKER_TIMEOUT
        while True:
            for record in self.records():
                if record["Fields"].get("msg", "").startswith(message):
                    return record
            if not self.process.running() or time.monotonic() > deadline:
                output = self.log.read_text(encoding="utf-8")
                pytest.fail(f"no record {message!r} from the worker:\n{output[-5000:]}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def celery_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A worker on the real Redis (database 15) consuming a queue of this test run only; this
    process publishes to it with the same application."""
    _require(REDIS)
    broker = f"redis://{HOST}:{REDIS.port}/15"
    queue = f"dockerflow-propagation-{uuid.uuid4().hex}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    environment = {
        "CELERY_BROKER_URL": broker,
        "PROPAGATION_TEST_QUEUE": queue,
        "PYTHONPATH": os.pathsep.join(
            [str(SNIPPETS), str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    command = [
        *(sys.executable, "-m", "celery", "-A", "propagation_apps.celery_tasks", "worker"),
        *("--pool=solo", "--concurrency=1", "--loglevel=INFO", f"--hostname={queue}@%h"),
        *("--without-heartbeat", "--without-mingle", "--without-gossip"),
    ]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.syspath_prepend(str(SNIPPETS))
        tasks = importlib.import_module("propagation_apps.celery_tasks")
        process = ServerProcess(
            command, cwd=Path.cwd(), env=os.environ, stdout_path=log, name="celery worker"
        ).start()
        try:
            worker = Worker(process, log, tasks)
            worker.wait_for(f"{queue}@")  # "<hostname> ready."
            yield worker
        finally:
            process.stop(timeout=30)  # SIGTERM: Celery's warm shutdown
            tasks.app.close()
            database = redis.Redis.from_url(broker)
            for key in database.scan_iter(match=f"*{queue}*"):
                database.delete(key)
            database.close()


def receipt(label: str) -> str:
    return f"Sending the receipt of order {label}"


@pytest.mark.servers
@pytest.mark.services
def test_a_task_published_during_a_request_runs_with_its_id(celery_worker: Worker) -> None:
    label = uuid.uuid4().hex
    rid, result = during_request(lambda: celery_worker.tasks.send_receipt.delay(label))
    record = celery_worker.wait_for(receipt(label))
    assert record["Type"] == "myservice.tasks"
    assert record["Fields"]["rid"] == rid
    succeeded = celery_worker.wait_for(
        f"Task propagation_celery.send_receipt[{result.id}] succeeded"
    )
    assert succeeded["Fields"]["rid"] == rid, "Celery's own records of the run have it too"


@pytest.mark.servers
@pytest.mark.services
def test_a_task_published_outside_a_request_runs_without_an_id(celery_worker: Worker) -> None:
    send_receipt = celery_worker.tasks.send_receipt
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    rid, _ = during_request(lambda: send_receipt.delay(first))
    send_receipt.delay(second)  # run after the first by the same worker thread
    assert celery_worker.wait_for(receipt(first))["Fields"]["rid"] == rid
    assert "rid" not in celery_worker.wait_for(receipt(second))["Fields"]


@pytest.mark.servers
@pytest.mark.services
@pytest.mark.parametrize("header", ["X-Request-ID", "X-Correlation-ID"])
def test_a_task_passes_the_id_on_under_the_header_of_the_middleware(
    celery_worker: Worker, header: str
) -> None:
    label = uuid.uuid4().hex
    rid, _ = during_request(
        lambda: celery_worker.tasks.report_header.delay(label), request_id_header=header
    )
    record = celery_worker.wait_for(f"Reporting {label}")
    assert record["Fields"]["rid"] == rid
    assert record["Fields"]["header"] == header


@pytest.mark.servers
@pytest.mark.services
def test_the_tasks_a_task_publishes_carry_the_id(celery_worker: Worker) -> None:
    label = uuid.uuid4().hex
    rid, _ = during_request(lambda: celery_worker.tasks.relay_receipt.delay(label))
    assert celery_worker.wait_for(receipt(label))["Fields"]["rid"] == rid


@pytest.mark.servers
@pytest.mark.services
@pytest.mark.parametrize(
    ("in_request", "headers", "expected_rid", "expected_header"),
    [
        # What the publisher set wins over the request's id.
        (True, {TASK_HEADER: "chosen-id"}, "chosen-id", "X-Request-ID"),
        # Any producer may publish: an id unsafe to log is not used...
        (False, {TASK_HEADER: "two words"}, None, "X-Request-ID"),
        (False, {TASK_HEADER: "x" * 129}, None, "X-Request-ID"),
        (False, {TASK_HEADER: 42}, None, "X-Request-ID"),
        # ... nor a header name that is none.
        (False, {TASK_HEADER: "ok-id", TASK_HEADER_NAME: "Bad Name:"}, "ok-id", "X-Request-ID"),
        (False, {TASK_HEADER: "ok-id", TASK_HEADER_NAME: "X-Trace"}, "ok-id", "X-Trace"),
    ],
)
def test_the_worker_trusts_the_message_headers_only_in_a_safe_form(
    celery_worker: Worker,
    in_request: bool,
    headers: dict[str, Any],
    expected_rid: Optional[str],
    expected_header: str,
) -> None:
    label = uuid.uuid4().hex

    def publish() -> None:
        celery_worker.tasks.report_header.apply_async((label,), headers=headers)

    if in_request:
        during_request(publish)
    else:
        publish()
    fields = celery_worker.wait_for(f"Reporting {label}")["Fields"]
    assert fields.get("rid") == expected_rid
    assert fields["header"] == expected_header


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdLogFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_task_run_in_the_request_keeps_its_id() -> None:
    """``task.apply()`` and ``task_always_eager`` run the task in the publishing process."""
    tasks = snippet("propagation_celery")
    handler = _Records()
    tasks.logger.addHandler(handler)
    tasks.logger.setLevel(logging.INFO)
    try:
        rid, after = during_request(
            lambda: (tasks.send_receipt.apply(("eager",)).get(), current_request_id())[1]
        )
    finally:
        tasks.logger.removeHandler(handler)
        tasks.logger.setLevel(logging.NOTSET)
    assert [record.rid for record in handler.records] == [rid]
    assert after == rid, "the run leaves the request's context as it found it"


def test_installing_twice_connects_each_receiver_once() -> None:
    install_celery_request_id()
    connected = [
        len(signal.receivers)
        for signal in (signals.before_task_publish, signals.task_prerun, signals.task_postrun)
    ]
    install_celery_request_id()
    assert [
        len(signal.receivers)
        for signal in (signals.before_task_publish, signals.task_prerun, signals.task_postrun)
    ] == connected


# -- Sentry ----------------------------------------------------------------------------------

DSN = "https://public@example.invalid/1"


class MemoryTransport(Transport):
    """Keeps the events the client sends, instead of sending them anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


@pytest.fixture
def sentry_init() -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """``sentry_init(**options)``: ``sentry_sdk.init`` with the in-memory transport and none of
    Sentry's default integrations (they would patch libraries for the rest of the tests); the
    events it captures. The client is removed at the end."""
    real_init = sentry_sdk.init

    def init(**options: Any) -> list[dict[str, Any]]:
        transport = MemoryTransport()
        options.setdefault("dsn", DSN)
        real_init(**options, transport=transport, default_integrations=False)
        return transport.events

    try:
        yield init
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def tags(event: dict[str, Any]) -> dict[str, str]:
    return event.get("tags", {})


def test_an_event_captured_during_a_request_carries_its_id(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    events = sentry_init(integrations=[RequestIdIntegration()])
    rid, _ = during_request(lambda: sentry_sdk.capture_message("inside"))
    sentry_sdk.capture_message("outside")
    inside, outside = events
    assert (inside["message"], tags(inside)["request_id"]) == ("inside", rid)
    assert outside["message"] == "outside"
    assert "request_id" not in tags(outside)


def test_an_exception_sentrys_middleware_captures_inside_dockerflows_carries_the_id(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    events = sentry_init(integrations=[RequestIdIntegration()])

    def failing(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise LookupError("no such order")

    client = webtest.TestApp(DockerflowMiddleware(SentryWsgiMiddleware(failing)))
    with pytest.raises(LookupError):
        client.get("/", headers={"X-Request-ID": "boom-1"})
    [event] = events
    assert event["exception"]["values"][0]["type"] == "LookupError"
    assert tags(event)["request_id"] == "boom-1"


def test_an_exception_sentrys_middleware_captures_around_dockerflows_carries_the_id(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    """Outside the middleware the request has ended: the exception carries its id, also when
    it is raised while the body is streamed, and for ``/__error__``, which only an error
    reporter around the middleware can see."""
    events = sentry_init(integrations=[RequestIdIntegration()])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"] == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])

            def body() -> Iterator[bytes]:
                yield b"first"
                raise KeyError("half way")

            return body()
        raise LookupError("no such order")

    client = webtest.TestApp(
        SentryWsgiMiddleware(DockerflowMiddleware(app, error_endpoint=True)), lint=False
    )
    for path, rid, error in [
        ("/", "around-1", LookupError),
        ("/stream", "around-2", KeyError),
        ("/__error__", "around-3", DeliberateError),
    ]:
        with pytest.raises(error):
            client.get(path, headers={"X-Request-ID": rid})
    assert [
        (event["exception"]["values"][-1]["type"], tags(event).get("request_id"))
        for event in events
    ] == [
        ("LookupError", "around-1"),
        ("KeyError", "around-2"),
        ("DeliberateError", "around-3"),
    ]


def test_an_exception_sentrys_asgi_middleware_captures_around_dockerflows_carries_the_id(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    events = sentry_init(integrations=[RequestIdIntegration()])

    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise LookupError("no such order")

    async def run() -> None:
        app = SentryAsgiMiddleware(DockerflowASGIMiddleware(failing))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await client.get("/", headers={"X-Request-ID": "around-4"})

    with pytest.raises(LookupError):
        asyncio.run(run())
    [event] = events
    assert tags(event)["request_id"] == "around-4"


def test_an_event_captured_during_an_asgi_request_carries_its_id(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    events = sentry_init(integrations=[RequestIdIntegration()])

    async def capture() -> None:
        sentry_sdk.capture_message("inside")

    rid, _ = during_asgi_request(capture)

    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise LookupError("no such order")

    async def run() -> None:
        app = DockerflowASGIMiddleware(SentryAsgiMiddleware(failing))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await client.get("/", headers={"X-Request-ID": "boom-2"})

    with pytest.raises(LookupError):
        asyncio.run(run())
    assert [tags(event).get("request_id") for event in events] == [rid, "boom-2"]


def test_a_request_id_tag_the_application_set_is_kept(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    events = sentry_init(integrations=[RequestIdIntegration()])

    def capture() -> None:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("request_id", "the-apps")
            sentry_sdk.capture_message("tagged")

    during_request(capture)
    assert tags(events[0])["request_id"] == "the-apps"


def test_without_the_integration_events_get_no_tag(
    sentry_init: Callable[..., list[dict[str, Any]]],
) -> None:
    """Its event processor, once added, stays for the process: it asks the client."""
    sentry_init(integrations=[RequestIdIntegration()])
    events = sentry_init()
    during_request(lambda: sentry_sdk.capture_message("inside"))
    assert "request_id" not in tags(events[0])


def test_the_sentry_snippet_tags_the_events_of_its_requests(
    sentry_init: Callable[..., list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    captured = []
    monkeypatch.setenv("SENTRY_DSN", DSN)
    monkeypatch.setattr(
        sentry_sdk, "init", lambda **options: captured.append(sentry_init(**options))
    )
    sys.modules.pop("propagation_sentry", None)
    client = webtest.TestApp(snippet("propagation_sentry").app)
    [events] = captured
    expired = client.get("/checkout/expired").headers["X-Request-ID"]
    with pytest.raises(LookupError):
        client.get("/checkout/elsewhere", headers={"X-Request-ID": "lost-1"})
    assert client.get("/checkout").text == "Thank you"
    assert [(event.get("message"), tags(event).get("request_id")) for event in events] == [
        ("Checkout of an expired cart", expired),
        (None, "lost-1"),
    ]
