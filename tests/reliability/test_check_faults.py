"""Checks that hang, raise or return garbage, and a plugin that fails to import, in gunicorn.

The worker serves the example with four broken checks of its own (``served_app``'s
``RELIABILITY_FAULTY_CHECKS``) and a check published as an entry point by an installed
distribution whose module raises ImportError. The service starts, the app and the load
balancer's probe are unaffected, and each of 50 heartbeats answers within the check timeout
with one clear Error per broken check, without the worker's threads or file descriptors
piling up.

The same rules in process, in ``tests/checks/``: ``test_runner.py::
test_threads_do_not_pile_up_over_many_runs_with_hanging_raising_and_broken_checks``,
``test_heartbeat.py::test_threads_stay_flat_over_50_heartbeats_with_a_hung_check`` and
``test_plugins.py::test_a_plugin_that_fails_to_import_is_an_E103_error_not_a_crash``.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from harness import Client, Gunicorn, install_plugin, log_problems, parse_lines, tally

pytestmark = pytest.mark.servers

CHECK_TIMEOUT = 0.25
ANSWER_BOUND = CHECK_TIMEOUT + 4.0
HEARTBEATS = 50
THREADS = 4

E101 = "dockerflow.health.E101"
EXPECTED_DETAILS = {
    "fire": {E101: "RuntimeError: the disk is on fire"},
    "not_a_list": {E101: "the check returned 'all good', not a list of messages"},
    "not_messages": {
        E101: "message 0 of the check's result is 1, not a CheckMessage",
    },
}
# After the first heartbeat, the hung call is reported at once, with its age.
HUNG = re.compile(r"check still running after [0-9.e+]+ seconds, started by an earlier heartbeat")


@pytest.fixture(scope="module")
def faulty(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> Gunicorn:
    plugins = tmp_path_factory.mktemp("plugins")
    install_plugin(
        plugins, "broken-plugin", "broken", "raise ImportError('No module named shiny_client')\n"
    )
    tally("faults injected", len(EXPECTED_DETAILS) + 2)
    return serve(
        "faulty-checks",
        threads=THREADS,
        pythonpath=(str(plugins),),
        RELIABILITY_FAULTY_CHECKS="1",
        DOCKERFLOW_CHECK_TIMEOUT=str(CHECK_TIMEOUT),
    )


def heartbeat_concurrently(server: Gunicorn, count: int) -> None:
    """``count`` heartbeats at once: every thread of the worker's pool gets started."""
    clients = [Client(server.port) for _ in range(count)]
    threads = [
        threading.Thread(target=client.request, args=("GET", "/__heartbeat__"))
        for client in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for client in clients:
        client.close()


def settled_stats(server: Gunicorn) -> dict[str, Any]:
    """The worker's stats once its thread and descriptor counts hold still.

    The worker closes its side of a connection some time after the client closed it.
    """
    previous = server.stats()
    for _ in range(50):
        time.sleep(0.1)
        current = server.stats()
        if (current["threads"], current["fds"]) == (previous["threads"], previous["fds"]):
            return current
        previous = current
    return previous


def test_each_heartbeat_answers_in_time_with_a_clear_error_and_nothing_piles_up(
    faulty: Gunicorn,
) -> None:
    # Warm up: the worker's thread pool, the check pool and the database pool reach the
    # sizes this traffic needs (the database and migrations checks hold one connection each).
    heartbeat_concurrently(faulty, THREADS * 2)
    client = Client(faulty.port)
    for _ in range(5):
        client.request("GET", "/__heartbeat__")
    before = settled_stats(faulty)

    answers = [client.request("GET", "/__heartbeat__") for _ in range(HEARTBEATS)]
    # The rest of the service is not affected.
    assert client.request("GET", "/__lbheartbeat__").status == 200
    assert client.request("GET", "/").status == 200
    after = settled_stats(faulty)
    client.close()

    for answer in answers:
        assert answer.status == 500
        assert answer.elapsed < ANSWER_BOUND
        body = answer.json()
        assert body["status"] == "error"
        for name, messages in EXPECTED_DETAILS.items():
            assert body["details"][name]["messages"] == messages, name
        [(message_id, text)] = body["details"]["hang"]["messages"].items()
        assert message_id == "dockerflow.health.E102"
        assert HUNG.fullmatch(text), text
        [(message_id, text)] = body["details"]["broken"]["messages"].items()
        assert message_id == "dockerflow.health.E103"
        assert "broken = broken_health:check (from broken-plugin)" in text
        assert "ImportError: No module named shiny_client" in text
        assert body["checks"]["check_database_connected"] == "ok"
        assert body["checks"]["counted"] == "ok"

    assert (after["threads"], after["fds"]) == (before["threads"], before["fds"])
    # The database and migrations checks share one engine: a connection each, at most.
    assert after["database_fds"] <= 3
    # The hung call is never started again while it runs; the others run every time.
    assert after["check_runs"]["hang"] == 1
    assert after["check_runs"]["fire"] - before["check_runs"]["fire"] == HEARTBEATS


def test_the_broken_plugin_is_logged_once_when_the_worker_starts(faulty: Gunicorn) -> None:
    records = parse_lines(faulty.stdout_lines())[0]
    [record] = [r for r in records if r["Fields"].get("msg", "").startswith("Check plugin")]
    assert record["Fields"]["msg"] == (
        "Check plugin 'broken' could not be loaded: ImportError: No module named shiny_client"
    )
    assert record["Severity"] == 3
    assert "No module named shiny_client" in record["Fields"]["traceback"]


def test_a_hung_check_does_not_keep_the_worker_from_stopping(faulty: Gunicorn) -> None:
    assert faulty.stop() == 0
    assert log_problems(faulty.stdout_lines()) == []
    tally("faults recovered", len(EXPECTED_DETAILS) + 2)
