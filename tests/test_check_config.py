"""``dockerflow-wsgi check-config``: where each value came from, mappings as written, and
warnings for group, timeout and non-critical names that no check has."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.cli import check_config as command
from dockerflow_wsgi.config import FrameworkSettings


def _clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without the variables the command reads, plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DOCKERFLOW_")
        and name not in {"DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG"}
    }
    env.update(PYTHONDONTWRITEBYTECODE="1", **variables)
    return env


def run(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockerflow_wsgi", "check-config", *args],
        cwd=cwd,
        env=_clean_environment(**variables),
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings(stdout: str) -> dict[str, tuple[str, str]]:
    """``name = value  (source)`` lines as {name: (value, source)}."""
    parsed = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(" = ")
        value, _, source = rest.rpartition("  (")
        parsed[name] = (value, source.rstrip(")"))
    return parsed


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("dockerflow-wsgi: warning: ")]


def _hello(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [])
    return [b""]


# -- where each value came from ---------------------------------------------------------------


def test_values_from_flask_app_config_are_labelled_with_their_key(tmp_path: Path) -> None:
    (tmp_path / "flaskapp.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask

            from dockerflow_wsgi.flask import Dockerflow

            app = Flask(__name__)
            app.config["DOCKERFLOW_CHECK_TIMEOUT"] = 3
            app.config["DOCKERFLOW_HEARTBEAT_GROUPS"] = {"startup": ["check_database_connected"]}
            Dockerflow(app, heartbeat_cache_ttl=7)
            """
        )
    )

    result = run(
        tmp_path,
        "--app",
        "flaskapp:app",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DOCKERFLOW_CHECK_TIMEOUT="9",
    )

    assert result.returncode == 0, result.stderr
    listed = settings(result.stdout)
    # app.config wins over the environment, as in the application.
    assert listed["check_timeout"] == ("3", "from app.config['DOCKERFLOW_CHECK_TIMEOUT']")
    assert listed["heartbeat_groups"] == (
        "startup=check_database_connected",
        "from app.config['DOCKERFLOW_HEARTBEAT_GROUPS']",
    )
    assert listed["heartbeat_cache_ttl"] == ("7", "keyword")
    assert listed["db"][1] == "from DATABASE_URL"
    assert listed["request_id_header"] == ("X-Request-ID", "default")
    assert warnings(result.stderr) == []


def test_values_from_django_settings_are_labelled_with_their_setting() -> None:
    framework = FrameworkSettings(
        {"DOCKERFLOW_CHECK_TIMEOUTS": {"check_redis_connected": 0.5}}, "settings.{}"
    )
    middleware = DockerflowMiddleware.with_framework_settings(_hello, framework, checks=[])

    lines = command.describe_settings(middleware)

    assert (
        "check_timeouts = check_redis_connected=0.5  (from settings.DOCKERFLOW_CHECK_TIMEOUTS)"
        in (lines)
    )


def test_a_keyword_equal_to_the_variable_is_still_the_keyword(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "3")
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_CACHE_TTL", "4")
    middleware = DockerflowMiddleware(_hello, check_timeout=3, checks=[])

    listed = command.describe_settings(middleware)

    assert "check_timeout = 3  (keyword)" in listed
    assert "heartbeat_cache_ttl = 4  (from DOCKERFLOW_HEARTBEAT_CACHE_TTL)" in listed


# -- mappings, as the variable writes them --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({}, "none"),
        ({"startup": ("check_database_connected",)}, "startup=check_database_connected"),
        (
            {"startup": ("check_database_connected", "check_migrations_applied"), "cache": ("a",)},
            "startup=check_database_connected,check_migrations_applied;cache=a",
        ),
        (
            {"check_redis_connected": 0.5, "check_database_connected": 2.0},
            "check_redis_connected=0.5,check_database_connected=2",
        ),
    ],
)
def test_mappings_are_shown_as_their_variable_is_written(value: object, shown: str) -> None:
    assert command.format_value(value) == shown


def test_mapping_variables_are_shown_as_written(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DOCKERFLOW_HEARTBEAT_GROUPS="startup=check_database_connected;cache=check_redis_connected",
        DOCKERFLOW_CHECK_TIMEOUTS="check_redis_connected=0.5,check_database_connected=2",
    )

    assert result.returncode == 0, result.stderr
    listed = settings(result.stdout)
    assert listed["heartbeat_groups"] == (
        "startup=check_database_connected;cache=check_redis_connected",
        "from DOCKERFLOW_HEARTBEAT_GROUPS",
    )
    assert listed["check_timeouts"] == (
        "check_redis_connected=0.5,check_database_connected=2",
        "from DOCKERFLOW_CHECK_TIMEOUTS",
    )
    assert "<dict>" not in result.stdout
    assert warnings(result.stderr) == []


# -- names that no check has ---------------------------------------------------------------------


def test_names_no_check_has_are_warnings_with_a_suggestion(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DOCKERFLOW_HEARTBEAT_GROUPS="startup=check_databse_connected;readiness=database,redis",
        DOCKERFLOW_CHECK_TIMEOUTS="redis=0.5,check_database_connected=2",
        DOCKERFLOW_NON_CRITICAL_CHECKS="search",
    )

    # A warning, as for an unknown variable: the service starts with this configuration.
    assert result.returncode == 0, result.stderr
    found = warnings(result.stderr)
    assert len(found) == 5, found
    text = "\n".join(found)
    assert (
        "heartbeat_groups (from DOCKERFLOW_HEARTBEAT_GROUPS): group 'startup' names "
        "'check_databse_connected', which no check has (did you mean check_database_connected?)"
    ) in text
    assert "/__heartbeat__/startup reports it as dockerflow.health.E104" in text
    assert "group 'readiness' names 'database', which no check has" in text
    assert "group 'readiness' names 'redis', which no check has" in text
    assert "check_timeouts (from DOCKERFLOW_CHECK_TIMEOUTS): 'redis' names no check" in text
    assert "non_critical_checks (from DOCKERFLOW_NON_CRITICAL_CHECKS): 'search' names no check" in (
        text
    )
    assert "the checks found: check_database_connected" in text
    # The settings are still listed, in full.
    assert settings(result.stdout)["check_timeouts"][0] == "redis=0.5,check_database_connected=2"


def test_names_of_the_applications_checks_are_known(tmp_path: Path) -> None:
    (tmp_path / "withchecks.py").write_text(
        textwrap.dedent(
            """
            from dockerflow_wsgi import DockerflowMiddleware, checks


            @checks.register
            def disk_space():
                return []


            application = DockerflowMiddleware(lambda environ, start_response: [])
            """
        )
    )

    result = run(
        tmp_path,
        "--app",
        "withchecks",
        DOCKERFLOW_HEARTBEAT_GROUPS="readiness=disk_space",
        DOCKERFLOW_NON_CRITICAL_CHECKS="disk_space",
        DOCKERFLOW_CHECK_TIMEOUTS="disk_space=1",
    )

    assert result.returncode == 0, result.stderr
    assert warnings(result.stderr) == []


def test_unknown_check_names_of_a_middleware_with_explicit_checks() -> None:
    middleware = DockerflowMiddleware(
        _hello,
        checks=[("disk", lambda: [])],
        heartbeat_groups={"readiness": ["disk", "dsik"]},
        non_critical_checks=["disk"],
    )

    (warning,) = command.unknown_check_names(middleware)

    assert warning.startswith(
        "heartbeat_groups (keyword): group 'readiness' names 'dsik', which no check has "
        "(did you mean disk?)"
    )
