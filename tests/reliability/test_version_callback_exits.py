"""A ``version_callback`` raising ``SystemExit``, ``KeyboardInterrupt`` or ``GeneratorExit``
costs a real server nothing: ``/__version__`` answers a JSON ``500``, one masked ERROR record is
logged, and the same worker answers the next request.

Let through, such an exception ended the uWSGI worker mid-request (the client saw the
connection close, the master forked another) and made gunicorn answer its own HTML page.
Served by ``version_callback_app`` under uWSGI and both gunicorn worker models; the same rule
in process: ``tests/test_version.py::
test_a_callback_raising_any_base_exception_is_a_json_500_with_one_masked_error``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import UWSGI, Gunicorn, Server, Uwsgi, fetch, log_problems, server_environment
from version_callback_app import PID_HEADER, RAISED, SECRET

pytestmark = pytest.mark.servers

APP = "version_callback_app:app"
#: mozlog's Severity of an ERROR record.
ERROR_SEVERITY = 3


def make_server(kind: str, workdir: Path, environ: dict[str, str]) -> Server:
    if kind == "uwsgi":
        if not UWSGI.exists():
            message = f"uWSGI is not installed at {UWSGI}"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{message}; CI=true, so the server tests must run, not skip")
            pytest.skip(message)
        return Uwsgi(workdir, environ, app=APP, workers=1, threads=2)
    if kind == "gunicorn-sync":
        return Gunicorn(workdir, environ, app=APP, workers=1, threads=1, worker_class="sync")
    return Gunicorn(workdir, environ, app=APP, workers=1, threads=2, worker_class="gthread")


@pytest.fixture(params=["uwsgi", "gunicorn-sync", "gunicorn-gthread"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    version_path = tmp_path / "version"
    version_path.mkdir()
    environ = server_environment(DOCKERFLOW_VERSION_PATH=str(version_path))
    started = make_server(request.param, tmp_path, environ)
    try:
        started.start()
        yield started
    finally:
        started.kill()


def test_the_worker_answers_a_json_500_and_serves_on(server: Server) -> None:
    version_path = Path(server.environ["DOCKERFLOW_VERSION_PATH"])
    [worker] = server.worker_pids()
    sent = []

    for number, raised in enumerate(RAISED):
        (version_path / "raise").write_text(raised, encoding="utf-8")
        request_id = f"version-{number}"
        sent.append(request_id)

        answer = fetch(server.port, "GET", "/__version__", **{"X-Request-ID": request_id})
        after = fetch(server.port, "GET", "/")

        assert (answer.status, answer.header("Content-Type")) == (500, "application/json"), raised
        error_type = raised.split("(")[0]
        assert answer.json() == {"error": f"version callback failed: {error_type}"}
        assert answer.header(PID_HEADER) == str(worker)
        assert after.json() == {"pid": worker}, f"another worker answered after {raised}"

    assert server.running() and server.worker_pids() == {worker}
    errors = [
        record
        for record in server.records()
        if record["Type"] == "dockerflow_wsgi" and record["Severity"] <= ERROR_SEVERITY
    ]
    assert [record["Fields"]["rid"] for record in errors] == sent
    assert all(record["Fields"]["msg"].startswith("version_callback failed: ") for record in errors)
    output = "\n".join(server.stdout_lines()) + server.stderr_text()
    assert SECRET not in output
    assert "Traceback" not in server.stderr_text()
    assert log_problems(server.stdout_lines()) == []
