"""After a fork, a process starts fresh: its own request ids, check calls, heartbeat and locks.

Each scenario forks twice over: with ``os.fork`` (gunicorn, multiprocessing), which runs
Python's fork hooks, and with libc's ``fork`` called straight through ``ctypes``, which runs
none, as uWSGI's master does when it forks its workers without ``lazy-apps``.

A fork from C resets nothing of the interpreter, so a lock that any other thread held at that
moment (one of ``threading``'s own, say) stays held in the child. The libc scenarios therefore run
in a fresh interpreter, whose only threads are the scenario's own, as in a uWSGI master: in the
test process, threads left by earlier tests would make them fail now and then for that reason
alone.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.heartbeat import Heartbeat
from dockerflow_wsgi.checks.runner import CheckRunner
from dockerflow_wsgi.request_id import ID_BATCH_SIZE, generate_request_id

# PyDLL keeps the GIL during the call, as a C server that forks from Python code does.
_libc_fork = ctypes.PyDLL(None).fork
_libc_fork.restype = ctypes.c_int

CHILD_TIMEOUT = 20.0
HERE = Path(__file__).resolve().parent

Scenario = Callable[[Callable[[], int]], None]


def in_a_fresh_interpreter(scenario: Scenario) -> None:
    """Run ``scenario`` with libc's fork in a new Python process; fail with what it said."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import {__name__} as module; "
        f"module.{scenario.__name__}(module._libc_fork)"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=4 * CHILD_TIMEOUT
    )
    assert finished.returncode == 0, finished.stderr[-3000:]


