"""Serving the apps of this directory with the real uvicorn and hypercorn, for
``tests/test_asgi_servers.py`` (imported as ``asgi_apps.harness``).

Each server runs with ``tests/server_process.py``, in a session of its own on a free loopback
port, its stdout and stderr in files of a working directory; it is stopped with SIGTERM, and
killed with its children (hypercorn's worker) if it does not stop by itself. Nothing here
asserts but that a server started and answers its stats; the tests decide what must hold.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from server_process import HOST, ServerProcess, unused_port

HERE = Path(__file__).resolve().parent
DJANGO_PROJECT = HERE.parent / "django_project"
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0

#: The application each server imports, by the framework it is written with.
APPS = {
    "fastapi": "fastapi_service:app",
    "starlette": "starlette_service:app",
    "django": "django_service:application",
}
SERVERS = ("uvicorn", "hypercorn")

MOZLOG_KEYS = frozenset(
    {"Timestamp", "Type", "Logger", "Hostname", "EnvVersion", "Severity", "Pid", "Fields"}
)

# What would change the middleware, Django or the servers from outside the test.
_FOREIGN_VARIABLES = frozenset(
    {"DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
)
_FOREIGN_PREFIXES = ("DOCKERFLOW_", "UVICORN_", "PROJECT_", "ASGI_TESTS_")


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without what would change a served app, plus what every
    served app needs: this directory and the Django test project on ``PYTHONPATH``, and
    unbuffered output (the tests read stdout while the server runs)."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_VARIABLES and not name.startswith(_FOREIGN_PREFIXES)
    }
    environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(DJANGO_PROJECT)])
    environ["PYTHONUNBUFFERED"] = "1"
    environ.update(variables)
    return environ


def manage_django_project(database: Path, *args: str, **variables: str) -> None:
    """``manage.py args`` of the test project, on the SQLite ``database``."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=DJANGO_PROJECT,
        env=environment(
            DJANGO_SETTINGS_MODULE="project.settings",
            PROJECT_DATABASE=f"sqlite:///{database}",
            **variables,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )


def server_command(server: str, app: str, port: int) -> list[str]:
    """The command line of ``server`` serving ``app``, as a deployment would write it.

    uvicorn's access log is off: it writes plain text lines on stdout, where only mozlog JSON
    belongs, and the request summary is the access log. hypercorn has none by default. Both
    give up on requests still running 10 s (uvicorn, as told) or 3 s (hypercorn's default)
    after SIGTERM, well within ``SHUTDOWN_TIMEOUT``.
    """
    if server == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "10",
        ]
    if server == "hypercorn":
        return [str(BIN / "hypercorn"), app, "--bind", f"{HOST}:{port}"]
    raise ValueError(f"no such server: {server}")


