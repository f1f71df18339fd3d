"""The example service under the real gunicorn and the real uWSGI, over HTTP.

Each server is started once per module, from ``example_app/`` with its own config file and a
fresh SQLite database, as ``make run`` and the Docker image start it. Every request is sent
before the server is stopped with SIGTERM, so the tests read the complete stdout: one
mozlog ``request.summary`` line per request, with the request id the test chose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from server_process import ServerProcess, unused_port

EXAMPLE_APP = Path(__file__).resolve().parent.parent / "example_app"
BIN = Path(sys.executable).parent
GUNICORN = BIN / "gunicorn"
UWSGI = BIN / "uwsgi"

SERVER_COMMANDS = {
    # Exactly as `make run` starts it.
    "gunicorn": [str(GUNICORN), "--config", "gunicorn.conf.py", "app:app"],
    "uwsgi": [str(UWSGI), "--ini", "uwsgi.ini"],
}

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0
WORKERS = 2
# A worker under uWSGI 2.0 ignores the graceful stop until it has imported the app, and the
# master then waits for it forever; a server is stopped only once all its workers are up.
WORKER_READY_LINE = {"uwsgi": "WSGI app 0 (mountpoint='') ready in"}

VERSION = {
    "source": "https://github.com/example/dockerflow-wsgi",
    "version": "1.2.3",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/42",
}
NOTE_TEXT = "Remember the milk"
STREAM_BODY = b"".join(f"chunk {number}\n".encode() for number in range(1, 6))

# What each request is: (method, path, JSON body, expected status).
REQUESTS: dict[str, tuple[str, str, Any, int]] = {
    "lbheartbeat": ("GET", "/__lbheartbeat__", None, 200),
    "heartbeat": ("GET", "/__heartbeat__", None, 200),
    "version": ("GET", "/__version__", None, 200),
    "hello": ("GET", "/", None, 200),
    "create": ("POST", "/notes", {"text": NOTE_TEXT}, 201),
    "list": ("GET", "/notes", None, 200),
    "invalid": ("POST", "/notes", {"text": ""}, 400),
    "stream": ("GET", "/stream", None, 200),
    "boom": ("GET", "/boom", None, 500),
}

MOZLOG_KEYS = {"Timestamp", "Type", "Logger", "Hostname", "EnvVersion", "Severity", "Pid", "Fields"}

# Variables of the developer's or CI's environment that would change what is tested.
_FOREIGN_VARIABLES = (
    "PORT",
    "WEB_CONCURRENCY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALEMBIC_CONFIG",
    "LOG_LEVEL",
)
_FOREIGN_PREFIXES = ("DOCKERFLOW_", "GUNICORN_", "UWSGI_")

# No HTTP proxy from the environment between the tests and 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ServerRun:
    """Everything one server did, from start to SIGTERM."""

    name: str
    request_ids: dict[str, str]
    answers: dict[str, Answer]
    probe_ids: list[str]
    stdout_lines: list[str]
    stderr: str
    returncode: int
    records: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.records = []
        for line in self.stdout_lines:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                continue  # test_stdout_is_only_mozlog_json names the line

    def summaries(self, request_id: str) -> list[dict[str, Any]]:
        return [
            record
            for record in self.records
            if record.get("Type") == "request.summary"
            and record.get("Fields", {}).get("rid") == request_id
        ]

    def app_records(self, message: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record.get("Fields", {}).get("msg") == message]


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so the server tests must run, not skip")
    pytest.skip(message)


def _server_environment(**variables: str) -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_VARIABLES and not name.startswith(_FOREIGN_PREFIXES)
    }
    environ.update(variables)
    return environ


def fetch(base_url: str, method: str, path: str, request_id: str, payload: Any = None) -> Answer:
    headers = {"X-Request-ID": request_id}
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read())


def _wait_until_ready(server: ServerProcess, base_url: str, name: str) -> list[str]:
    """Poll ``/__lbheartbeat__`` until it answers and every worker is up.

    :returns: the request ids of the probes sent.
    """
    probe_ids: list[str] = []
    answered = False

    def ready() -> bool:
        nonlocal answered
        if not answered:
            probe_id = f"{name}-probe-{len(probe_ids)}"
            probe_ids.append(probe_id)
            try:
                answer = fetch(base_url, "GET", "/__lbheartbeat__", probe_id)
            except (urllib.error.URLError, OSError):
                return False
            assert answer.status == 200, f"{name} answered a probe with {answer.status}"
            answered = True
        ready_line = WORKER_READY_LINE.get(name)
        return ready_line is None or server.errors().count(ready_line) >= WORKERS

    server.wait_until(ready, STARTUP_TIMEOUT, interval=0.1)
    return probe_ids


@pytest.fixture(scope="module", params=sorted(SERVER_COMMANDS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ServerRun:
    name: str = request.param
    executable = Path(SERVER_COMMANDS[name][0])
    if not executable.exists():
        _skip_or_fail(f"{name} is not installed in {BIN} (pip install {name})")

    workdir = tmp_path_factory.mktemp(name)
    version_dir = workdir / "version"
    version_dir.mkdir()
    (version_dir / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    port = unused_port()
    environ = _server_environment(
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        DATABASE_URL=f"sqlite:///{workdir / 'example.sqlite3'}",
        DOCKERFLOW_VERSION_PATH=str(version_dir),
    )
    stdout_path = workdir / "stdout.log"
    stderr_path = workdir / "stderr.log"
    base_url = f"http://127.0.0.1:{port}"
    request_ids = {label: f"{name}-{label}" for label in REQUESTS}

    process = ServerProcess(
        SERVER_COMMANDS[name],
        cwd=EXAMPLE_APP,
        env=environ,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        name=name,
    ).start()
    try:
        probe_ids = _wait_until_ready(process, base_url, name)
        answers = {
            label: fetch(base_url, method, path, request_ids[label], payload)
            for label, (method, path, payload, _) in REQUESTS.items()
        }
        returncode = process.stop(SHUTDOWN_TIMEOUT)
        if returncode is None:
            pytest.fail(f"{name} did not stop within {SHUTDOWN_TIMEOUT} s of SIGTERM")
    finally:
        process.kill()

    return ServerRun(
        name=name,
        request_ids=request_ids,
        answers=answers,
        probe_ids=probe_ids,
        stdout_lines=stdout_path.read_text(encoding="utf-8").splitlines(),
        stderr=stderr_path.read_text(encoding="utf-8", errors="replace"),
        returncode=returncode,
    )


# -- what the clients saw --------------------------------------------------------------------


@pytest.mark.servers
@pytest.mark.parametrize("label", list(REQUESTS))
def test_status_and_request_id_header(server: ServerRun, label: str) -> None:
    answer = server.answers[label]
    assert answer.status == REQUESTS[label][3], answer.body
    assert answer.headers["X-Request-ID"] == server.request_ids[label]


@pytest.mark.servers
def test_lbheartbeat(server: ServerRun) -> None:
    answer = server.answers["lbheartbeat"]
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {}


@pytest.mark.servers
def test_heartbeat_sees_database_and_migrations(server: ServerRun) -> None:
    body = server.answers["heartbeat"].json()
    assert body["status"] == "ok", body
    # The fresh database was migrated when the workers started.
    assert body["checks"]["check_database_connected"] == "ok"
    assert body["checks"]["check_migrations_applied"] == "ok"
    assert body["details"] == {}


@pytest.mark.servers
def test_version_is_version_json(server: ServerRun) -> None:
    assert server.answers["version"].json() == VERSION


@pytest.mark.servers
def test_hello_knows_the_request_id(server: ServerRun) -> None:
    assert server.answers["hello"].json() == {
        "message": "hello from dockerflow-wsgi",
        "request_id": server.request_ids["hello"],
    }


@pytest.mark.servers
def test_notes_are_stored(server: ServerRun) -> None:
    created = server.answers["create"].json()
    assert created["text"] == NOTE_TEXT
    assert server.answers["list"].json()["notes"] == [created]
    assert "error" in server.answers["invalid"].json()


@pytest.mark.servers
def test_stream_arrives_whole(server: ServerRun) -> None:
    assert server.answers["stream"].body == STREAM_BODY


@pytest.mark.servers
def test_unhandled_error_is_a_json_500(server: ServerRun) -> None:
    assert "error" in server.answers["boom"].json()


# -- what the logs say -----------------------------------------------------------------------


@pytest.mark.servers
def test_stdout_is_only_mozlog_json(server: ServerRun) -> None:
    assert server.stdout_lines
    for line in server.stdout_lines:
        record = json.loads(line)
        assert set(record) == MOZLOG_KEYS, line
        assert record["Logger"] == "example_app"
        assert record["EnvVersion"] == "2.0"
        assert isinstance(record["Timestamp"], int)


@pytest.mark.servers
@pytest.mark.parametrize("label", list(REQUESTS))
def test_one_request_summary_per_request(server: ServerRun, label: str) -> None:
    method, path, _, status = REQUESTS[label]
    summaries = server.summaries(server.request_ids[label])
    assert len(summaries) == 1, summaries
    fields = summaries[0]["Fields"]
    assert fields["method"] == method
    assert fields["path"] == path
    assert fields["code"] == status
    assert fields["errno"] == (0 if status < 400 else status)
    assert isinstance(fields["t"], int)


@pytest.mark.servers
def test_no_other_request_summaries(server: ServerRun) -> None:
    """Besides the requests above, only the readiness probes were logged, once each at most."""
    ours = set(server.request_ids.values())
    probes = set(server.probe_ids)
    others = [
        record["Fields"]
        for record in server.records
        if record["Type"] == "request.summary" and record["Fields"]["rid"] not in ours
    ]
    assert all(fields["rid"] in probes for fields in others), others
    assert all(fields["path"] == "/__lbheartbeat__" for fields in others), others
    assert len({fields["rid"] for fields in others}) == len(others), others


@pytest.mark.servers
@pytest.mark.parametrize(
    ("label", "message"),
    [("hello", "Saying hello"), ("create", "Note created"), ("stream", "Stream finished")],
)
def test_app_records_carry_the_request_id(server: ServerRun, label: str, message: str) -> None:
    records = server.app_records(message)
    assert [record["Fields"]["rid"] for record in records] == [server.request_ids[label]]


@pytest.mark.servers
def test_unhandled_error_is_logged_with_its_traceback(server: ServerRun) -> None:
    """By Flask, and in the request's summary, which is an ERROR although Flask answered."""
    errors = [record for record in server.records if record["Severity"] <= 3]
    assert sorted(record["Type"] for record in errors) == ["app", "request.summary"], errors
    for record in errors:
        fields = record["Fields"]
        assert fields["rid"] == server.request_ids["boom"]
        assert "DeliberateError" in fields["error"]
        assert "Traceback" in fields["traceback"]
    assert "Traceback" not in server.stderr


