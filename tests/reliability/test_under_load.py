"""The example service under gunicorn (gthread) and a bounded, mixed, concurrent load.

Eight keep-alive clients send 3200 requests (app routes, the three Dockerflow paths, a streamed
response, a route that raises, refused methods, a missing page), a third of them without a
request id. Then gunicorn is stopped and its whole stdout is read: every request must have been
answered right, and logged exactly once, under its own id.

The unit tests pin the same rules one request at a time, in process:
``tests/test_middleware.py::test_concurrent_requests_on_one_instance_keep_their_own_ids`` and
``tests/checks/test_heartbeat.py::test_a_probe_storm_through_the_middleware_runs_each_check_once``.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Optional

import pytest
from harness import (
    MIXED_ROUTES,
    Answer,
    Client,
    Exchange,
    Gunicorn,
    Load,
    is_summary,
    log_problems,
    parse_lines,
)

pytestmark = pytest.mark.servers

CLIENTS = 8
PER_CLIENT = 400
LOAD_DEADLINE = 120.0
STORM = 100
NEW_ID = re.compile(r"[0-9a-f]{32}")

# What the example app logs inside a request, by the route that logs it.
APP_MESSAGES = {
    "hello": "Saying hello",
    "stream": "Stream finished",
    "create": "Note created",
    "boom": "Exception on /boom [GET]",
}


@dataclass
class LoadRun:
    server: Gunicorn
    load: Load
    stats: dict[str, Any]
    returncode: int
    lines: list[str]

    def __post_init__(self) -> None:
        self.records = parse_lines(self.lines)[0]
        self.summaries: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for record in self.records:
            if is_summary(record):
                self.summaries[record["Fields"]["rid"]].append(record)

    @property
    def exchanges(self) -> list[Exchange]:
        return self.load.exchanges

    def of_route(self, name: str) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.route.name == name]


@pytest.fixture(scope="module")
def run(serve: Any) -> LoadRun:
    server = serve("load", threads=8)
    load = Load(server.port, CLIENTS, PER_CLIENT, LOAD_DEADLINE).run()
    stats = server.stats()
    # Everything is logged once the server has stopped: a client has its whole answer
    # before the server closes the response and writes the summary.
    returncode = server.stop()
    return LoadRun(server, load, stats, returncode, server.stdout_lines())


def test_the_whole_load_was_sent(run: LoadRun) -> None:
    assert not run.load.timed_out
    assert len(run.exchanges) == CLIENTS * PER_CLIENT
    # Every route of the mix was exercised, several times.
    counts = collections.Counter(exchange.route.name for exchange in run.exchanges)
    assert set(counts) == {route.name for route, _ in MIXED_ROUTES}
    assert min(counts.values()) >= 10, counts


def test_every_request_is_answered_with_its_status(run: LoadRun) -> None:
    wrong = collections.Counter(
        (exchange.route.name, exchange.status, exchange.error)
        for exchange in run.exchanges
        if exchange.error or exchange.status != exchange.route.expected
    )
    assert not wrong, wrong


def test_every_request_id_is_echoed_and_unique(run: LoadRun) -> None:
    for exchange in run.exchanges:
        if exchange.sent_id is None:
            assert exchange.echoed is not None
            assert NEW_ID.fullmatch(exchange.echoed), exchange
        else:
            assert exchange.echoed == exchange.sent_id
    ids = [exchange.request_id for exchange in run.exchanges]
    assert len(set(ids)) == len(ids)


def test_every_stdout_line_is_one_mozlog_json_object(run: LoadRun) -> None:
    assert run.lines
    assert log_problems(run.lines) == []


def test_exactly_one_summary_line_per_request(run: LoadRun) -> None:
    ids = {exchange.request_id for exchange in run.exchanges}
    counts = {rid: len(run.summaries.get(rid, [])) for rid in ids}
    assert {rid: n for rid, n in counts.items() if n != 1} == {}
    # Nothing else was logged as a request, besides the harness's own probes.
    others = set(run.summaries) - ids
    assert others <= set(run.server.own_ids), others
    assert all(len(run.summaries[rid]) == 1 for rid in others)


def test_each_summary_describes_its_own_request(run: LoadRun) -> None:
    """The client's number is in its User-Agent: a summary given another request's id (from
    another thread, or the previous request on the same thread) would not match."""
    mismatches = []
    for exchange in run.exchanges:
        [record] = run.summaries[exchange.request_id]
        fields = record["Fields"]
        expected = {
            "method": exchange.route.method,
            "path": exchange.route.path,
            "code": exchange.status,
            "errno": 0 if exchange.route.expected < 400 else exchange.route.expected,
            "agent": f"reliability-load/{exchange.client}",
            "lang": "en",
        }
        found = {key: fields.get(key) for key in expected}
        if found != expected:
            mismatches.append((exchange.request_id, expected, found))
        # The view that raises is an error, although Flask answered its 500 page itself.
        assert record["Severity"] == (3 if exchange.route.name == "boom" else 6)
    assert mismatches == []


@pytest.mark.parametrize(("route", "message"), sorted(APP_MESSAGES.items()))
def test_app_records_carry_the_id_of_their_request(run: LoadRun, route: str, message: str) -> None:
    expected = sorted(exchange.request_id for exchange in run.of_route(route))
    logged = sorted(
        record["Fields"].get("rid")
        for record in run.records
        if record["Fields"].get("msg") == message
    )
    assert expected
    assert logged == expected


def test_the_app_sees_the_id_of_its_own_request(run: LoadRun) -> None:
    for exchange in run.of_route("hello"):
        assert json.loads(exchange.body)["request_id"] == exchange.request_id


def test_the_raising_route_is_logged_with_its_traceback(run: LoadRun) -> None:
    """Twice per request: Flask's own record of the exception, and the ERROR summary."""
    errors = [record for record in run.records if record["Severity"] <= 3]
    summaries = [record for record in errors if record["Type"] == "request.summary"]
    assert len(summaries) == len(errors) - len(summaries) == len(run.of_route("boom"))
    assert all("DeliberateError" in record["Fields"]["error"] for record in errors)
    assert all("Traceback" in record["Fields"]["traceback"] for record in summaries)


