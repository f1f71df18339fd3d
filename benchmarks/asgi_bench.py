"""The ASGI part of ``make bench``: FastAPI bare, with our middleware, and with the ``dockerflow``
package's FastAPI integration, in process (raw ASGI calls) and under uvicorn.

In process, each stack answers the same raw ASGI calls on one event loop, stacks interleaved
round by round, median per request. Under uvicorn, one server per stack, loaded in rotating
order round by round, each figure a median of per-round ratios to the bare app. The costs
compared are overheads: a stack's time per request minus the bare app's.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from asgi_server_apps import bare, floor, ours, theirs

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, app, path); the first is the baseline.
IN_PROCESS = (
    ("FastAPI hello", bare, "/"),
    ("raw ASGI app (the floor)", floor, "/"),
    ("FastAPI + DockerflowASGIMiddleware", ours, "/"),
    ("FastAPI + dockerflow package (fastapi integration)", theirs, "/"),
    ("/__lbheartbeat__ DockerflowASGIMiddleware", ours, "/__lbheartbeat__"),
    ("/__lbheartbeat__ dockerflow package (fastapi integration)", theirs, "/__lbheartbeat__"),
)

# (label, app in asgi_server_apps, path); the first is the baseline.
SERVED = (
    ("FastAPI hello", "bare", "/"),
    ("raw ASGI app (the floor)", "floor", "/"),
    ("FastAPI + DockerflowASGIMiddleware", "ours", "/"),
    ("FastAPI + dockerflow package", "theirs", "/"),
    ("/__lbheartbeat__ DockerflowASGIMiddleware", "ours", "/__lbheartbeat__"),
    ("/__lbheartbeat__ dockerflow package", "theirs", "/__lbheartbeat__"),
)


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost:8000"),
            (b"user-agent", b"bench/1.0"),
            (b"accept-language", b"en"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def drive(app: Any, template: dict[str, Any], requests: int) -> None:
    for _ in range(requests):
        await app(dict(template), _receive, _send)


@dataclass
class Timing:
    label: str
    app: Any
    path: str
    microseconds: list[float] = field(default_factory=list)


def in_process(requests: int, rounds: int) -> list[tuple[str, float]]:
    """Median µs per request of each stack, interleaved round by round on one loop."""
    stacks = [Timing(label, app, path) for label, app, path in IN_PROCESS]
    loop = asyncio.new_event_loop()
    try:
        for stack in stacks:
            loop.run_until_complete(drive(stack.app, scope_for(stack.path), min(requests, 2000)))
        for _ in range(rounds):
            for stack in stacks:
                started = time.perf_counter_ns()
                loop.run_until_complete(drive(stack.app, scope_for(stack.path), requests))
                stack.microseconds.append((time.perf_counter_ns() - started) / requests / 1000)
    finally:
        loop.close()
    return [(stack.label, statistics.median(stack.microseconds)) for stack in stacks]


def _start_uvicorn(app: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"asgi_server_apps:{app}",
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--workers", "1", "--no-access-log", "--log-level", "warning"),
        ],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def under_uvicorn(
    seconds: int,
    rounds: int,
    load: Callable[[str, int], float],
    wait_until_serving: Callable[[str], None],
    free_port: Callable[[], int],
) -> list[tuple[str, float, float]]:
    """(label, median requests/s, median ratio to the bare app) of each served stack."""
    ports = [free_port() for _ in SERVED]
    servers = [_start_uvicorn(app, port) for (_, app, _), port in zip(SERVED, ports)]
    try:
        urls = [f"http://127.0.0.1:{port}{path}" for (_, _, path), port in zip(SERVED, ports)]
        for url in urls:
            wait_until_serving(url)
            load(url, 1)  # warm up: imports, first connections
        rates: list[list[float]] = [[] for _ in SERVED]
        for round_number in range(rounds):
            for step in range(len(urls)):
                index = (round_number + step) % len(urls)
                rates[index].append(load(urls[index], seconds))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
    return [
        (
            label,
            statistics.median(found),
            statistics.median(rate / base for rate, base in zip(found, rates[0])),
        )
        for (label, _, _), found in zip(SERVED, rates)
    ]
