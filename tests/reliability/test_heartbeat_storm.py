"""A storm of heartbeats while a check hangs: the load balancer's probe and the app still answer.

gunicorn, gthread, 2 workers of 4 threads, serving the example with one more check, ``hang``,
that never returns (``served_app``'s ``RELIABILITY_HUNG_CHECK``), and a check timeout of
2 s. For 20 s, 50 keep-alive clients send ``/__heartbeat__`` back to back, while one client
probes ``/__lbheartbeat__`` and another the app's ``/`` every 0.15 s, each probe on a new
connection, as a load balancer's.

A heartbeat that finds the check still running past its time reports E102 at once, without
waiting again and without starting another copy. Were it to wait the full timeout again, a
handful of heartbeats would hold every thread of a worker, and the probes queued behind them
would wait for many timeouts in a row, long enough for a load balancer to take the service
out.

Timings are reported in the terminal summary (``storm ...``), never asserted: what must hold is
that every probe was answered within the client's timeout (15 s), every heartbeat was the
same clear error, and the hung check was started at most once in each worker. The rule in
process: ``tests/checks/test_runner.py::
test_a_check_still_running_past_its_time_is_E102_at_once_without_waiting_again``.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest
from harness import REPO, REQUEST_TIMEOUT, Answer, Client, fetch, parse_lines, tally

CHECK_TIMEOUT = 2.0
WORKERS = 2
THREADS = 4
HEARTBEAT_CLIENTS = 50
STORM_SECONDS = 20.0
PROBE_INTERVAL = 0.15
HEARTBEATS_PER_CONNECTION = 20

E102 = "dockerflow.health.E102"
HUNG_CHECK_STARTED = "Check hang started"


@dataclass
class Sample:
    """One request of the storm: its status, or the error that came instead, and how long."""

    status: Optional[int]
    elapsed: float
    error: Optional[str] = None
    #: The message ids of the hung check, for a heartbeat.
    hang_ids: list[str] = field(default_factory=list)


def timed(send: Callable[[], Answer]) -> tuple[Optional[Answer], Sample]:
    started = time.monotonic()
    try:
        answer = send()
    except Exception as exc:
        return None, Sample(None, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
    return answer, Sample(answer.status, answer.elapsed)


def heartbeat(client: Client) -> Sample:
    answer, sample = timed(lambda: client.request("GET", "/__heartbeat__"))
    if answer is not None:
        try:
            details = answer.json().get("details", {})
        except ValueError:
            sample.hang_ids = ["(not the heartbeat's JSON)"]
        else:
            sample.hang_ids = sorted(details.get("hang", {}).get("messages", {}))
    return sample


def probe(port: int, path: str) -> Sample:
    return timed(lambda: fetch(port, "GET", path))[1]


@dataclass
class Storm:
    """Everything the storm's clients got, and the server's log once it stopped."""

    samples: dict[str, list[Sample]]
    library: str
    returncode: int
    records: list[dict[str, Any]]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, sample: Sample) -> None:
        with self._lock:
            self.samples[kind].append(sample)

    def hung_check_runs(self) -> collections.Counter[int]:
        """Starts of the hung check, by worker process id."""
        return collections.Counter(
            record["Pid"]
            for record in self.records
            if record["Fields"].get("msg") == HUNG_CHECK_STARTED
        )

    def heartbeat_workers(self) -> set[int]:
        """The workers that logged a heartbeat's summary."""
        return {
            record["Pid"]
            for record in self.records
            if record.get("Type") == "request.summary"
            and record["Fields"].get("path") == "/__heartbeat__"
        }


def hammer(port: int, stop: threading.Event, storm: Storm) -> None:
    """Heartbeats back to back on a keep-alive connection, until ``stop``.

    A new connection every ``HEARTBEATS_PER_CONNECTION``, as a load balancer's pool recycles
    them: each is accepted by whichever worker is first, so the storm reaches every worker.
    """
    client = Client(port)
    try:
        sent = 0
        while not stop.is_set():
            storm.record("heartbeat", heartbeat(client))
            sent += 1
            if sent % HEARTBEATS_PER_CONNECTION == 0:
                client.close()
    finally:
        client.close()


def keep_probing(port: int, kind: str, path: str, stop: threading.Event, storm: Storm) -> None:
    """``path`` every ``PROBE_INTERVAL`` seconds, on a new connection each, until ``stop``."""
    while not stop.is_set():
        storm.record(kind, probe(port, path))
        stop.wait(PROBE_INTERVAL)


def report(storm: Storm) -> None:
    """The storm's figures, for the terminal summary."""
    for kind, samples in storm.samples.items():
        answered = [sample.elapsed for sample in samples if sample.status is not None]
        tally(f"storm {kind} sent", len(samples))
        tally(f"storm {kind} answered", len(answered))
        if answered:
            tally(f"storm {kind} worst ms", round(max(answered) * 1000))
            tally(f"storm {kind} median ms", round(statistics.median(answered) * 1000))
    tally("storm hung check runs", sum(storm.hung_check_runs().values()))
    tally("storm workers that served heartbeats", len(storm.heartbeat_workers()))


@pytest.fixture(scope="module")
def storm(serve: Any) -> Storm:
    server = serve(
        "storm",
        workers=WORKERS,
        threads=THREADS,
        RELIABILITY_HUNG_CHECK="1",
        DOCKERFLOW_CHECK_TIMEOUT=str(CHECK_TIMEOUT),
    )
    result = Storm(collections.defaultdict(list), server.stats()["library"], 0, [])
    stop = threading.Event()
    threads = [
        threading.Thread(target=hammer, args=(server.port, stop, result), daemon=True)
        for _ in range(HEARTBEAT_CLIENTS)
    ]
    threads += [
        threading.Thread(
            target=keep_probing, args=(server.port, kind, path, stop, result), daemon=True
        )
        for kind, path in (("lbheartbeat", "/__lbheartbeat__"), ("app", "/"))
    ]
    for thread in threads:
        thread.start()
    stop.wait(STORM_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT + 5)
    assert not any(thread.is_alive() for thread in threads), "a client of the storm is stuck"
    # Every summary is written once the server has stopped.
    result.returncode = server.stop()
    result.records = parse_lines(server.stdout_lines())[0]
    report(result)
    return result


def test_the_server_ran_the_library_under_test(storm: Storm) -> None:
    assert storm.library.startswith(str(REPO))


@pytest.mark.parametrize("kind", ["lbheartbeat", "app"])
def test_every_probe_was_answered_within_the_client_timeout_throughout(
    storm: Storm, kind: str
) -> None:
    samples = storm.samples[kind]
    assert samples
    assert [(sample.status, sample.error) for sample in samples] == [(200, None)] * len(samples)


def test_every_heartbeat_answered_500_with_E102_for_the_hung_check(storm: Storm) -> None:
    samples = storm.samples["heartbeat"]
    assert len(samples) >= HEARTBEAT_CLIENTS
    outcomes = collections.Counter((s.status, s.error, tuple(s.hang_ids)) for s in samples)
    assert outcomes == {(500, None, (E102,)): len(samples)}


def test_the_hung_check_was_started_once_in_each_worker_whatever_the_heartbeats(
    storm: Storm,
) -> None:
    runs = storm.hung_check_runs()
    workers = storm.heartbeat_workers()
    assert len(workers) == WORKERS, "the storm did not reach every worker"
    assert set(runs) <= workers
    assert {pid: runs[pid] for pid in workers} == dict.fromkeys(workers, 1)


def test_the_server_stopped_gracefully_with_the_check_still_hung(storm: Storm) -> None:
    assert storm.returncode == 0
