"""One contract, every adapter: the conformance table.

Each case below sends requests through a driver and asserts what a client and an operator
observe: status, headers, body, the ``request.summary`` records, the exception the server
sees. Every case runs through every adapter, with the same application (``conformance_apps``)
and the same options:

- ``wsgi``: ``DockerflowMiddleware`` in webtest, ``wsgiref.validate`` on both sides of it;
- ``asgi``: ``DockerflowASGIMiddleware`` called with raw ASGI messages;
- ``uvicorn``: the same ASGI middleware under one real uvicorn server;
- ``sanic``: the Sanic integration under Sanic's own server (it hooks Sanic's request
  lifecycle, which only Sanic's server runs).

A behaviour every adapter has is tested here, once; a difference between adapters shows up as
one row failing for one adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol
from urllib.parse import urlsplit
from wsgiref.validate import validator

import conformance_apps
import httpx
import pytest
import webtest
from conformance_apps import ITEM_ROUTE, PROFILE_HEADER, PROFILES, VERSION
from server_process import ServerProcess, unused_port

TESTS = Path(__file__).resolve().parent
SERVER_TIMEOUT = 30.0

# -- what a driver reports -------------------------------------------------------------------


@dataclass
class Summary:
    """A ``request.summary`` record as an operator reads it, whichever way it was written."""

    level: str
    fields: dict[str, Any]
    #: ``repr`` of the exception the record carries, if any (mozlog's ``error`` field).
    error: Optional[str]


@dataclass
class Outcome:
    """What one request came back with."""

    #: 0 when none was sent: the application's exception reached the (in-process) server.
    status: int
    #: Header names lowercased, in the order sent.
    headers: list[tuple[str, str]]
    body: bytes
    #: The exception that reached the server (in-process drivers only).
    raised: Optional[BaseException]
    _summaries: Callable[[], list[Summary]] = field(repr=False)

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def summaries(self) -> list[Summary]:
        """The request's summary records (a real server's are read once it wrote them)."""
        return self._summaries()


class Driver(Protocol):
    """Sends one request to the adapter under test, in one of ``conformance_apps.PROFILES``."""

    #: Whether the application's exceptions reach this process (else the server answers 500).
    in_process: bool

    def send(
        self,
        method: str,
        path: str,
        headers: Optional[dict[str, str]] = None,
        profile: str = "default",
    ) -> Outcome: ...


@contextlib.contextmanager
def summary_capture() -> Iterator[list[Summary]]:
    """The summaries written in this process meanwhile."""
    captured: list[Summary] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            error = None if not record.exc_info else repr(record.exc_info[1])
            fields = {
                name: getattr(record, name) for name in SUMMARY_FIELDS if hasattr(record, name)
            }
            captured.append(Summary(record.levelname, fields, error))

    logger = logging.getLogger("request.summary")
    handler = Collect(logging.INFO)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


SUMMARY_FIELDS = (
    "agent",
    "lang",
    "method",
    "path",
    "code",
    "errno",
    "t",
    "rid",
    "uid",
    "querystring",
    "trace_id",
    "route",
    "sample_rate",
)


class WSGIDriver:
    """webtest, ``wsgiref.validate`` around the middleware and around the application."""

    in_process = True

    def __init__(self) -> None:
        self.apps = {
            profile: webtest.TestApp(
                validator(conformance_apps.wsgi_middleware(profile, validator))
            )
            for profile in conformance_apps.PROFILES
        }

    def send(
        self,
        method: str,
        path: str,
        headers: Optional[dict[str, str]] = None,
        profile: str = "default",
    ) -> Outcome:
        raised = None
        response = None
        with summary_capture() as summaries:
            try:
                response = self.apps[profile].request(
                    path, method=method, headers=headers or {}, expect_errors=True
                )
            except Exception as exc:
                raised = exc
        if response is None:
            return Outcome(0, [], b"", raised, lambda: summaries)
        return Outcome(
            response.status_int,
            [(name.lower(), value) for name, value in response.headerlist],
            response.body,
            None,
            lambda: summaries,
        )


class ASGIDriver:
    """Raw ASGI messages, one event loop per request."""

    in_process = True

    def __init__(self) -> None:
        self.apps = {
            profile: conformance_apps.asgi_middleware(profile)
            for profile in conformance_apps.PROFILES
        }

    def send(
        self,
        method: str,
        path: str,
        headers: Optional[dict[str, str]] = None,
        profile: str = "default",
    ) -> Outcome:
        target = urlsplit(path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": target.path,
            "raw_path": target.path.encode(),
            "query_string": target.query.encode(),
            "root_path": "",
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in (headers or {}).items()
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        raised = None
        with summary_capture() as summaries:
            try:
                asyncio.run(self.apps[profile](scope, receive, send))
            except Exception as exc:
                raised = exc
        starts = [message for message in sent if message["type"] == "http.response.start"]
        if not starts:
            return Outcome(0, [], b"", raised, lambda: summaries)
        return Outcome(
            starts[0]["status"],
            [
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                for n, v in starts[0]["headers"]
            ],
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
            raised,
            lambda: summaries,
        )


class ConformanceServer:
    """``conformance_apps`` served in a subprocess (the tests' one harness), its mozlog output
    in a file."""

    def __init__(self, directory: Path, name: str, *arguments: str) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("DOCKERFLOW_")
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.process = ServerProcess(
            [sys.executable, "-m", "conformance_apps", *arguments, str(self.port)],
            cwd=directory,
            env=env,
            stdout_path=directory / f"{name}.out",
            stderr_path=directory / f"{name}.err",
            name=name,
            # Sanic's server stops on SIGINT; uvicorn on either.
            stop_signal=signal.SIGINT,
        ).start()

    def wait_until_ready(self) -> None:
        def answers() -> bool:
            try:
                # Not the load balancer's probe: a draining profile's answers 503.
                return httpx.get(f"{self.url}/__version__", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        self.process.wait_until(answers, SERVER_TIMEOUT)

    def records(self) -> list[dict[str, Any]]:
        """Every complete line written so far, as mozlog records."""
        text = self.process.output()
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def stop(self) -> None:
        self.process.stop(timeout=10)


def _mozlog_summary(record: dict[str, Any]) -> Summary:
    fields = record["Fields"]
    level = {3: "ERROR", 6: "INFO"}[record["Severity"]]
    return Summary(
        level,
        {name: fields[name] for name in SUMMARY_FIELDS if name in fields},
        fields.get("error"),
    )


#: The server of a profile, and the headers that choose it.
Target = tuple[ConformanceServer, dict[str, str]]


class ServerDriver:
    """A real server over HTTP. A request's summaries are those written between it and a
    later request's (a sentinel with an id of its own), which the server writes after them."""

    in_process = False

    def __init__(
        self,
        client: httpx.Client,
        target: Callable[[str], tuple[ConformanceServer, dict[str, str]]],
    ) -> None:
        self.client = client
        #: The server of a profile, and the headers that choose it.
        self.target = target

    def send(
        self,
        method: str,
        path: str,
        headers: Optional[dict[str, str]] = None,
        profile: str = "default",
    ) -> Outcome:
        server, choice = self.target(profile)
        start = len(server.records())
        response = self.client.request(
            method, server.url + path, headers={**(headers or {}), **choice}
        )

        def summaries() -> list[Summary]:
            sentinel = f"sentinel-{uuid.uuid4().hex}"
            sentinel_headers = {
                "X-Request-ID": sentinel,
                "X-Trace-ID": sentinel,
                # Its summary kept whatever the profile's sampling: the caller records its trace.
                "traceparent": SAMPLED_TRACEPARENT,
                **choice,
            }
            assert self.client.get(server.url + "/", headers=sentinel_headers).status_code == 200
            deadline = time.monotonic() + 10
            while True:
                written = [r for r in server.records()[start:] if r["Type"] == "request.summary"]
                if any(r["Fields"]["rid"] == sentinel for r in written):
                    return [_mozlog_summary(r) for r in written if r["Fields"]["rid"] != sentinel]
                assert time.monotonic() < deadline, "the sentinel's summary was never written"
                time.sleep(0.02)

        return Outcome(
            response.status_code,
            [(name.lower(), value) for name, value in response.headers.multi_items()],
            response.content,
            None,
            summaries,
        )


@pytest.fixture(scope="module")
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def uvicorn_driver(
    tmp_path_factory: pytest.TempPathFactory, http_client: httpx.Client
) -> Iterator[ServerDriver]:
    server = ConformanceServer(tmp_path_factory.mktemp("uvicorn"), "uvicorn", "uvicorn")
    try:
        server.wait_until_ready()
        yield ServerDriver(http_client, lambda profile: (server, {PROFILE_HEADER: profile}))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sanic_driver(
    tmp_path_factory: pytest.TempPathFactory, http_client: httpx.Client
) -> Iterator[ServerDriver]:
    directory = tmp_path_factory.mktemp("sanic")
    servers = {
        profile: ConformanceServer(directory, profile, "sanic", profile)
        for profile in conformance_apps.PROFILES
    }
    try:
        for server in servers.values():
            server.wait_until_ready()
        yield ServerDriver(http_client, lambda profile: (servers[profile], {}))
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def wsgi_driver() -> WSGIDriver:
    return WSGIDriver()


@pytest.fixture
def asgi_driver() -> ASGIDriver:
    return ASGIDriver()


ADAPTERS = ("wsgi", "asgi", "uvicorn", "sanic")
#: The adapters driven through a real server in a subprocess.
SERVED = frozenset({"uvicorn", "sanic"})


# -- the cases --------------------------------------------------------------------------------

#: A valid ``traceparent`` whose flags say the caller records (samples) the trace.
SAMPLED_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

HEARTBEAT_BODY = {"status": "ok", "checks": {"passing": "ok"}, "details": {}}
DOCKERFLOW_PATHS = {
    "/__lbheartbeat__": {},
    "/__heartbeat__": HEARTBEAT_BODY,
    "/__version__": VERSION,
    "/__heartbeat__/ready": HEARTBEAT_BODY,
}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def only_summary(outcome: Outcome) -> Summary:
    (summary,) = outcome.summaries
    return summary


def assert_dockerflow_headers(outcome: Outcome) -> None:
    assert outcome.header("Content-Type") == ["application/json"]
    assert outcome.header("Cache-Control") == ["no-cache"]
    (request_id,) = outcome.header("X-Request-ID")
    assert GENERATED_ID.fullmatch(request_id)


def answered(path: str, method: str) -> Callable[[Driver], None]:
    def case(driver: Driver) -> None:
        outcome = driver.send(method, path)
        assert_dockerflow_headers(outcome)
        if method == "POST":
            assert outcome.status == 405
            assert outcome.header("Allow") == ["GET, HEAD"]
            assert outcome.json() == {"error": "method not allowed"}
        elif method == "HEAD":
            assert outcome.status == 200
            assert outcome.body == b""
        else:
            assert outcome.status == 200
            assert outcome.json() == DOCKERFLOW_PATHS[path.rstrip("/")]
        summary = only_summary(outcome)
        assert summary.fields["path"] == path
        assert summary.fields["method"] == method
        assert summary.fields["code"] == outcome.status
        # The path itself, without the trailing slash, whatever the method.
        assert summary.fields["route"] == path.rstrip("/")

    return case


def unknown_group(driver: Driver) -> None:
    outcome = driver.send("GET", "/__heartbeat__/nope")
    assert outcome.status == 404
    assert_dockerflow_headers(outcome)
    assert set(outcome.json()) == {"error"}
    summary = only_summary(outcome)
    assert (summary.level, summary.fields["code"], summary.fields["errno"]) == ("INFO", 404, 404)
    assert "route" not in summary.fields


def valid_id_echoed(driver: Driver) -> None:
    outcome = driver.send("GET", "/", {"X-Request-ID": "conformance-Id_1.2:3"})
    assert outcome.header("X-Request-ID") == ["conformance-Id_1.2:3"]
    assert only_summary(outcome).fields["rid"] == "conformance-Id_1.2:3"


def invalid_id_replaced(driver: Driver) -> None:
    for invalid in ("two words", "x" * 129, "tab\there"):
        outcome = driver.send("GET", "/", {"X-Request-ID": invalid})
        (request_id,) = outcome.header("X-Request-ID")
        assert GENERATED_ID.fullmatch(request_id)
        assert only_summary(outcome).fields["rid"] == request_id


def id_generated(driver: Driver) -> None:
    ids = []
    for _ in range(2):
        outcome = driver.send("GET", "/")
        (request_id,) = outcome.header("X-Request-ID")
        assert GENERATED_ID.fullmatch(request_id)
        assert only_summary(outcome).fields["rid"] == request_id
        ids.append(request_id)
    assert ids[0] != ids[1]


def custom_id_header(driver: Driver) -> None:
    outcome = driver.send(
        "GET", "/", {"X-Trace-ID": "traced-1", "X-Request-ID": "ignored"}, "trace"
    )
    assert outcome.header("X-Trace-ID") == ["traced-1"]
    assert outcome.header("X-Request-ID") == []
    assert only_summary(outcome).fields["rid"] == "traced-1"


def summary_fields(driver: Driver) -> None:
    headers = {
        "X-Request-ID": "fields-1",
        "User-Agent": "conformance/1.0",
        "Accept-Language": "fr-CA",
    }
    outcome = driver.send("GET", "/user?q=1&password=hunter2", headers)
    assert outcome.status == 200
    summary = only_summary(outcome)
    assert summary.level == "INFO"
    assert summary.error is None
    duration = summary.fields.pop("t")
    assert isinstance(duration, int) and 0 <= duration < 5000
    assert summary.fields == {
        "agent": "conformance/1.0",
        "lang": "fr-CA",
        "method": "GET",
        "path": "/user",
        "code": 200,
        "errno": 0,
        "rid": "fields-1",
        "uid": "alice",
        "querystring": "q=1&password=***",
        "route": "user",
    }


def raising_app(driver: Driver) -> None:
    outcome = driver.send("GET", "/raise", {"X-Request-ID": "raising-1"})
    if driver.in_process:
        assert isinstance(outcome.raised, RuntimeError) and str(outcome.raised) == "boom"
    else:
        assert outcome.status == 500
    summary = only_summary(outcome)
    assert summary.level == "ERROR"
    assert summary.error == "RuntimeError('boom')"
    assert (summary.fields["code"], summary.fields["errno"]) == (500, 500)
    assert summary.fields["rid"] == "raising-1"
    assert summary.fields["route"] == "raise"


def framework_reported(driver: Driver) -> None:
    outcome = driver.send("GET", "/reported", {"X-Request-ID": "reported-1"})
    assert outcome.raised is None
    assert outcome.status == 500
    assert outcome.header("X-Request-ID") == ["reported-1"]
    summary = only_summary(outcome)
    assert summary.level == "ERROR"
    assert summary.error == "ReportedError('caught')"
    assert (summary.fields["code"], summary.fields["errno"]) == (500, 500)
    assert summary.fields["route"] == "reported"


def quiet_probes(driver: Driver) -> None:
    for method, path in [
        ("GET", "/__lbheartbeat__"),
        ("HEAD", "/__lbheartbeat__"),
        ("GET", "/__heartbeat__"),
        ("GET", "/__version__/"),
        ("GET", "/__heartbeat__/ready"),
        ("GET", "/__metrics__"),
    ]:
        outcome = driver.send(method, path, {"X-Request-ID": "quiet-1"}, "quiet")
        assert outcome.status == 200
        assert outcome.header("X-Request-ID") == ["quiet-1"]
        assert outcome.summaries == []
    assert len(driver.send("GET", "/", profile="quiet").summaries) == 1


DRAINING_BODY = {"status": "draining"}


def draining_probes(driver: Driver) -> None:
    for path in ("/__lbheartbeat__", "/__heartbeat__/ready", "/__heartbeat__/readiness/"):
        outcome = driver.send("GET", path, profile="draining")
        assert (outcome.status, outcome.json()) == (503, DRAINING_BODY), path
        assert_dockerflow_headers(outcome)
        assert only_summary(outcome).fields["code"] == 503
        echoed = driver.send("GET", path, {"X-Request-ID": "drain-1"}, "draining")
        assert echoed.header("X-Request-ID") == ["drain-1"]
        head = driver.send("HEAD", path, profile="draining")
        assert (head.status, head.body) == (503, b""), path
        assert driver.send("POST", path, profile="draining").status == 405, path


def draining_serves_the_rest(driver: Driver) -> None:
    heartbeat = driver.send("GET", "/__heartbeat__", profile="draining")
    assert (heartbeat.status, heartbeat.json()) == (200, HEARTBEAT_BODY)
    assert driver.send("GET", "/__version__", profile="draining").json() == VERSION
    assert driver.send("GET", "/__heartbeat__/startup", profile="draining").status == 404
    app = driver.send("GET", "/", profile="draining")
    assert (app.status, app.body) == (200, b"hello")
    assert only_summary(app).fields["code"] == 200


def draining_quietly(driver: Driver) -> None:
    for method in ("GET", "HEAD"):
        outcome = driver.send(method, "/__lbheartbeat__", {"X-Request-ID": "q-1"}, "draining_quiet")
        assert outcome.status == 503
        assert outcome.header("X-Request-ID") == ["q-1"]
        assert outcome.summaries == []
    scrape = driver.send("GET", "/__metrics__", profile="draining_quiet")
    assert re.search(rb"^dockerflow_draining 1\.0$", scrape.body, re.M)


def requests_counted(driver: Driver) -> int:
    """The sum of ``dockerflow_requests_total`` of a scrape."""
    outcome = driver.send("GET", "/__metrics__", profile="quiet")
    assert outcome.status == 200
    samples = re.findall(rb"^dockerflow_requests_total\{[^}]*\} (\S+)$", outcome.body, re.M)
    return int(sum(float(value) for value in samples))


def metrics_counts(driver: Driver) -> None:
    before = requests_counted(driver)
    for _ in range(3):
        assert driver.send("GET", "/__lbheartbeat__", profile="quiet").status == 200
    assert driver.send("GET", "/__heartbeat__", profile="quiet").status == 200
    # Four probes, and the first scrape itself (counted once its body was sent).
    assert requests_counted(driver) - before == 5


def cors_exposes_the_id(driver: Driver) -> None:
    cross_origin = driver.send("GET", "/cors")
    assert cross_origin.header("Access-Control-Expose-Headers") == ["X-Other, X-Request-ID"]
    traced = driver.send("GET", "/cors", profile="trace")
    assert traced.header("Access-Control-Expose-Headers") == ["X-Other, X-Trace-ID"]
    same_origin = driver.send("GET", "/")
    assert same_origin.header("Access-Control-Expose-Headers") == []


def reused_response(driver: Driver) -> None:
    before = driver.send("GET", "/reused-headers").json()
    first = driver.send("GET", "/reused", {"X-Request-ID": "first-1"})
    second = driver.send("GET", "/reused", {"X-Request-ID": "second-2"})
    assert first.header("X-Request-ID") == ["first-1"]
    assert second.header("X-Request-ID") == ["second-2"]
    assert driver.send("GET", "/reused-headers").json() == before


def app_routes(driver: Driver) -> None:
    item = only_summary(driver.send("GET", "/items/5"))
    assert item.fields["route"] == ITEM_ROUTE
    # The root route's template is empty: a matched route all the same.
    assert only_summary(driver.send("GET", "/")).fields["route"] == ""
    assert "route" not in only_summary(driver.send("GET", "/nope")).fields


def drawn(request_id: str, rate: float) -> bool:
    """Whether the draw keeps the summary of an ordinary request with this id."""
    return zlib.crc32(request_id.encode()) < rate * 2**32


def ids_drawn(rate: float, kept: bool, count: int) -> list[str]:
    """The first ``count`` ids ``draw-<n>`` that the draw at ``rate`` keeps (or drops)."""
    found = (f"draw-{number}" for number in range(10_000))
    return [request_id for request_id in found if drawn(request_id, rate) == kept][:count]


SAMPLED_RATE = PROFILES["sampled"]["summary_sample_rate"]
#: Ids the draw at the sampled profile's rate keeps, and ids it drops.
KEPT_IDS = ids_drawn(SAMPLED_RATE, True, 3)
DROPPED_IDS = ids_drawn(SAMPLED_RATE, False, 3)


def sampled_by_the_draw(driver: Driver) -> None:
    requests = [
        *((request_id, f"/items/{number}") for number, request_id in enumerate(KEPT_IDS)),
        *((request_id, f"/items/{number}") for number, request_id in enumerate(DROPPED_IDS)),
        # A 4xx is no error; the Dockerflow paths are sampled like any request.
        (KEPT_IDS[0], "/__heartbeat__/nope"),
        (DROPPED_IDS[0], "/__heartbeat__/nope"),
        (KEPT_IDS[1], "/__lbheartbeat__"),
        (DROPPED_IDS[1], "/__lbheartbeat__"),
        (KEPT_IDS[2], "/__version__"),
        (DROPPED_IDS[2], "/__version__"),
    ]
    for request_id, path in requests:
        outcome = driver.send("GET", path, {"X-Request-ID": request_id}, "sampled")
        assert outcome.header("X-Request-ID") == [request_id]
        summaries = outcome.summaries
        if request_id in DROPPED_IDS:
            assert summaries == [], path
            continue
        (summary,) = summaries
        assert summary.level == "INFO"
        assert summary.fields["rid"] == request_id
        assert summary.fields["sample_rate"] == SAMPLED_RATE
        assert type(summary.fields["sample_rate"]) is float


#: What keeps a request's summary whatever its id draws: request path and headers.
ALWAYS_KEPT = {
    "the app raised": ("/raise", {}),
    "the framework reported an exception": ("/reported", {}),
    "a 5xx": ("/unavailable", {}),
    "slow": ("/slow", {}),
    "trace sampled": ("/items/1", {"traceparent": SAMPLED_TRACEPARENT}),
    # Flags other than 01 with the sampled bit set.
    "trace sampled, other flags": (
        "/items/1",
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"},
    ),
}


def always_kept(profile: str) -> Callable[[Driver], None]:
    def case(driver: Driver) -> None:
        # Also the ids the draw keeps: their line says nothing of a draw.
        for request_id in (DROPPED_IDS[0], KEPT_IDS[0]):
            for reason, (path, headers) in ALWAYS_KEPT.items():
                sent = {"X-Request-ID": request_id, **headers}
                summary = only_summary(driver.send("GET", path, sent, profile))
                assert summary.fields["rid"] == request_id, reason
                assert "sample_rate" not in summary.fields, reason
                if reason == "slow":
                    assert summary.fields["t"] >= PROFILES[profile]["summary_slow_ms"]
                if reason.startswith("trace sampled"):
                    assert summary.fields["trace_id"] == "0af7651916cd43dd8448eb211c80319c"

    return case


#: ``traceparent`` values that do not say the trace is sampled: the id's draw decides.
NOT_SAMPLED_TRACEPARENTS = [
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02",
    # Invalid: the sampled flag of a traceparent that is not one says nothing.
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    "01",
]


def trace_not_sampled(profile: str) -> Callable[[Driver], None]:
    rate = PROFILES[profile]["summary_sample_rate"]

    def case(driver: Driver) -> None:
        for request_id in (DROPPED_IDS[0], KEPT_IDS[0]):
            for traceparent in NOT_SAMPLED_TRACEPARENTS:
                sent = {"X-Request-ID": request_id, "traceparent": traceparent}
                summaries = driver.send("GET", "/items/2", sent, profile).summaries
                if not drawn(request_id, rate):
                    assert summaries == [], traceparent
                    continue
                (summary,) = summaries
                assert summary.fields["sample_rate"] == rate, traceparent

    return case


def rate_zero(driver: Driver) -> None:
    for request_id in (*KEPT_IDS, *DROPPED_IDS):
        for path in ("/items/3", "/", "/__heartbeat__/ready", "/__heartbeat__/nope"):
            sent = {"X-Request-ID": request_id}
            assert driver.send("GET", path, sent, "errors_only").summaries == [], path


def rate_one(driver: Driver) -> None:
    for request_id in (*KEPT_IDS, *DROPPED_IDS):
        for path in ("/items/3", "/__lbheartbeat__", "/slow", "/unavailable"):
            summary = only_summary(driver.send("GET", path, {"X-Request-ID": request_id}))
            assert summary.fields["rid"] == request_id
            assert "sample_rate" not in summary.fields


@dataclass
class Case:
    name: str
    check: Callable[[Driver], None]
    #: Adapter to the reason it is known to fail (strict: the row must fail).
    known_failures: dict[str, str] = field(default_factory=dict)


CASES = [
    *(
        Case(f"{method} {path}{slash}", answered(path + slash, method))
        for path in DOCKERFLOW_PATHS
        for slash in ("", "/")
        for method in ("GET", "HEAD", "POST")
    ),
    Case("unknown group", unknown_group),
    Case("valid id echoed", valid_id_echoed),
    Case("invalid id replaced", invalid_id_replaced),
    Case("id generated", id_generated),
    Case("custom id header", custom_id_header),
    Case("summary fields", summary_fields),
    Case("raising app", raising_app),
    Case("framework-reported exception", framework_reported),
    Case("probes unlogged with log_probes off", quiet_probes),
    Case("metrics count every probe", metrics_counts),
    Case("draining: the probes answer 503", draining_probes),
    Case("draining: everything else served", draining_serves_the_rest),
    Case("draining: unlogged probes too, and the gauge", draining_quietly),
    Case("CORS exposes the id header", cors_exposes_the_id),
    Case("reused response", reused_response),
    Case("route as the app matched it", app_routes),
    Case("sampled by the id's draw", sampled_by_the_draw),
    Case("sampled: always kept", always_kept("sampled")),
    Case("sampled: a trace not sampled is drawn", trace_not_sampled("sampled")),
    Case("rate 0: always kept", always_kept("errors_only")),
    Case("rate 0: a trace not sampled is dropped", trace_not_sampled("errors_only")),
    Case("rate 0: no ordinary request", rate_zero),
    Case("rate 1: every request, no sample_rate", rate_one),
]


def _rows() -> Iterator[Any]:
    for case in CASES:
        for adapter in ADAPTERS:
            reason = case.known_failures.get(adapter)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            if adapter in SERVED:
                marks.append(pytest.mark.servers)
            yield pytest.param(case, adapter, marks=marks, id=f"{adapter}: {case.name}")


@pytest.mark.parametrize(("case", "adapter"), list(_rows()))
def test_conformance(case: Case, adapter: str, request: pytest.FixtureRequest) -> None:
    case.check(request.getfixturevalue(f"{adapter}_driver"))
