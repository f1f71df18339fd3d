"""Health transitions and the repeat of health records: a check's change of level is told once
(a record, ``check_changed``, a counter), after ``transition_runs`` runs agree; its messages are
logged when they appear, then at most every ``health_log_repeat`` seconds; so is a heartbeat's
status. The clock is the test's: nothing here waits."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Optional

import pytest
from prometheus_client import REGISTRY
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks, signals
from dockerflow_wsgi.checks.heartbeat import Heartbeat
from dockerflow_wsgi.checks.runner import CheckRunner
from dockerflow_wsgi.checks.transitions import Transitions
from dockerflow_wsgi.metrics import process_metrics

DOWN = [checks.Error("connection refused", id="db.E1")]
SLOW = [checks.Warning("replica lags", id="db.W1")]
OK: list[checks.CheckMessage] = []


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log, from DEBUG up (its ``records`` are those of the test's current phase)."""
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi")
    return caplog


@pytest.fixture
def changes() -> Any:
    heard: list[dict[str, Any]] = []

    def on_change(sender: Any, **fields: Any) -> None:
        heard.append({"sender": sender, **fields})

    signals.check_changed.connect(on_change)
    yield heard
    signals.check_changed.disconnect(on_change)


def transition_records(log: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in log.records if hasattr(r, "ids")]


def message_records(log: pytest.LogCaptureFixture) -> list[tuple[int, str, str]]:
    return [
        (r.levelno, r.check, r.id)
        for r in log.records
        if r.name == "dockerflow_wsgi.checks" and hasattr(r, "id")
    ]


def status_records(log: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in log.records if r.getMessage().startswith("Heartbeat ")]


def feed(transitions: Transitions, clock: Clock, runs: list[list[checks.CheckMessage]]) -> None:
    """One run of the check ``db`` per item, a second apart."""
    for messages in runs:
        transitions.observe({"db": messages})
        clock.now += 1


# runs of the check, transition_runs, the transitions they make
TRANSITIONS = [
    pytest.param([OK] * 5, 1, [], id="ok-from-the-first-run"),
    pytest.param([DOWN], 1, [(logging.ERROR, "db is now error")], id="first-run-error"),
    pytest.param([DOWN], 2, [], id="first-run-error-not-yet-agreed"),
    pytest.param([DOWN, DOWN], 2, [(logging.ERROR, "db is now error")], id="two-runs-agree"),
    pytest.param([DOWN] * 10, 1, [(logging.ERROR, "db is now error")], id="steady-failure"),
    pytest.param(
        [DOWN, OK],
        1,
        [(logging.ERROR, "db is now error"), (logging.INFO, "db is now ok")],
        id="recovery",
    ),
    pytest.param([DOWN, OK] * 10, 3, [], id="flapping-every-run"),
    pytest.param([DOWN, DOWN, OK] * 7, 3, [], id="flapping-every-other-run"),
    pytest.param([DOWN, SLOW] * 10, 2, [], id="levels-that-never-agree"),
    pytest.param(
        [SLOW, DOWN, DOWN],
        1,
        [(logging.WARNING, "db is now warning"), (logging.ERROR, "db is now error")],
        id="worse",
    ),
    pytest.param([DOWN, DOWN, DOWN, OK, OK], 3, [(logging.ERROR, "db is now error")], id="slow-ok"),
    pytest.param([[checks.Debug("fyi", id="db.D1")]], 1, [(logging.DEBUG, "db is now debug")]),
]


@pytest.mark.parametrize(("runs", "transition_runs", "expected"), TRANSITIONS)
def test_a_transition_is_a_level_that_enough_consecutive_runs_agree_on(
    runs, transition_runs, expected, clock, records, changes
):
    feed(Transitions(transition_runs, clock=clock), clock, runs)
    assert transition_records(records) == expected
    assert len(changes) == len(expected)


