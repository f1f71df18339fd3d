"""``async def`` checks: awaited on the caller's loop under ASGI, on a background loop under
WSGI, with the same timeout, E101 and E102 rules as any check."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, RequestIdLogFilter, checks
from dockerflow_wsgi.checks.containment import is_async
from dockerflow_wsgi.checks.heartbeat import Heartbeat
from dockerflow_wsgi.checks.runner import CheckRunner


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def slow_warning():
    await asyncio.sleep(0.01)
    return [checks.Warning("from a coroutine", id="a.W1")]


async def raises():
    await asyncio.sleep(0)
    raise SystemExit(3)


class AsyncCallable:
    async def __call__(self):
        return []


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (slow_warning, True),
        (functools.partial(slow_warning), True),
        (AsyncCallable(), True),
        (lambda: [], False),
        (list, False),
        (functools.partial(list), False),
    ],
)
def test_async_checks_are_told_apart(check, expected):
    assert is_async(check) is expected


def test_under_wsgi_async_checks_run_on_a_background_loop_with_the_others():
    threads = []

    async def where():
        threads.append(threading.current_thread().name)
        return []

    app = TestApp(
        DockerflowMiddleware(
            hello, checks=[("slow", slow_warning), ("fails", raises), ("where", where)]
        )
    )
    response = app.get("/__heartbeat__", status=500)

    assert response.json["checks"] == {"slow": "warning", "fails": "error", "where": "ok"}
    assert response.json["details"]["fails"]["messages"] == {
        "dockerflow.health.E101": "SystemExit: 3"
    }
    assert threads == ["dockerflow-async-checks"]


def test_under_wsgi_an_async_check_past_its_time_is_e102_and_not_started_again():
    started = []
    release = threading.Event()

    async def hangs():
        started.append(1)
        while not release.is_set():
            await asyncio.sleep(0.01)
        return []

    runner = CheckRunner(timeout=0.05)
    try:
        for _ in range(3):
            results = runner.run([("hangs", hangs)])
            [message_id] = results.details["hangs"]["messages"]
            assert message_id == "dockerflow.health.E102"
        assert started == [1]
    finally:
        release.set()


def test_a_coroutine_returned_by_a_plain_function_is_e101_and_never_left_unawaited():
    app = TestApp(DockerflowMiddleware(hello, checks=[("sneaky", lambda: slow_warning())]))

    response = app.get("/__heartbeat__", status=500)

    [text] = response.json["details"]["sneaky"]["messages"].values()
    assert text == "the check returned a coroutine: declare it with async def"


def test_log_records_of_an_async_check_carry_the_request_id(caplog):
    caplog.set_level(logging.INFO, logger="acme")
    caplog.handler.addFilter(RequestIdLogFilter())

    async def chatty():
        logging.getLogger("acme").info("awaiting the search index")
        return []

    TestApp(DockerflowMiddleware(hello, checks=[("chatty", chatty)])).get(
        "/__heartbeat__", headers={"X-Request-ID": "async-probe-1"}
    )

    [record] = [r for r in caplog.records if r.name == "acme"]
    assert record.rid == "async-probe-1"


# -- on the caller's loop (ASGI) ---------------------------------------------------------------


def test_under_asgi_async_checks_run_on_the_callers_loop_and_sync_ones_never_do():
    seen = {}

    async def on_loop():
        seen["async"] = threading.get_ident()
        return []

    def on_thread():
        seen["sync"] = threading.get_ident()
        return []

    async def main():
        seen["loop"] = threading.get_ident()
        return await CheckRunner(timeout=5).run_async([("a", on_loop), ("s", on_thread)])

    results = asyncio.run(main())

    assert results.statuses == {"a": "ok", "s": "ok"}
    assert seen["async"] == seen["loop"]
    assert seen["sync"] != seen["loop"]


def test_under_asgi_a_hung_check_is_e102_at_once_on_later_runs_and_never_blocks_the_loop():
    started = []

    async def hangs():
        started.append(1)
        await asyncio.Event().wait()

    def blocks():
        threading.Event().wait(0.5)
        return []

    async def main():
        runner = CheckRunner(timeout=0.05)
        first = await runner.run_async([("hangs", hangs), ("blocks", blocks)])
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.ensure_future(tick())
        runner.timeout = 60  # a second run that waited for the hung check would take a minute
        second = await asyncio.wait_for(runner.run_async([("hangs", hangs)]), timeout=10)
        ticker.cancel()
        return first, second, ticks

    first, second, ticks = asyncio.run(main())

    assert first.statuses == {"hangs": "error", "blocks": "error"}
    assert (
        "started by an earlier heartbeat"
        in second.details["hangs"]["messages"]["dockerflow.health.E102"]
    )
    assert started == [1]
    assert ticks > 0  # the loop kept turning while the blocking check ran on its thread


def test_under_asgi_concurrent_heartbeats_share_one_run_and_survive_the_leaders_cancellation():
    started = []
    release = asyncio.Event()

    async def gate():
        started.append(1)
        await release.wait()
        return [checks.Info("done", id="g.I1")]

    async def main():
        beat = Heartbeat(lambda: [("gate", gate)], CheckRunner(timeout=30))
        leader = asyncio.ensure_future(beat.results_async())
        followers = [asyncio.ensure_future(beat.results_async()) for _ in range(20)]
        while beat.waiting < 20:
            await asyncio.sleep(0.001)
        leader.cancel()  # its client went away
        release.set()
        return await asyncio.gather(*followers)

    results = asyncio.run(main())

    assert started == [1]
    assert {result.statuses["gate"] for result in results} == {"info"}


def test_the_background_loop_of_a_forked_child_is_its_own():
    app = TestApp(DockerflowMiddleware(hello, checks=[("slow", slow_warning)]))
    assert app.get("/__heartbeat__").json["checks"] == {"slow": "warning"}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ok = app.get("/__heartbeat__").json["checks"] == {"slow": "warning"}
            os.write(write_end, b"ok" if ok else b"wrong")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 10) == b"ok"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def test_run_checks_async_runs_every_kind_without_a_time_limit():
    results = asyncio.run(
        checks.run_checks_async([("slow", slow_warning), ("sync", list), ("fails", raises)])
    )

    assert results.statuses == {"slow": "warning", "sync": "ok", "fails": "error"}
