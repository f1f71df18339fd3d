"""``dockerflow-wsgi check-config``: where each value came from, mappings as written, and
warnings for group, timeout and non-critical names that no check has."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.cli import check_config as command
from dockerflow_wsgi.config import Config, FrameworkSettings


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


def test_values_from_a_django_sites_settings_are_labelled_with_their_setting(
    tmp_path: Path,
) -> None:
    (tmp_path / "site_settings.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "not-a-secret"
            INSTALLED_APPS = ["dockerflow_wsgi.django"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            ROOT_URLCONF = "site_urls"
            DOCKERFLOW_CHECK_TIMEOUT = 4
            DOCKERFLOW_NON_CRITICAL_CHECKS = ["search"]
            """
        )
    )
    (tmp_path / "site_urls.py").write_text("urlpatterns = []\n")
    (tmp_path / "site_wsgi.py").write_text(
        textwrap.dedent(
            """
            import os

            from dockerflow_wsgi.django import get_wsgi_application

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
            application = get_wsgi_application()
            """
        )
    )

    result = run(tmp_path, "--app", "site_wsgi", DOCKERFLOW_CHECK_TIMEOUT="9")

    assert result.returncode == 0, result.stderr
    listed = settings(result.stdout)
    assert listed["check_timeout"] == ("4", "from settings.DOCKERFLOW_CHECK_TIMEOUT")
    assert listed["non_critical_checks"] == (
        "search",
        "from settings.DOCKERFLOW_NON_CRITICAL_CHECKS",
    )
    (warning,) = warnings(result.stderr)
    assert "non_critical_checks (from settings.DOCKERFLOW_NON_CRITICAL_CHECKS): 'search'" in warning


def test_values_from_django_settings_are_labelled_with_their_setting() -> None:
    framework = FrameworkSettings(
        {"DOCKERFLOW_CHECK_TIMEOUTS": {"check_redis_connected": 0.5}}, "settings.{}"
    )
    middleware = DockerflowMiddleware.with_framework_settings(_hello, framework, checks=[])

    lines = command.describe_settings(middleware.core)

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

    listed = command.describe_settings(middleware.core)

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

    (warning,) = command.unknown_check_names(middleware.core)

    assert warning.startswith(
        "heartbeat_groups (keyword): group 'readiness' names 'dsik', which no check has "
        "(did you mean disk?)"
    )


# -- the documentation's examples name checks that exist ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILT_IN = frozenset(
    {
        "check_database_connected",
        "check_redis_connected",
        "check_migrations_applied",
        "check_amqp_connected",
    }
)
NAME_VARIABLES = {
    "heartbeat_groups": "DOCKERFLOW_HEARTBEAT_GROUPS",
    "check_timeouts": "DOCKERFLOW_CHECK_TIMEOUTS",
    "non_critical_checks": "DOCKERFLOW_NON_CRITICAL_CHECKS",
}
_VARIABLE = "|".join(NAME_VARIABLES.values())
# DOCKERFLOW_X=value, DOCKERFLOW_X: value, or YAML's name: DOCKERFLOW_X / value: "value".
_ASSIGNED = re.compile(rf"({_VARIABLE})(?:=|:\s|\s+value:\s)[\"'`]*([^\"'`\s)]+)")
# A table's "the variable: ``value``" in the row of the variable's name.
_THE_VARIABLE = re.compile(rf"({_VARIABLE})``[^*]*?the variable: ``([^`]+)``")
# A docstring's "(``DOCKERFLOW_X``: ``value``)".
_DOCSTRING = re.compile(rf"``({_VARIABLE})``: ``([^`]+)``")
_KEYWORD = re.compile(r"\b(heartbeat_groups|check_timeouts|non_critical_checks)=(?=[{\[])")
_REGISTERED = re.compile(r"@checks\.register[^\n]*\ndef (\w+)")
# checks.register_partial(func, ..., name="disk_space"): a ready-made check under its name (the
# arguments may hold calls of their own, range(200, 300)).
_REGISTERED_PARTIAL = re.compile(r"register_partial\((?:[^()]|\([^()]*\))*?\bname=\"(\w+)\"")


