"""Prometheus metrics (``metrics`` on): ``/__metrics__``, the request and check metrics under
WSGI and ASGI, one set per process, bounded labels, and prometheus_client's multiprocess mode
across forked processes. Under gunicorn: ``tests/reliability/test_metrics_workers.py``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Optional

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi import metrics as metrics_module
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

REPO = Path(__file__).resolve().parent.parent


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def sample(name: str, **labels: str) -> float:
    """The current value of a sample of this process's registry (0 when not there yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_off_by_default_the_path_is_the_applications():
    app = TestApp(DockerflowMiddleware(hello))
    assert app.get("/__metrics__").text == "hello"


def test_metrics_from_the_environment(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_METRICS", "true")
    response = TestApp(DockerflowMiddleware(hello)).get("/__metrics__")
    assert response.content_type == "text/plain"
    assert "dockerflow_requests_total" in response.text


def test_requests_are_counted_by_method_and_code_and_timed():
    app = TestApp(DockerflowMiddleware(hello, metrics=True))
    before = sample("dockerflow_requests_total", method="GET", code="200", route="")
    timed = sample("dockerflow_request_duration_seconds_count", method="GET", route="")
    scrapes = sample("dockerflow_requests_total", method="GET", code="200", route="/__metrics__")

    for _ in range(3):
        app.get("/somewhere")
    response = app.get("/__metrics__")

    assert sample("dockerflow_requests_total", method="GET", code="200", route="") == before + 3
    assert sample("dockerflow_request_duration_seconds_count", method="GET", route="") == timed + 3
    # The scrape is a request too, of its own route: counted once it ends, after its own body
    # was made.
    assert (
        sample("dockerflow_requests_total", method="GET", code="200", route="/__metrics__")
        == scrapes + 1
    )
    found = families(response.text)
    assert found["dockerflow_requests"].type == "counter"
    assert found["dockerflow_request_duration_seconds"].type == "histogram"
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST


def test_head_answers_the_headers_only():
    app = TestApp(DockerflowMiddleware(hello, metrics=True))
    response = app.head("/__metrics__")
    assert response.status_int == 200 and response.body == b""
    assert app.post("/__metrics__", status=405).json == {"error": "method not allowed"}


def test_labels_never_hold_the_path_nor_an_invented_method():
    app = TestApp(DockerflowMiddleware(hello, metrics=True))
    app.get("/users/12345/secret-token-abc")
    with pytest.warns(Warning, match="Unknown REQUEST_METHOD"):
        app.request("/x", method="BREW")
        app.request("/x", method="BREW2")

    text = app.get("/__metrics__").text

    # The requests' series (build_info, which the process may have from another test's
    # version.json, holds that file's values, not a request's).
    request_labels = " ".join(
        value
        for name, family in families(text).items()
        if name.startswith("dockerflow_request")
        for metric in family.samples
        for value in metric.labels.values()
    )
    assert "12345" not in request_labels and "secret-token-abc" not in request_labels
    assert "BREW" not in request_labels
    assert sample("dockerflow_requests_total", method="other", code="200", route="") >= 2
    # The library's metrics' labels (the default registry also has the platform's).
    assert {
        label
        for name, family in families(text).items()
        if name.startswith("dockerflow_")
        for metric in family.samples
        for label in metric.labels
    } <= {
        "method",
        "code",
        "route",
        "check",
        "level",
        "status",
        "le",
        "version",
        "commit",
        "source",
    }


def test_an_app_that_raises_counts_as_500():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    app = TestApp(DockerflowMiddleware(broken, metrics=True))
    before = sample("dockerflow_requests_total", method="GET", code="500", route="")
    with pytest.raises(RuntimeError):
        app.get("/")
    assert sample("dockerflow_requests_total", method="GET", code="500", route="") == before + 1


def test_each_heartbeat_run_records_the_checks_levels_durations_and_status():
    def disk() -> list[checks.CheckMessage]:
        return [checks.Warning("almost full", id="acme.W001")]

    def queue() -> list[checks.CheckMessage]:
        return [checks.Error("stuck", id="acme.E001")]

    app = TestApp(
        DockerflowMiddleware(
            hello,
            checks=[("metrics_disk", disk), ("metrics_queue", queue)],
            non_critical_checks=["metrics_queue"],
            metrics=True,
        )
    )
    runs = sample("dockerflow_heartbeat_runs_total", status="warning")

    app.get("/__heartbeat__")

    assert sample("dockerflow_check_status", check="metrics_disk") == 30
    # As the heartbeat reports it: a non-critical check's error is a warning.
    assert sample("dockerflow_check_status", check="metrics_queue") == 30
    assert 0 <= sample("dockerflow_check_duration_seconds", check="metrics_disk") < 5
    assert sample("dockerflow_heartbeat_runs_total", status="warning") == runs + 1


def test_a_timed_out_check_has_its_time_so_far_as_duration():
    release = threading.Event()

    def slow() -> list[checks.CheckMessage]:
        release.wait(30)
        return []

    app = TestApp(
        DockerflowMiddleware(
            hello, checks=[("metrics_slow", slow)], check_timeout=0.05, metrics=True
        )
    )
    try:
        app.get("/__heartbeat__", status=500)

        assert sample("dockerflow_check_status", check="metrics_slow") == 40
        # Its time so far, not the time it will take: it has not returned yet.
        assert 0.05 <= sample("dockerflow_check_duration_seconds", check="metrics_slow") < 30
    finally:
        release.set()


def test_every_middleware_of_the_process_shares_one_set_of_metrics():
    first = DockerflowMiddleware(hello, metrics=True)
    second = DockerflowMiddleware(hello, metrics=True)
    assert first.core.metrics is second.core.metrics
    before = sample("dockerflow_requests_total", method="PUT", code="200", route="")

    TestApp(first).put("/")
    TestApp(second).put("/")

    assert sample("dockerflow_requests_total", method="PUT", code="200", route="") == before + 2


def test_with_log_probes_off_the_scrape_writes_no_summary(summary_records):
    app = TestApp(DockerflowMiddleware(hello, metrics=True, log_probes=False))
    app.get("/__metrics__")
    app.get("/__metrics__/")
    assert summary_records == []


def test_with_log_probes_off_the_probes_are_still_counted():
    """The quiet load balancer probe is a request like any other to the metrics, under WSGI as
    under ASGI."""
    app = TestApp(DockerflowMiddleware(hello, metrics=True, log_probes=False))

    def counted(route: str) -> float:
        return sample("dockerflow_requests_total", method="GET", code="200", route=route)

    lb_before, heartbeat_before = counted("/__lbheartbeat__"), counted("/__heartbeat__")
    for _ in range(3):
        app.get("/__lbheartbeat__")
    app.get("/__heartbeat__")

    assert counted("/__lbheartbeat__") == lb_before + 3
    assert counted("/__heartbeat__") == heartbeat_before + 1


def test_without_prometheus_client_the_option_fails_at_construction(monkeypatch):
    monkeypatch.setattr(metrics_module, "_process_metrics", None)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ValueError, match=r"pip install 'dockerflow-wsgi\[prometheus\]'"):
        DockerflowMiddleware(hello, metrics=True)


