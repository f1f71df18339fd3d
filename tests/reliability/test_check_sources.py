"""A check source that builds new callables at every run (as the Django integration does) and
a check of it that hangs: under gunicorn, the hanging check is started once, whatever the
heartbeats, and every other check keeps answering.

``served_app``'s ``RELIABILITY_HANGING_SOURCE`` registers that source. Were calls told apart by
the callable rather than by the check's name (542f2a8), every heartbeat would start another
copy, each holding a pool thread, until the pool of 32 was full and every check of the service
was E102 until a restart. The rule in process:
``tests/checks/test_single_flight_by_name.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import REPO, fetch, tally

pytestmark = pytest.mark.servers

CHECK_TIMEOUT = 0.5
#: More heartbeats than the check pool has threads.
HEARTBEATS = 40
E102 = "dockerflow.health.E102"


def test_a_hanging_check_of_a_source_that_makes_it_anew_starts_once(serve: Any) -> None:
    server = serve(
        "hanging-source",
        RELIABILITY_HANGING_SOURCE="1",
        DOCKERFLOW_CHECK_TIMEOUT=str(CHECK_TIMEOUT),
    )
    before = server.stats()
    assert before["library"].startswith(str(REPO))

    outcomes = []
    for _ in range(HEARTBEATS):
        answer = fetch(server.port, "GET", "/__heartbeat__")
        body = answer.json()
        hanging = sorted(body["details"].get("source_hang", {}).get("messages", {}))
        outcomes.append((answer.status, hanging, sorted(body["details"])))
    tally("heartbeats with a hanging check of a source", HEARTBEATS)

    # Only the hanging check fails: the database check and ``counted`` answer ok throughout.
    assert outcomes == [(500, [E102], ["source_hang"])] * HEARTBEATS
    after = server.stats()
    assert after["pid"] == before["pid"]
    assert after["check_runs"]["source_hang"] == 1
    assert after["check_runs"]["counted"] == HEARTBEATS
    pool = [name for name in after["thread_names"] if name.startswith("dockerflow-check")]
    assert len(pool) <= len(body["checks"])
