"""Secrets a client sends in the forms parsers accept never reach the request summary, under
real servers, which decode the path themselves.

A query string holds a secret parameter's name percent-encoded or with a bracket part
(``pass%77ord``, ``user[password]``, ``password%5B%5D``); a path holds a whole query string,
its ``?`` sent as ``%3F``, which the server decodes into ``PATH_INFO`` with the value's own
``%26``. The rules in process: ``tests/checks/test_redact.py`` and ``tests/test_secrets.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import UWSGI, Gunicorn, Server, Uwsgi, fetch, server_environment

pytestmark = pytest.mark.servers

APP = "version_callback_app:app"
SECRETS = ("s3cr3t-a", "s3cr3t-b", "s3cr3t-c", "s3cr3t-d", "s3cr3t-e")
# (what the client sends, the summary's path, its querystring)
REQUESTS = [
    (
        "/items?pass%77ord=s3cr3t-a&user[password]=s3cr3t-b&password%5B%5D=s3cr3t-c&page=2",
        "/items",
        "pass%77ord=***&user[password]=***&password%5B%5D=***&page=2",
    ),
    ("/login%3Fuser=ann&password=s3cr3t-d%26s3cr3t-e", "/login?user=ann&password=***", ""),
]


@pytest.fixture(params=["uwsgi", "gunicorn-gthread"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    environ = server_environment(DOCKERFLOW_SUMMARY_LOG_QUERYSTRING="on")
    if request.param == "uwsgi":
        if not UWSGI.exists():
            message = f"uWSGI is not installed at {UWSGI}"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{message}; CI=true, so the server tests must run, not skip")
            pytest.skip(message)
        started: Server = Uwsgi(tmp_path, environ, app=APP, workers=1, threads=2)
    else:
        started = Gunicorn(tmp_path, environ, app=APP, workers=1, threads=2)
    try:
        started.start()
        yield started
    finally:
        started.kill()


def test_the_summary_shows_no_secret_a_client_sent(server: Server) -> None:
    for number, (sent, path, querystring) in enumerate(REQUESTS):
        request_id = f"secrets-{number}"

        assert fetch(server.port, "GET", sent, **{"X-Request-ID": request_id}).status == 200

        [summary] = server.wait_for_summary(request_id)
        assert (summary["Fields"]["path"], summary["Fields"]["querystring"]) == (
            path,
            querystring,
        )
    output = "\n".join(server.stdout_lines()) + server.stderr_text()
    assert not [secret for secret in SECRETS if secret in output]
