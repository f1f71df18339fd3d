"""A signal receiver that raises anything, ``SystemExit`` and ``KeyboardInterrupt`` included,
leaves the run's answer as it was; its exception is logged at ERROR.

Let through, ``SystemExit`` from a receiver of ``heartbeat_passed`` or ``heartbeat_failed``
ends a uWSGI worker, and gunicorn answers its own HTML error page instead of the heartbeat.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks, signals
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

RAISED = [
    pytest.param(SystemExit(3), id="SystemExit(3)"),
    pytest.param(SystemExit(0), id="SystemExit(0)"),
    pytest.param(KeyboardInterrupt(), id="KeyboardInterrupt"),
    pytest.param(RuntimeError("receiver bug"), id="RuntimeError"),
]

#: Each check set, the signal its run sends, and the heartbeat it answers.
RUNS = [
    pytest.param(
        [("fine", list)],
        signals.heartbeat_passed,
        (200, {"status": "ok", "checks": {"fine": "ok"}, "details": {}}),
        id="passed",
    ),
    pytest.param(
        [("down", lambda: [checks.Error("down", id="x.E1")])],
        signals.heartbeat_failed,
        (
            500,
            {
                "status": "error",
                "checks": {"down": "error"},
                "details": {"down": {"status": "error", "level": 40, "messages": {"x.E1": "down"}}},
            },
        ),
        id="failed",
    ),
]


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def receiver_raising():
    """``receiver_raising(signal, exception)``: connect a receiver of ``signal`` that raises
    ``exception`` at each run, for the test's length."""
    connected = []

    def connect(signal, exception):
        def receiver(sender, **extra):
            raise exception

        signal.connect(receiver)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def receiver_records(caplog, signal):
    return [
        record
        for record in caplog.records
        if record.name == "dockerflow_wsgi" and signal.name in record.getMessage()
    ]


@pytest.mark.parametrize("exception", RAISED)
@pytest.mark.parametrize(("pairs", "signal", "expected"), RUNS)
def test_a_raising_receiver_leaves_the_heartbeat_as_it_was_and_is_logged_at_error(
    receiver_raising, caplog, exception, pairs, signal, expected
):
    receiver_raising(signal, exception)
    app = TestApp(DockerflowMiddleware(hello, checks=pairs))

    for _ in range(2):
        response = app.get("/__heartbeat__", status="*")
        assert (response.status_int, response.json) == expected

    records = receiver_records(caplog, signal)
    assert [record.levelno for record in records] == [logging.ERROR] * 2
    assert all(record.exc_info[1] is exception for record in records)


@pytest.mark.parametrize("exception", RAISED)
def test_under_asgi_a_raising_receiver_leaves_the_heartbeat_as_it_was(
    receiver_raising, caplog, exception
):
    receiver_raising(signals.heartbeat_passed, exception)
    middleware = DockerflowASGIMiddleware(None, checks=[("fine", list)])
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/__heartbeat__",
        "raw_path": b"/__heartbeat__",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(middleware(scope, receive, send))

    assert sent[0]["status"] == 200
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert json.loads(body) == {"status": "ok", "checks": {"fine": "ok"}, "details": {}}
    [record] = receiver_records(caplog, signals.heartbeat_passed)
    assert record.levelno == logging.ERROR
