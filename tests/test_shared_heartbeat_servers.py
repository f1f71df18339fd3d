"""``heartbeat_shared`` on real servers: one run per interval per pod whatever the workers, the
same answer from every worker, and a takeover within the bound when the runner is killed or
stopped.

Each server serves ``shared_heartbeat_apps`` with ``DOCKERFLOW_STATE_DIR`` of its own, a 0.5 s
interval and a 1 s check timeout: the bound on a takeover is 0.5 + 1 + 1 = 2.5 s. The check
writes a line (its pid, the wall-clock time) per call: what is counted and timed is what the
processes wrote, not how long the test waited.
"""

from __future__ import annotations

import json
import os
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

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
INTERVAL = 0.5
TIMEOUT = 1.0
#: How soon another process runs after the runner dies or stops (DESIGN). A follower wakes as
#: the lease expires, which is this long after the runner's last renewal at most; the test gives
#: the woken thread a tenth of a second to be scheduled on a busy machine.
BOUND = INTERVAL + TIMEOUT + 1.0
SCHEDULING = 0.1
#: How long the test waits for what a process must write.
PATIENCE = 20.0

pytestmark = pytest.mark.servers


def command(server: str, workers: int, port: int) -> list[str]:
    if server == "gunicorn sync":
        bind = f"{HOST}:{port}"
        return [
            str(BIN / "gunicorn"),
            "-w",
            str(workers),
            "-k",
            "sync",
            "-b",
            bind,
            "shared_heartbeat_apps:wsgi",
        ]
    if server == "uvicorn":
        uvicorn = [str(BIN / "uvicorn"), "shared_heartbeat_apps:asgi", "--no-access-log"]
        return [*uvicorn, "--workers", str(workers), "--host", HOST, "--port", str(port)]
    raise AssertionError(server)


@dataclass
class Pod:
    process: ServerProcess
    url: str
    state_dir: Path
    calls_path: Path
    workers: int

    def get(self, path: str) -> httpx.Response:
        # A new connection each time, as a kubelet's probe: any worker may take it.
        return httpx.get(self.url + path, headers={"Connection": "close"}, timeout=10)

    def answers(self) -> bool:
        try:
            return self.get("/__lbheartbeat__").status_code == 200
        except httpx.TransportError:
            return False

    def calls(self) -> list[tuple[int, float]]:
        """Each call of the check: (pid, wall-clock time), in the order written."""
        try:
            lines = self.calls_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(int(pid), float(when)) for pid, when in (line.split() for line in lines)]

    def runner(self) -> int:
        """The pid the lease names."""
        [lease] = self.state_dir.glob("heartbeat-*.lease")
        return int(json.loads(lease.read_text())["pid"])

    def answer_from_every_worker(self) -> dict[int, bytes]:
        """A heartbeat's body from each worker (every worker's background thread is then
        started: the runs start with a process's first request)."""
        bodies: dict[int, bytes] = {}
        deadline = time.monotonic() + PATIENCE
        while len(bodies) < self.workers:
            assert time.monotonic() < deadline, f"only {sorted(bodies)} answered"
            response = self.get("/__heartbeat__")
            bodies[int(response.headers["X-Pid"])] = response.content
        return bodies


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def start(server: str, workers: int, tmp_path: Path) -> Pod:
    port = unused_port()
    env = served_environment(
        TESTS,
        DOCKERFLOW_STATE_DIR=str(tmp_path / "state"),
        DOCKERFLOW_HEARTBEAT_INTERVAL=str(INTERVAL),
        DOCKERFLOW_CHECK_TIMEOUT=str(TIMEOUT),
        DOCKERFLOW_HEARTBEAT_SHARED="on",
        DOCKERFLOW_SUMMARY_LOG_PROBES="off",
        SHARED_CALLS=str(tmp_path / "calls"),
    )
    name = server.split()[0]
    process = ServerProcess(
        command(server, workers, port),
        cwd=tmp_path,
        env=env,
        stdout_path=tmp_path / f"{name}.out",
        stderr_path=tmp_path / f"{name}.err",
        name=name,
    ).start()
    pod = Pod(process, f"http://{HOST}:{port}", tmp_path / "state", tmp_path / "calls", workers)
    try:
        process.wait_until(pod.answers)
    except BaseException:
        process.stop()
        raise
    return pod


