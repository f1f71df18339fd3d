"""Shared heartbeat runs, in one process: two :class:`SharedRuns` over one folder stand for two
workers, and a clock of the test's stands for the wall clock. Each ``step()`` is one look of a
background thread; no thread is started here. Real servers: ``test_shared_heartbeat_servers``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.checks.background import BackgroundRuns
from dockerflow_wsgi.checks.messages import CheckMessage, Error, Warning
from dockerflow_wsgi.checks.runner import CheckRunner
from dockerflow_wsgi.checks.shared import Lease, SharedRuns, checks_key
from dockerflow_wsgi.cli.check_config import ignored_options
from dockerflow_wsgi.health import ERROR_STALE_RESULT

INTERVAL = 1.0
TIMEOUT = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Counted:
    """A check that counts its calls, finding a warning; ``during`` runs in its second call."""

    def __init__(self, during: Optional[Callable[[], None]] = None) -> None:
        self.calls = 0
        self.during = during

    def __call__(self) -> list[CheckMessage]:
        self.calls += 1
        if self.calls == 2 and self.during is not None:
            self.during()
        return [Warning("slow", id="myservice.W001", hint="stays in the runner's log")]


class Worker:
    """One process's shared runs, and what it reported."""

    def __init__(
        self,
        folder: Path,
        clock: Clock,
        checks: Optional[list[tuple[str, Any]]] = None,
        state: Optional[dict[str, Any]] = None,
    ) -> None:
        self.check = Counted()
        self.reports: list[dict[str, list[CheckMessage]]] = []
        self.imported: list[dict[str, Any]] = []
        self.runs = SharedRuns(
            lambda: checks if checks is not None else [("cache", self.check)],
            CheckRunner(TIMEOUT),
            INTERVAL,
            self.reports.append,
            state_dir=str(folder),
            export_state=lambda: dict(state or {}),
            import_state=self.imported.append,
            clock=clock,
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_one_of_two_wins_the_lease_and_only_it_runs_and_reports(tmp_path, clock):
    first, second = Worker(tmp_path, clock), Worker(tmp_path, clock)

    for _ in range(3):
        first.runs.step()
        second.runs.step()
        clock.now += INTERVAL

    assert (first.runs.is_runner, second.runs.is_runner) == (True, False)
    assert (first.check.calls, second.check.calls) == (3, 0)
    assert (len(first.reports), len(second.reports)) == (3, 0)


def test_a_follower_answers_the_runners_result_as_level_id_and_text(tmp_path, clock):
    runner, follower = Worker(tmp_path, clock), Worker(tmp_path, clock)
    runner.runs.step()
    follower.runs.step()

    assert follower.runs.latest == runner.runs.latest
    [message] = follower.runs.latest.messages["cache"]
    assert (message.level, message.id, message.msg, message.hint) == (
        30,
        "myservice.W001",
        "slow",
        None,
    )
    assert follower.runs.latest.ended == clock.now
    assert follower.runs.first.done()


def test_a_follower_reads_the_result_again_only_when_it_changed(tmp_path, clock, monkeypatch):
    from dockerflow_wsgi.checks import shared

    runner, follower = Worker(tmp_path, clock), Worker(tmp_path, clock)
    runner.runs.step()
    reads: list[str] = []
    read_json = shared._read_json
    monkeypatch.setattr(shared, "_read_json", lambda path: reads.append(path) or read_json(path))

    follower.runs.step()
    follower.runs.step()
    results = [path for path in reads if path.endswith(".json")]
    assert len(results) == 1
    clock.now += INTERVAL
    runner.runs.step()
    follower.runs.step()
    assert len([path for path in reads if path.endswith(".json")]) == 2


def test_a_shared_result_older_than_three_intervals_and_the_timeout_is_e105(tmp_path, clock):
    runner, follower = Worker(tmp_path, clock), Worker(tmp_path, clock)
    runner.runs.step()
    follower.runs.step()

    clock.now += 3 * INTERVAL + TIMEOUT + 0.1

    for worker in (runner, follower):
        latest = worker.runs.latest
        assert worker.runs.is_stale(latest)
        [message] = worker.runs.messages_of(["cache"], latest)["cache"]
        assert message.id == ERROR_STALE_RESULT


def test_a_stale_result_found_at_start_is_not_answered(tmp_path, clock):
    Worker(tmp_path, clock).runs.step()
    clock.now += 3 * INTERVAL + TIMEOUT + 0.1
    late = Worker(tmp_path, clock)

    # The lease has expired: the newcomer takes it and runs, rather than answer the old result.
    late.runs.step()

    assert late.check.calls == 1
    assert late.runs.latest.ended == clock.now


def test_a_result_of_other_check_names_is_never_read(tmp_path, clock):
    cache = Worker(tmp_path, clock)
    other = Worker(tmp_path, clock, checks=[("database", Counted())])
    cache.runs.step()
    other.runs.step()

    # Each set of checks has its own lease and runner.
    assert cache.runs.is_runner and other.runs.is_runner
    assert set(other.runs.latest.messages) == {"database"}
    # A result file that holds other names (a hash collision, a file copied by hand) is ignored.
    path = Path(cache.runs.result_path)
    forged = json.loads(path.read_text())
    forged["names"] = ["database"]
    path.write_text(json.dumps(forged))
    follower = Worker(tmp_path, clock)
    follower.runs._list_checks(clock.now)
    follower.runs._read_result()
    assert follower.runs.latest is None


def test_the_key_is_the_sorted_names_groups_included(tmp_path, clock):
    assert checks_key(["b", "a"]) == checks_key(["a", "b", "a"]) != checks_key(["a"])
    middleware = DockerflowMiddleware(
        lambda environ, start_response: [],
        checks=[("cache", Counted())],
        heartbeat_groups={"readiness": ["cache", "search"]},
        heartbeat_interval=INTERVAL,
        heartbeat_shared=True,
        state_dir=tmp_path,
    )
    runs = middleware.core.background
    assert isinstance(runs, SharedRuns)
    runs._list_checks(0)
    assert runs.result_path == str(tmp_path / f"heartbeat-{checks_key(['cache', 'search'])}.json")


def test_a_runner_whose_pid_is_gone_is_replaced_at_once(tmp_path, clock):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    runner = Worker(tmp_path, clock)
    runner.runs.step()
    lease = Lease(str(tmp_path), checks_key(["cache"]), clock)
    holder = json.loads(Path(lease.path).read_text())
    Path(lease.path).write_text(json.dumps({**holder, "pid": int(dead.stdout)}))
    follower = Worker(tmp_path, clock)

    # Long before the lease expires.
    clock.now += 0.1
    follower.runs.step()

    assert follower.runs.is_runner
    assert follower.check.calls == 1


def test_a_runner_stopped_past_its_lease_neither_renews_it_nor_writes(tmp_path, clock, caplog):
    runner, follower = Worker(tmp_path, clock), Worker(tmp_path, clock)
    runner.runs.step()
    follower.runs.step()

    # The runner is stopped (SIGSTOP) longer than its lease; the follower takes over.
    clock.now += runner.runs.lease_seconds + 0.01
    follower.runs.step()
    assert follower.runs.is_runner and follower.check.calls == 1

    # Continued, the old runner finds its interval up but the lease another's.
    clock.now += 0.01
    runner.runs.step()
    assert runner.check.calls == 1
    assert not runner.runs.is_runner
    assert runner.runs.latest == follower.runs.latest


def test_a_runner_taken_over_during_its_run_does_not_write_its_result(tmp_path, clock, caplog):
    follower = Worker(tmp_path, clock)

    def stopped_then_taken_over() -> None:
        clock.now += runner.runs.lease_seconds + 0.01
        follower.runs.step()

    runner = Worker(tmp_path, clock)
    runner.check.during = stopped_then_taken_over
    runner.runs.step()
    clock.now += INTERVAL
    with caplog.at_level(logging.INFO, logger="dockerflow_wsgi"):
        runner.runs.step()

    assert runner.check.calls == 2
    assert len(runner.reports) == 1, "the run it could not write is not reported either"
    written = json.loads(Path(runner.runs.result_path).read_text())
    assert written["pid"] == os.getpid() and written["ended"] == follower.runs.latest.ended
    assert "Another process took over the shared heartbeat checks" in caplog.text


def test_the_new_runner_imports_the_state_the_last_one_exported(tmp_path, clock):
    runner = Worker(tmp_path, clock, state={"cache": 30})
    follower = Worker(tmp_path, clock)
    runner.runs.step()
    follower.runs.step()
    assert follower.imported == []

    clock.now += runner.runs.lease_seconds + 0.01
    follower.runs.step()

    assert follower.imported == [{"cache": 30}]


def test_two_processes_never_both_hold_the_lock(tmp_path, clock):
    lease = Lease(str(tmp_path), "k", clock)
    held, release = os.pipe(), os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - another process holding the lock until told
        try:
            descriptor = os.open(lease.lock_path, os.O_RDWR | os.O_CREAT)
            fcntl.lockf(descriptor, fcntl.LOCK_EX)
            os.write(held[1], b"held")
            os.read(release[0], 1)
        finally:
            os._exit(0)
    try:
        assert os.read(held[0], 4) == b"held"
        assert not lease.hold("mine", 10)
        assert lease.holder() is None
    finally:
        os.write(release[1], b"x")
        os.waitpid(child, 0)
    assert lease.hold("mine", 10)
    assert lease.holder().token == "mine"


def test_a_forked_child_holds_no_lease(tmp_path, clock):
    runner = Worker(tmp_path, clock)
    runner.runs.step()
    assert runner.runs.is_runner
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, b"runner" if runner.runs.is_runner else b"follower")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"follower"
    os.waitpid(child, 0)


