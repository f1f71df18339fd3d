"""Every example in the docs that names checks (heartbeat groups, per-check timeouts,
non-critical checks) names checks that exist: copied as it is, into the service its page
describes, no group reports a check as unknown (``dockerflow.health.E104``).

The service is the one the examples describe: the snippets that register checks imported (the
pod-local ``disk_space``, the ready-made checks), and the variables of the built-ins set
(``DATABASE_URL`` on SQLite, ``REDIS_URL``, ``AMQP_URL``: built-ins are made without
connecting).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import webtest
import yaml
from docutils import nodes
from docutils.core import publish_doctree

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.config import Config

DOCS = Path(__file__).resolve().parent.parent / "docs"
SNIPPETS = DOCS / "snippets"
E104 = "dockerflow.health.E104"

#: The snippets that register the checks the examples name.
REGISTERING_SNIPPETS = ("pod_local_check", "ready_made_checks")

#: The variables whose values name checks.
NAMING_VARIABLES = (
    "DOCKERFLOW_HEARTBEAT_GROUPS",
    "DOCKERFLOW_CHECK_TIMEOUTS",
    "DOCKERFLOW_NON_CRITICAL_CHECKS",
)
_ASSIGNMENT = re.compile(rf"({'|'.join(NAMING_VARIABLES)})=\"?([\w.;=,-]+)")


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def literal_blocks(page: Path) -> list[str]:
    """The code blocks of a page, as plain docutils reads them (Sphinx's directives it does
    not know are reported and skipped)."""
    doctree = publish_doctree(
        page.read_text(encoding="utf-8"),
        settings_overrides={"report_level": 5, "halt_level": 5, "file_insertion_enabled": False},
    )
    return [block.astext() for block in doctree.findall(nodes.literal_block)]


def all_variable_examples() -> list[tuple[str, str, str]]:
    """``(where, variable, value)`` of every example that sets a naming variable: in the
    pages' text and code, and in the snippets (a Kubernetes ``env`` entry included)."""
    found = []
    for page in sorted(DOCS.glob("*.rst")):
        for variable, value in _ASSIGNMENT.findall(page.read_text(encoding="utf-8")):
            found.append((page.name, variable, value))
    for snippet in sorted(SNIPPETS.glob("*.yaml")):
        for document in yaml.safe_load_all(snippet.read_text(encoding="utf-8")):
            for entry in _env_entries(document):
                if entry.get("name") in NAMING_VARIABLES and "value" in entry:
                    found.append((snippet.name, entry["name"], entry["value"]))
    return found


def well_formed(variable: str, value: str) -> bool:
    try:
        Config.from_options(environ={variable: value})
    except ValueError:
        return False
    return True


def variable_examples() -> list[Any]:
    """The examples of :func:`all_variable_examples` that are meant to work (the
    configuration page also shows a malformed one, and the error it gives)."""
    return [
        pytest.param(variable, value, id=f"{where}:{variable}={value}")
        for where, variable, value in all_variable_examples()
        if well_formed(variable, value)
    ]


def _env_entries(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "env" and isinstance(value, list):
                yield from (entry for entry in value if isinstance(entry, dict))
            else:
                yield from _env_entries(value)
    elif isinstance(document, list):
        for item in document:
            yield from _env_entries(item)


def keyword_examples() -> list[Any]:
    """The Python code blocks of the pages that pass ``heartbeat_groups=``."""
    return [
        pytest.param(block, id=f"{page.name}:{index}")
        for page in sorted(DOCS.glob("*.rst"))
        for index, block in enumerate(literal_blocks(page))
        if "heartbeat_groups=" in block and "DockerflowMiddleware(" in block
    ]


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The service the examples describe: its checks registered, the built-ins' variables
    set."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("SCRATCH_DIR", str(tmp_path))
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path))
    monkeypatch.syspath_prepend(str(SNIPPETS))
    for name in REGISTERING_SNIPPETS:
        sys.modules.pop(name, None)
        __import__(name)
    yield
    for name in REGISTERING_SNIPPETS:
        sys.modules.pop(name, None)


def check_names(middleware: DockerflowMiddleware) -> set[str]:
    return {name for name, _ in middleware.current_checks()}


def assert_every_group_knows_its_checks(middleware: DockerflowMiddleware) -> None:
    client = webtest.TestApp(middleware)
    for group, names in middleware.config.heartbeat_groups.items():
        # Only the names: running the groups would reach the examples' Redis and broker.
        assert set(names) <= check_names(middleware), (group, names)
        if set(names) <= {"check_database_connected", "disk_space"}:
            response = client.get(f"/__heartbeat__/{group}", status="*")
            assert E104 not in response.text, response.text


def test_the_examples_are_found() -> None:
    variables = {param.values[0] for param in variable_examples()}
    assert variables == set(NAMING_VARIABLES)
    assert len(keyword_examples()) >= 1
    # The one left out is the configuration page's example of an error.
    assert [
        (where, value)
        for where, variable, value in all_variable_examples()
        if not well_formed(variable, value)
    ] == [("configuration.rst", "readiness")]


@pytest.mark.parametrize(("variable", "value"), variable_examples())
def test_each_variable_example_names_checks_that_exist(
    service: None, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    middleware = DockerflowMiddleware(hello)
    config = middleware.config
    named = set(config.check_timeouts) | set(config.non_critical_checks)
    named |= {name for names in config.heartbeat_groups.values() for name in names}

    assert named
    assert named <= check_names(middleware)
    assert_every_group_knows_its_checks(middleware)


@pytest.mark.parametrize("block", keyword_examples())
def test_each_keyword_example_names_checks_that_exist(service: None, block: str) -> None:
    app = SimpleNamespace(wsgi_app=hello)
    namespace = {"app": app, "DockerflowMiddleware": DockerflowMiddleware}

    exec(block, namespace)

    assert isinstance(app.wsgi_app, DockerflowMiddleware)
    assert app.wsgi_app.config.heartbeat_groups
    assert_every_group_knows_its_checks(app.wsgi_app)
