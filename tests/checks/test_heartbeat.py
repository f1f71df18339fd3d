"""The heartbeat: one run shared by concurrent probes, a result cache, logs and signals."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks, signals
from dockerflow_wsgi.checks import heartbeat as heartbeat_module
from dockerflow_wsgi.checks.heartbeat import Heartbeat
from dockerflow_wsgi.checks.runner import CheckRunner


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Gate:
    """A check that counts its calls and blocks until the gate opens."""

    def __init__(self, messages=()):
        self.opened = threading.Event()
        self.calls = 0
        self.messages = list(messages)

    def __call__(self):
        self.calls += 1
        self.opened.wait(30)
        return self.messages


def wait_until(predicate, limit=10.0):
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def storm(call, count):
    """Call ``call`` from ``count`` threads at once; return their results."""
    results = [None] * count

    def worker(index):
        results[index] = call()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_a_probe_storm_runs_each_check_once():
    gate = Gate()
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=30))
    threads, results = storm(beat.results, 100)
    wait_until(lambda: beat.waiting == 99)
    gate.opened.set()
    for thread in threads:
        thread.join(30)
    assert gate.calls == 1
    assert all(result is results[0] for result in results)
    assert results[0].statuses == {"gate": "ok"}


def test_a_probe_storm_through_the_middleware_runs_each_check_once():
    gate = Gate([checks.Warning("slow", id="g.W1")])
    middleware = DockerflowMiddleware(hello, checks=[("gate", gate)])
    threads, responses = storm(lambda: TestApp(middleware).get("/__heartbeat__"), 100)
    wait_until(lambda: middleware.heartbeat.waiting == 99)
    gate.opened.set()
    for thread in threads:
        thread.join(30)
    assert gate.calls == 1
    assert {response.status_int for response in responses} == {200}
    assert {response.json["status"] for response in responses} == {"warning"}


def test_without_a_cache_each_sequential_heartbeat_runs_the_checks():
    gate = Gate()
    gate.opened.set()
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=30), cache_ttl=0)
    beat.results()
    beat.results()
    assert gate.calls == 2


def test_a_cached_result_is_reused_until_the_ttl_passes(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(heartbeat_module.time, "monotonic", lambda: now[0])
    gate = Gate()
    gate.opened.set()
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=30), cache_ttl=10)
    first = beat.results()
    now[0] += 9.9
    assert beat.results() is first
    assert gate.calls == 1
    now[0] += 0.2
    assert beat.results() is not first
    assert gate.calls == 2


def test_cache_ttl_from_the_environment_reaches_the_heartbeat(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_CACHE_TTL", "30")
    gate = Gate()
    gate.opened.set()
    app = TestApp(DockerflowMiddleware(hello, checks=[("gate", gate)]))
    app.get("/__heartbeat__")
    app.get("/__heartbeat__")
    assert gate.calls == 1


def test_signals_carry_the_level_of_each_run():
    received = []

    def on_passed(sender, level, **extra):
        received.append(("passed", level))

    def on_failed(sender, level, **extra):
        received.append(("failed", level))

    signals.heartbeat_passed.connect(on_passed)
    signals.heartbeat_failed.connect(on_failed)
    try:
        Heartbeat(lambda: [("w", lambda: [checks.Warning("w")])], CheckRunner(5)).results()
        Heartbeat(lambda: [("e", lambda: [checks.Error("e")])], CheckRunner(5)).results()
    finally:
        signals.heartbeat_passed.disconnect(on_passed)
        signals.heartbeat_failed.disconnect(on_failed)
    assert received == [("passed", checks.WARNING), ("failed", checks.ERROR)]


def test_a_broken_signal_receiver_does_not_break_the_heartbeat(caplog):
    def broken(sender, **extra):
        raise RuntimeError("receiver bug")

    signals.heartbeat_passed.connect(broken)
    try:
        response = TestApp(DockerflowMiddleware(hello, checks=[])).get("/__heartbeat__")
    finally:
        signals.heartbeat_passed.disconnect(broken)
    assert response.json["status"] == "ok"
    assert any("receiver" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("messages", "level"),
    [
        ([checks.Warning("slow", id="x.W1")], logging.WARNING),
        ([checks.Error("down")], logging.ERROR),
    ],
)
def test_a_run_that_finds_problems_is_logged_with_its_details(caplog, messages, level):
    caplog.set_level(logging.INFO, logger="dockerflow_wsgi")
    Heartbeat(lambda: [("x", lambda: messages)], CheckRunner(5)).results()
    [record] = [r for r in caplog.records if r.getMessage().startswith("Heartbeat")]
    assert record.levelno == level
    assert record.checks == {"x": checks.level_to_text(messages[0].level)}
    assert "x" in record.details


def test_a_healthy_run_is_not_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi")
    Heartbeat(lambda: [("fine", list)], CheckRunner(5)).results()
    assert not [r for r in caplog.records if r.name == "dockerflow_wsgi"]


def test_heartbeat_details_off_answers_only_the_status_but_logs_the_details(caplog):
    app = TestApp(
        DockerflowMiddleware(
            hello, heartbeat_details=False, checks=[("db", lambda: [checks.Error("down")])]
        )
    )
    response = app.get("/__heartbeat__", status=500)
    assert json.loads(response.body) == {"status": "error"}
    [record] = [r for r in caplog.records if r.getMessage().startswith("Heartbeat")]
    assert record.details["db"]["messages"] == {"db.0": "down"}


def test_the_heartbeat_answers_within_the_timeout_when_a_check_never_returns():
    gate = Gate()
    app = TestApp(DockerflowMiddleware(hello, check_timeout=0.05, checks=[("hang", gate)]))
    try:
        response = app.get("/__heartbeat__", status=500)
        assert not gate.opened.is_set()
        assert response.json["details"]["hang"]["messages"] == {
            "dockerflow.health.E102": "check did not finish within 0.05 seconds"
        }
    finally:
        gate.opened.set()


def test_threads_stay_flat_over_50_heartbeats_with_a_hung_check():
    gate = Gate()
    middleware = DockerflowMiddleware(
        hello, check_timeout=0.01, checks=[("hang", gate), ("fire", lambda: 1 / 0)]
    )
    app = TestApp(middleware)
    try:
        app.get("/__heartbeat__", status=500)
        before = threading.active_count()
        for _ in range(50):
            app.get("/__heartbeat__", status=500)
        assert threading.active_count() == before
        assert gate.calls == 1
    finally:
        gate.opened.set()
