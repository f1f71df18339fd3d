"""The example service as the reliability suite serves it: ``served_app:app`` under a server.

It is ``example_app``'s own application (its routes, its mozlog logging, its Dockerflow
options from the environment), plus what the tests need to see inside the worker. Each
addition is switched on by a variable the test sets on the server process:

``RELIABILITY_PROBES=1``
    ``GET /_reliability/stats``: this worker's pid, threads (and their names), open file
    descriptors (SQLite files apart), the runs of each test check, what the raw routes saw,
    per request id, and the file of the ``dockerflow_wsgi`` it imported (the code under test,
    or another).
    Also registers ``counted``, a healthy check that counts its runs.
``RELIABILITY_RAW_ROUTES=1``
    Bare WSGI routes between the middleware and Flask, so that what they raise reaches
    gunicorn as it would from any WSGI application (Flask would make it a 500 page):
    ``/_reliability/raise-before`` (before ``start_response``), ``raise-after`` (after it),
    ``raise-mid-stream`` (after two chunks) and ``drip`` (up to 2000 small chunks, 10 ms
    apart, for a client that hangs up half way). Their bodies record ``close()`` calls.
``RELIABILITY_STORM=N``
    A check ``storm`` that waits, up to 20 s, until N-1 other heartbeats wait on its run.
``RELIABILITY_FAULTY_CHECKS=1``
    Checks that hang forever (``hang``), raise (``fire``), return a string (``not_a_list``)
    or a list of things that are not messages (``not_messages``).
``RELIABILITY_HUNG_CHECK=1``
    Only ``hang``. It logs ``Check hang started`` each time it starts, so its runs can be
    counted per worker from the log.
``RELIABILITY_HANGING_SOURCE=1``
    A check source, as a framework integration registers (Django's builds its checks anew at
    each run), that makes a new ``hang`` callable at every run. It logs ``Check source_hang
    started`` each time one starts.
``RELIABILITY_LATE_CHECK=SECONDS``
    Only ``late``, a check that sleeps that long (a little over the check timeout: a check
    that always ends late), then answers ok. It logs ``Check late started`` each time it
    starts.
``RELIABILITY_EXITING_RECEIVER=exit_3`` (or ``interrupt``)
    A receiver of both heartbeat signals that raises ``SystemExit(3)`` (or
    ``KeyboardInterrupt``) at every run.
``RELIABILITY_EXITING_CHECKS=exit_3,exit_0,interrupt``
    Checks that raise what ends a process when it reaches the server: ``SystemExit(3)``
    (gunicorn's "worker failed to boot" code), ``SystemExit(0)`` and ``KeyboardInterrupt``;
    each name listed registers that check.
``RELIABILITY_LEAKY_CHECK=1``
    A check ``replica`` that raises an exception quoting ``DATABASE_URL`` and ``REDIS_URL``,
    passwords included, as a driver's or a client library's error may.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import dockerflow_wsgi
from dockerflow_wsgi import checks, signals
from dockerflow_wsgi.checks.registry import register_check_source
from dockerflow_wsgi.middleware import find_middleware
from example_app.app import app

STATS_PATH = "/_reliability/stats"
FIRE_MESSAGE = "the disk is on fire"

logger = logging.getLogger("served_app")

_lock = threading.Lock()
#: Per request id: what the raw routes' bodies saw (chunks produced, close() calls).
_raw_events: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
#: Runs of each test check.
_check_runs: collections.Counter[str] = collections.Counter()
#: Most heartbeats seen waiting on the storm check's run.
_storm_waiters = 0


class RawRouteError(Exception):
    """What the raw routes raise; its name is what the tests look for in gunicorn's log."""


def _record(request_id: str, event: str) -> None:
    with _lock:
        _raw_events[request_id][event] += 1


def _count_run(name: str) -> None:
    with _lock:
        _check_runs[name] += 1


class RecordedBody:
    """A response body that records each chunk it produces and each ``close()`` call."""

    def __init__(
        self, request_id: str, chunks: int, *, fail_after: int = -1, delay: float = 0.0
    ) -> None:
        self.request_id = request_id
        self.chunks = chunks
        self.fail_after = fail_after
        self.delay = delay

    def __iter__(self) -> Iterator[bytes]:
        for number in range(self.chunks):
            if number == self.fail_after:
                raise RawRouteError(f"raise-mid-stream after {number} chunks")
            if self.delay:
                time.sleep(self.delay)
            _record(self.request_id, "chunks")
            yield f"chunk {number:04d} ".encode().ljust(100, b".") + b"\n"

    def close(self) -> None:
        _record(self.request_id, "closed")


