"""Health for orchestrators: heartbeat groups, per-check timeouts, non-critical checks and
checks run in the background, under WSGI and ASGI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from typing import Any

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks, signals
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.checks import background as background_module

E102 = "dockerflow.health.E102"
E104 = "dockerflow.health.E104"
E105 = "dockerflow.health.E105"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def asgi_hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class Counted:
    """A check that counts its runs, remembers their threads and returns ``messages``."""

    def __init__(self, *messages: checks.CheckMessage) -> None:
        self.messages = list(messages)
        self.runs = 0
        self.threads: list[str] = []
        self.ran = threading.Event()

    def __call__(self) -> list[checks.CheckMessage]:
        self.runs += 1
        self.threads.append(threading.current_thread().name)
        self.ran.set()
        return self.messages


def asgi_get(app: Any, path: str) -> tuple[int, Any]:
    """GET ``path`` through an ASGI app: its status and JSON body."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], json.loads(body) if body else None


GROUPED = {
    "readiness": ["database", "cache"],
    "startup": ["migrations"],
}


def grouped_checks() -> dict[str, Counted]:
    return {
        "database": Counted(),
        "cache": Counted(checks.Warning("slow", id="c.W1")),
        "migrations": Counted(checks.Error("not applied", id="m.E1")),
        "search": Counted(checks.Error("down", id="s.E1")),
    }


# -- groups ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_a_group_answers_the_heartbeat_shape_for_its_checks_only(suffix):
    found = grouped_checks()
    app = TestApp(DockerflowMiddleware(hello, checks=list(found.items()), heartbeat_groups=GROUPED))

    readiness = app.get(f"/__heartbeat__/readiness{suffix}")
    startup = app.get(f"/__heartbeat__/startup{suffix}", status=500)

    assert readiness.json == {
        "status": "warning",
        "checks": {"database": "ok", "cache": "warning"},
        "details": {"cache": {"status": "warning", "level": 30, "messages": {"c.W1": "slow"}}},
    }
    assert startup.json["checks"] == {"migrations": "error"}
    assert found["search"].runs == 0, "a group runs its own checks only"
    assert app.get("/__heartbeat__", status=500).json["checks"].keys() == found.keys()


@pytest.mark.parametrize("groups", [GROUPED, None])
@pytest.mark.parametrize("path", ["/__heartbeat__/nosuch", "/__heartbeat__/nosuch/"])
def test_an_unknown_group_is_a_json_404(groups, path):
    app = TestApp(DockerflowMiddleware(hello, checks=[], heartbeat_groups=groups))

    response = app.get(path, status=404)

    assert response.content_type == "application/json"
    assert response.json == {"error": "no heartbeat group of that name"}
    assert app.get(f"{path}x", status=404 if not path.endswith("/") else 200).status_int


@pytest.mark.parametrize("path", ["/__heartbeat__//", "/__heartbeat__/a/b", "/x/__heartbeat__/a"])
def test_paths_that_are_no_group_reach_the_app(path):
    app = TestApp(DockerflowMiddleware(hello, checks=[], heartbeat_groups=GROUPED))

    assert app.get(path).body == b"hello"


def test_a_group_naming_a_check_that_does_not_exist_reports_it_as_e104():
    app = TestApp(
        DockerflowMiddleware(
            hello,
            checks=[("database", Counted())],
            heartbeat_groups={"readiness": ["database", "nope"]},
        )
    )

    response = app.get("/__heartbeat__/readiness", status=500)

    assert response.json["checks"] == {"database": "ok", "nope": "error"}
    [(message_id, text)] = response.json["details"]["nope"]["messages"].items()
    assert message_id == E104
    assert "nope" in text


def test_a_check_registered_later_joins_its_group():
    app = TestApp(DockerflowMiddleware(hello, heartbeat_groups={"readiness": ["late"]}))
    assert app.get("/__heartbeat__/readiness", status=500).json["checks"] == {"late": "error"}

    checks.register(Counted(), name="late")

    assert app.get("/__heartbeat__/readiness").json["checks"] == {"late": "ok"}


