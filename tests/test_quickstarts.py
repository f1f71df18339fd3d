"""The quickstarts run as pasted, in a new virtualenv, under the server their page names.

A newcomer copies an example from a page into a file, installs this checkout and the framework
the way the README says, and starts the server the example's docstring names. That is done
here once per test session: one new virtualenv (no system site-packages, nothing of this test
run's environment) gets a copy of the checkout installed by the README's "from a checkout"
line, and the frameworks and servers. Each example then serves the three Dockerflow paths with
``200`` (``version.json`` written where the docs say it is read) and writes its requests'
``request.summary`` lines, as mozlog JSON, on stdout: the logging set up by the example itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from server_process import ServerProcess, unused_port

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

# (page, section holding its quickstart or None for the whole page, example): every example a
# quickstart shows but Django's, which have tests of their own (test_django_*.py).
QUICKSTARTS = [
    ("quickstart", None, "flask_explicit"),
    ("quickstart", None, "flask_shim"),
    ("quickstart", None, "flask_factory"),
    ("quickstart", None, "pyramid_app"),
    ("quickstart", None, "falcon_app"),
    ("quickstart", None, "bare_wsgi"),
    ("asgi", "Quickstart", "fastapi_app"),
    ("asgi", "Quickstart", "starlette_app"),
    ("sanic", "Quickstart", "sanic_app"),
]

# What the pages tell a newcomer to install beside the package: the frameworks and the servers.
FRAMEWORKS = ["gunicorn", "Flask", "pyramid", "falcon", "fastapi", "uvicorn", "sanic"]

# Where each server is told to listen, beside the command the example's docstring gives.
BIND = {
    "gunicorn": ["--bind", "127.0.0.1:{port}"],
    "uvicorn": ["--host", "127.0.0.1", "--port", "{port}"],
    "sanic": ["--host", "127.0.0.1", "--port", "{port}"],
}

VERSION = {"source": "https://github.com/acme/myapp", "version": "1.0", "commit": "c" * 40}


# -- the pages -----------------------------------------------------------------------------------


def page_text(page: str, section: str | None) -> str:
    text = (DOCS / f"{page}.rst").read_text(encoding="utf-8")
    if section is None:
        return text
    start = text.index(f"\n{section}\n{'-' * len(section)}\n")
    rest = text[start + 1 :]
    following = re.search(r"\n[^\n]+\n-{3,}\n", rest[len(section) + 2 :])
    return rest if following is None else rest[: len(section) + 2 + following.start()]


def shown(page: str, section: str | None) -> dict[str, str]:
    """Each example the section includes whole, by name: the text a reader copies."""
    examples = {}
    for name, options in re.findall(
        r"\.\. literalinclude:: snippets/(\w+)\.py\n((?:   :\w+:.*\n)*)", page_text(page, section)
    ):
        assert re.findall(r":(\w+):", options) in ([], ["caption"]), f"{name} is shown in part"
        examples[name] = (DOCS / "snippets" / f"{name}.py").read_text(encoding="utf-8")
    return examples


def test_the_pages_show_these_quickstarts() -> None:
    pages = {(page, section) for page, section, _ in QUICKSTARTS}
    names = {name for page, section in pages for name in shown(page, section)}
    others = {name for name in names if not name.startswith("django_")}
    assert others == {name for _, _, name in QUICKSTARTS}


def server_command(source: str) -> list[str]:
    """The command the example's docstring gives to serve it: ``gunicorn module:app``..."""
    match = re.search(r"``((?:gunicorn|uvicorn|sanic) [^`]+)``", source.split("\n", 1)[0])
    assert match is not None, "the example's docstring names no server command"
    return shlex.split(match.group(1))


# -- the new virtualenv --------------------------------------------------------------------------


