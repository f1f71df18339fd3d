"""The drain on real servers: every process of the pod sees the mark within a second.

Each server serves ``drain_apps`` with several workers and ``DOCKERFLOW_STATE_DIR`` of its own.
The test makes the mark as ``dockerflow-wsgi drain`` does, then reads each process's
``draining`` record (its ``Pid`` and ``Timestamp``, written by the process itself) and probes
over new connections: ``/__lbheartbeat__`` answers 503 and the app still answers ``/``. What is
timed is what the processes wrote, not how long the test waited.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import ServerProcess, served_environment, unused_port

from dockerflow_wsgi.drain import make_mark

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
#: Every process logs ``draining`` within this of the mark (DESIGN: "within one second").
WITHIN_SECONDS = 1.0
#: How long the test waits for what a process must write.
PATIENCE = 20.0

pytestmark = pytest.mark.servers


def command(server: str, port: int) -> list[str]:
    """``server``'s command line serving ``drain_apps`` with several workers."""
    bind = f"{HOST}:{port}"
    if server == "gunicorn sync":
        return [str(BIN / "gunicorn"), "-w", "4", "-k", "sync", "-b", bind, "drain_apps:wsgi"]
    if server == "gunicorn gthread --preload":
        gthread = ["-w", "2", "-k", "gthread", "--threads", "2", "--preload"]
        return [str(BIN / "gunicorn"), *gthread, "-b", bind, "drain_apps:wsgi"]
    if server.startswith("uwsgi"):
        lazy = ["--lazy-apps"] if "lazy-apps" in server else []
        return [
            str(BIN / "uwsgi"),
            *("--strict", "--master", "--need-app", "--enable-threads", "--die-on-term"),
            *("--processes", "4", *lazy, "--http-socket", bind, "--module", "drain_apps:wsgi"),
            "--disable-logging",
        ]
    if server == "uvicorn":
        uvicorn = [str(BIN / "uvicorn"), "drain_apps:asgi", "--workers", "2", "--no-access-log"]
        return [*uvicorn, "--host", HOST, "--port", str(port)]
    if server == "hypercorn":
        return [str(BIN / "hypercorn"), "-w", "2", "-b", bind, "drain_apps:asgi"]
    if server == "sanic":
        sanic = [str(BIN / "sanic"), "drain_apps:sanic_app", "--factory", "--workers", "2"]
        return [*sanic, "--host", HOST, "--port", str(port), "--no-motd"]
    raise AssertionError(server)


#: Lines by which a server names a process it started (besides the app's own ``started``).
_SPAWNED = re.compile(r"Booting worker with pid: (\d+)|spawned uWSGI worker \d+ \(pid: (\d+)")


@dataclass
class Served:
    server: str
    process: ServerProcess
    url: str
    state_dir: Path
    workers: int

    def records(self) -> list[dict[str, Any]]:
        lines = self.process.output().splitlines()
        return [json.loads(line) for line in lines if line.startswith('{"Timestamp"')]

    def processes(self) -> set[int]:
        """The processes that serve: each that loaded the app, and each worker a server says it
        forked from one that had (``--preload``)."""
        started = {r["Pid"] for r in self.records() if r["Fields"].get("msg") == "started"}
        forked = {
            int(pid)
            for match in _SPAWNED.finditer(self.process.errors())
            for pid in match.groups()
            if pid
        }
        return started | forked

    def draining(self) -> dict[int, int]:
        """Each process's first ``draining`` record's time (ns), by pid."""
        seen: dict[int, int] = {}
        for record in self.records():
            if record["Type"] == "dockerflow_wsgi" and record["Fields"].get("msg") == "draining":
                seen.setdefault(record["Pid"], record["Timestamp"])
        return seen

    def answers(self) -> bool:
        try:
            return self.get("/__lbheartbeat__").status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str) -> httpx.Response:
        # A new connection each time, as a load balancer's probe: any worker may take it.
        return httpx.get(self.url + path, headers={"Connection": "close"}, timeout=10)


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


#: Each server, and how many processes serve (its workers).
SERVERS = {
    "gunicorn sync": 4,
    "gunicorn gthread --preload": 3,
    "uwsgi lazy-apps": 4,
    "uwsgi": 4,
    "uvicorn": 2,
    "hypercorn": 2,
    "sanic": 2,
}


@pytest.fixture(params=list(SERVERS))
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    server = request.param
    port = unused_port()
    env = served_environment(
        TESTS,
        DOCKERFLOW_STATE_DIR=str(tmp_path / "state"),
    )
    name = server.split()[0]
    process = ServerProcess(
        command(server, port),
        cwd=tmp_path,
        env=env,
        stdout_path=tmp_path / f"{name}.out",
        stderr_path=tmp_path / f"{name}.err",
        name=name,
        # Sanic's server stops on SIGINT.
        stop_signal=signal.SIGINT if server == "sanic" else signal.SIGTERM,
    ).start()
    try:
        served = Served(
            server, process, f"http://{HOST}:{port}", tmp_path / "state", SERVERS[server]
        )
        process.wait_until(served.answers)
        wait_for(
            lambda: len(served.processes()) >= served.workers,
            f"{server} never started {served.workers} workers",
        )
        yield served
    finally:
        process.stop()