def _raw_routes(inner: Callable[..., Any]) -> Callable[..., Any]:
    def raw_routes(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        request_id = environ["dockerflow.request_id"]
        headers = [("Content-Type", "text/plain")]
        if path == "/_reliability/raise-before":
            raise RawRouteError("raise-before start_response")
        if path == "/_reliability/raise-after":
            start_response("200 OK", headers)
            raise RawRouteError("raise-after start_response")
        if path == "/_reliability/raise-mid-stream":
            start_response("200 OK", headers)
            return RecordedBody(request_id, 5, fail_after=2)
        if path == "/_reliability/drip":
            start_response("200 OK", headers)
            return RecordedBody(request_id, 2000, delay=0.01)
        return inner(environ, start_response)

    return raw_routes


def _descriptors() -> collections.Counter[str]:
    """This process's open file descriptors: ``database`` (SQLite files) and ``other``."""
    kinds: collections.Counter[str] = collections.Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        kinds["database" if target.endswith(".sqlite3") else "other"] += 1
    return kinds


def _stats() -> dict[str, Any]:
    descriptors = _descriptors()
    with _lock:
        return {
            "pid": os.getpid(),
            "threads": threading.active_count(),
            "thread_names": sorted(thread.name for thread in threading.enumerate()),
            # Database connections come and go with the pools; anything else is ours.
            "fds": descriptors["other"],
            "database_fds": descriptors["database"],
            "check_runs": dict(_check_runs),
            "storm_waiters": _storm_waiters,
            "raw": {request_id: dict(events) for request_id, events in _raw_events.items()},
            "library": dockerflow_wsgi.__file__,
        }


def _enabled(variable: str) -> bool:
    return os.environ.get(variable, "") not in ("", "0")


middleware = find_middleware(app)
assert middleware is not None, "example_app no longer uses DockerflowMiddleware"

if _enabled("RELIABILITY_PROBES"):

    @app.get(STATS_PATH)
    def stats() -> Any:
        return app.response_class(json.dumps(_stats()), mimetype="application/json")

    @checks.register
    def counted() -> list[checks.CheckMessage]:
        _count_run("counted")
        return []


if _enabled("RELIABILITY_RAW_ROUTES"):
    # Below the example's own middleware, in place of the Flask app it wraps.
    middleware.app = _raw_routes(middleware.app)

if _enabled("RELIABILITY_STORM"):
    _storm_size = int(os.environ["RELIABILITY_STORM"])

    @checks.register
    def storm() -> list[checks.CheckMessage]:
        global _storm_waiters
        _count_run("storm")
        deadline = time.monotonic() + 20
        while middleware.heartbeat.waiting < _storm_size - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        with _lock:
            _storm_waiters = max(_storm_waiters, middleware.heartbeat.waiting)
        return []


def hang() -> list[checks.CheckMessage]:
    _count_run("hang")
    logger.info("Check hang started")
    threading.Event().wait()
    return []


if _enabled("RELIABILITY_FAULTY_CHECKS") or _enabled("RELIABILITY_HUNG_CHECK"):
    checks.register(hang)

if _enabled("RELIABILITY_HANGING_SOURCE"):

    def _hanging_source() -> list[tuple[str, Callable[[], list[checks.CheckMessage]]]]:
        def source_hang() -> list[checks.CheckMessage]:
            _count_run("source_hang")
            logger.info("Check source_hang started")
            threading.Event().wait()
            return []

        return [("source_hang", source_hang)]

    register_check_source("framework", _hanging_source)


if _enabled("RELIABILITY_LATE_CHECK"):
    _lateness = float(os.environ["RELIABILITY_LATE_CHECK"])

    @checks.register
    def late() -> list[checks.CheckMessage]:
        _count_run("late")
        logger.info("Check late started")
        time.sleep(_lateness)
        return []


if _enabled("RELIABILITY_FAULTY_CHECKS"):

    @checks.register
    def fire() -> list[checks.CheckMessage]:
        _count_run("fire")
        raise RuntimeError(FIRE_MESSAGE)

    @checks.register
    def not_a_list() -> Any:
        _count_run("not_a_list")
        return "all good"

    @checks.register
    def not_messages() -> Any:
        _count_run("not_messages")
        return [1, "two"]


if _enabled("RELIABILITY_LEAKY_CHECK"):

    @checks.register
    def replica() -> list[checks.CheckMessage]:
        raise ConnectionError(
            f"cannot reach {os.environ['DATABASE_URL']} nor {os.environ['REDIS_URL']}"
        )


def exit_3() -> list[checks.CheckMessage]:
    _count_run("exit_3")
    raise SystemExit(3)


def exit_0() -> list[checks.CheckMessage]:
    _count_run("exit_0")
    raise SystemExit(0)


def interrupt() -> list[checks.CheckMessage]:
    _count_run("interrupt")
    raise KeyboardInterrupt


EXITING_CHECKS = {check.__name__: check for check in (exit_3, exit_0, interrupt)}

for _name in filter(None, os.environ.get("RELIABILITY_EXITING_CHECKS", "").split(",")):
    checks.register(EXITING_CHECKS[_name])


def _exiting_receiver(sender: Any, **extra: Any) -> None:
    _count_run("exiting_receiver")
    raise _RECEIVER_RAISES[os.environ["RELIABILITY_EXITING_RECEIVER"]]()


_RECEIVER_RAISES: dict[str, Callable[[], BaseException]] = {
    "exit_3": lambda: SystemExit(3),
    "interrupt": KeyboardInterrupt,
}

if _enabled("RELIABILITY_EXITING_RECEIVER"):
    signals.heartbeat_passed.connect(_exiting_receiver)
    signals.heartbeat_failed.connect(_exiting_receiver)
