"""What every application of ``tests/test_asgi_servers.py`` does, whatever its framework.

The FastAPI, Starlette and Django services are thin routes over these functions, so the three
are tested for the same behaviour by the same tests:

* two checks for the heartbeat: ``async_check`` (an ``async def``) and ``sync_check``, which
  record the thread they ran on, and ``sync_check`` can be held (``hold_sync_check()``) until
  released, to show that a slow synchronous check does not stop the event loop;
* ``held_stream()``, a body that sends one chunk and waits for ``release_stream()`` before
  sending the rest, and ``endless_stream()``, a body that never ends on its own;
* ``websocket_echo()``, what a websocket connection saw of the middleware;
* ``stats()``: what the process saw, for the tests to ask over HTTP;
* ``lifespan_event()``, written to the file ``ASGI_TESTS_LIFESPAN_LOG`` names.

Waiting is done by polling a :class:`threading.Event`, never by an :class:`asyncio.Event`:
Django may run a view on another thread than the stream that waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Optional

from dockerflow_wsgi import checks
from dockerflow_wsgi.logging import MozlogHandler
from dockerflow_wsgi.request_id import current_request_id

#: The ``Logger`` field of every line the services write.
LOGGER_NAME = "asgi-tests"
#: Longer than any test waits, shorter than forever: a held check or stream that a failed test
#: never released lets the server stop.
HOLD_LIMIT = 20.0
STREAM_CHUNKS = 5

logger = logging.getLogger("asgi_tests")

_observed: dict[str, Any] = {}
_sync_check_open = threading.Event()
_sync_check_open.set()
_sync_check_waiting = threading.Event()
_stream_released = threading.Event()


def configure_logging() -> None:
    """Mozlog JSON lines on stdout for every logger, as a service configures it (Django's
    ``LOGGING`` setting does the same for the test project)."""
    root = logging.getLogger()
    root.addHandler(MozlogHandler(name=LOGGER_NAME))
    root.setLevel(logging.INFO)


def _thread() -> dict[str, Any]:
    """The thread this runs on, and whether an event loop runs on it."""
    try:
        asyncio.get_running_loop()
        running_loop = True
    except RuntimeError:
        running_loop = False
    return {"ident": threading.get_ident(), "running_loop": running_loop}


# -- the checks ----------------------------------------------------------------------------------


async def async_check() -> list[checks.CheckMessage]:
    _observed["async_check"] = _thread()
    await asyncio.sleep(0)
    return []


def sync_check() -> list[checks.CheckMessage]:
    _observed["sync_check"] = _thread()
    _sync_check_waiting.set()
    try:
        _sync_check_open.wait(HOLD_LIMIT)
    finally:
        _sync_check_waiting.clear()
    return []


def register_checks() -> None:
    checks.register(async_check)
    checks.register(sync_check)


def hold_sync_check() -> None:
    """Make the next runs of ``sync_check`` wait until :func:`release_sync_check`."""
    _sync_check_open.clear()


def release_sync_check() -> None:
    _sync_check_open.set()


# -- the request id ------------------------------------------------------------------------------


def request_ids(scope: dict[str, Any]) -> dict[str, Optional[str]]:
    """The request's id where an application finds it: in the scope and in the context."""
    logger.info("Reporting the request id")
    return {"scope": scope.get("dockerflow.request_id"), "context": current_request_id()}


def websocket_echo(scope: dict[str, Any], text: str) -> dict[str, Any]:
    """What a websocket connection saw of the middleware: nothing, it passes through."""
    return {
        "echo": text,
        "request_id_in_scope": "dockerflow.request_id" in scope,
        "context": current_request_id(),
    }


# -- the streams ---------------------------------------------------------------------------------


async def _until(event: threading.Event) -> None:
    deadline = time.monotonic() + HOLD_LIMIT
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


async def held_stream() -> AsyncIterator[bytes]:
    """``chunk 0``, then nothing until :func:`release_stream`, then the other chunks.

    Records how long the stream lasted, from before its first chunk to after its last one:
    the summary's ``t`` must cover it.
    """
    _stream_released.clear()
    started = time.perf_counter()
    yield b"chunk 0\n"
    await _until(_stream_released)
    for number in range(1, STREAM_CHUNKS):
        await asyncio.sleep(0.01)
        yield f"chunk {number}\n".encode()
    _observed["stream_ms"] = (time.perf_counter() - started) * 1000


def release_stream() -> None:
    _stream_released.set()


async def endless_stream() -> AsyncIterator[bytes]:
    """A tick every 10 ms, until the framework stops asking (a client went away)."""
    number = 0
    while True:
        yield f"tick {number}\n".encode()
        number += 1
        await asyncio.sleep(0.01)


# -- what the process saw ------------------------------------------------------------------------


def lifespan_event(event: str) -> None:
    """Append ``event`` to the file ``ASGI_TESTS_LIFESPAN_LOG`` names, which outlives us."""
    logger.info("Lifespan %s", event)
    with open(os.environ["ASGI_TESTS_LIFESPAN_LOG"], "a", encoding="utf-8") as log:
        log.write(event + "\n")


def stats() -> dict[str, Any]:
    """What the process saw; called from an ``async def`` endpoint, so ``loop`` is the thread
    of the server's event loop."""
    return {
        **_observed,
        "loop": _thread(),
        "sync_check_waiting": _sync_check_waiting.is_set(),
    }
