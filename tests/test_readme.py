"""The README's logging snippet does what it says, as a new user would paste it.

Every logger's records as mozlog JSON on stdout, the library's own included (a configuration
without ``"disable_existing_loggers": False`` silently drops the heartbeat's error records),
and the same under uWSGI, whose Python plugin points ``sys.stdout`` at file descriptor 2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from server_process import ServerProcess, unused_port

REPO = Path(__file__).resolve().parent.parent
UWSGI = Path(sys.executable).parent / "uwsgi"

SERVICE = """\
import dockerflow_wsgi  # the library's loggers exist before logging is configured
from dockerflow_wsgi import DockerflowMiddleware, checks

{snippet}

import logging


def hello(environ, start_response):
    logging.getLogger("myapp.views").info("Saying hello")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def broken():
    return [checks.Error("the disk is full", id="myapp.health.E001")]


application = DockerflowMiddleware(hello, checks=[("disk", broken)])
"""


def readme_logging_snippet(call: str = "dictConfig") -> str:
    """The README's block that sets logging up with ``call``: ``dictConfig`` or ``configure``."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    [snippet] = [block for block in blocks if f"{call}(" in block]
    return snippet


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def assert_every_logger_wrote_mozlog(lines: list[dict]) -> None:
    types = {line["Type"] for line in lines}
    assert {"request.summary", "myapp.views", "dockerflow_wsgi", "dockerflow_wsgi.checks"} <= types
    [view] = [line for line in lines if line["Type"] == "myapp.views"]
    [summary] = [
        line
        for line in lines
        if line["Type"] == "request.summary" and line["Fields"]["path"] == "/"
    ]
    assert view["Fields"]["rid"] == summary["Fields"]["rid"] == "readme-1"
    assert {line["Logger"] for line in lines} == {"myapp"}


@pytest.mark.parametrize("call", ["dictConfig", "configure"])
def test_the_readme_logging_snippet_logs_every_logger_as_mozlog_on_stdout(call, tmp_path):
    (tmp_path / "service.py").write_text(SERVICE.format(snippet=readme_logging_snippet(call)))
    script = textwrap.dedent(
        """
        import webtest
        from service import application

        client = webtest.TestApp(application)
        client.get("/", headers={"X-Request-ID": "readme-1"})
        client.get("/__heartbeat__", status=500)
        """
    )

    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    assert all(line.startswith("{") for line in finished.stdout.splitlines())
    assert_every_logger_wrote_mozlog(json_lines(finished.stdout))


def get(url: str) -> int:
    request = urllib.request.Request(url, headers={"X-Request-ID": "readme-1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.servers
def test_the_readme_logging_snippet_logs_to_stdout_under_uwsgi(tmp_path):
    if not UWSGI.exists():
        pytest.fail("uWSGI is a test dependency: pip install -e '.[test]'")
    (tmp_path / "service.py").write_text(SERVICE.format(snippet=readme_logging_snippet()))
    port = unused_port()
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [
        str(UWSGI),
        "--http-socket",
        f"127.0.0.1:{port}",
        "--chdir",
        str(tmp_path),
        "--module",
        "service:application",
        "--need-app",
        "--master",
        "--enable-threads",
        "--die-on-term",
        "--disable-logging",
    ]

    def answers_200() -> bool:
        assert get(f"http://127.0.0.1:{port}/") == 200
        return True

    with ServerProcess(
        command, cwd=tmp_path, env=os.environ, stdout_path=stdout, stderr_path=stderr
    ) as server:
        server.wait_until(answers_200, 30, interval=0.1)
        assert get(f"http://127.0.0.1:{port}/__heartbeat__") == 500

    lines = json_lines(stdout.read_text())
    assert_every_logger_wrote_mozlog([line for line in lines if line["Fields"].get("rid")])
    # uWSGI's own lines go to stderr; no record of the application's does.
    assert json_lines(stderr.read_text()) == []