@pytest.fixture
def pod(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pod]:
    server, workers = request.param
    pod = start(server, workers, tmp_path)
    try:
        yield pod
    finally:
        pod.process.stop()


def per_interval(calls: list[tuple[int, float]]) -> float:
    """Runs per interval across the pod, between the first call and the last."""
    times = sorted(when for _, when in calls)
    return (len(times) - 1) * INTERVAL / (times[-1] - times[0])


PODS = [("gunicorn sync", 1), ("gunicorn sync", 2), ("gunicorn sync", 4), ("uvicorn", 2)]


@pytest.mark.parametrize("pod", PODS, indirect=True, ids=[f"{s} -w {w}" for s, w in PODS])
def test_one_run_per_interval_per_pod_and_the_same_body_everywhere(pod: Pod) -> None:
    bodies = pod.answer_from_every_worker()
    begin = time.time()
    time.sleep(5)
    bodies.update(pod.answer_from_every_worker())
    end = time.time()

    window = [(pid, when) for pid, when in pod.calls() if begin <= when <= end]
    rate = per_interval(window)
    print(f"{pod.workers} workers: {rate:.3f} runs per interval ({len(window)} calls)")
    assert 0.9 <= rate <= 1.1, window
    assert len({pid for pid, _ in window}) == 1, "one runner all along"
    assert len(set(bodies.values())) == 1, bodies


TAKEOVER_PODS = [("gunicorn sync", 4), ("uvicorn", 2)]
TAKEOVER_IDS = [f"{s} -w {w}" for s, w in TAKEOVER_PODS]


@pytest.mark.parametrize("pod", TAKEOVER_PODS, indirect=True, ids=TAKEOVER_IDS)
def test_another_process_runs_within_the_bound_after_a_kill_9(pod: Pod) -> None:
    pod.answer_from_every_worker()
    runner = wait_for(lambda: pod.calls() and pod.runner(), "no runner")
    killed = time.time()
    os.kill(runner, signal.SIGKILL)

    later = wait_for(
        lambda: [(pid, when) for pid, when in pod.calls() if when > killed and pid != runner],
        "nobody took over",
    )
    took = later[0][1] - killed
    print(f"taken over by {later[0][0]} {took:.3f} s after the kill")
    assert took <= BOUND + SCHEDULING
    assert pod.runner() == later[0][0]


@pytest.mark.parametrize("pod", TAKEOVER_PODS, indirect=True, ids=TAKEOVER_IDS)
def test_a_stopped_runner_is_replaced_and_runs_no_more_once_continued(pod: Pod) -> None:
    pod.answer_from_every_worker()
    runner = wait_for(lambda: pod.calls() and pod.runner(), "no runner")
    stopped = time.time()
    os.kill(runner, signal.SIGSTOP)
    try:
        later = wait_for(
            lambda: [(pid, when) for pid, when in pod.calls() if when > stopped and pid != runner],
            "nobody took over",
        )
    finally:
        continued = time.time()
        os.kill(runner, signal.SIGCONT)
    took = later[0][1] - stopped
    print(f"taken over by {later[0][0]} {took:.3f} s after the stop")
    assert took <= BOUND + SCHEDULING
    successor = later[0][0]

    time.sleep(6 * INTERVAL)

    assert pod.runner() == successor
    assert [when for pid, when in pod.calls() if pid == runner and when > continued] == []
    recent = [pid for pid, when in pod.calls() if when > continued]
    assert set(recent) == {successor}
