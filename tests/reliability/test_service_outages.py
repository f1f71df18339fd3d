"""Redis and PostgreSQL stopped under a running load, then started again.

While the server is down the heartbeat answers 500 with the built-in check's error (E004 for
Redis, E008 for PostgreSQL) within the check timeout, the app's routes that do not need the
server keep answering, and no answer, log line or command output shows the URL's password.
Once the server is back the heartbeat returns to 200 without restarting the service.
``servers`` starts every server a test stopped, whatever happens.

In-process versions with the same client or engine: ``tests/checks/test_builtin_redis.py::
test_redis_stopped_then_started_with_the_same_client`` and ``tests/checks/
test_builtin_sqlalchemy.py::test_postgresql_stopped_then_started_with_the_same_engine``.
"""

from __future__ import annotations

import collections
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from alembic import command
from alembic.config import Config
from harness import (
    DOCKERFLOW_CLI,
    HERE,
    MIXED_ROUTES,
    Client,
    Gunicorn,
    Load,
    is_summary,
    log_problems,
    parse_lines,
    tally,
)
from services import POSTGRESQL, REDIS, ServerControl
from sqlalchemy import create_engine, text

from example_app.database import ALEMBIC_INI

CHECK_TIMEOUT = 1.0
# Generous: the bound is the check timeout; the margin absorbs a loaded CI machine.
ANSWER_BOUND = CHECK_TIMEOUT + 4.0
RECOVERY_TIMEOUT = 30.0
DOWN_FOR = 2.0
# Trust authentication: PostgreSQL never asks for it, so the service works with it.
DB_PASSWORD = "pg-Secret-4b1d"

# Routes that need neither Redis nor the database: they must not notice the outage.
INDEPENDENT = ("hello", "stream", "boom", "missing", "lbheartbeat", "version", "refused")
pytestmark = [pytest.mark.services, pytest.mark.servers]


def routes(*names: str) -> tuple[Any, ...]:
    return tuple((route, weight) for route, weight in MIXED_ROUTES if route.name in names)


class Outage:
    """A load running against ``server`` while a test stops and starts a real server."""

    def __init__(self, server: Gunicorn, load_routes: tuple[Any, ...]) -> None:
        self.server = server
        self.prober = Client(server.port, timeout=30)
        self.heartbeats: list[tuple[str, float, int, dict[str, Any]]] = []
        self.load = Load(server.port, 4, 100_000, 120, routes=load_routes, prefix="outage")

    def heartbeat(self, label: str) -> tuple[int, dict[str, Any], float]:
        request_id = f"hb-{label}-{len(self.heartbeats)}"
        answer = self.prober.request("GET", "/__heartbeat__", {"X-Request-ID": request_id})
        self.heartbeats.append((request_id, answer.elapsed, answer.status, answer.json()))
        return answer.status, answer.json(), answer.elapsed

    def answered_between(self, start: float, end: float) -> int:
        return sum(
            1
            for exchange in list(self.load.exchanges)
            if exchange.status is not None and start <= exchange.finished <= end
        )