def test_flapping_every_run_with_three_runs_makes_no_transition_in_twenty(clock, records, changes):
    feed(Transitions(3, clock=clock), clock, [DOWN, OK] * 10)
    assert transition_records(records) == []
    assert changes == []
    # Each failure is news: the message was absent from the run before.
    assert len(message_records(records)) == 10


def test_the_record_of_a_transition_names_the_check_the_levels_and_the_ids(clock, records):
    transitions = Transitions(clock=clock)
    transitions.observe(
        {
            "db": [
                checks.Error("primary down", id="db.E1"),
                checks.Warning("replica lags", id="db.W1"),
                checks.Error("primary down again", id="db.E1"),
                checks.Error("no id"),
                checks.CheckMessage("fine", level=0, id="db.OK"),
            ]
        }
    )
    transitions.observe({"db": []})

    broke, healed = [r for r in records.records if hasattr(r, "ids")]
    assert (broke.name, broke.levelno, broke.getMessage()) == (
        "dockerflow_wsgi.checks",
        logging.ERROR,
        "db is now error",
    )
    assert (broke.check, broke.previous, broke.level, broke.ids) == (
        "db",
        "ok",
        "error",
        "db.E1,db.W1",
    )
    assert (healed.levelno, healed.getMessage()) == (logging.INFO, "db is now ok")
    assert (healed.check, healed.previous, healed.level, healed.ids) == ("db", "error", "ok", "")


def test_check_changed_is_sent_with_the_levels_as_numbers(clock, changes):
    transitions = Transitions(clock=clock)
    transitions.observe({"db": DOWN}, sender="the app")
    transitions.observe({"db": SLOW}, sender="the app")
    assert changes == [
        {"sender": "the app", "check": "db", "previous": 0, "level": checks.ERROR},
        {"sender": "the app", "check": "db", "previous": checks.ERROR, "level": checks.WARNING},
    ]


@pytest.mark.parametrize("raised", [RuntimeError("receiver bug"), SystemExit(3), KeyboardInterrupt])
def test_a_receiver_that_raises_is_logged_never_raised(raised, clock, records):
    def broken(sender: Any, **fields: Any) -> None:
        raise raised

    signals.check_changed.connect(broken)
    try:
        transitions = Transitions(clock=clock)
        transitions.observe({"db": DOWN})
    finally:
        signals.check_changed.disconnect(broken)
    [complaint] = [r for r in records.records if "A receiver of" in r.getMessage()]
    assert (complaint.name, complaint.levelno) == ("dockerflow_wsgi", logging.ERROR)
    assert "check-changed" in complaint.getMessage()
    assert transition_records(records) == [(logging.ERROR, "db is now error")]
    assert transitions.state()["checks"]["db"]["reported"] == checks.ERROR


def transitions_counted(check: str, level: str) -> float:
    labels = {"check": check, "level": level}
    return REGISTRY.get_sample_value("dockerflow_check_transitions_total", labels) or 0.0


def test_each_transition_is_counted_by_check_and_level(clock):
    before = {level: transitions_counted("counted", level) for level in ("error", "ok")}
    transitions = Transitions(clock=clock, metrics=process_metrics())
    for messages in [DOWN, DOWN, OK, DOWN]:
        transitions.observe({"counted": messages})
    assert transitions_counted("counted", "error") - before["error"] == 2
    assert transitions_counted("counted", "ok") - before["ok"] == 1


def test_a_steady_failure_logs_its_message_once_per_repeat(clock, records):
    transitions = Transitions(log_repeat=300, clock=clock)
    feed(transitions, clock, [DOWN] * 3600)  # an hour at one run a second
    assert message_records(records) == [(logging.ERROR, "db", "db.E1")] * 12
    assert transition_records(records) == [(logging.ERROR, "db is now error")]


def test_a_repeat_of_zero_logs_each_message_after_every_run(clock, records):
    feed(Transitions(log_repeat=0, clock=clock), clock, [DOWN] * 5)
    assert len(message_records(records)) == 5


