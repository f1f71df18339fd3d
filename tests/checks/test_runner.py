"""The runner: messages folded into statuses, checks concurrent and bounded, never piling up."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.pool import DaemonThreadPool
from dockerflow_wsgi.checks.results import fold_results
from dockerflow_wsgi.checks.runner import CheckRunner


@pytest.fixture(autouse=True)
def empty_registry():
    checks.clear_checks()
    yield
    checks.clear_checks()


def ok():
    return []


def boom():
    raise ValueError("the disk is on fire")


def test_fold_results_reports_every_check_and_details_only_above_ok():
    results = fold_results(
        {
            "db": [],
            "cache": [checks.Warning("slow", id="c.W1"), checks.Info("fyi", id="c.I1")],
            "queue": [checks.Critical("gone", id="q.C1")],
        }
    )
    assert results.statuses == {"db": "ok", "cache": "warning", "queue": "critical"}
    assert results.details == {
        "cache": {"status": "warning", "level": 30, "messages": {"c.W1": "slow", "c.I1": "fyi"}},
        "queue": {"status": "critical", "level": 50, "messages": {"q.C1": "gone"}},
    }
    assert results.level == checks.CRITICAL


def test_fold_results_drops_silenced_messages_from_status_and_details():
    results = fold_results(
        {"cache": [checks.Error("down", id="c.E1"), checks.Info("fyi", id="c.I1")]},
        silenced_check_ids={"c.E1"},
    )
    assert results.statuses == {"cache": "info"}
    assert results.details["cache"]["messages"] == {"c.I1": "fyi"}
    assert results.level == checks.INFO


def test_fold_results_keys_messages_without_id_by_check_and_position():
    results = fold_results({"c": [checks.Warning("a"), checks.Warning("b")]})
    assert results.details["c"]["messages"] == {"c.0": "a", "c.1": "b"}


def test_run_checks_uses_the_registry_by_default_and_the_given_pairs_otherwise():
    checks.register(boom, name="fire")
    assert checks.run_checks().statuses == {"fire": "error"}
    assert checks.run_checks([("fine", ok)]).statuses == {"fine": "ok"}


def test_checks_of_one_run_execute_concurrently():
    # Each check waits until all three are running at once: a sequential runner breaks the
    # barrier and each check reports E101.
    barrier = threading.Barrier(3, timeout=10)

    def meet():
        barrier.wait()
        return []

    results = CheckRunner(timeout=20).run([("a", meet), ("b", meet), ("c", meet)])
    assert results.statuses == {"a": "ok", "b": "ok", "c": "ok"}


class Stuck:
    """A check that blocks until released, counting how often it was started."""

    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def __call__(self):
        self.calls += 1
        self.release.wait(30)
        return [checks.Info("finally", id="s.I1")]


def test_a_check_over_the_timeout_is_E102_and_the_run_does_not_wait_for_it():
    stuck = Stuck()
    try:
        # The fine check gets all the time a loaded machine may need to start its thread.
        runner = CheckRunner(timeout=10, timeouts={"stuck": 0.05})
        results = runner.run([("stuck", stuck), ("fine", ok)])
        assert not stuck.release.is_set()
        assert results.statuses == {"stuck": "error", "fine": "ok"}
        assert results.details["stuck"]["messages"] == {
            "dockerflow.health.E102": "check did not finish within 0.05 seconds"
        }
    finally:
        stuck.release.set()


def test_a_stuck_check_is_not_started_again_while_it_runs():
    stuck = Stuck()
    runner = CheckRunner(timeout=0.01)
    try:
        for _ in range(20):
            assert runner.run([("stuck", stuck)]).statuses == {"stuck": "error"}
        assert stuck.calls == 1
        assert runner.pool.thread_count == 1
    finally:
        stuck.release.set()


def test_once_a_stuck_call_returns_a_later_run_reports_a_real_result():
    stuck = Stuck()
    runner = CheckRunner(timeout=0.01)
    runner.run([("stuck", stuck)])
    runner.timeout = 10
    stuck.release.set()
    deadline = time.monotonic() + 10
    while (results := runner.run([("stuck", stuck)])).statuses != {"stuck": "info"}:
        assert time.monotonic() < deadline, results
    # The run sees the stuck call's own result if it has returned by then, else it starts the
    # check afresh once the call is over: never a copy beside a call still running.
    assert stuck.calls in (1, 2)


def test_threads_do_not_pile_up_over_many_runs_with_hanging_raising_and_broken_checks():
    stuck = Stuck()
    runner = CheckRunner(timeout=0.01)
    suite = [("stuck", stuck), ("fire", boom), ("garbage", lambda: "nonsense"), ("fine", ok)]
    before = threading.active_count()
    try:
        for _ in range(50):
            results = runner.run(suite)
            assert results.statuses["stuck"] == "error"
            assert results.statuses["fire"] == "error"
            assert results.statuses["garbage"] == "error"
        # One thread is held by the stuck check; the others are reused, never one per run.
        assert runner.pool.thread_count <= len(suite)
        assert threading.active_count() - before <= len(suite)
    finally:
        stuck.release.set()


def test_pool_reuses_idle_threads():
    pool = DaemonThreadPool(max_workers=8)
    for number in range(10):
        assert pool.submit(lambda n=number: n * 2).result(timeout=10) == number * 2
    assert pool.thread_count == 1


def test_pool_threads_are_daemons_and_bounded():
    pool = DaemonThreadPool(max_workers=2)
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 10) for _ in range(5)]
    assert pool.thread_count == 2
    assert all(thread.daemon for thread in pool._threads)
    gate.set()
    assert all(future.result(timeout=10) for future in futures)


def test_a_hung_check_does_not_keep_the_process_from_exiting():
    script = textwrap.dedent(
        """
        import threading
        from dockerflow_wsgi.checks.runner import CheckRunner
        never = threading.Event()
        def hangs():
            never.wait()
        print(CheckRunner(timeout=0.05).run([("hangs", hangs)]).statuses)
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    assert "{'hangs': 'error'}" in finished.stdout