def test_groups_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_GROUPS", "readiness=database;startup=migrations")
    found = grouped_checks()
    app = TestApp(DockerflowMiddleware(hello, checks=list(found.items())))

    assert app.get("/__heartbeat__/readiness").json["checks"] == {"database": "ok"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("readiness", "'readiness' has no '='"),
        ("readiness=database;", "'' has no '='"),
        ("=database", "bad name ''"),
        ("readiness=", "bad name ''"),
        ("readiness=database,", "bad name ''"),
        ("ready ness=database", "bad name 'ready ness'"),
        ("readiness=data/base", "bad name 'data/base'"),
        ("readiness=" + "x" * 65, "bad name"),
        ("readiness=a;readiness=b", "group 'readiness' is given twice"),
        ("readiness=a,a", "names a check twice"),
    ],
)
def test_a_malformed_groups_variable_fails_at_construction_showing_the_form(
    monkeypatch, value, problem
):
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_GROUPS", value)

    with pytest.raises(ValueError) as raised:
        DockerflowMiddleware(hello, checks=[])

    message = str(raised.value)
    assert message.startswith("DOCKERFLOW_HEARTBEAT_GROUPS must look like startup=")
    assert problem in message


def test_with_log_probes_off_a_group_probe_writes_no_summary(summary_records):
    app = TestApp(
        DockerflowMiddleware(hello, checks=[], heartbeat_groups={"r": []}, log_probes=False)
    )

    app.get("/__heartbeat__/r")
    app.get("/__heartbeat__/nosuch", status=404)
    app.get("/")

    assert [record.path for record in summary_records] == ["/"]


def test_groups_under_asgi():
    found = grouped_checks()
    app = DockerflowASGIMiddleware(hello, checks=list(found.items()), heartbeat_groups=GROUPED)

    assert asgi_get(app, "/__heartbeat__/readiness")[1]["checks"] == {
        "database": "ok",
        "cache": "warning",
    }
    assert asgi_get(app, "/__heartbeat__/nosuch") == (
        404,
        {"error": "no heartbeat group of that name"},
    )


# -- per-check timeouts ----------------------------------------------------------------------------


class Gate:
    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self) -> list[checks.CheckMessage]:
        self.release.wait(30)
        return []


def test_a_check_with_its_own_timeout_is_e102_after_it_while_the_others_keep_theirs():
    gate = Gate()

    def takes_longer_than_redis_may() -> list[checks.CheckMessage]:
        time.sleep(0.3)
        return []

    app = TestApp(
        DockerflowMiddleware(
            hello,
            checks=[("redis", gate), ("database", takes_longer_than_redis_may)],
            check_timeout=30,
            check_timeouts={"redis": 0.05},
        )
    )
    try:
        response = app.get("/__heartbeat__", status=500)
    finally:
        gate.release.set()

    # redis gave up after its 0.05 s; database, slower than that, had its 30 s.
    assert response.json["checks"] == {"redis": "error", "database": "ok"}
    assert response.json["details"]["redis"]["messages"] == {
        E102: "check did not finish within 0.05 seconds"
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("redis", "'redis' has no '='"),
        ("redis=soon", "must be a number of seconds"),
        ("redis=0", "more than zero"),
        ("redis=-1", "more than zero"),
        ("redis=1,redis=2", "'redis' is given twice"),
        ("re dis=1", "bad name 're dis'"),
    ],
)
def test_a_malformed_timeouts_variable_fails_at_construction(monkeypatch, value, problem):
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUTS", value)

    with pytest.raises(ValueError, match="DOCKERFLOW_CHECK_TIMEOUTS") as raised:
        DockerflowMiddleware(hello, checks=[])

    assert problem in str(raised.value)


# -- non-critical checks ---------------------------------------------------------------------------


