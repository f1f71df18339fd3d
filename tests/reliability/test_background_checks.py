"""Checks run in the background (``heartbeat_interval``) under a real gunicorn with ``--preload``.

The app is imported once, in the master, and the workers are forked from it: the background
runner must start in each worker (at its first request), never in the master, and each worker
must answer every heartbeat from its own latest run, so that its checks run once per interval
whatever the probe rate. The workers stop cleanly on SIGTERM with the runner's thread alive.

In process: ``tests/test_orchestration.py`` (the runner's rules, a forked child, ASGI).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Serve
from harness import Gunicorn, fetch

pytestmark = pytest.mark.servers

WORKERS = 2
HEARTBEATS = 60


def _stats_of_every_worker(server: Gunicorn, done: Any, timeout: float = 20.0) -> list[dict]:
    """Stats readings until every worker has given one for which ``done(stats)`` holds; all of
    the readings, in the order they came."""
    readings: list[dict] = []
    finished: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(finished) < WORKERS:
        assert time.monotonic() < deadline, f"workers not settled: {readings[-WORKERS:]}"
        stats = server.stats()
        readings.append(stats)
        if done(stats):
            finished.add(stats["pid"])
        else:
            time.sleep(0.05)
    return readings


def _threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def test_each_forked_worker_runs_the_checks_once_per_interval_whatever_the_probe_rate(
    serve: Serve,
) -> None:
    server = serve(
        "background", workers=WORKERS, threads=4, preload=True, DOCKERFLOW_HEARTBEAT_INTERVAL="60"
    )
    assert server.process is not None
    # No check runs in the master: the app is imported there, and no request ever reaches it.
    # Beside its main thread, only the drain watch's (which stops while the master forks).
    assert _threads_of(server.process.pid) == 2

    answers = [fetch(server.port, "GET", "/__heartbeat__") for _ in range(HEARTBEATS)]

    assert {answer.status for answer in answers} == {200}
    assert {answer.json()["status"] for answer in answers} == {"ok"}
    readings = _stats_of_every_worker(server, lambda stats: stats["check_runs"].get("counted"))
    assert {stats["pid"] for stats in readings} == server.worker_pids()
    # One run in each worker, its first, for all the heartbeats: the backend saw 2, not 60.
    assert max(stats["check_runs"].get("counted", 0) for stats in readings) == 1
    assert all("dockerflow-heartbeat" in stats["thread_names"] for stats in readings)

    assert server.stop() == 0, server.stderr_text()[-3000:]
    assert "Traceback" not in server.stderr_text()


def test_the_runs_go_on_every_interval_without_probes(serve: Serve) -> None:
    interval = 0.25
    server = serve(
        "interval", workers=1, threads=4, preload=True, DOCKERFLOW_HEARTBEAT_INTERVAL=str(interval)
    )
    first = server.stats()["check_runs"].get("counted", 0)
    pause = 2.0
    time.sleep(pause)
    later = server.stats()["check_runs"]["counted"]

    # From the end of one run to the start of the next: a few runs fewer on a loaded machine,
    # never more than the interval allows.
    assert 2 <= later - first <= pause / interval + 1
    assert fetch(server.port, "GET", "/__heartbeat__").json()["status"] == "ok"
    assert server.stop() == 0, server.stderr_text()[-3000:]