@dataclass
class Answer:
    """One HTTP response, as the client received it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_mozlog(lines: list[str]) -> list[dict[str, Any]]:
    """The lines that are JSON objects; tests that care about the others look at the lines."""
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class Served:
    """``app`` (``module:attribute``, imported from ``cwd``) served by ``server``, its output
    in ``workdir``: started, stopped and started again as the tests need, each run with a port
    and log files of its own.

    Every request it sends carries a request id (the caller's, or ``<label>-<n>``), which it
    remembers once the request is sent, so that a test can account for every summary of a run.
    """

    def __init__(
        self,
        server: str,
        app: str,
        workdir: Path,
        environ: Mapping[str, str],
        *,
        cwd: Path = HERE,
        framework: str = "",
        label: Optional[str] = None,
    ) -> None:
        self.server = server
        self.app = app
        self.framework = framework
        self.workdir = workdir
        self.environ = dict(environ)
        self.cwd = cwd
        self.label = label or f"{server}-{app.partition(':')[0]}"
        self.process: Optional[ServerProcess] = None
        self.port = 0
        self.runs = 0
        #: The request ids sent during the current run (invalid ones included), in order.
        self.sent_ids: list[str] = []
        self._numbers = itertools.count()

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"run-{self.runs}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"run-{self.runs}.stderr"

    @property
    def lifespan_log(self) -> Path:
        """The file the app writes its lifespan events to, in this run."""
        return self.workdir / f"run-{self.runs}.lifespan"

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    # -- the process ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start a new run; return once ``/__lbheartbeat__`` answers."""
        self.runs += 1
        self.port = unused_port()
        self.sent_ids = []
        environ = {**self.environ, "ASGI_TESTS_LIFESPAN_LOG": str(self.lifespan_log)}
        self.process = ServerProcess(
            server_command(self.server, self.app, self.port),
            cwd=self.cwd,
            env=environ,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
            name=self.label,
        ).start()
        self.process.wait_until(lambda: self.get("/__lbheartbeat__").status == 200, STARTUP_TIMEOUT)

    def stop(self) -> None:
        """Ask the server to stop with SIGTERM, as a container runtime does, and wait until it
        has. If it has not stopped by itself after ``SHUTDOWN_TIMEOUT``, it is killed and
        :attr:`killed` says so."""
        if self.process is not None:
            self.process.stop(SHUTDOWN_TIMEOUT)

    def kill(self) -> None:
        """Kill the server and its workers (its session), if it still runs."""
        if self.process is not None:
            self.process.kill()

    @property
    def killed(self) -> bool:
        """Whether the current run had to be killed."""
        return self.process is not None and self.process.killed

    # -- HTTP -----------------------------------------------------------------------------------

    def new_request_id(self) -> str:
        return f"{self.label}-{next(self._numbers)}"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)

    def request(
        self,
        method: str,
        path: str,
        request_id: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Optional[bytes] = None,
    ) -> Answer:
        """One request on a connection of its own, closed after the answer."""
        if request_id is None:
            request_id = self.new_request_id()
        sent = {"Connection": "close", "X-Request-ID": request_id, **(headers or {})}
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=sent)
            self.sent_ids.append(request_id)
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str, request_id: Optional[str] = None, **headers: str) -> Answer:
        return self.request("GET", path, request_id, headers)

    def post(self, path: str, request_id: Optional[str] = None) -> Answer:
        return self.request("POST", path, request_id, {"Content-Length": "0"})

    @contextlib.contextmanager
    def streaming(self, path: str, request_id: str) -> Iterator[http.client.HTTPResponse]:
        """A GET whose body the test reads as it comes (``readline()``). On the way out the
        connection is closed, read to the end or not: a client that goes away.

        The response holds the socket (``Connection: close`` hands it over), so it is the
        response that must be closed for the server to see the client go.
        """
        connection = self.connection()
        try:
            connection.request(
                "GET", path, headers={"Connection": "close", "X-Request-ID": request_id}
            )
            self.sent_ids.append(request_id)
            response = connection.getresponse()
            try:
                yield response
            finally:
                response.close()
        finally:
            connection.close()

    def stats(self) -> dict[str, Any]:
        """What the app's process saw (see ``service.stats``)."""
        answer = self.get("/stats/")
        assert answer.status == 200, answer
        return answer.json()

    # -- the output -----------------------------------------------------------------------------

    def stdout_lines(self) -> list[str]:
        """The complete lines of stdout so far (a line being written is left out)."""
        text = self.stdout_path.read_text(encoding="utf-8", errors="replace")
        return text.split("\n")[:-1]

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def records(self) -> list[dict[str, Any]]:
        return parse_mozlog(self.stdout_lines())

    def summaries(self, request_id: Optional[str] = None) -> list[dict[str, Any]]:
        """The ``request.summary`` records of ``request_id`` (of every request, without)."""
        return [
            record
            for record in self.records()
            if record.get("Type") == "request.summary"
            and (request_id is None or record.get("Fields", {}).get("rid") == request_id)
        ]

    def wait_for_summaries(self, request_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The summaries of ``request_id`` once there is one (or ``timeout`` has passed).

        A client may have the whole response before the server's task gets to write it.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.summaries(request_id)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def app_records(self, message: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["Fields"].get("msg") == message]