# runs (each a second after the one before, with health_log_repeat=10), the messages logged
MESSAGE_RUNS = [
    pytest.param([DOWN, DOWN, DOWN], [["db.E1"], [], []], id="persisting"),
    pytest.param([DOWN, OK, DOWN], [["db.E1"], [], ["db.E1"]], id="absent-then-back"),
    pytest.param([DOWN, SLOW, DOWN], [["db.E1"], ["db.W1"], ["db.E1"]], id="replaced"),
    pytest.param(
        [DOWN, [checks.Critical("connection refused", id="db.E1")]],
        [["db.E1"], ["db.E1"]],
        id="same-id-other-level",
    ),
    pytest.param(
        [[checks.Error("took 1.2 s", id="db.E2")], [checks.Error("took 1.3 s", id="db.E2")]],
        [["db.E2"], []],
        id="same-id-other-text",
    ),
    pytest.param(
        [[checks.Error("took 1.2 s")], [checks.Error("took 1.2 s")], [checks.Error("took 9 s")]],
        [[None], [], [None]],
        id="no-id-known-by-text",
    ),
    pytest.param(
        [[checks.Info("fyi", id="db.I1"), checks.Error("down", id="db.E3")]] * 2,
        [["db.I1", "db.E3"], []],
        id="several",
    ),
]


@pytest.mark.parametrize(("runs", "logged"), MESSAGE_RUNS)
def test_a_message_is_logged_when_it_appears(runs, logged, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="dockerflow_wsgi.checks")
    transitions = Transitions(log_repeat=10, clock=clock)
    per_run = []
    for messages in runs:
        caplog.clear()
        transitions.observe({"db": messages})
        clock.now += 1
        per_run.append([record_id for _, _, record_id in message_records(caplog)])
    assert per_run == logged


def test_the_repeat_counts_from_the_last_record_of_the_message(clock, records):
    transitions = Transitions(log_repeat=10, clock=clock)
    for now in [0, 9.9, 10, 15, 19.9, 20]:
        clock.now = 1000 + now
        transitions.observe({"db": DOWN})
    assert len(message_records(records)) == 3


def test_a_run_without_a_check_leaves_its_state(clock, records):
    transitions = Transitions(2, log_repeat=10, clock=clock)
    transitions.observe({"db": DOWN})
    transitions.observe({"cache": OK})  # a group's run: db was not in it
    transitions.observe({"db": DOWN})
    assert transition_records(records) == [(logging.ERROR, "db is now error")]
    assert len(message_records(records)) == 1


def test_state_restored_elsewhere_makes_no_transition_and_no_early_repeat(clock, records, changes):
    runner = Transitions(2, log_repeat=300, clock=clock)
    feed(runner, clock, [DOWN, DOWN, SLOW])
    clock.now += 100
    state = json.loads(json.dumps(runner.state()))

    successor = Transitions(2, log_repeat=300, clock=clock)
    successor.restore(state)
    records.clear()
    changes.clear()
    feed(successor, clock, [DOWN, DOWN])

    # The run that disagreed (SLOW) was still pending: DOWN again is no news, and db.E1 was
    # absent from the last run, so it is logged as it returns.
    assert transition_records(records) == []
    assert changes == []
    assert message_records(records) == [(logging.ERROR, "db", "db.E1")]
    assert successor.state() == json.loads(json.dumps(successor.state()))


def test_a_restored_message_waits_for_its_repeat(clock, records):
    runner = Transitions(log_repeat=300, clock=clock)
    runner.observe({"db": DOWN})
    clock.now += 200
    successor = Transitions(log_repeat=300, clock=clock)
    successor.restore(runner.state())
    records.clear()
    for _ in range(99):
        clock.now += 1
        successor.observe({"db": DOWN})
    assert message_records(records) == []
    clock.now += 1
    successor.observe({"db": DOWN})
    assert message_records(records) == [(logging.ERROR, "db", "db.E1")]


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"checks": {}},
        {"checks": {"db": {"reported": "high"}}, "statuses": {}},
        {"checks": {"db": {"reported": 40, "pending": [40], "messages": []}}, "statuses": {}},
        {"checks": [], "statuses": {}},
        None,
    ],
)
def test_a_state_of_another_form_is_refused_and_changes_nothing(state, clock):
    transitions = Transitions(clock=clock)
    transitions.observe({"db": DOWN})
    before = transitions.state()
    with pytest.raises(ValueError, match="not a state of Transitions"):
        transitions.restore(state)
    assert transitions.state() == before