def _asgi_request(app: Any, method: str, path: str) -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    headers = {name.decode(): value.decode() for name, value in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_under_asgi():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"made"})

    middleware = DockerflowASGIMiddleware(app, metrics=True)
    before = sample("dockerflow_requests_total", method="POST", code="201", route="")

    assert _asgi_request(middleware, "POST", "/things")[0] == 201
    status, headers, body = _asgi_request(middleware, "GET", "/__metrics__")

    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE_LATEST
    assert sample("dockerflow_requests_total", method="POST", code="201", route="") == before + 1
    assert 'dockerflow_requests_total{code="201",method="POST",route=""}' in body.decode()


# -- several processes: PROMETHEUS_MULTIPROC_DIR -------------------------------------------------

_FORKED = """
import json, os, sys
from webtest import TestApp
from dockerflow_wsgi import DockerflowMiddleware
from prometheus_client import multiprocess

def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

def broken():
    from dockerflow_wsgi import checks
    return [checks.Error("down in " + str(os.getpid()), id="acme.E001")]

def healthy():
    return []

# Imported and built before the fork, as gunicorn --preload does.
middleware = DockerflowMiddleware(hello, metrics=True, checks=[("flaky", healthy)])
app = TestApp(middleware)
children = []
for index in range(2):
    pid = os.fork()
    if pid == 0:
        for _ in range(3 + index):
            app.get("/")
        if index == 1:
            middleware.core.heartbeat._checks = lambda: [("flaky", broken)]
        app.get("/__heartbeat__", status="*")
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
scraped = app.get("/__metrics__").text
multiprocess.mark_process_dead(children[1])
after_death = app.get("/__metrics__").text
print(json.dumps({"scraped": scraped, "after_death": after_death}))
"""


#: The labels of a GET that matched no route, but its status.
GET_NO_ROUTE = {"method": "GET", "route": ""}


def _value(text: str, name: str, labels: Optional[dict[str, str]] = None) -> Optional[float]:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == (labels or {}):
                return found.value
    return None


def test_forked_processes_add_up_under_prometheus_multiproc_dir(tmp_path):
    environ = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
    }
    environ = {k: v for k, v in environ.items() if not k.startswith("DOCKERFLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FORKED)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    scraped = json.loads(result.stdout)

    text = scraped["scraped"]
    # 3 + 4 requests and one heartbeat in each child, counted in the parent's scrape.
    assert _value(text, "dockerflow_requests_total", {**GET_NO_ROUTE, "code": "200"}) == 7
    heartbeat = {"method": "GET", "route": "/__heartbeat__"}
    assert _value(text, "dockerflow_requests_total", {**heartbeat, "code": "200"}) == 1
    assert _value(text, "dockerflow_requests_total", {**heartbeat, "code": "500"}) == 1
    assert _value(text, "dockerflow_heartbeat_runs_total", {"status": "ok"}) == 1
    assert _value(text, "dockerflow_heartbeat_runs_total", {"status": "error"}) == 1
    # The worst level of the live processes; the dead one's drops out.
    assert _value(scraped["scraped"], "dockerflow_check_status", {"check": "flaky"}) == 40
    assert _value(scraped["after_death"], "dockerflow_check_status", {"check": "flaky"}) == 0


def test_a_scrape_leaves_out_the_file_a_starting_worker_has_not_sized_yet(tmp_path, monkeypatch):
    # A worker creates its file empty, then sizes it: a scrape between the two must still
    # count every other worker's values, not fail (prometheus_client's own collector raises).
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    values = MmapedDict(str(tmp_path / "counter_100.db"))
    key = mmap_key(
        "dockerflow_requests",
        "dockerflow_requests_total",
        ["method", "code", "route"],
        ["GET", "200", ""],
        "Requests answered.",
    )
    values.write_value(key, 3.0, 0.0)
    values.close()
    (tmp_path / "counter_101.db").touch()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    answer = metrics_module.process_metrics().exposition()

    assert answer.status == 200
    text = answer.body.decode()
    assert _value(text, "dockerflow_requests_total", {**GET_NO_ROUTE, "code": "200"}) == 3