def run_in_thread(runner, pairs):
    """``runner.run(pairs)`` on a thread; (thread, results holder)."""
    holder = {}
    thread = threading.Thread(target=lambda: holder.update(results=runner.run(pairs)))
    thread.start()
    return thread, holder


def test_a_check_still_running_past_its_time_is_E102_at_once_without_waiting_again():
    stuck = Stuck()
    runner = CheckRunner(timeout=0.05)
    try:
        runner.run([("stuck", stuck)])
        # Were it waited for again, this run would take the whole minute.
        runner.timeout = 60
        thread, holder = run_in_thread(runner, [("stuck", stuck), ("fine", ok)])
        thread.join(10)
        assert not thread.is_alive(), "the run waited for a check known to be stuck"
        results = holder["results"]
        assert results.statuses == {"stuck": "error", "fine": "ok"}
        [text] = results.details["stuck"]["messages"].values()
        assert "started by an earlier heartbeat" in text
        assert stuck.calls == 1
    finally:
        stuck.release.set()


def test_a_run_that_joins_a_call_within_its_time_waits_only_for_what_is_left_of_it():
    stuck = Stuck()
    runner = CheckRunner(timeout=0.5)
    try:
        first, _ = run_in_thread(runner, [("stuck", stuck)])
        wait_until = time.monotonic() + 10
        while stuck.calls == 0:
            assert time.monotonic() < wait_until
            time.sleep(0.001)
        # The second run shares the first call, and its deadline: not a minute of its own.
        runner.timeout = 60
        second, holder = run_in_thread(runner, [("stuck", stuck)])
        second.join(10)
        first.join(10)
        assert not second.is_alive()
        assert holder["results"].statuses == {"stuck": "error"}
        assert stuck.calls == 1
    finally:
        stuck.release.set()


def test_checks_run_in_the_callers_context():
    marker = contextvars.ContextVar("marker", default="unset")

    def reads_marker():
        return [checks.Info(marker.get(), id="c.I1")]

    token = marker.set("the request's value")
    try:
        results = CheckRunner(timeout=10).run([("reads", reads_marker)])
    finally:
        marker.reset(token)
    assert results.details["reads"]["messages"] == {"c.I1": "the request's value"}


def test_a_check_raising_system_exit_in_the_pool_is_E101_and_the_pool_lives_on():
    def exits():
        raise SystemExit(3)

    runner = CheckRunner(timeout=10)
    for _ in range(3):
        results = runner.run([("exits", exits), ("fine", ok)])
        assert results.statuses == {"exits": "error", "fine": "ok"}
        assert results.details["exits"]["messages"] == {"dockerflow.health.E101": "SystemExit: 3"}
    assert runner.pool.thread_count <= 2


def test_a_finished_call_is_never_reused_even_before_it_is_forgotten(monkeypatch):
    counted = []

    def counts():
        counted.append(1)
        return []

    runner = CheckRunner(timeout=10)
    # The done-callback that forgets a call runs after the waiting run wakes up; here, never.
    monkeypatch.setattr(runner, "_forget", lambda *args: None)
    for _ in range(5):
        assert runner.run([("counts", counts)]).statuses == {"counts": "ok"}
    assert len(counted) == 5