def test_every_process_drains_within_a_second_of_the_mark(served: Served) -> None:
    processes = served.processes()
    mark = make_mark(str(served.state_dir), 10)
    made = json.loads(Path(mark).read_text(encoding="utf-8"))["made"]
    wait_for(
        lambda: processes <= served.draining().keys(),
        f"not every process logged draining: {sorted(processes)} vs {served.draining()}",
    )
    # Then probes over new connections, whichever worker takes them, answer 503, and the app
    # is served.
    for _ in range(8):
        probe = served.get("/__lbheartbeat__")
        assert (probe.status_code, probe.json()) == (503, {"status": "draining"})
        app = served.get("/")
        assert app.status_code == 200
        assert int(app.text) in processes
    late = {
        pid: round(when / 1e9 - made, 3)
        for pid, when in served.draining().items()
        if when / 1e9 - made > WITHIN_SECONDS
    }
    assert not late, f"processes that saw the mark later than {WITHIN_SECONDS} s: {late}"
    # Once per process per mark, however many probes each answered.
    messages = [
        record["Pid"] for record in served.records() if record["Fields"].get("msg") == "draining"
    ]
    assert len(messages) == len(set(messages))


# -- the gunicorn hooks ----------------------------------------------------------------------------


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[Served]:
    """gunicorn with ``drain_gunicorn.conf.py``: drain 3 s on SIGTERM, metrics in files."""
    port = unused_port()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = served_environment(
        TESTS,
        DOCKERFLOW_STATE_DIR=str(tmp_path / "state"),
        DOCKERFLOW_DRAIN_SECONDS="3",
        DOCKERFLOW_METRICS="on",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    config = TESTS / "drain_gunicorn.conf.py"
    process = ServerProcess(
        [BIN / "gunicorn", "--config", config, "-b", f"{HOST}:{port}", "drain_apps:wsgi"],
        cwd=tmp_path,
        env=env,
        stdout_path=tmp_path / "gunicorn.out",
        stderr_path=tmp_path / "gunicorn.err",
    ).start()
    served = Served("gunicorn hooks", process, f"http://{HOST}:{port}", tmp_path / "state", 4)
    try:
        process.wait_until(served.answers)
        wait_for(lambda: len(served.processes()) >= 4, "gunicorn never started 4 workers")
        yield served
    finally:
        process.stop()


def test_sigterm_drains_every_worker_then_gunicorn_stops_gracefully(hooked: Served) -> None:
    processes = hooked.processes()
    mark = hooked.state_dir / "drain"
    hooked.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    wait_for(mark.exists, "SIGTERM made no drain mark")
    made = json.loads(mark.read_text(encoding="utf-8"))["made"]
    wait_for(lambda: processes <= hooked.draining().keys(), "not every worker logged draining")
    for _ in range(4):
        assert hooked.get("/__lbheartbeat__").status_code == 503
        assert hooked.get("/").status_code == 200
    assert all(when / 1e9 - made <= WITHIN_SECONDS for when in hooked.draining().values())

    # A worker started during the drain drains too.
    replaced = min(processes)
    os.kill(replaced, signal.SIGKILL)
    wait_for(lambda: len(hooked.processes() - processes) == 1, "no worker replaced the killed one")
    (new,) = hooked.processes() - processes
    wait_for(lambda: new in hooked.draining(), "the new worker never logged draining")

    # Then gunicorn's own graceful stop, and no mark left for the next server on this machine.
    assert hooked.process.wait(timeout=PATIENCE) == 0
    assert not mark.exists()
    assert "SIGTERM: draining for 3 s, then stopping" in hooked.process.errors()


def test_a_second_sigterm_stops_at_once(hooked: Served) -> None:
    hooked.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    wait_for((hooked.state_dir / "drain").exists, "SIGTERM made no drain mark")
    hooked.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    # Well before the 3 s drain is over: gunicorn's graceful stop of idle workers.
    assert hooked.process.wait(timeout=2.5) == 0


def test_child_exit_removes_a_dead_workers_live_gauges(hooked: Served) -> None:
    metrics = Path(hooked.process.env["PROMETHEUS_MULTIPROC_DIR"])
    for _ in range(20):
        assert hooked.get("/").status_code == 200
    victim = int(hooked.get("/").text)
    assert hooked.get("/__metrics__").status_code == 200
    wait_for(
        lambda: any(name.endswith(f"_{victim}.db") for name in os.listdir(metrics)),
        "the worker wrote no metrics",
    )
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: (
            not any(
                name.startswith("gauge_live") and name.endswith(f"_{victim}.db")
                for name in os.listdir(metrics)
            )
        ),
        "child_exit left the dead worker's live gauges",
    )
