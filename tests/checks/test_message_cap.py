"""A check returns at most 100 messages to the heartbeat and the log, those of the highest
levels; the rest are counted in one INFO ``dockerflow.health.I106`` whose text gives their
number.

Without the cap, a check returning 200,000 messages made a 4.6 MB heartbeat body and 200,000
log records at every run.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks, health
from dockerflow_wsgi.checks.containment import MAX_MESSAGES, evaluate, evaluate_async

LEFT_OUT = "dockerflow.health.I106"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def infos(count: int) -> list[checks.CheckMessage]:
    return [checks.Info(f"item {number}", id=f"x.I{number}") for number in range(count)]


def test_the_id_is_one_of_the_health_constants():
    assert health.INFO_MESSAGES_LEFT_OUT == LEFT_OUT
    assert MAX_MESSAGES == 100


@pytest.mark.parametrize("count", [0, 1, 99, 100])
def test_up_to_100_messages_cross_the_boundary_as_they_are(count):
    found = infos(count)
    assert [(m.msg, m.id) for m in evaluate(lambda: found)] == [(m.msg, m.id) for m in found]


@pytest.mark.parametrize(("count", "left_out"), [(101, 1), (200_000, 199_900)])
def test_over_100_messages_the_first_100_are_kept_and_the_rest_counted_in_I106(count, left_out):
    messages = evaluate(lambda: infos(count))
    assert len(messages) == MAX_MESSAGES + 1
    assert [m.msg for m in messages[:MAX_MESSAGES]] == [f"item {n}" for n in range(MAX_MESSAGES)]
    counted = messages[-1]
    assert (counted.id, counted.level) == (LEFT_OUT, checks.INFO)
    assert f"{left_out:,} more messages" in counted.msg


def test_the_messages_kept_are_those_of_the_highest_levels_highest_first():
    found = [
        *infos(150),
        checks.Error("down", id="x.E1"),
        *[checks.Warning(f"slow {n}", id=f"x.W{n}") for n in range(60)],
        checks.Critical("gone", id="x.C1"),
        checks.Debug("detail", id="x.D1"),
    ]
    messages = evaluate(lambda: found)
    assert [m.id for m in messages] == [
        "x.C1",
        "x.E1",
        *[f"x.W{n}" for n in range(60)],
        *[f"x.I{n}" for n in range(38)],
        LEFT_OUT,
    ]
    assert "113 more messages" in messages[-1].msg


def test_an_async_check_is_capped_too():
    async def many():
        return infos(500)

    messages = asyncio.run(evaluate_async(many))
    assert len(messages) == MAX_MESSAGES + 1
    assert messages[-1].id == LEFT_OUT
    assert "400 more messages" in messages[-1].msg


def test_a_message_that_is_not_valid_is_E101_even_beyond_the_first_100():
    found = [*infos(150), "not a message"]
    [failure] = evaluate(lambda: found)
    assert failure.id == health.ERROR_CHECK_FAILED
    assert "message 150 " in failure.msg


def test_a_heartbeat_with_200k_messages_stays_small_and_logs_101_records(caplog):
    caplog.set_level(logging.INFO, logger="dockerflow_wsgi.checks")
    found = [checks.Warning(f"replica {n} lags", id=f"db.W{n}") for n in range(200_000)]
    app = TestApp(DockerflowMiddleware(hello, checks=[("chatty", lambda: found)]))

    response = app.get("/__heartbeat__")

    assert len(response.body) < 20_000
    messages = response.json["details"]["chatty"]["messages"]
    assert len(messages) == MAX_MESSAGES + 1
    assert "199,900 more messages" in messages[LEFT_OUT]
    records = [r for r in caplog.records if r.name == "dockerflow_wsgi.checks" and hasattr(r, "id")]
    assert len(records) == MAX_MESSAGES + 1