@pytest.fixture(params=["os.fork", "libc fork"])
def forked(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """``forked(scenario)``: run a scenario with one kind of fork."""
    if request.param == "os.fork":
        return lambda scenario: scenario(os.fork)
    return in_a_fresh_interpreter


def other_threads_asleep() -> bool:
    """Whether every other thread of this process is blocked (``S`` in ``/proc``)."""
    me = threading.get_native_id()
    for task in os.listdir("/proc/self/task"):
        if int(task) == me:
            continue
        try:
            with open(f"/proc/self/task/{task}/stat", encoding="ascii") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
        except OSError:
            continue  # the thread has just ended
        if state != "S":
            return False
    return True


def settle_threads() -> None:
    """Wait until the other threads are blocked where they will stay, twice in a row.

    A thread of the parent that runs at the moment of a fork from C may hold a lock of the
    interpreter itself (the GIL's own mutex), which then stays held in the child: that would
    make the child hang for no fault of the library's. A blocked thread holds none.
    """
    deadline = time.monotonic() + CHILD_TIMEOUT
    calm = 0
    while calm < 2:
        assert time.monotonic() < deadline, "the test's own threads never settled"
        calm = calm + 1 if other_threads_asleep() else 0
        time.sleep(0.05)


def in_child(fork: Callable[[], int], work: Callable[[], Any]) -> Any:
    """Run ``work`` in a child made by ``fork`` and return its (JSON) result.

    A child that does not answer within ``CHILD_TIMEOUT`` is killed and fails the test: a
    regression here is a process waiting forever.
    """
    settle_threads()
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns to pytest
        try:
            os.close(read_end)
            try:
                outcome = {"value": work()}
            except BaseException as exc:
                outcome = {"error": repr(exc)}
            os.write(write_end, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while True:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(remaining, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"the child did not finish within {CHILD_TIMEOUT:g} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    outcome = json.loads(b"".join(chunks))
    assert "error" not in outcome, outcome["error"]
    return outcome["value"]


def scenario_a_child_never_hands_out_an_id_its_parent_made(fork: Callable[[], int]) -> None:
    generate_request_id()  # the parent now holds a batch with unused ids

    in_the_child = in_child(fork, lambda: [generate_request_id() for _ in range(ID_BATCH_SIZE)])
    in_the_parent = [generate_request_id() for _ in range(ID_BATCH_SIZE)]

    assert len(set(in_the_child)) == ID_BATCH_SIZE
    assert not set(in_the_child) & set(in_the_parent)


class ParentOnlyGate:
    """A check that blocks while it runs in the process that made it, and passes elsewhere."""

    def __init__(self) -> None:
        self.parent = os.getpid()
        self.running = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> list[checks.CheckMessage]:
        if os.getpid() == self.parent:
            self.running.set()
            self.release.wait(30)
        return []


def scenario_a_heartbeat_running_in_the_parent_is_not_waited_for_in_the_child(
    fork: Callable[[], int],
) -> None:
    gate = ParentOnlyGate()
    beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=5), cache_ttl=60)
    parent_run = threading.Thread(target=beat.results)
    parent_run.start()
    try:
        assert gate.running.wait(10)

        statuses = in_child(fork, lambda: beat.results().statuses)

        # Not E102 after the timeout, and not a wait on the parent's run with no end at all.
        assert statuses == {"gate": "ok"}
    finally:
        gate.release.set()
        parent_run.join(10)


def scenario_a_check_call_running_in_the_parent_is_not_reported_as_stuck_in_the_child(
    fork: Callable[[], int],
) -> None:
    gate = ParentOnlyGate()
    runner = CheckRunner(timeout=0.05)
    try:
        assert runner.run([("gate", gate)]).statuses == {"gate": "error"}
        assert gate.running.is_set()
        runner.timeout = 5

        statuses = in_child(fork, lambda: runner.run([("gate", gate)]).statuses)

        assert statuses == {"gate": "ok"}
    finally:
        gate.release.set()


def scenario_a_cached_result_of_the_parent_is_not_served_in_the_child(
    fork: Callable[[], int],
) -> None:
    parent = os.getpid()

    def only_the_parent_fails() -> list[checks.CheckMessage]:
        return [checks.Error("parent", id="x.E1")] if os.getpid() == parent else []

    beat = Heartbeat(lambda: [("c", only_the_parent_fails)], CheckRunner(timeout=5), cache_ttl=60)
    assert beat.results().statuses == {"c": "error"}

    assert in_child(fork, lambda: beat.results().statuses) == {"c": "ok"}


def held_locks(beat: Heartbeat) -> list[Any]:
    """Every lock a heartbeat run takes, each of which a parent's thread may hold at a fork."""
    return [beat._lock, beat.runner._lock, beat.runner.pool._lock, beat.transitions._lock]


def scenario_locks_held_in_the_parent_at_the_fork_do_not_block_the_child(
    fork: Callable[[], int],
) -> None:
    beat = Heartbeat(lambda: [("fine", list)], CheckRunner(timeout=5))
    assert beat.results().statuses == {"fine": "ok"}
    locks = held_locks(beat)
    for lock in locks:
        lock.acquire()
    try:
        statuses = in_child(fork, lambda: beat.results().statuses)
    finally:
        for lock in locks:
            lock.release()

    assert statuses == {"fine": "ok"}


def scenario_the_levels_the_parent_reported_are_not_the_childs(fork: Callable[[], int]) -> None:
    beat = Heartbeat(lambda: [("c", lambda: [checks.Error("down", id="x.E1")])], CheckRunner(5))
    beat.results()
    assert beat.transitions.state()["checks"]["c"]["reported"] == checks.ERROR

    assert in_child(fork, beat.transitions.state) == {"checks": {}, "statuses": {}}


def test_a_child_never_hands_out_an_id_its_parent_made(forked):
    forked(scenario_a_child_never_hands_out_an_id_its_parent_made)


def test_a_heartbeat_running_in_the_parent_is_not_waited_for_in_the_child(forked):
    forked(scenario_a_heartbeat_running_in_the_parent_is_not_waited_for_in_the_child)


def test_a_check_call_running_in_the_parent_is_not_reported_as_stuck_in_the_child(forked):
    forked(scenario_a_check_call_running_in_the_parent_is_not_reported_as_stuck_in_the_child)


def test_a_cached_result_of_the_parent_is_not_served_in_the_child(forked):
    forked(scenario_a_cached_result_of_the_parent_is_not_served_in_the_child)


def test_locks_held_in_the_parent_at_the_fork_do_not_block_the_child(forked):
    forked(scenario_locks_held_in_the_parent_at_the_fork_do_not_block_the_child)


def test_the_levels_the_parent_reported_are_not_the_childs(forked):
    forked(scenario_the_levels_the_parent_reported_are_not_the_childs)