# -- the option -----------------------------------------------------------------------------------


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


def test_the_option_shares_the_runs_where_the_folder_can_be_used(tmp_path):
    middleware = DockerflowMiddleware(
        hello, checks=[], heartbeat_interval=1, heartbeat_shared="on", state_dir=tmp_path
    )
    assert isinstance(middleware.core.background, SharedRuns)
    assert ignored_options(middleware.core) == []


def test_an_unusable_folder_falls_back_to_each_processs_own_runs(tmp_path, caplog):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with caplog.at_level(logging.WARNING, logger="dockerflow_wsgi"):
        middleware = DockerflowMiddleware(
            hello,
            checks=[],
            heartbeat_interval=1,
            heartbeat_shared=True,
            state_dir=not_a_folder,
        )
    background = middleware.core.background
    assert type(background) is BackgroundRuns
    assert f"state_dir {not_a_folder} cannot be used" in caplog.text


def test_without_an_interval_the_option_is_ignored_and_check_config_says_so(tmp_path):
    middleware = DockerflowMiddleware(hello, checks=[], heartbeat_shared=True, state_dir=tmp_path)
    assert middleware.core.background is None
    [warning] = ignored_options(middleware.core)
    assert warning.startswith("heartbeat_shared (keyword) is on but heartbeat_interval is 0")


def test_a_failing_folder_makes_the_process_run_its_own_checks(tmp_path, clock, caplog):
    worker = Worker(tmp_path / "gone", clock)
    with caplog.at_level(logging.WARNING, logger="dockerflow_wsgi"):
        worker.runs.step()
        worker.runs.step()
    assert worker.check.calls == 2
    assert caplog.text.count("cannot be used for the shared heartbeat") == 1
    assert worker.runs.latest.messages["cache"][0].id == "myservice.W001"


def test_error_messages_keep_their_level_through_the_file(tmp_path, clock):
    failing = [("database", lambda: [Error("down", id="myservice.E001")])]
    runner = Worker(tmp_path, clock, checks=failing)
    follower = Worker(tmp_path, clock, checks=failing)
    runner.runs.step()
    follower.runs.step()
    [message] = follower.runs.latest.messages["database"]
    assert (message.level, message.id, message.msg) == (40, "myservice.E001", "down")