def test_runs_finishing_together_make_one_transition(clock, records, changes):
    transitions = Transitions(clock=clock)
    start = threading.Barrier(16)

    def run() -> None:
        start.wait()
        transitions.observe({"db": DOWN})

    threads = [threading.Thread(target=run) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(changes) == 1
    assert len(message_records(records)) == 1


# -- the heartbeat's status record, and the wiring -----------------------------------------------


class Switch:
    """A check whose messages the test sets."""

    def __init__(self, messages: Optional[list[checks.CheckMessage]] = None) -> None:
        self.messages = messages or []

    def __call__(self) -> list[checks.CheckMessage]:
        return self.messages


def test_the_heartbeat_status_is_logged_when_it_changes_or_once_per_repeat(clock, records):
    db = Switch(DOWN)
    beat = Heartbeat(
        lambda: [("db", db)], CheckRunner(5), transitions=Transitions(log_repeat=60, clock=clock)
    )
    logged = []
    for second, messages in enumerate([DOWN] * 130 + [SLOW] * 2 + [OK] + [SLOW]):
        clock.now = 1000 + second
        db.messages = messages
        records.clear()
        beat.results()
        logged.extend((second, text) for text in status_records(records))
    assert logged == [
        (0, "Heartbeat error"),
        (60, "Heartbeat error"),
        (120, "Heartbeat error"),
        (130, "Heartbeat warning"),
        (133, "Heartbeat warning"),
    ]


def test_heartbeat_signals_are_still_sent_after_every_run(clock):
    heard = []

    def on_failed(sender: Any, level: int, **extra: Any) -> None:
        heard.append(level)

    beat = Heartbeat(
        lambda: [("db", Switch(DOWN))], CheckRunner(5), transitions=Transitions(clock=clock)
    )
    signals.heartbeat_failed.connect(on_failed)
    try:
        for _ in range(3):
            beat.results()
    finally:
        signals.heartbeat_failed.disconnect(on_failed)
    assert heard == [checks.ERROR] * 3


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_a_check_in_the_heartbeat_and_a_group_changes_level_once(tmp_path, records, changes):
    middleware = DockerflowMiddleware(
        hello,
        checks=[("db", Switch(DOWN)), ("cache", Switch())],
        heartbeat_groups={"readiness": ["db"]},
        state_dir=tmp_path,
    )
    app = TestApp(middleware)
    app.get("/__heartbeat__", status=500)
    app.get("/__heartbeat__/readiness", status=500)
    app.get("/__heartbeat__", status=500)

    assert transition_records(records) == [(logging.ERROR, "db is now error")]
    assert [change["sender"] for change in changes] == [middleware]
    assert message_records(records) == [(logging.ERROR, "db", "db.E1")]
    # Each heartbeat's status is its own: the group's first run is news.
    assert status_records(records) == ["Heartbeat error", "Heartbeat error"]


def test_the_options_reach_the_transitions(tmp_path, records):
    app = TestApp(
        DockerflowMiddleware(
            hello,
            checks=[("db", Switch(DOWN))],
            transition_runs=2,
            health_log_repeat=0,
            state_dir=tmp_path,
        )
    )
    app.get("/__heartbeat__", status=500)
    assert transition_records(records) == []
    app.get("/__heartbeat__", status=500)
    assert transition_records(records) == [(logging.ERROR, "db is now error")]
    assert len(message_records(records)) == 2
    assert status_records(records) == ["Heartbeat error"] * 2
