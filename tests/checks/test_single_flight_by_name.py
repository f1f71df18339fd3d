"""Single flight by name: a check source that builds new callables at every run (as the Django
integration does) still gets one call of a hanging check, never one per heartbeat.

Were calls told apart by the callable's identity, every heartbeat would start another copy of
the hanging check, each holding a pool thread, until the pool was full and every check of the
service was E102.
"""

from __future__ import annotations

import threading

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.checks import registry
from dockerflow_wsgi.checks.runner import CheckRunner

#: More heartbeats than the pool has threads (32).
HEARTBEATS = 40

E102 = "dockerflow.health.E102"


class HangingSource:
    """A check source that makes a new hanging callable, and a new healthy one, at each run."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def __call__(self) -> list[tuple[str, registry.Check]]:
        def hang() -> list[checks.CheckMessage]:
            with self._lock:
                self.started += 1
            self.release.wait(60)
            return []

        def fine() -> list[checks.CheckMessage]:
            return []

        return [("hang", hang), ("fine", fine)]


@pytest.fixture
def source():
    made = HangingSource()
    yield made
    made.release.set()


def test_a_new_callable_under_the_same_name_is_the_same_check_for_the_runner(source):
    # The healthy check gets all the time a loaded machine may need to start its thread.
    runner = CheckRunner(timeout=10, timeouts={"hang": 0.01})
    for number in range(HEARTBEATS):
        results = runner.run(source())
        assert results.statuses == {"hang": "error", "fine": "ok"}, f"heartbeat {number}"
        assert list(results.details["hang"]["messages"]) == [E102]
    assert source.started == 1
    # One thread held by the hanging call, one reused by the healthy check.
    assert runner.pool.thread_count <= 2


@pytest.fixture
def framework_source(source):
    registry.register_check_source("framework", source)
    yield source
    registry._sources.pop("framework", None)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_heartbeats_start_one_call_of_a_hanging_check_a_framework_source_makes_anew(
    framework_source, monkeypatch
):
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUTS", "hang=0.01")
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "10")
    middleware = DockerflowMiddleware(hello)
    app = TestApp(middleware)
    for number in range(HEARTBEATS):
        details = app.get("/__heartbeat__", status=500).json["details"]
        assert set(details) == {"hang"}, f"heartbeat {number}"
    assert framework_source.started == 1
    assert middleware.heartbeat.runner.pool.thread_count <= 2
