"""Fixtures of the reliability suite: gunicorn serving ``served_app``, and the real servers.

The real-server fixtures (``postgres_url``, ``redis_url``, ``servers`` ...) come from
``tests/services.py``: they skip without the server, fail under ``CI=true``, and ``servers``
starts again every server a test stopped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from harness import REPO, TALLY, VERSION, Gunicorn, server_environment, tally
from services import (  # noqa: F401 - fixtures, re-exported for pytest
    _unused_port,
    mariadb_url,
    postgres_url,
    postgresql_server,
    redis_server,
    redis_url,
    servers,
)

# The in-process tests import example_app as the gunicorn workers do, from the repository.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

Serve = Callable[..., Gunicorn]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``serve(name, workers=1, threads=8, pythonpath=(), preload=False, **variables)``: a
    started gunicorn (``preload``: the app imported in the master, the workers forked).

    Each gets a fresh SQLite database, a ``version.json`` (``VERSION``) in a directory of its
    own (``server.workdir / "version"``), a one-second check timeout and the stats route;
    ``variables`` add to or replace those. Every server still running is killed at the end of
    the module.
    """
    started: list[Gunicorn] = []

    def start(
        name: str,
        *,
        workers: int = 1,
        threads: int = 8,
        pythonpath: tuple[str, ...] = (),
        preload: bool = False,
        **variables: str,
    ) -> Gunicorn:
        workdir = tmp_path_factory.mktemp(name)
        version_dir = workdir / "version"
        version_dir.mkdir()
        (version_dir / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
        defaults = {
            "DATABASE_URL": f"sqlite:///{workdir / 'example.sqlite3'}",
            "DOCKERFLOW_VERSION_PATH": str(version_dir),
            "DOCKERFLOW_CHECK_TIMEOUT": "1",
            "RELIABILITY_PROBES": "1",
        }
        environ = server_environment(pythonpath, **{**defaults, **variables})
        server = Gunicorn(workdir, environ, workers=workers, threads=threads, preload=preload)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()
        lines = server.stdout_lines()
        tally("log lines", len(lines))
        tally("request.summary lines", sum('"Type":"request.summary"' in line for line in lines))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY:
        counts = ", ".join(f"{key}: {value}" for key, value in sorted(TALLY.items()))
        terminalreporter.write_line(f"reliability: {counts}")
