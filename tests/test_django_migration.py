"""A project made by ``django-admin startproject`` and set up with ``dockerflow.django``, migrated
by following "Migrating from dockerflow.django" in ``docs/django.rst`` to the letter, then served
by gunicorn without the ``dockerflow`` package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django_project.harness import BIN, REPO, environment, gunicorn, manage, run
from docutils import nodes
from docutils.core import publish_doctree

GUIDE = REPO / "docs" / "django.rst"
VERSION = {"source": "https://github.com/acme/mysite", "version": "2.0.1", "commit": "c" * 40}

# What a service that follows the dockerflow package's documentation has, besides its
# INSTALLED_APPS and MIDDLEWARE entries.
DOCKERFLOW_SETTINGS = """
DOCKERFLOW_CHECKS = [
    "dockerflow.django.checks.check_database_connected",
    "dockerflow.django.checks.check_migrations_applied",
    "monitoring.checks.check_disk",
]

LOGGING = {
    "version": 1,
    "formatters": {
        "json": {"()": "dockerflow.logging.JsonLogFormatter", "logger_name": "mysite"},
    },
    "filters": {"request_id": {"()": "dockerflow.logging.RequestIdLogFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "loggers": {
        "request.summary": {"handlers": ["console"], "level": "DEBUG"},
        "monitoring": {"handlers": ["console"], "level": "INFO"},
    },
}
"""

MONITORING_APP = """\
from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self):
        from . import receivers  # noqa: F401
"""

MONITORING_CHECKS = """\
from django.core import checks


def check_disk(app_configs, **kwargs):
    return [checks.Info("disk 40% full", id="monitoring.I001")]
"""

MONITORING_RECEIVERS = """\
import logging

from django.dispatch import receiver

from dockerflow.django.signals import heartbeat_passed

logger = logging.getLogger("monitoring")


@receiver(heartbeat_passed)
def heartbeat_passed_handler(sender, level, **kwargs):
    logger.info("heartbeat passed", extra={"heartbeat_level": level})
"""

# Stands for the dockerflow package once it is uninstalled: the migrated project must not
# import it.
UNINSTALLED = 'raise ImportError("the dockerflow package is uninstalled")\n'


def migration_table() -> list[tuple[str, str]]:
    """(replace, with) of each row of the guide's table, as literally written."""
    doctree = publish_doctree(
        GUIDE.read_text(encoding="utf-8"),
        settings_overrides={"report_level": 5, "halt_level": 5, "file_insertion_enabled": False},
    )
    for table in doctree.findall(nodes.table):
        rows = [
            [entry.astext() for entry in row.findall(nodes.entry)]
            for row in table.findall(nodes.row)
        ]
        if rows[0] == ["where", "replace", "with"]:
            return [(old, new) for _, old, new in rows[1:]]
    raise AssertionError("docs/django.rst has no migration table")


def set_up_dockerflow(site: Path) -> None:
    """Configure ``dockerflow.django`` in a fresh ``startproject`` project, by its docs."""
    settings = site / "mysite" / "settings.py"
    text = settings.read_text(encoding="utf-8")
    text, apps = re.subn(
        r"^INSTALLED_APPS = \[\n",
        "\\g<0>    'dockerflow.django',\n    'monitoring',\n",
        text,
        flags=re.MULTILINE,
    )
    text, middleware = re.subn(
        r"^ +(['\"])django\.contrib\.auth\.middleware\.AuthenticationMiddleware\1,\n",
        "\\g<0>    'dockerflow.django.middleware.DockerflowMiddleware',\n",
        text,
        flags=re.MULTILINE,
    )
    assert apps == middleware == 1, "startproject's settings.py changed its layout"
    settings.write_text(text + DOCKERFLOW_SETTINGS, encoding="utf-8")
    monitoring = site / "monitoring"
    (monitoring / "apps.py").write_text(MONITORING_APP, encoding="utf-8")
    (monitoring / "checks.py").write_text(MONITORING_CHECKS, encoding="utf-8")
    (monitoring / "receivers.py").write_text(MONITORING_RECEIVERS, encoding="utf-8")


def follow_the_guide(site: Path) -> None:
    sources = {path: path.read_text(encoding="utf-8") for path in site.rglob("*.py")}
    for old, new in migration_table():
        assert any(old in source for source in sources.values()), f"nothing to replace: {old}"
        sources = {path: source.replace(old, new) for path, source in sources.items()}
    for path, source in sources.items():
        assert not re.search(r"\bdockerflow\.", source), f"{path} still uses dockerflow"
        path.write_text(source, encoding="utf-8")


@pytest.mark.servers
def test_a_startproject_project_migrates_from_dockerflow_by_following_the_guide(
    tmp_path: Path,
) -> None:
    pytest.importorskip("dockerflow.django", reason="the dockerflow package is not installed")
    site = tmp_path / "site"
    site.mkdir()
    environ = environment()
    run([str(BIN / "django-admin"), "startproject", "mysite", str(site)], tmp_path, environ)
    manage(site, "startapp", "monitoring", environ=environ)
    set_up_dockerflow(site)
    manage(site, "check", environ=environ)  # a working dockerflow.django project

    follow_the_guide(site)
    uninstalled = tmp_path / "uninstalled"
    (uninstalled / "dockerflow").mkdir(parents=True)
    (uninstalled / "dockerflow" / "__init__.py").write_text(UNINSTALLED, encoding="utf-8")
    environ = environment(uninstalled)
    manage(site, "migrate", environ=environ)
    (site / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")  # BASE_DIR

    with gunicorn("mysite.wsgi:application", site, environ, tmp_path) as server:
        lbheartbeat = server.get("/__lbheartbeat__", **{"X-Request-ID": "lbheartbeat"})
        heartbeat = server.get("/__heartbeat__/", **{"X-Request-ID": "heartbeat"})
        version = server.get("/__version__", **{"X-Request-ID": "version"})
        admin = server.get("/admin/login/", **{"X-Request-ID": "admin"})

    assert (lbheartbeat.status, lbheartbeat.json()) == (200, {})
    assert heartbeat.status == 200
    statuses = heartbeat.json()["checks"]
    assert statuses["check_database_connected"] == statuses["check_migrations_applied"] == "ok"
    assert statuses["check_disk"] == "info"
    assert statuses["check_url_config"] == "ok"
    assert heartbeat.json()["details"]["check_disk"]["messages"] == {
        "monitoring.I001": "disk 40% full"
    }
    assert (version.status, version.json()) == (200, VERSION)
    assert admin.status == 200
    assert admin.headers["X-Request-ID"] == "admin"

    records = server.records()  # every stdout line is JSON
    assert {record["Logger"] for record in records} == {"mysite"}
    for rid in ("lbheartbeat", "heartbeat", "version", "admin"):
        [summary] = server.summaries(rid)
        assert summary["Severity"] == 6
    assert summary["Fields"]["path"] == "/admin/login/"
    [passed] = [record for record in records if record["Type"] == "monitoring"]
    assert passed["Fields"]["msg"] == "heartbeat passed"
    assert passed["Fields"]["heartbeat_level"] == 20
    assert passed["Fields"]["rid"] == "heartbeat"
