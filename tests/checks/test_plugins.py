"""Checks published as entry points by real (temporary) installed distributions."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.checks.plugins import ENTRY_POINT_GROUP, load_entry_point_checks


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path where tests install tiny distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created = []

    def install(dist, entry_points, modules):
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)

    yield install
    for module in created:
        sys.modules.pop(module, None)


GOOD = """
from dockerflow_wsgi import checks

def search_index():
    return [checks.Warning("index is stale", id="search.health.W001")]
"""


def test_a_published_check_is_run_by_the_heartbeat(site):
    site("search-plugin", {"search_index": "search_health:search_index"}, {"search_health": GOOD})
    response = TestApp(DockerflowMiddleware(hello)).get("/__heartbeat__")
    assert response.json["checks"] == {"search_index": "warning"}
    assert response.json["details"]["search_index"]["messages"] == {
        "search.health.W001": "index is stale"
    }


def test_a_plugin_that_fails_to_import_is_an_E103_error_not_a_crash(site, caplog):
    site(
        "broken-plugin",
        {"broken": "broken_health:check"},
        {"broken_health": "raise ImportError('no module named shiny_client')\n"},
    )
    app = TestApp(DockerflowMiddleware(hello))
    assert app.get("/__lbheartbeat__").status_int == 200
    response = app.get("/__heartbeat__", status=500)
    [(message_id, text)] = response.json["details"]["broken"]["messages"].items()
    assert message_id == "dockerflow.health.E103"
    assert "broken = broken_health:check" in text
    assert "broken-plugin" in text
    assert "ImportError: no module named shiny_client" in text
    assert any(
        "broken" in r.getMessage() and "ImportError" in getattr(r, "traceback", "")
        for r in caplog.records
    )


def test_a_plugin_object_that_is_not_callable_is_an_E103_error(site):
    site("odd-plugin", {"odd": "odd_health:VALUE"}, {"odd_health": "VALUE = 42\n"})
    [message] = load_entry_point_checks()["odd"]()
    assert message.id == "dockerflow.health.E103"
    assert "int is not callable" in message.msg


def test_the_same_name_from_two_distributions_keeps_the_first_and_warns(site, caplog):
    site(
        "first-plugin", {"dup": "first_health:check"}, {"first_health": "def check(): return []\n"}
    )
    site(
        "second-plugin",
        {"dup": "second_health:check"},
        {"second_health": "def check(): raise AssertionError('must not load')\n"},
    )
    loaded = load_entry_point_checks()
    assert loaded["dup"]() == []
    [warning] = [r for r in caplog.records if "published by both" in r.getMessage()]
    assert "first-plugin" in warning.getMessage() and "second-plugin" in warning.getMessage()


def test_an_explicit_registration_wins_over_an_entry_point_and_the_clash_is_logged_once(
    site, caplog
):
    site("search-plugin", {"search_index": "search_health:search_index"}, {"search_health": GOOD})
    checks.register(list, name="search_index")
    app = TestApp(DockerflowMiddleware(hello))
    for _ in range(3):
        assert app.get("/__heartbeat__").json["checks"] == {"search_index": "ok"}
    clashes = [r for r in caplog.records if "both registered and published" in r.getMessage()]
    assert len(clashes) == 1


def test_entry_points_are_loaded_once_when_the_middleware_is_built(site):
    site(
        "counting-plugin",
        {"counted": "counting_health:check"},
        {"counting_health": "LOADS = []\nLOADS.append(1)\ndef check(): return []\n"},
    )
    app = TestApp(DockerflowMiddleware(hello))
    for _ in range(3):
        app.get("/__heartbeat__")
    assert sys.modules["counting_health"].LOADS == [1]


def test_checks_keyword_replaces_registry_and_entry_points(site):
    site("search-plugin", {"search_index": "search_health:search_index"}, {"search_health": GOOD})
    checks.register(list, name="registered")
    app = TestApp(DockerflowMiddleware(hello, checks=[("only", list)]))
    assert app.get("/__heartbeat__").json["checks"] == {"only": "ok"}


def test_a_check_registered_after_the_middleware_was_built_is_included():
    app = TestApp(DockerflowMiddleware(hello))
    checks.register(lambda: [checks.Info("late", id="l.I1")], name="late")
    assert app.get("/__heartbeat__").json["checks"] == {"late": "info"}


@pytest.fixture(autouse=True)
def empty_registry():
    checks.clear_checks()
    yield
    checks.clear_checks()


@pytest.fixture(autouse=True)
def plugin_logs(caplog):
    caplog.set_level(logging.INFO, logger="dockerflow_wsgi")
