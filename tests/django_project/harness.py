"""Running Django projects for the tests: ``manage.py`` commands, gunicorn, the in-process suites.

Used by ``tests/test_django.py`` and ``tests/test_django_migration.py`` (imported as
``django_project.harness``). Nothing here asserts but that a command or server it started
worked; the tests decide what must hold.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any, Optional

from server_process import HOST, ServerProcess, unused_port

PROJECT = Path(__file__).resolve().parent
REPO = PROJECT.parent.parent
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0

# What would change the middleware, Django or the servers from outside the test.
_FOREIGN_VARIABLES = frozenset(
    {"DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
)
_FOREIGN_PREFIXES = ("DOCKERFLOW_", "GUNICORN_", "PROJECT_")


def environment(*pythonpath: Path, **variables: str) -> dict[str, str]:
    """This process's environment without what would change a project, plus ``variables``."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_VARIABLES and not name.startswith(_FOREIGN_PREFIXES)
    }
    if pythonpath:
        environ["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    environ.update(variables)
    return environ


def run(command: list[str], cwd: Path, environ: Mapping[str, str]) -> str:
    """Run ``command`` to its end; its stdout, or an error with everything it wrote."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=dict(environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited with {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def manage(directory: Path, *args: str, environ: Mapping[str, str]) -> str:
    """``python manage.py args`` in ``directory``."""
    return run([sys.executable, "manage.py", *args], directory, environ)


def run_suite(module: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run ``tests/<module>`` with pytest in a process of its own, set up for the test project.

    Django is set up once per process, and other test files set it up their own way: the
    suites that need the test project's settings run here, with ``DJANGO_SETTINGS_MODULE``
    naming them (which is what makes such a module collect its tests).
    """
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra", f"tests/{module}"],
        cwd=REPO,
        env=environment(PROJECT, DJANGO_SETTINGS_MODULE="project.settings", **variables),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Served:
    """A gunicorn serving a project: send it requests; once it stopped, read its stdout."""

    port: int
    stdout_path: Path
    cookies: CookieJar = field(default_factory=CookieJar)

    def __post_init__(self) -> None:
        # No proxy from the environment between the tests and 127.0.0.1; cookies kept.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies)
        )

    def request(
        self,
        method: str,
        path: str,
        form: Optional[Mapping[str, str]] = None,
        **headers: str,
    ) -> Answer:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(
            f"http://{HOST}:{self.port}{path}", data=data, method=method, headers=headers
        )
        try:
            with self._opener.open(request, timeout=10) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, error.headers, error.read())

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, **headers)

    def records(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed: each must be a JSON object."""
        lines = self.stdout_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def summaries(self, request_id: str) -> list[dict[str, Any]]:
        return [
            record
            for record in self.records()
            if record["Type"] == "request.summary" and record["Fields"]["rid"] == request_id
        ]


@contextlib.contextmanager
def gunicorn(app: str, directory: Path, environ: Mapping[str, str], logs: Path) -> Iterator[Served]:
    """Serve ``app`` from ``directory`` with gunicorn (one gthread worker) on a free port, its
    stdout and stderr in files of ``logs``.

    Ready once ``/__lbheartbeat__`` answers; stopped with SIGTERM on the way out, whatever
    happened, so that the stdout it wrote is complete when the test reads it.
    """
    port = unused_port()
    command = [
        str(BIN / "gunicorn"),
        "--chdir",
        str(directory),
        "--bind",
        f"{HOST}:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        "4",
        app,
    ]
    served = Served(port, logs / f"gunicorn-{port}.stdout")
    server = ServerProcess(
        command,
        cwd=directory,
        env=environ,
        stdout_path=served.stdout_path,
        stderr_path=logs / f"gunicorn-{port}.stderr",
        name="gunicorn",
    ).start()
    try:
        server.wait_until(
            lambda: served.get("/__lbheartbeat__", **{"X-Request-ID": "ready"}).status == 200,
            STARTUP_TIMEOUT,
            interval=0.1,
        )
        yield served
    finally:
        if server.stop(SHUTDOWN_TIMEOUT) is None:
            raise AssertionError(f"gunicorn did not stop within {SHUTDOWN_TIMEOUT:g} s")