def readme_checkout_line() -> list[str]:
    """The README's line that installs from a checkout, as its words."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^pip install '/path/to/dockerflow-wsgi\[.*$", readme, re.M)
    return shlex.split(line.split("#", 1)[0])


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without what would change a newcomer's run: our virtualenv,
    our import path, and the variables the middleware reads."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DOCKERFLOW_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))
        and name not in ("DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG")
    }
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, timeout: float = 600) -> None:
    finished = subprocess.run(
        command,
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert finished.returncode == 0, f"{command}:\n{finished.stdout[-3000:]}{finished.stderr}"


@pytest.fixture(scope="session")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a new virtualenv with the checkout and the frameworks."""
    root = tmp_path_factory.mktemp("newcomer")
    # A copy: pip builds a local directory in place, and the tree is shared with other work.
    checkout = root / "dockerflow-wsgi"
    shutil.copytree(
        REPO,
        checkout,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "_build", ".*_cache"
        ),
    )
    run([sys.executable, "-m", "venv", str(root / "venv")], cwd=root, timeout=120)
    bin_dir = root / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "--quiet", "--disable-pip-version-check"]
    words = readme_checkout_line()
    assert words[:2] == ["pip", "install"]
    requirement = words[2].replace("/path/to/dockerflow-wsgi", str(checkout), 1)
    run([*pip, "install", requirement], cwd=root)
    run([*pip, "install", *FRAMEWORKS], cwd=root)
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import dockerflow_wsgi; print(dockerflow_wsgi.__file__)"],
        cwd=root,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(root / "venv"), where
    return bin_dir


# -- serving an example --------------------------------------------------------------------------


def get(url: str, **headers: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")}


def serve_and_ask(
    command: list[str], cwd: Path, port: str, paths: dict[str, dict[str, str]]
) -> tuple[dict[str, tuple[int, Any]], str, str]:
    """Start ``command``, wait for it on ``port``, GET each path with its headers, stop it with
    SIGTERM.

    Returns the answers (status, JSON) by path, and the server's stdout and stderr.
    """
    base = f"http://127.0.0.1:{port}"
    with ServerProcess(  # in a session of its own: sanic's workers too are stopped with it
        command,
        cwd=cwd,
        env=environment(),
        stdout_path=cwd / "stdout.log",
        stderr_path=cwd / "stderr.log",
    ) as server:
        server.wait_until(lambda: get(f"{base}/__lbheartbeat__")[0] == 200, 60, interval=0.2)
        answers = {path: get(base + path, **headers) for path, headers in paths.items()}
    return answers, server.output(), server.errors()


@pytest.mark.servers
@pytest.mark.parametrize(("page", "section", "name"), QUICKSTARTS)
def test_the_quickstart_runs_as_pasted(
    page: str, section: str | None, name: str, newcomer: Path, tmp_path: Path
) -> None:
    source = shown(page, section)[name]
    service = tmp_path / "service"
    service.mkdir()
    (service / f"{name}.py").write_text(source, encoding="utf-8")
    # Where the docs say /__version__ reads it: the Flask shim, the parent directory of
    # app.root_path; every other integration, the working directory.
    flask_shim = "dockerflow_wsgi.flask" in source
    (tmp_path if flask_shim else service).joinpath("version.json").write_text(json.dumps(VERSION))
    server, *arguments = server_command(source)
    port = str(unused_port())
    bind = [word.format(port=port) for word in BIND[server]]
    request_id = f"quickstart-{name}"

    answers, stdout, stderr = serve_and_ask(
        [str(newcomer / server), *arguments, *bind],
        service,
        port,
        {
            "/__lbheartbeat__": {},
            "/__heartbeat__": {},
            "/__version__": {},
            "/": {"X-Request-ID": request_id},
        },
    )

    assert {path: status for path, (status, _) in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["/__version__"][1] == VERSION
    assert answers["/"][1]["request_id"] == request_id
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert [line for line in lines if not line.startswith("{")] == [], "stdout is mozlog only"
    records = [json.loads(line) for line in lines]
    summaries = [
        record["Fields"]
        for record in records
        if record["Type"] == "request.summary" and record["Fields"]["rid"] == request_id
    ]
    assert len(summaries) == 1, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert (summaries[0]["path"], summaries[0]["code"]) == ("/", 200)
    probes = {record["Fields"]["path"] for record in records if record["Type"] == "request.summary"}
    assert {"/__lbheartbeat__", "/__heartbeat__", "/__version__"} <= probes