@pytest.mark.servers
def test_stops_cleanly_on_sigterm(server: ServerRun) -> None:
    assert server.returncode == 0, server.stderr[-3000:]


# -- configuration from the environment ------------------------------------------------------


def _resolved_config(name: str, tmp_path: Path, **variables: str) -> str:
    """The server's settings as its config file resolves them, without serving anything."""
    if name == "gunicorn":
        command = [str(GUNICORN), "--config", "gunicorn.conf.py", "--print-config", "app:app"]
    else:
        if not UWSGI.exists():
            _skip_or_fail(f"uwsgi is not installed in {BIN} (pip install uwsgi)")
        # uWSGI prints its configuration, then fails to write the pid file and exits, before
        # it binds any socket.
        missing = tmp_path / "missing" / "uwsgi.pid"
        command = [str(UWSGI), "--ini", "uwsgi.ini", "--show-config", "--pidfile", str(missing)]
    environ = _server_environment(
        DATABASE_URL=f"sqlite:///{tmp_path / 'example.sqlite3'}", **variables
    )
    result = subprocess.run(
        command,
        cwd=EXAMPLE_APP,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert " bound to " not in output, output
    return output


def _settings(output: str) -> dict[str, str]:
    """``name = value`` lines; of a name given twice, the last value (the one that holds)."""
    settings: dict[str, str] = {}
    for line in output.splitlines():
        key, found, value = line.partition(" = ")
        if found:
            settings[key.strip()] = value.strip()
    return settings


@pytest.mark.parametrize(
    ("variables", "bind", "workers", "threads"),
    [
        ({}, "0.0.0.0:8000", "2", "4"),
        (
            {"PORT": "8123", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "5"},
            "0.0.0.0:8123",
            "3",
            "5",
        ),
    ],
)
def test_gunicorn_settings_from_environment(
    tmp_path: Path, variables: dict[str, str], bind: str, workers: str, threads: str
) -> None:
    settings = _settings(_resolved_config("gunicorn", tmp_path, **variables))
    assert settings["bind"] == repr([bind])
    assert settings["workers"] == workers
    assert settings["threads"] == threads
    assert settings["worker_class"] == "gthread"
    assert settings["accesslog"] == "None"
    assert settings["errorlog"] == "-"


@pytest.mark.parametrize(
    ("variables", "bind", "processes", "threads"),
    [
        ({}, "0.0.0.0:8000", "2", "4"),
        ({"PORT": "8123", "WEB_CONCURRENCY": "3", "UWSGI_THREADS": "5"}, "0.0.0.0:8123", "3", "5"),
    ],
)
def test_uwsgi_settings_from_environment(
    tmp_path: Path, variables: dict[str, str], bind: str, processes: str, threads: str
) -> None:
    output = _resolved_config("uwsgi", tmp_path, **variables)
    start = output.index("[uwsgi]")
    settings = _settings(output[start : output.index(";end of configuration")])
    assert settings["http-socket"] == bind
    assert settings["processes"] == processes
    # UWSGI_THREADS is read by uWSGI itself, as every UWSGI_<OPTION> variable.
    assert settings["threads"] == threads
    assert settings["chdir"].rstrip("/") == str(EXAMPLE_APP)
    assert settings["module"] == "app:app"
    for flag in (
        "master",
        "need-app",
        "enable-threads",
        "lazy-apps",
        "die-on-term",
        "disable-logging",
    ):
        assert settings[flag] == "true", flag