def run_outage(
    outage: Outage,
    servers: ServerControl,
    server: Any,
    check: str,
    message_id: str,
    while_down: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Stop ``server`` under load, watch the heartbeat fail, start it, watch it recover.

    :returns: the body of a heartbeat answered while the server was down.
    """
    status, body, _ = outage.heartbeat("before")
    assert status == 200, body
    assert body["checks"][check] == "ok"
    outage.load.start()
    try:
        time.sleep(0.5)
        servers.stop(server)
        tally("faults injected")
        stopped = time.monotonic()
        status, body, elapsed = outage.heartbeat("down")
        assert status == 500, body
        assert message_id in body["details"][check]["messages"], body
        assert elapsed < ANSWER_BOUND
        while_down()
        time.sleep(DOWN_FOR)
        status, down_body, elapsed = outage.heartbeat("down")
        assert (status, elapsed < ANSWER_BOUND) == (500, True), down_body
        restarting = time.monotonic()

        servers.start(server)
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while True:
            status, body, elapsed = outage.heartbeat("after")
            assert elapsed < ANSWER_BOUND
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200, body
        assert body["checks"][check] == "ok"
        tally("faults recovered")
    finally:
        outage.load.stop.set()
        outage.load.join()
    assert outage.answered_between(stopped, restarting) > 0, "no request ran during the outage"
    return down_body


def assert_everything_answered_and_logged_once(outage: Outage) -> list[str]:
    wrong = collections.Counter(
        (exchange.route.name, exchange.status, exchange.error)
        for exchange in outage.load.exchanges
        if exchange.error or exchange.status != exchange.route.expected
    )
    assert not wrong, wrong
    assert outage.server.stop() == 0
    lines = outage.server.stdout_lines()
    assert log_problems(lines) == []
    logged = collections.Counter(
        record["Fields"]["rid"] for record in parse_lines(lines)[0] if is_summary(record)
    )
    sent = [exchange.request_id for exchange in outage.load.exchanges]
    sent += [request_id for request_id, *_ in outage.heartbeats]
    assert {rid: logged[rid] for rid in sent if logged[rid] != 1} == {}
    return lines


def test_redis_stopped_and_started_under_load(
    serve: Any, redis_url: str, servers: ServerControl
) -> None:
    server = serve("redis-outage", REDIS_URL=redis_url)
    outage = Outage(server, routes(*INDEPENDENT, "list", "create", "invalid"))
    down = run_outage(outage, servers, REDIS, "check_redis_connected", "dockerflow.health.E004")
    assert down["checks"]["check_database_connected"] == "ok"
    assert_everything_answered_and_logged_once(outage)


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """The service's database: a schema of its own in ``test``, migrated, with a password
    in the URL (``DB_PASSWORD``), dropped afterwards."""
    schema = f"reliability_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = postgres_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")
    url += f"?options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config = Config(ALEMBIC_INI)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        yield url
    finally:
        engine.dispose()
        # The outage test restarts PostgreSQL; the admin pool's connections died with it.
        admin.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_postgresql_stopped_and_started_under_load(
    serve: Any, postgres_schema_url: str, servers: ServerControl
) -> None:
    server = serve("postgresql-outage", DATABASE_URL=postgres_schema_url)
    notes = Client(server.port)
    created = notes.request(
        "POST", "/notes", {"Content-Type": "application/json"}, b'{"text": "kept"}'
    )
    assert created.status == 201

    outage = Outage(server, routes(*INDEPENDENT))
    during: dict[str, Any] = {}

    def look() -> None:
        # The database's routes answer at once, with an error; the command line fails too.
        answer = notes.request("GET", "/notes", {"X-Request-ID": "notes-down"})
        during["notes"] = (answer.status, answer.json())
        during["cli"] = subprocess.run(
            [str(DOCKERFLOW_CLI), "heartbeat", "--json", "--app", "served_app:app"],
            cwd=HERE,
            env=server.environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    down = run_outage(
        outage, servers, POSTGRESQL, "check_database_connected", "dockerflow.health.E008", look
    )
    [message] = down["details"]["check_database_connected"]["messages"].values()
    assert message.startswith("DB-API error on postgresql+psycopg://postgres:***@127.0.0.1")
    assert during["notes"][0] == 500
    cli = during["cli"]
    assert cli.returncode == 1, cli.stderr
    assert "dockerflow.health.E008" in cli.stdout

    answer = notes.request("GET", "/notes", {"X-Request-ID": "notes-after"})
    assert answer.status == 200
    assert [note["text"] for note in answer.json()["notes"]] == ["kept"]
    notes.close()

    lines = assert_everything_answered_and_logged_once(outage)
    seen = [str(down), cli.stdout, cli.stderr, server.stderr_text(), *lines]
    seen += [str(body) for *_, body in outage.heartbeats]
    assert [text for text in seen if DB_PASSWORD in text] == []
