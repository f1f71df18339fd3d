"""A heartbeat signal receiver that raises ``SystemExit`` or ``KeyboardInterrupt`` never costs a
server its worker, nor the heartbeat its answer, under gunicorn (sync and gthread) and uWSGI.

``served_app``'s ``RELIABILITY_EXITING_RECEIVER`` connects a receiver of both signals that
raises at every run. Let through (542f2a8), it ends a uWSGI or gthread worker mid-request (the
client sees the connection closed, then refused) and a sync worker answers gunicorn's HTML error
page. The run's answer must stay the heartbeat's JSON, the one worker must serve on, and each
raise must be one ERROR record of the library. The same rule in process:
``tests/checks/test_signal_receivers.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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

SERVER_KINDS = ("gunicorn-sync", "gunicorn-gthread", "uwsgi")
RECEIVERS = ("exit_3", "interrupt")
THREADS = 4
HEARTBEATS = 5
CLIENT_TIMEOUT = 10.0
#: What the library logs, at ERROR, for each raise.
RECEIVER_RAISED = "A receiver of heartbeat-passed raised"
MOZLOG_ERROR = 3

Launch = Callable[..., Server]


def require(kind: str) -> None:
    if kind == "uwsgi" and not UWSGI.exists():
        message = f"uWSGI is not installed at {UWSGI}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true, so the server tests must run, not skip")
        pytest.skip(message)


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launch]:
    """``launch(kind, **variables)``: ``served_app`` under a started server of ``kind``, one
    worker, with the stats route and a database of its own. Every server is killed at the end
    of the module."""
    started: list[Server] = []

    def start(kind: str, **variables: str) -> Server:
        require(kind)
        workdir = tmp_path_factory.mktemp(kind)
        environ = server_environment(
            DATABASE_URL=f"sqlite:///{workdir / 'example.sqlite3'}",
            RELIABILITY_PROBES="1",
            **variables,
        )
        server: Server
        if kind == "uwsgi":
            server = Uwsgi(workdir, environ, threads=THREADS)
        else:
            worker_class = kind.removeprefix("gunicorn-")
            threads = 1 if worker_class == "sync" else THREADS
            server = Gunicorn(workdir, environ, threads=threads, worker_class=worker_class)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


def heartbeat(port: int) -> Union[tuple[int, Any], str]:
    """The status and JSON body of a heartbeat on a connection of its own; the start of a body
    that is not JSON, or why nothing came."""
    client = Client(port, timeout=CLIENT_TIMEOUT)
    try:
        answer: Answer = client.request("GET", "/__heartbeat__", {"Connection": "close"})
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    try:
        return answer.status, answer.json()
    except ValueError:
        return answer.status, answer.body[:200].decode(errors="replace")


def healthy(outcome: Union[tuple[int, Any], str]) -> bool:
    """Whether ``outcome`` is the heartbeat's own JSON answer for a healthy service."""
    if isinstance(outcome, str) or not isinstance(outcome[1], dict):
        return False
    status, body = outcome
    return status == 200 and body.get("status") == "ok" and body.get("details") == {}


@pytest.mark.parametrize("receiver", RECEIVERS)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_receiver_raising_system_exit_or_keyboard_interrupt_leaves_answer_and_worker(
    launch: Launch, kind: str, receiver: str
) -> None:
    server = launch(kind, RELIABILITY_EXITING_RECEIVER=receiver)
    before = server.stats()
    assert before["library"].startswith(str(REPO))
    tally("faults injected", HEARTBEATS)

    outcomes = [heartbeat(server.port) for _ in range(HEARTBEATS)]

    assert [healthy(outcome) for outcome in outcomes] == [True] * HEARTBEATS, outcomes
    assert server.running(), server.stderr_text()[-3000:]
    after = server.stats()
    assert after["pid"] == before["pid"]
    assert server.worker_pids() == {before["pid"]}
    raised = after["check_runs"].get("exiting_receiver", 0)
    assert raised - before["check_runs"].get("exiting_receiver", 0) == HEARTBEATS
    logged = [
        record
        for record in server.records()
        if record["Fields"].get("msg") == RECEIVER_RAISED and record["Pid"] == before["pid"]
    ]
    assert len(logged) == raised
    assert {record["Severity"] for record in logged} == {MOZLOG_ERROR}
    tally("faults recovered", HEARTBEATS)
