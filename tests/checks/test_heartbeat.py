"""The heartbeat: one run shared by concurrent probes, a result cache, logs and signals."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, RequestIdLogFilter, checks, signals
from dockerflow_wsgi.checks import heartbeat as heartbeat_module
from dockerflow_wsgi.checks import registry
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


def check_records(caplog):
    """The records of the checks' messages (a transition's record has ``ids``, not ``id``)."""
    return [r for r in caplog.records if r.name == "dockerflow_wsgi.checks" and hasattr(r, "id")]


def test_each_message_above_ok_is_logged_at_its_level_when_it_first_appears(caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi.checks")
    found = [
        checks.Debug("detail", id="x.D1"),
        checks.Info("fyi", id="x.I1"),
        checks.Warning("slow", id="x.W1"),
        checks.CheckMessage("custom", level=35, id="x.C35"),
        checks.Error("down"),
        checks.CheckMessage("fine", level=0, id="x.OK"),
        checks.Critical("gone", id="x.C1"),
        checks.Error("ignored", id="x.SILENCED"),
    ]
    beat = Heartbeat(
        lambda: [("x", lambda: found), ("quiet", list)],
        CheckRunner(5),
        silenced_check_ids={"x.SILENCED"},
    )
    beat.results()

    logged = [(r.levelno, r.getMessage(), r.check, r.id) for r in check_records(caplog)]
    assert logged == [
        (logging.DEBUG, "detail", "x", "x.D1"),
        (logging.INFO, "fyi", "x", "x.I1"),
        (logging.WARNING, "slow", "x", "x.W1"),
        (35, "custom", "x", "x.C35"),
        (logging.ERROR, "down", "x", None),
        (logging.CRITICAL, "gone", "x", "x.C1"),
    ]


def test_a_storm_or_a_cached_result_logs_the_messages_of_its_one_run(caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi.checks")
    gate = Gate([checks.Warning("slow", id="g.W1")])
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=30), cache_ttl=60)
    threads, _ = storm(beat.results, 20)
    wait_until(lambda: beat.waiting == 19)
    gate.opened.set()
    for thread in threads:
        thread.join(30)
    beat.results()
    assert [r.id for r in check_records(caplog)] == ["g.W1"]


def test_the_log_record_of_a_check_that_raised_carries_its_masked_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi.checks")

    def leaky():
        raise ConnectionError("cannot reach redis://:hunter2@cache:6379/0")

    Heartbeat(lambda: [("leaky", leaky)], CheckRunner(5)).results()
    [record] = check_records(caplog)
    assert (record.levelno, record.check, record.id) == (
        logging.ERROR,
        "leaky",
        "dockerflow.health.E101",
    )
    assert record.getMessage() == "ConnectionError: cannot reach redis://:***@cache:6379/0"
    assert "Traceback" in record.traceback and "leaky" in record.traceback
    assert "hunter2" not in record.traceback
    assert record.exc_info is None


def test_records_a_check_logs_carry_the_id_of_the_request_that_ran_it(caplog):
    caplog.set_level(logging.INFO, logger="acme")
    caplog.handler.addFilter(RequestIdLogFilter())

    def chatty():
        logging.getLogger("acme").info("pinging the search index")
        return []

    app = TestApp(DockerflowMiddleware(hello, checks=[("chatty", chatty)]))
    app.get("/__heartbeat__", headers={"X-Request-ID": "probe-42"})
    [record] = [r for r in caplog.records if r.name == "acme"]
    assert record.rid == "probe-42"


def raises(exception):
    def check():
        raise exception

    return check


def strict_json(body: bytes):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(body, parse_constant=refuse)


def with_message(**attributes):
    message = checks.Error("placeholder", id="x.E1")
    message.__dict__.update(attributes)
    return lambda: [message]


class Unprintable:
    def __str__(self):
        raise RuntimeError("no text")

    __repr__ = __str__


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(raises(SystemExit(3)), id="SystemExit(3)"),
        pytest.param(raises(SystemExit(0)), id="SystemExit(0)"),
        pytest.param(raises(KeyboardInterrupt()), id="KeyboardInterrupt"),
        pytest.param(with_message(id=["a", "list"]), id="id-is-a-list"),
        pytest.param(with_message(level="error"), id="level-is-a-str"),
        pytest.param(with_message(msg=Unprintable()), id="msg-str-raises"),
        pytest.param(with_message(msg=nested(100_000)), id="msg-nested-100k"),
        pytest.param(lambda: "all good", id="not-a-list"),
    ],
)
def test_one_bad_check_is_E101_and_every_other_check_keeps_its_status(check):
    app = TestApp(
        DockerflowMiddleware(
            hello, checks=[("bad", check), ("fine", list), ("slow", lambda: [checks.Warning("w")])]
        )
    )
    response = app.get("/__heartbeat__", status=500)
    payload = strict_json(response.body)
    assert payload["checks"] == {"bad": "error", "fine": "ok", "slow": "warning"}
    [message_id] = payload["details"]["bad"]["messages"]
    assert message_id == "dockerflow.health.E101"
    assert app.get("/__lbheartbeat__").status_int == 200


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_message_that_is_not_a_finite_number_is_served_as_strict_json(value):
    app = TestApp(DockerflowMiddleware(hello, checks=[("odd", lambda: [checks.Warning(value)])]))
    payload = strict_json(app.get("/__heartbeat__").body)
    assert payload["details"]["odd"]["messages"] == {"odd.0": repr(value)}


@pytest.fixture
def source_named():
    names = []

    def register(name, source):
        names.append(name)
        registry.register_check_source(name, source)

    yield register
    for name in names:
        registry._sources.pop(name, None)


def test_a_check_source_adds_its_checks_at_each_run_under_names_of_their_own(source_named):
    found = [("framework_check", lambda: [checks.Warning("from the framework", id="f.W1")])]
    source_named("framework", lambda: list(found))
    checks.register(lambda: [], name="taken")
    middleware = DockerflowMiddleware(hello)
    app = TestApp(middleware)

    assert app.get("/__heartbeat__").json["checks"] == {"taken": "ok", "framework_check": "warning"}
    found.append(("taken", lambda: [checks.Error("the framework's own")]))
    found.append(("later", list))
    response = app.get("/__heartbeat__", status=500)
    assert response.json["checks"] == {
        "taken": "ok",
        "framework_check": "warning",
        "framework.taken": "error",
        "later": "ok",
    }
    # checks= is the whole set: no source adds to it.
    only = TestApp(DockerflowMiddleware(hello, checks=[("mine", list)]))
    assert only.get("/__heartbeat__").json["checks"] == {"mine": "ok"}


def test_a_check_source_that_fails_is_one_failing_check_of_its_name(source_named):
    def broken_source():
        raise RuntimeError("the framework is not set up")

    source_named("framework", broken_source)
    app = TestApp(DockerflowMiddleware(hello, checks=None))

    response = app.get("/__heartbeat__", status=500)
    assert response.json["details"]["framework"]["messages"] == {
        "dockerflow.health.E101": "RuntimeError: the framework is not set up"
    }
