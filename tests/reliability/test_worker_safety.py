"""What a check or a master process does never costs a server its workers, under real servers.

Each rule holds under gunicorn's sync and gthread workers and under uWSGI:

* A check that raises ``SystemExit`` or ``KeyboardInterrupt`` is an E101 Error like any other
  exception, and the worker serves on. Let through to the server, it ends a gthread or uWSGI
  worker mid-request (gunicorn's master even shuts down for ``SystemExit(3)``, its "worker
  failed to boot" code), and a sync worker answers its own HTML error page instead of the
  heartbeat's JSON.
* A heartbeat still running in the master when the workers are forked (gunicorn
  ``--preload``, uWSGI without ``lazy-apps``) is never waited on by a worker: no thread of
  the worker would ever complete it. Each worker runs the check itself and answers ``ok``,
  every time.
* A request id the master made before the fork is never handed out by a worker, also when
  uWSGI forks in C, where Python's fork hooks never run: ids stay unique across workers.

The first rule is served by ``served_app`` (the example service), the other two by
``fork_app``, a bare service whose master does that work at import. The same rules in
process: ``tests/checks/test_runner.py::
test_a_check_raising_system_exit_in_the_pool_is_E101_and_the_pool_lives_on`` and
``tests/test_request_id.py::test_a_forked_child_does_not_reuse_the_parents_pending_ids``.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Union

import pytest
from harness import (
    REPO,
    UWSGI,
    Answer,
    Client,
    Gunicorn,
    Server,
    Uwsgi,
    server_environment,
    tally,
)

pytestmark = pytest.mark.servers

#: The servers, by the worker model each rule must hold under.
SERVER_KINDS = ("gunicorn-sync", "gunicorn-gthread", "uwsgi")
THREADS = 4
CHECK_TIMEOUT = 3.0
#: Long enough for any answer but a heartbeat waiting on a call nothing will complete.
CLIENT_TIMEOUT = CHECK_TIMEOUT + 5.0

E101 = "dockerflow.health.E101"
#: What each check of ``RELIABILITY_EXITING_CHECKS`` becomes in the heartbeat.
EXITING = {
    "exit_3": {E101: "SystemExit: 3"},
    "exit_0": {E101: "SystemExit: 0"},
    "interrupt": {E101: "KeyboardInterrupt"},
}
HEARTBEATS = 5

#: ``fork_app``'s heartbeat, once the worker ran its check itself.
HEALTHY = {"status": "ok", "checks": {"forked": "ok"}, "details": {}}
FORKED_WORKERS = 2
#: Heartbeats each worker must answer; sent concurrently, more at once than all the workers
#: have threads, so that every worker gets some.
PER_WORKER = 3
CONCURRENCY = FORKED_WORKERS * THREADS + 2
MAX_ROUNDS = 25

ID_WORKERS = 4
ID_CLIENTS = 8
ANONYMOUS_REQUESTS = 200

Outcome = Union[tuple[int, Any], str]
Launch = Callable[..., Server]


def require(kind: str) -> None:
    if kind == "uwsgi" and not UWSGI.exists():
        message = f"uWSGI is not installed at {UWSGI}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true, so the server tests must run, not skip")
        pytest.skip(message)


def make_server(
    kind: str, workdir: Any, environ: dict[str, str], *, app: str, workers: int, forked: bool
) -> Server:
    """A server of ``kind``; ``forked``: the app imported in the master, the workers forked."""
    if kind == "uwsgi":
        return Uwsgi(
            workdir, environ, app=app, workers=workers, threads=THREADS, lazy_apps=not forked
        )
    worker_class = {"gunicorn-sync": "sync", "gunicorn-gthread": "gthread"}[kind]
    return Gunicorn(
        workdir,
        environ,
        app=app,
        workers=workers,
        threads=1 if worker_class == "sync" else THREADS,
        worker_class=worker_class,
        preload=forked,
    )


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launch]:
    """``launch(kind, name, app=..., workers=1, forked=False, **variables)``: a started server.

    Each gets the stats route and a check timeout of ``CHECK_TIMEOUT``, and ``served_app`` a
    fresh SQLite database; ``variables`` add to those. Every server is killed at the end of the
    module, whatever the tests found.
    """
    started: list[Server] = []

    def start(
        kind: str,
        name: str,
        *,
        app: str = "served_app:app",
        workers: int = 1,
        forked: bool = False,
        **variables: str,
    ) -> Server:
        require(kind)
        workdir = tmp_path_factory.mktemp(name)
        defaults = {"DOCKERFLOW_CHECK_TIMEOUT": str(CHECK_TIMEOUT), "RELIABILITY_PROBES": "1"}
        if app == "served_app:app":
            # fork_app's only checks are its own: no database check runs in its master.
            defaults["DATABASE_URL"] = f"sqlite:///{workdir / 'example.sqlite3'}"
        environ = server_environment(**{**defaults, **variables})
        server = make_server(kind, workdir, environ, app=app, workers=workers, forked=forked)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


def attempt(port: int, path: str) -> Union[Answer, str]:
    """One request on a connection of its own; what went wrong, as text, if nothing came."""
    client = Client(port, timeout=CLIENT_TIMEOUT)
    try:
        return client.request("GET", path, {"Connection": "close"})
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


def outcome(answer: Union[Answer, str]) -> Outcome:
    """The status and the JSON body of an answer, or why it did not come.

    A body that is not JSON (a server's own error page) is given as its first 200 characters.
    """
    if isinstance(answer, str):
        return answer
    try:
        return answer.status, answer.json()
    except ValueError:
        return answer.status, answer.body[:200].decode(errors="replace")


def assert_imported_by_the_master(server: Server) -> None:
    """The workers were forked from the master after it imported the app (and this library)."""
    assert server.process is not None
    stats = server.stats()
    assert stats["imported_by"] == server.process.pid
    assert stats["pid"] != server.process.pid
    assert stats["library"].startswith(str(REPO))


# -- SystemExit and KeyboardInterrupt ------------------------------------------------------------


def exiting_outcome(answer: Union[Answer, str]) -> Outcome:
    """The status and the exiting checks' messages of a heartbeat, or why it did not come."""
    found = outcome(answer)
    if isinstance(found, str) or not isinstance(found[1], dict):
        return found
    details = found[1].get("details", {})
    return found[0], {name: details.get(name, {}).get("messages") for name in EXITING}


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_check_raising_system_exit_or_keyboard_interrupt_is_E101_and_the_worker_lives_on(
    launch: Launch, kind: str
) -> None:
    server = launch(kind, f"exiting-{kind}", RELIABILITY_EXITING_CHECKS=",".join(EXITING))
    before = server.stats()
    assert before["library"].startswith(str(REPO))
    tally("faults injected", len(EXITING) * HEARTBEATS)

    outcomes = [exiting_outcome(attempt(server.port, "/__heartbeat__")) for _ in range(HEARTBEATS)]

    assert outcomes == [(500, EXITING)] * HEARTBEATS
    assert server.running(), server.stderr_text()[-3000:]
    after = server.stats()
    # The worker that ran every one of those checks is still the only one, never replaced.
    assert after["pid"] == before["pid"]
    assert server.worker_pids() == {before["pid"]}
    # They raised in this very worker, once per heartbeat.
    runs = {
        name: after["check_runs"].get(name, 0) - before["check_runs"].get(name, 0)
        for name in EXITING
    }
    assert runs == dict.fromkeys(EXITING, HEARTBEATS)
    lbheartbeat = attempt(server.port, "/__lbheartbeat__")
    assert not isinstance(lbheartbeat, str), lbheartbeat
    assert lbheartbeat.status == 200
    tally("faults recovered", len(EXITING) * HEARTBEATS)


# -- a heartbeat in flight in the master at the fork ---------------------------------------------


def heartbeats_from_every_worker(
    server: Server, workers: set[int]
) -> tuple[list[Outcome], collections.Counter[int]]:
    """Concurrent heartbeats, in rounds, until each worker answered ``PER_WORKER`` of them.

    Stops at the first failure, or after ``MAX_ROUNDS``. Returns what each heartbeat got and
    how many each worker (by ``X-Worker-Pid``) answered.
    """
    outcomes: list[Outcome] = []
    answered_by: collections.Counter[int] = collections.Counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in range(MAX_ROUNDS):
            answers = list(
                pool.map(attempt, [server.port] * CONCURRENCY, ["/__heartbeat__"] * CONCURRENCY)
            )
            for answer in answers:
                outcomes.append(outcome(answer))
                if isinstance(answer, Answer):
                    answered_by[int(answer.header("X-Worker-Pid") or 0)] += 1
            if any(isinstance(outcome, str) for outcome in outcomes):
                break
            if all(answered_by[pid] >= PER_WORKER for pid in workers):
                break
    return outcomes, answered_by


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_heartbeat_in_flight_in_the_master_at_the_fork_is_never_waited_on_by_a_worker(
    launch: Launch, kind: str
) -> None:
    # The master imports fork_app, whose heartbeat's check then blocks in the master for good:
    # the workers are forked while it is in flight.
    server = launch(
        kind,
        f"in-flight-{kind}",
        app="fork_app:app",
        workers=FORKED_WORKERS,
        forked=True,
        RELIABILITY_CHECK_IN_FLIGHT="1",
    )
    assert_imported_by_the_master(server)
    workers = server.worker_pids()
    assert len(workers) == FORKED_WORKERS

    outcomes, answered_by = heartbeats_from_every_worker(server, workers)

    # Not E102 after the check timeout, nor no answer at all: each worker ran the check.
    assert outcomes == [(200, HEALTHY)] * len(outcomes)
    assert min(answered_by[pid] for pid in workers) >= PER_WORKER, answered_by
    assert server.worker_pids() == workers
    tally("heartbeats after a fork mid-heartbeat", len(outcomes))


# -- request ids made in the master before the fork ----------------------------------------------


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_workers_forked_from_a_master_that_made_a_request_id_never_hand_out_the_same_id(
    launch: Launch, kind: str
) -> None:
    server = launch(
        kind,
        f"request-ids-{kind}",
        app="fork_app:app",
        workers=ID_WORKERS,
        forked=True,
        RELIABILITY_MASTER_REQUEST_ID="1",
    )
    assert_imported_by_the_master(server)

    # Without an X-Request-ID header: each worker makes the id of every request it serves.
    with ThreadPoolExecutor(ID_CLIENTS) as pool:
        answers = list(
            pool.map(attempt, [server.port] * ANONYMOUS_REQUESTS, ["/"] * ANONYMOUS_REQUESTS)
        )

    failures = [answer for answer in answers if isinstance(answer, str)]
    assert failures == []
    served = [answer for answer in answers if isinstance(answer, Answer)]
    assert [answer.status for answer in served] == [200] * ANONYMOUS_REQUESTS
    ids = [answer.header("X-Request-ID") for answer in served]
    assert ids == [answer.json()["request_id"] for answer in served]
    workers = {answer.header("X-Worker-Pid") for answer in served}
    assert len(workers) > 1, "every request reached the same worker: nothing was compared"
    duplicated = [rid for rid, count in collections.Counter(ids).items() if count > 1]
    assert duplicated == []
    tally("request ids made after a fork", len(ids))
