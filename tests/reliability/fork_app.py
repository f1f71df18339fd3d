"""A bare WSGI service that does Dockerflow work in the server's master, before the fork.

Served with the app imported once, in the master, and the workers forked from it: gunicorn
``--preload``, or uWSGI without ``lazy-apps`` (which forks in C, where Python's fork hooks
never run). A worker inherits the master's memory but none of its threads: what the master
left in progress must not be waited on, and what it made must not be handed out again.

No Flask and no database: the master holds nothing but what the switches below make, so a
failure is the library's. What it does at import is switched on by variables the test sets
on the server:

``RELIABILITY_CHECK_IN_FLIGHT=1``
    The only check, ``forked``, blocks forever in the process that imported this module; in
    any other it returns healthy after a pause of ``WORKER_CHECK_SECONDS`` (which keeps a
    worker's threads busy, so that concurrent heartbeats spread over the workers). At
    import, a heartbeat runs on a background thread, and the import returns only once that
    check is running: the workers are forked with the heartbeat's run and the check's call
    in flight.
``RELIABILITY_MASTER_REQUEST_ID=1``
    A request id is made at import: the importing process keeps the rest of the batch it
    was taken from.

Every answer carries the answering process's id in ``X-Worker-Pid``. ``/`` answers the
request id as JSON; ``/_reliability/stats`` answers the pid, the importing process's pid and
the file of the ``dockerflow_wsgi`` imported. Other paths are 404.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, Callable

import dockerflow_wsgi
from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.request_id import generate_request_id

STATS_PATH = "/_reliability/stats"
PID_HEADER = "X-Worker-Pid"
WORKER_CHECK_SECONDS = 0.2
#: The process that imported the app: the server's master, when the workers are forked.
IMPORTED_BY = os.getpid()

_check_started = threading.Event()


def _enabled(variable: str) -> bool:
    return os.environ.get(variable, "") not in ("", "0")


def forked() -> list[checks.CheckMessage]:
    if os.getpid() == IMPORTED_BY:
        _check_started.set()
        threading.Event().wait()
    time.sleep(WORKER_CHECK_SECONDS)
    return []


def _json(start_response: Callable[..., Any], status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _routes(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/":
        return _json(start_response, "200 OK", {"request_id": environ["dockerflow.request_id"]})
    if path == STATS_PATH:
        stats = {
            "pid": os.getpid(),
            "imported_by": IMPORTED_BY,
            "library": dockerflow_wsgi.__file__,
        }
        return _json(start_response, "200 OK", stats)
    return _json(start_response, "404 Not Found", {"error": "not found"})


_in_flight = _enabled("RELIABILITY_CHECK_IN_FLIGHT")
middleware = DockerflowMiddleware(_routes, checks=[("forked", forked)] if _in_flight else [])


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def with_pid(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, (PID_HEADER, str(os.getpid()))], exc_info)

    return middleware(environ, with_pid)


if _in_flight:
    threading.Thread(
        target=middleware.heartbeat.results, name="master-heartbeat", daemon=True
    ).start()
    if not _check_started.wait(30):
        raise RuntimeError("the check did not start in the process importing the app")
    # Let the heartbeat's thread and the check's settle into their waits. uWSGI forks without
    # taking the GIL: a thread of the master still running Python code at that moment would
    # leave every worker waiting for a GIL that no thread of its own holds.
    time.sleep(0.5)

if _enabled("RELIABILITY_MASTER_REQUEST_ID"):
    generate_request_id()
