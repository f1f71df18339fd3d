"""A bare WSGI service whose ``version_callback`` raises what ends a process.

The callback raises the exception named in the file ``raise`` of ``DOCKERFLOW_VERSION_PATH``
(``SystemExit``, ``SystemExit(0)``, ``KeyboardInterrupt`` or ``GeneratorExit``), its text
quoting a database URL with :data:`SECRET` as its password. A file the test writes, rather
than a variable, lets one running worker meet each of them in turn.

No Flask and no database, so that what happens to the worker is the library's doing. Records
are mozlog JSON lines on stdout (the example's logging). Every answer carries the answering
process's id in ``X-Worker-Pid``; every path but Dockerflow's answers ``{"pid": ...}``, which
also serves ``test_secrets_sent_by_clients`` as a bare app.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

from dockerflow_wsgi import DockerflowMiddleware
from example_app.logging_config import configure_logging

PID_HEADER = "X-Worker-Pid"
SECRET = "Vc-Pa55w0rd-3e7a"
LEAKY_TEXT = f"cannot reach postgresql://app:{SECRET}@db.internal/app"
RAISED: dict[str, Callable[[], BaseException]] = {
    "SystemExit": lambda: SystemExit(LEAKY_TEXT),
    "SystemExit(0)": lambda: SystemExit(0),
    "KeyboardInterrupt": lambda: KeyboardInterrupt(LEAKY_TEXT),
    "GeneratorExit": lambda: GeneratorExit(LEAKY_TEXT),
}


def raising_callback(version_path: str) -> dict[str, Any]:
    raise RAISED[(Path(version_path) / "raise").read_text(encoding="utf-8").strip()]()


def _pid(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps({"pid": os.getpid()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


configure_logging()
middleware = DockerflowMiddleware(_pid, version_callback=raising_callback)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def with_pid(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, (PID_HEADER, str(os.getpid()))], exc_info)

    return middleware(environ, with_pid)
