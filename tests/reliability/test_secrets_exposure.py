"""Passwords in ``DATABASE_URL`` and ``REDIS_URL``, and what ``/__heartbeat__`` reveals.

The example runs under gunicorn with both URLs carrying a password and pointing at ports
where nothing listens, so both built-in checks fail and say why; an app check raises an
exception quoting both URLs, and so does the import of a check plugin. Neither password may
appear in a response, a log line, the command line tool's output, or an error message of
ours; the URLs are shown masked (``***``) instead.

What the heartbeat reveals is documented in ``docs/checks.rst`` ("What the heartbeat
reveals"): the names of the checks, and for each failing one its message ids and texts
(host, port, user and database names; never a password). With ``heartbeat_details`` off the
response is only ``{"status": ...}`` while the log keeps the details.

The masking itself is pinned by ``tests/checks/test_redact.py``, the built-in checks' by
``tests/checks/test_builtin_*.py``, the command's by ``tests/test_cli.py``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    DOCKERFLOW_CLI,
    HERE,
    Answer,
    Client,
    Gunicorn,
    install_plugin,
    log_problems,
    unused_port,
)

pytestmark = pytest.mark.servers

DB_PASSWORD = "db-Pa55word-9f2c"
REDIS_PASSWORD = "redis-Pa55word-7c1e"
SECRETS = (DB_PASSWORD, REDIS_PASSWORD)
E004 = "dockerflow.health.E004"
E008 = "dockerflow.health.E008"
E101 = "dockerflow.health.E101"


@pytest.fixture(scope="module")
def secret_urls() -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgresql+psycopg://app:{DB_PASSWORD}@127.0.0.1:{unused_port()}/app",
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{unused_port()}/0",
    }


def leaks(texts: Iterable[str]) -> list[tuple[str, str]]:
    """Each (password, text around it) found in ``texts``."""
    found = []
    for text in texts:
        for secret in SECRETS:
            at = text.find(secret)
            if at >= 0:
                found.append((secret, text[max(0, at - 100) : at + 100]))
    return found


def answer_texts(answer: Answer) -> list[str]:
    return [answer.body.decode("latin-1"), *(f"{k}: {v}" for k, v in answer.headers)]


def cli(server: Gunicorn, *arguments: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``dockerflow-wsgi`` with the service's environment, from ``served_app``'s directory."""
    return subprocess.run(
        [str(DOCKERFLOW_CLI), *arguments],
        cwd=HERE,
        env={**server.environ, **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )


LEAKY_PLUGIN = """\
import os

raise ImportError("no route to " + os.environ["DATABASE_URL"])
"""


def test_no_password_in_answers_logs_or_command_output(
    serve: Any, secret_urls: dict[str, str], tmp_path: Path
) -> None:
    install_plugin(tmp_path, "leaky-plugin", "leaky", LEAKY_PLUGIN)
    server = serve(
        "secrets", pythonpath=(str(tmp_path),), RELIABILITY_LEAKY_CHECK="1", **secret_urls
    )
    client = Client(server.port)
    answers = {
        path: client.request("GET", path)
        for path in ("/__heartbeat__", "/notes", "/", "/boom", "/__version__", "/__lbheartbeat__")
    }
    client.close()
    heartbeat = answers["/__heartbeat__"]
    assert heartbeat.status == 500
    details = heartbeat.json()["details"]
    [database] = details["check_database_connected"]["messages"].items()
    assert database[0] == E008
    assert database[1].startswith("DB-API error on postgresql+psycopg://app:***@127.0.0.1:")
    [redis_message] = details["check_redis_connected"]["messages"].items()
    assert redis_message[0] == E004
    [replica] = details["replica"]["messages"].items()
    assert replica[0] == E101
    assert replica[1].startswith("ConnectionError: cannot reach postgresql+psycopg://app:***@")
    [plugin] = details["leaky"]["messages"].items()
    assert plugin[0] == "dockerflow.health.E103"
    assert "ImportError: no route to postgresql+psycopg://app:***@" in plugin[1]
    assert answers["/notes"].status == 500

    commands = [
        cli(server, "heartbeat", "--json", "--app", "served_app:app"),
        cli(server, "heartbeat", "--app", "served_app:app", "--verbose"),
        cli(server, "check-config", "--app", "served_app:app"),
        # An unusable URL is refused with an error that names it, masked.
        cli(server, "check-config", DATABASE_URL=f"nosuch+driver://app:{DB_PASSWORD}@db/app"),
    ]
    assert [command.returncode for command in commands] == [1, 1, 0, 2]
    assert "postgresql+psycopg://app:***@127.0.0.1" in commands[2].stdout
    assert "nosuch+driver://app:***@db/app" in commands[3].stderr

    assert server.stop() == 0
    lines = server.stdout_lines()
    assert log_problems(lines) == []
    texts = [*lines, server.stderr_text()]
    texts += [text for answer in answers.values() for text in answer_texts(answer)]
    texts += [command.stdout + command.stderr for command in commands]
    assert leaks(texts) == []


def test_heartbeat_details_off_answers_only_the_status_and_logs_the_details(
    serve: Any, secret_urls: dict[str, str]
) -> None:
    server = serve("no-details", DOCKERFLOW_HEARTBEAT_DETAILS="off", **secret_urls)
    client = Client(server.port)
    answer = client.request("GET", "/__heartbeat__", {"X-Request-ID": "no-details-1"})
    head = client.request("HEAD", "/__heartbeat__")
    client.close()

    assert answer.status == 500
    assert json.loads(answer.body) == {"status": "error"}
    assert head.status == 500
    assert head.body == b""
    assert server.stop() == 0

    records = [json.loads(line) for line in server.stdout_lines()]
    [logged] = [
        record
        for record in records
        if record["Type"] == "dockerflow_wsgi" and record["Fields"].get("rid") == "no-details-1"
    ]
    assert logged["Fields"]["msg"] == "Heartbeat error"
    assert logged["Severity"] == 3
    # Objects are not allowed inside mozlog Fields: the details are there as JSON text.
    logged_details = json.loads(logged["Fields"]["details"])
    assert E008 in logged_details["check_database_connected"]["messages"]
    assert E004 in logged_details["check_redis_connected"]["messages"]
    assert json.loads(logged["Fields"]["checks"])["check_database_connected"] == "error"
    assert leaks(server.stdout_lines()) == []


AT_PASSWORD = "at-Pa55@word-3b8d"
QUERY_PASSWORD = "query-Pa55word-5e0a"


def half_leaks(texts: Iterable[str], secret: str) -> list[str]:
    """Texts holding ``secret`` or either side of its '@', if it has one."""
    parts = [secret, *(part for part in secret.split("@") if len(part) >= 6)]
    return [text for text in texts if any(part in text for part in parts)]


@pytest.mark.parametrize(
    ("database_url", "redis_url"),
    [
        pytest.param(
            "postgresql+psycopg://app@127.0.0.1:{port}/app?sslmode=disable&password={query}",
            "redis://:{at}@127.0.0.1:{port}/0",
            id="postgresql-query-and-redis-raw-at",
        ),
        pytest.param(
            # The real MariaDB: root has no password here, so the one given is rejected.
            "mysql+pymysql://root@127.0.0.1:3306/test?passwd={query}",
            "redis://127.0.0.1:{port}/0?password={at}",
            id="mariadb-passwd-and-redis-query",
        ),
    ],
)
def test_passwords_in_query_strings_or_holding_an_at_are_never_shown(
    serve: Any, mariadb_url: str, database_url: str, redis_url: str
) -> None:
    urls = {
        "DATABASE_URL": database_url.format(port=unused_port(), query=QUERY_PASSWORD),
        "REDIS_URL": redis_url.format(port=unused_port(), at=AT_PASSWORD),
    }
    server = serve("query-secrets", **urls)
    client = Client(server.port)
    heartbeat = client.request("GET", "/__heartbeat__", {"X-Request-ID": "query-secrets-1"})
    client.close()
    assert heartbeat.status == 500
    details = heartbeat.json()["details"]
    assert list(details["check_database_connected"]["messages"]) == [E008]
    assert "***" in details["check_database_connected"]["messages"][E008]

    commands = [
        cli(server, "heartbeat", "--json", "--app", "served_app:app"),
        cli(server, "heartbeat", "--app", "served_app:app", "--verbose"),
        cli(server, "check-config", "--app", "served_app:app"),
        cli(server, "check-config"),
    ]
    assert [command.returncode for command in commands] == [1, 1, 0, 0]
    assert server.stop() == 0
    lines = server.stdout_lines()
    assert log_problems(lines) == []
    texts = [*lines, server.stderr_text(), *answer_texts(heartbeat)]
    texts += [command.stdout + command.stderr for command in commands]
    assert half_leaks(texts, QUERY_PASSWORD) == []
    assert half_leaks(texts, AT_PASSWORD) == []