def test_heartbeats_ran_the_checks_at_most_once_each(run: LoadRun) -> None:
    heartbeats = len(run.of_route("heartbeat"))
    assert 1 <= run.stats["check_runs"]["counted"] <= heartbeats


def test_the_server_stops_cleanly_after_the_load(run: LoadRun) -> None:
    assert run.returncode == 0
    # Flask answered the raising route itself: no exception reached gunicorn.
    assert "Error handling request" not in run.server.stderr_text()


# -- a probe storm -------------------------------------------------------------------------------


def test_a_storm_of_100_heartbeats_runs_each_check_once(serve: Any) -> None:
    """100 concurrent ``/__heartbeat__`` on one worker: the ``storm`` check holds its run
    until the 99 others wait on it, so one run answers them all (single flight)."""
    server = serve(
        "storm", threads=STORM + 10, RELIABILITY_STORM=str(STORM), DOCKERFLOW_CHECK_TIMEOUT="30"
    )
    clients = [Client(server.port, timeout=60) for _ in range(STORM)]
    for client in clients:
        client.connect()
    start = threading.Barrier(STORM)
    answers: list[Optional[Answer]] = [None] * STORM

    def probe(number: int) -> None:
        start.wait(30)
        answers[number] = clients[number].request(
            "GET", "/__heartbeat__", {"X-Request-ID": f"storm-{number}"}
        )

    threads = [threading.Thread(target=probe, args=(n,)) for n in range(STORM)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for client in clients:
        client.close()

    assert [answer.status if answer else None for answer in answers] == [200] * STORM
    assert {answer.body for answer in answers if answer} == {answers[0].body}  # type: ignore[union-attr]
    stats = server.stats()
    assert stats["storm_waiters"] == STORM - 1
    assert stats["check_runs"] == {"storm": 1, "counted": 1}
    assert server.stop() == 0
    records = parse_lines(server.stdout_lines())[0]
    logged = collections.Counter(r["Fields"]["rid"] for r in records if is_summary(r))
    assert all(logged[f"storm-{number}"] == 1 for number in range(STORM))
