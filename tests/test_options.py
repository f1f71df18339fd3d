"""The option table is the one declaration of the options: the middleware's signature, its
docstrings, ``Config`` and the README are held to it, so adding an option to one of them and
not to the table (or the other way round) fails here."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.config import Config
from dockerflow_wsgi.options import OPTIONS, keyword_options

README = Path(__file__).resolve().parent.parent / "README.md"


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("204 No Content", [])
    return []


def test_the_middleware_signature_is_the_table() -> None:
    """Names and order, ``None`` (not given: the variable or the default applies) as every
    default, and the type each entry says the keyword accepts."""
    parameters = list(inspect.signature(DockerflowMiddleware.__init__).parameters.values())
    assert [p.name for p in parameters[:2]] == ["self", "app"]
    keywords = parameters[2:]
    assert {p.kind for p in keywords} == {inspect.Parameter.KEYWORD_ONLY}
    assert [p.name for p in keywords] == [option.name for option in keyword_options()]
    assert [p.default for p in keywords] == [None] * len(keywords)
    assert {p.name: p.annotation for p in keywords} == {
        option.name: option.accepts for option in keyword_options()
    }


def test_the_configuration_holds_each_option_of_the_table() -> None:
    attributes = [field.name for field in dataclasses.fields(Config) if field.name != "sources"]
    assert attributes == [option.name for option in OPTIONS if option.in_config]


@pytest.mark.parametrize("middleware", [DockerflowMiddleware, DockerflowASGIMiddleware])
def test_the_docstrings_document_each_keyword_from_the_table(middleware: type) -> None:
    fields = {
        line.split(":")[1].removeprefix("param "): line
        for line in (middleware.__doc__ or "").splitlines()
        if line.startswith(":param ") and not line.startswith(":param app:")
    }
    assert list(fields) == [option.name for option in keyword_options()]
    for option in keyword_options():
        where = f"; variable ``{option.variable}``, default " if option.variable else "; default "
        assert fields[option.name].startswith(f":param {option.name}: {option.doc}{where}")


def given_keywords(tmp_path: Path) -> dict[str, Any]:
    """A valid value for each keyword, unlike its default."""
    alembic_ini = tmp_path / "alembic.ini"
    alembic_ini.write_text("[alembic]\nscript_location = migrations\n", encoding="utf-8")
    return {
        "version_path": tmp_path,
        "version_callback": lambda path: None,
        "checks": [],
        "silenced_checks": ["myservice.health.W001"],
        "check_timeout": 2,
        "heartbeat_cache_ttl": 1,
        "heartbeat_failed_status_code": 503,
        "request_id_header": "X-Correlation-ID",
        "log_querystring": True,
        "heartbeat_details": False,
        "error_endpoint": True,
        "log_probes": False,
        "db": "sqlite://",
        "redis": "redis://127.0.0.1:6379/0",
        "alembic_config": str(alembic_ini),
        "heartbeat_groups": {"startup": ["check_database_connected"]},
        "check_timeouts": {"check_database_connected": 1},
        "non_critical_checks": ["check_redis_connected"],
        "heartbeat_interval": 0,
        "metrics": True,
        "state_dir": tmp_path / "state",
        "drain_groups": ["startup"],
        "heartbeat_shared": True,
        "transition_runs": 3,
        "health_log_repeat": 60,
        "summary_sample_rate": 0.5,
        "summary_slow_ms": 250,
    }


def test_each_keyword_of_the_middleware_reaches_its_option(tmp_path: Path) -> None:
    """A keyword added to the signature but not passed on would be ignored silently."""
    keywords = given_keywords(tmp_path)
    assert list(keywords) == [option.name for option in keyword_options()]

    middleware = DockerflowMiddleware(app, **keywords)

    assert middleware.checks == []
    config_keywords = {name for name in keywords if name != "checks"}
    assert {name: middleware.config.sources[name] for name in config_keywords} == dict.fromkeys(
        config_keywords, "keyword"
    )


def test_the_readme_lists_every_variable_of_the_table() -> None:
    section = README.read_text(encoding="utf-8").split("\n## Options\n", 1)[1].split("\n## ")[0]
    with_keyword, without_keyword = section.split("full table: ", 1)[1].split(";", 1)
    assert [word.strip("`,") for word in with_keyword.split()] == [
        option.variable for option in keyword_options() if option.variable
    ]
    assert re.findall(r"`(\w+)` \(no keyword\)", without_keyword) == [
        option.variable for option in OPTIONS if not option.keyword
    ]