def test_errors_of_a_non_critical_check_count_as_warnings_with_their_own_ids(caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi.checks")
    app = TestApp(
        DockerflowMiddleware(
            hello,
            checks=[
                ("search", lambda: [checks.Error("down", id="s.E1")]),
                ("recommendations", lambda: [checks.Critical("gone", id="r.C1")]),
                ("database", list),
            ],
            non_critical_checks=["search", "recommendations"],
        )
    )

    response = app.get("/__heartbeat__")

    assert response.status_int == 200
    assert response.json["status"] == "warning"
    assert response.json["details"]["search"] == {
        "status": "warning",
        "level": 30,
        "messages": {"s.E1": "down"},
    }
    assert response.json["checks"]["recommendations"] == "warning"
    assert [
        (r.levelno, r.id) for r in caplog.records if r.name.endswith("checks") and hasattr(r, "id")
    ] == [
        (logging.WARNING, "s.E1"),
        (logging.WARNING, "r.C1"),
    ]


def test_a_critical_check_still_fails_the_heartbeat_beside_non_critical_ones(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_NON_CRITICAL_CHECKS", "search")
    app = TestApp(
        DockerflowMiddleware(
            hello,
            checks=[
                ("search", lambda: [checks.Error("down", id="s.E1")]),
                ("database", lambda: [checks.Error("down", id="d.E1")]),
            ],
        )
    )

    assert app.get("/__heartbeat__", status=500).json["checks"] == {
        "search": "warning",
        "database": "error",
    }


# -- checks in the background ----------------------------------------------------------------------


@pytest.fixture
def stopped_background():
    """Stop the background runs a test started, when it ends."""
    started: list[Any] = []
    yield started.append
    for middleware in started:
        middleware.core.background.stop()


def test_in_the_background_heartbeats_answer_from_the_latest_run_without_running_checks(
    stopped_background,
):
    found = Counted(checks.Warning("slow", id="c.W1"))
    middleware = DockerflowMiddleware(hello, checks=[("cache", found)], heartbeat_interval=60)
    stopped_background(middleware)
    app = TestApp(middleware)

    answers = [app.get("/__heartbeat__").json for _ in range(20)]

    assert found.runs == 1, "one run per interval, whatever the probe rate"
    assert found.threads == ["dockerflow-check-" + found.threads[0].split("-", 2)[2]]
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["checks"] == {"cache": "warning"}


def test_the_runs_go_on_every_interval(stopped_background):
    found = Counted()
    middleware = DockerflowMiddleware(hello, checks=[("cache", found)], heartbeat_interval=0.01)
    stopped_background(middleware)
    app = TestApp(middleware)
    app.get("/__heartbeat__")

    deadline = time.monotonic() + 10
    while found.runs < 5:
        assert time.monotonic() < deadline, found.runs
        time.sleep(0.01)


def test_the_background_starts_with_the_first_request_not_before(stopped_background):
    found = Counted()
    middleware = DockerflowMiddleware(hello, checks=[("cache", found)], heartbeat_interval=60)
    stopped_background(middleware)
    app = TestApp(middleware)
    assert middleware.core.background.latest is None, "nothing runs at construction"

    app.get("/")
    # Any request starts the runs: the first probe then finds a result already there.
    middleware.core.background.first.result(timeout=10)
    assert found.runs == 1
    assert app.get("/__heartbeat__").json["checks"] == {"cache": "ok"}
    assert found.runs == 1


def test_a_stale_background_result_is_e105_never_healthy(stopped_background, monkeypatch):
    middleware = DockerflowMiddleware(hello, checks=[("cache", Counted())], heartbeat_interval=60)
    stopped_background(middleware)
    app = TestApp(middleware)
    assert app.get("/__heartbeat__").json["status"] == "ok"
    background = middleware.core.background
    now = time.monotonic()
    monkeypatch.setattr(
        background_module.time, "monotonic", lambda: now + background.stale_after + 1
    )

    response = app.get("/__heartbeat__", status=500)

    [(message_id, text)] = response.json["details"]["cache"]["messages"].items()
    assert message_id == E105
    assert "no fresh result" in text


def test_one_result_and_one_answer_serve_every_probe_until_the_next_run(
    stopped_background, monkeypatch
):
    middleware = DockerflowMiddleware(hello, checks=[("cache", Counted())], heartbeat_interval=60)
    stopped_background(middleware)
    app = TestApp(middleware)
    app.get("/__heartbeat__")
    heartbeat, core = middleware.core.heartbeat, middleware.core

    first = heartbeat.results()
    assert heartbeat.results() is first
    assert core.answer("heartbeat") is core.answer("heartbeat")
    # Stale: made anew, once, and E105.
    background = core.background
    now = time.monotonic()
    monkeypatch.setattr(
        background_module.time, "monotonic", lambda: now + background.stale_after + 1
    )
    stale = heartbeat.results()
    assert stale is not first and heartbeat.results() is stale
    assert list(stale.details["cache"]["messages"]) == [E105]
    assert core.answer("heartbeat").status == 500


def test_each_background_run_is_logged_and_signalled_once(stopped_background, caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi.checks")
    heard = []

    def on_passed(sender, level, **extra):
        heard.append(level)

    signals.heartbeat_passed.connect(on_passed)
    try:
        middleware = DockerflowMiddleware(
            hello,
            checks=[("cache", Counted(checks.Warning("slow", id="c.W1")))],
            heartbeat_interval=60,
        )
        stopped_background(middleware)
        app = TestApp(middleware)
        for _ in range(5):
            app.get("/__heartbeat__")
        # The run is reported on the runner's thread once its result is out: the probes may
        # be answered first. The signal is the report's last step.
        deadline = time.monotonic() + 10
        while not heard:
            assert time.monotonic() < deadline, "the first run was never reported"
            time.sleep(0.01)
    finally:
        signals.heartbeat_passed.disconnect(on_passed)

    assert [r.id for r in caplog.records if hasattr(r, "id")] == ["c.W1"]
    assert heard == [checks.WARNING]


def test_groups_are_answered_from_the_same_background_runs(stopped_background):
    found = grouped_checks()
    middleware = DockerflowMiddleware(
        hello,
        checks=list(found.items()),
        heartbeat_groups={**GROUPED, "odd": ["database", "nope"]},
        heartbeat_interval=60,
    )
    stopped_background(middleware)
    app = TestApp(middleware)

    app.get("/__heartbeat__/readiness")
    app.get("/__heartbeat__/startup", status=500)
    odd = app.get("/__heartbeat__/odd", status=500)
    app.get("/__heartbeat__", status=500)

    assert {name: check.runs for name, check in found.items()} == dict.fromkeys(found, 1)
    assert list(odd.json["details"]["nope"]["messages"]) == [E104]


def test_a_per_check_timeout_holds_in_the_background(stopped_background):
    gate = Gate()
    middleware = DockerflowMiddleware(
        hello, checks=[("redis", gate)], check_timeouts={"redis": 0.05}, heartbeat_interval=60
    )
    stopped_background(middleware)
    try:
        response = TestApp(middleware).get("/__heartbeat__", status=500)
    finally:
        gate.release.set()

    assert list(response.json["details"]["redis"]["messages"]) == [E102]


def test_the_background_runs_under_asgi_too(stopped_background):
    found = Counted()
    middleware = DockerflowASGIMiddleware(
        asgi_hello, checks=[("cache", found)], heartbeat_interval=60
    )
    stopped_background(middleware)

    asgi_get(middleware, "/")
    middleware.core.background.first.result(timeout=10)
    answers = [asgi_get(middleware, "/__heartbeat__") for _ in range(5)]

    assert answers == [(200, {"status": "ok", "checks": {"cache": "ok"}, "details": {}})] * 5
    assert found.runs == 1


def test_a_forked_child_runs_its_own_background_checks(stopped_background):
    parent = os.getpid()
    pids = []

    def where() -> list[checks.CheckMessage]:
        pids.append(os.getpid())
        return [checks.Info(str(os.getpid()), id="w.I1")]

    middleware = DockerflowMiddleware(hello, checks=[("where", where)], heartbeat_interval=60)
    stopped_background(middleware)
    app = TestApp(middleware)
    assert app.get("/__heartbeat__").json["details"]["where"]["messages"] == {"w.I1": str(parent)}

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            answer = app.get("/__heartbeat__").json["details"]["where"]["messages"]["w.I1"]
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        answered = os.read(read_end, 100).decode()
    finally:
        os.close(read_end)
        os.waitpid(child, 0)

    assert answered == str(child), "the child answers from a run of its own, not its parent's"
