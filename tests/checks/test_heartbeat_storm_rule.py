"""Under a storm of heartbeats, at most one request per process waits for a run in progress.

Every other heartbeat arriving meanwhile answers at once from the last completed run, when that
run ended within the last two check timeouts; otherwise (no run yet, or an old one) it waits
like the first. Were they all to wait, a check that ends a little after its timeout would hold
every thread of a server for most of the time, and ``/__lbheartbeat__`` would queue behind them.

Deterministic: the check is a gate the test opens, the clock is moved by the test, and a caller
that waits is seen in ``Heartbeat.waiting``, never by timing it.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks import heartbeat as heartbeat_module
from dockerflow_wsgi.checks.heartbeat import Heartbeat
from dockerflow_wsgi.checks.runner import CheckRunner

TIMEOUT = 30.0
#: Heartbeats arriving while the run is in progress.
STORM = 20


class Gate:
    """A check that says when it started and returns when the test opens it, each run's
    message naming the run."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.open = threading.Event()
        self.calls = 0

    def __call__(self) -> list[checks.CheckMessage]:
        self.calls += 1
        self.started.set()
        self.open.wait(TIMEOUT)
        return [checks.Warning(f"run {self.calls}", id="g.W1")]


def run_text(results) -> str:
    return results.details["gate"]["messages"]["g.W1"]


def wait_until(predicate, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


@pytest.fixture
def clock(monkeypatch):
    """Seconds to add to the monotonic clock, which the test moves between runs."""
    real = time.monotonic
    offset = [0.0]
    monkeypatch.setattr(heartbeat_module.time, "monotonic", lambda: real() + offset[0])
    return offset


@pytest.fixture
def gate():
    made = Gate()
    yield made
    made.open.set()


def in_threads(call, count):
    """``call()`` on ``count`` threads; (threads, their results by index)."""
    results = {}
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, call())) for n in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads, results


def start_a_run(beat: Heartbeat, gate: Gate):
    """A heartbeat on a thread whose run is under way, held in the gate."""
    gate.open.clear()
    gate.started.clear()
    leader, led = in_threads(beat.results, 1)
    assert gate.started.wait(TIMEOUT)
    return leader[0], led


@pytest.mark.parametrize("age", [0.0, 2 * TIMEOUT - 1])
def test_heartbeats_during_a_run_answer_at_once_from_a_run_that_ended_within_two_timeouts(
    gate, clock, age
):
    gate.open.set()
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=TIMEOUT))
    first = beat.results()
    clock[0] += age
    leader, led = start_a_run(beat, gate)

    storm, answers = in_threads(beat.results, STORM)
    wait_until(lambda: len(answers) == STORM or beat.waiting > 0)
    assert beat.waiting == 0
    for thread in storm:
        thread.join(TIMEOUT)
    assert all(answers[n] is first for n in range(STORM))

    gate.open.set()
    leader.join(TIMEOUT)
    assert run_text(led[0]) == "run 2"
    assert gate.calls == 2


@pytest.mark.parametrize("age", [None, 2 * TIMEOUT + 1], ids=["no-run-yet", "old-run"])
def test_without_a_run_that_ended_within_two_timeouts_heartbeats_wait_for_the_run(gate, clock, age):
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=TIMEOUT))
    if age is not None:
        gate.open.set()
        beat.results()
        clock[0] += age
    leader, led = start_a_run(beat, gate)

    storm, answers = in_threads(beat.results, STORM)
    wait_until(lambda: beat.waiting == STORM)
    gate.open.set()
    for thread in [leader, *storm]:
        thread.join(TIMEOUT)
    assert all(answers[n] is led[0] for n in range(STORM))
    assert run_text(led[0]) == ("run 1" if age is None else "run 2")


def test_under_an_event_loop_a_heartbeat_during_a_run_answers_at_once_from_the_last_run(gate):
    gate.open.set()
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=TIMEOUT))

    async def storm():
        first = await beat.results_async()
        gate.open.clear()
        gate.started.clear()
        leader = asyncio.ensure_future(beat.results_async())
        await asyncio.get_running_loop().run_in_executor(None, gate.started.wait, TIMEOUT)
        others = [asyncio.ensure_future(beat.results_async()) for _ in range(STORM)]
        # One step of each: an answer that needs no waiting is there after it.
        await asyncio.sleep(0)
        answered = [task.done() for task in others]
        waiting = beat.waiting
        gate.open.set()
        await asyncio.gather(leader, *others)
        return first, leader.result(), answered, waiting, [task.result() for task in others]

    first, led, answered, waiting, answers = asyncio.run(storm())
    assert waiting == 0
    assert answered == [True] * STORM
    assert all(answer is first for answer in answers)
    assert run_text(led) == "run 2"
