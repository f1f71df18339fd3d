"""The Django quickstart, followed as written: a project made by ``django-admin startproject``,
edited with the blocks of the "Quickstart" section of ``docs/django.rst`` read from the page
itself, migrated and served by gunicorn as the page's shell block says.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest
from django_project.harness import BIN, REPO, environment, gunicorn, manage, run

DOCS = REPO / "docs"
WSGI = "mysite/wsgi.py"
SETTINGS_END = "mysite/settings.py (at the end)"


def section(page: str, title: str) -> str:
    """The text of the section ``title`` of ``docs/<page>.rst``, up to the next title."""
    text = (DOCS / f"{page}.rst").read_text(encoding="utf-8")
    start = re.search(rf"^{re.escape(title)}\n-+\n", text, flags=re.MULTILINE)
    assert start, f"{page}.rst has no section {title!r}"
    following = re.search(r"^\S.*\n-+\n", text[start.end() :], flags=re.MULTILINE)
    return text[start.end() : start.end() + following.start() if following else None]


def _included(argument: str, options: dict[str, str]) -> str:
    """A ``literalinclude``'s text, cut by its ``start-after`` and ``end-before`` as Sphinx
    cuts it (the options a page of ours may use; any other fails the test)."""
    assert set(options) <= {"caption", "start-after", "end-before"}, options
    text = (DOCS / argument).read_text(encoding="utf-8")
    if "start-after" in options:
        text = text.split(options["start-after"], 1)[1].split("\n", 1)[1]
    if "end-before" in options:
        text = text.split(options["end-before"], 1)[0].rsplit("\n", 1)[0] + "\n"
    return text


def captioned_blocks(text: str) -> dict[str, str]:
    """Each ``literalinclude`` and ``code-block`` of ``text`` with a caption, by caption, as
    the reader sees it."""
    lines = text.splitlines()
    blocks: dict[str, str] = {}
    index = 0
    while index < len(lines):
        directive = re.fullmatch(r"\.\. (literalinclude|code-block):: *(.*)", lines[index])
        index += 1
        if directive is None:
            continue
        options = {}
        while index < len(lines) and (option := re.fullmatch(r"   :([\w-]+):(.*)", lines[index])):
            options[option[1]] = option[2].strip()
            index += 1
        body = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
            body.append(lines[index])
            index += 1
        if directive[1] == "literalinclude":
            content = _included(directive[2], options)
        else:
            content = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        if "caption" in options:
            blocks[options["caption"]] = content
    return blocks


def start_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """``django-admin startproject mysite`` in ``tmp_path/site``, with the venv's Django."""
    site = tmp_path / "site"
    site.mkdir()
    environ = environment()
    run([str(BIN / "django-admin"), "startproject", "mysite", str(site)], tmp_path, environ)
    return site, environ


def apply_the_page(site: Path, blocks: dict[str, str]) -> Optional[dict[str, Any]]:
    """Write the page's files into ``site``: the whole ``wsgi.py``, the end of
    ``settings.py``, and ``version.json`` (its content, when the page gives one)."""
    (site / WSGI).write_text(blocks[WSGI], encoding="utf-8")
    with (site / "mysite" / "settings.py").open("a", encoding="utf-8") as settings:
        settings.write("\n" + blocks[SETTINGS_END])
    if "version.json" not in blocks:
        return None
    (site / "version.json").write_text(blocks["version.json"], encoding="utf-8")
    return json.loads(blocks["version.json"])


def shell_commands(blocks: dict[str, str]) -> list[list[str]]:
    return [shlex.split(line) for line in blocks["shell"].splitlines() if line.strip()]


def served_application(commands: list[list[str]]) -> str:
    [serve] = [command for command in commands if command[0] == "gunicorn"]
    assert len(serve) == 2, f"the page serves with options the test does not know: {serve}"
    return serve[1]


@pytest.mark.servers
def test_a_startproject_site_following_the_quickstart_serves_probes_and_summaries(
    tmp_path: Path,
) -> None:
    blocks = captioned_blocks(section("django", "Quickstart"))
    assert set(blocks) == {WSGI, SETTINGS_END, "version.json", "shell"}, "a step the test skips"
    site, environ = start_project(tmp_path)
    version = apply_the_page(site, blocks)
    commands = shell_commands(blocks)
    for command in commands:
        if command[:2] == ["python", "manage.py"]:
            manage(site, *command[2:], environ=environ)
        else:
            assert command[0] in ("gunicorn", "curl"), f"a command the test skips: {command}"

    with gunicorn(served_application(commands), site, environ, tmp_path) as server:
        lbheartbeat = server.get("/__lbheartbeat__", **{"X-Request-ID": "lbheartbeat"})
        heartbeat = server.get("/__heartbeat__", **{"X-Request-ID": "heartbeat"})
        version_answer = server.get("/__version__", **{"X-Request-ID": "version"})
        page = server.get("/admin/login/", **{"X-Request-ID": "admin"})

    assert (lbheartbeat.status, lbheartbeat.json()) == (200, {})
    assert (heartbeat.status, heartbeat.json()["status"]) == (200, "ok")
    statuses = heartbeat.json()["checks"]
    assert statuses["check_database_connected"] == statuses["check_migrations_applied"] == "ok"
    assert (version_answer.status, version_answer.json()) == (200, version)
    assert page.status == 200
    records = server.records()  # every line on stdout is JSON
    assert {record["Logger"] for record in records} == {"mysite"}
    for rid in ("lbheartbeat", "heartbeat", "version", "admin"):
        [summary] = server.summaries(rid)
        assert summary["Severity"] == 6
    assert summary["Fields"]["path"] == "/admin/login/"


def test_the_quickstart_page_shows_the_same_django_steps() -> None:
    quickstart = captioned_blocks(section("quickstart", "Django"))
    django = captioned_blocks(section("django", "Quickstart"))

    assert quickstart[WSGI] == django[WSGI]
    assert quickstart[SETTINGS_END] == django[SETTINGS_END]


def unapplied_migrations(site: Path, environ: dict[str, str]) -> list[str]:
    """``app.name`` of each migration Django's ``showmigrations`` lists as not applied."""
    listing = manage(site, "showmigrations", "--plan", environ=environ)
    return re.findall(r"^\[ \]  (\S+)$", listing, flags=re.MULTILINE)


@pytest.mark.servers
def test_a_site_not_migrated_yet_has_one_warning_naming_its_migrations(tmp_path: Path) -> None:
    site, environ = start_project(tmp_path)
    blocks = captioned_blocks(section("django", "Quickstart"))
    apply_the_page(site, blocks)
    unapplied = unapplied_migrations(site, environ)
    assert len(unapplied) > 10, unapplied

    with gunicorn(served_application(shell_commands(blocks)), site, environ, tmp_path) as server:
        heartbeat = server.get("/__heartbeat__")

    assert (heartbeat.status, heartbeat.json()["status"]) == (200, "warning")
    messages = heartbeat.json()["details"]["check_migrations_applied"]["messages"]
    expected = sorted(unapplied)  # the check lists them by app and name
    assert messages == {
        "dockerflow.health.W001": f"{len(expected)} unapplied migrations: "
        + ", ".join(expected[:10])
        + f" and {len(expected) - 10} more"
    }