def _examples(text: str) -> list[tuple[str, object]]:
    """Every example value of the three options in ``text``, as (keyword, value)."""
    by_variable = {variable: keyword for keyword, variable in NAME_VARIABLES.items()}
    found: list[tuple[str, object]] = []
    for pattern in (_ASSIGNED, _THE_VARIABLE, _DOCSTRING):
        found += [(by_variable[variable], value) for variable, value in pattern.findall(text)]
    for match in _KEYWORD.finditer(text):
        found.append((match.group(1), _literal_at(text, match.end())))
    return found


def _literal_at(text: str, start: int) -> object:
    """The Python literal (a dict or list) that opens at ``text[start]``."""
    depth = 0
    for end, char in enumerate(text[start:], start):
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
        if depth == 0:
            return ast.literal_eval(text[start : end + 1])
    raise AssertionError(f"unclosed literal: {text[start : start + 80]!r}")


def _names(keyword: str, value: object) -> set[str]:
    config = Config.from_options(environ={}, **{keyword: value})
    if keyword == "heartbeat_groups":
        return {name for members in config.heartbeat_groups.values() for name in members}
    return set(getattr(config, keyword))


def _pages() -> list[tuple[str, str, frozenset[str]]]:
    """(name, text, the checks it defines) of each page with its snippets, the README and the
    modules' docstrings."""
    pages = []
    for page in sorted(DOCS.glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        included = [
            (DOCS / path).read_text(encoding="utf-8")
            for path in re.findall(r"\.\. literalinclude:: (\S+)", text)
        ]
        defined = {
            name
            for source in included
            for pattern in (_REGISTERED, _REGISTERED_PARTIAL)
            for name in pattern.findall(source)
        }
        pages.append((page.name, "\n".join([text, *included]), BUILT_IN | defined))
    pages.append(("README.md", (ROOT / "README.md").read_text(encoding="utf-8"), BUILT_IN))
    for module in sorted((ROOT / "dockerflow_wsgi").rglob("*.py")):
        pages.append((str(module.relative_to(ROOT)), module.read_text(encoding="utf-8"), BUILT_IN))
    return pages


def _error_forms() -> list[tuple[str, str]]:
    """The example an invalid value's error shows, for each option: what an operator copies."""
    forms = []
    for keyword, variable in NAME_VARIABLES.items():
        with pytest.raises(ValueError) as raised:
            Config.from_options(
                environ={variable: "=" if keyword != "non_critical_checks" else "?"}
            )
        forms.append((keyword, re.search(r"must look like (\S+)", str(raised.value)).group(1)))  # type: ignore[union-attr]
    return forms


def test_the_docs_have_examples_of_each_option() -> None:
    keywords = {keyword for _, text, _ in _pages() for keyword, _ in _examples(text)}
    assert keywords == set(NAME_VARIABLES)


@pytest.mark.parametrize(
    ("page", "text", "defined"), _pages(), ids=[page for page, _, _ in _pages()]
)
def test_documented_examples_name_checks_that_exist_where_they_are_shown(
    page: str, text: str, defined: frozenset[str]
) -> None:
    for keyword, value in _examples(text):
        try:
            names = _names(keyword, value)
        except ValueError:
            # An invalid value is an example only where the page shows its error.
            assert f"ValueError: {NAME_VARIABLES[keyword]} must look like" in text, value
            continue
        assert names <= defined, (page, keyword, value)


@pytest.mark.parametrize(("keyword", "form"), _error_forms())
def test_the_errors_show_an_example_with_built_in_names(keyword: str, form: str) -> None:
    assert _names(keyword, form) <= BUILT_IN
