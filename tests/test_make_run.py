"""``make run``, as the README tells a newcomer to start: the three Dockerflow paths answer 200,
``/__version__`` with the ``version.json`` it wrote, and its stdout is mozlog JSON only.

The test extra holds everything the example's does, so make is told (``-o``) not to install
the example's extra into the virtualenv running these tests: it runs the rest of ``make run``
as a newcomer's make does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_process import ServerProcess, unused_port

REPOSITORY = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0
PATHS = ("/__lbheartbeat__", "/__heartbeat__", "/__version__")

# No HTTP proxy from the environment between the test and 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Run:
    answers: dict[str, tuple[int, bytes]]
    version_json: bytes
    stdout: str
    stderr: str


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    workdir = tmp_path_factory.mktemp("make-run")
    version_json = REPOSITORY / "version.json"
    left_by_the_developer = version_json.exists()
    port = unused_port()
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DOCKERFLOW_", "GUNICORN_", "MAKE"))
        and name not in ("DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "WEB_CONCURRENCY")
    }
    # The example's SQLite default lives beside app.py; this run's database lives here.
    environ["DATABASE_URL"] = f"sqlite:///{workdir / 'example.sqlite3'}"
    stdout, stderr = workdir / "stdout", workdir / "stderr"
    command = [
        make,
        "--no-print-directory",
        "-o",
        f"{VENV}/.installed-example",
        "run",
        f"VENV={VENV}",
        f"PORT={port}",
    ]
    # SIGTERM to make and everything it started (its own process group), then SIGKILL.
    server = ServerProcess(
        command,
        cwd=REPOSITORY,
        env=environ,
        stdout_path=stdout,
        stderr_path=stderr,
        name="make run",
        signal_group=True,
    ).start()
    try:
        server.wait_until(lambda: get(port, "/__lbheartbeat__")[0] == 200, STARTUP_TIMEOUT, 0.2)
        answers = {path: get(port, path) for path in PATHS}
        written = version_json.read_bytes()
    finally:
        server.stop(SHUTDOWN_TIMEOUT)
        if not left_by_the_developer:
            version_json.unlink(missing_ok=True)
    yield Run(answers, written, stdout.read_text(), stderr.read_text())


@pytest.mark.servers
@pytest.mark.parametrize("path", PATHS)
def test_each_dockerflow_path_answers_200(make_run: Run, path: str) -> None:
    status, body = make_run.answers[path]
    assert status == 200, body


@pytest.mark.servers
def test_version_is_the_version_json_make_run_wrote(make_run: Run) -> None:
    served = json.loads(make_run.answers["/__version__"][1])
    assert served == json.loads(make_run.version_json)
    git_head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True
    )
    if git_head.returncode == 0:
        assert served["commit"] == git_head.stdout.strip()


@pytest.mark.servers
def test_stdout_is_mozlog_json_only(make_run: Run) -> None:
    lines = make_run.stdout.splitlines()
    assert lines, make_run.stderr
    records = []
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    assert {record["Logger"] for record in records} == {"example_app"}
    summarised = [
        record["Fields"]["path"] for record in records if record["Type"] == "request.summary"
    ]
    assert set(summarised) == set(PATHS)
    # gunicorn's own lines (listening, workers booting) are in its error log, on stderr.
    assert "Booting worker" in make_run.stderr


def test_the_generated_version_json_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", "version.json"], cwd=REPOSITORY
    )
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0
