"""The ``dockerflow-wsgi`` command, run for real: heartbeat, version-json and check-config."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dockerflow_wsgi import DockerflowMiddleware, __version__, checks
from dockerflow_wsgi.cli import main
from dockerflow_wsgi.cli.version_json import repository_url
from dockerflow_wsgi.config import ENVIRONMENT_VARIABLES, Config
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.middleware import find_middleware

OPTIONS = ENVIRONMENT_VARIABLES.items()

SHA = "0123456789abcdef0123456789abcdef01234567"
REDIS_PASSWORD = "hunter2-redis-secret"
DB_PASSWORD = "s3cr3t-db-password"

# Variables the command reads, and git's, which would point it at another repository.
_OUTSIDE_PREFIXES = ("DOCKERFLOW_", "GITHUB_", "CIRCLE", "GITLAB_", "CI_", "GIT_")
_OUTSIDE_NAMES = frozenset(
    {"DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", "VERSION", "SOURCE_URL", "BUILD_URL"}
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def clean_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """This process's environment without anything the command reads, plus ``variables``.

    git looks no higher than ``tmp_path`` and ignores the user's and system's configuration.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_OUTSIDE_PREFIXES) and name not in _OUTSIDE_NAMES
    }
    env.update(
        GIT_CEILING_DIRECTORIES=str(tmp_path.parent),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(variables)
    return env


@pytest.fixture
def cli(tmp_path: Path):
    """Run ``python -m dockerflow_wsgi ARGS`` in ``tmp_path`` with a clean environment."""

    def run(*args: str, cwd: Path = tmp_path, **variables: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dockerflow_wsgi", *args],
            cwd=cwd,
            env=clean_environment(tmp_path, **variables),
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def write_module(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


def assert_clean_error(result: subprocess.CompletedProcess, status: int, *fragments: str) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.splitlines()[-1].startswith("dockerflow-wsgi: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# -- heartbeat ---------------------------------------------------------------------------------

WRAPPED_APP = """
    from dockerflow_wsgi import DockerflowMiddleware, checks

    print("the application prints while it is imported")


    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]


    def storage():
        return []


    def disk():
        return [checks.Warning("disk almost full", id="acme.health.W001")]


    @checks.register
    def replaced_by_the_checks_keyword():
        return [checks.Critical("must not run", id="acme.health.C001")]


    application = DockerflowMiddleware(hello, checks=[("storage", storage), ("disk", disk)])
"""

REGISTERING_APP = """
    from dockerflow_wsgi import checks


    @checks.register
    def queue():
        return [checks.Error("queue is 10000 jobs behind", id="acme.health.E001")]


    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
"""

FLASK_FACTORY_APP = """
    from flask import Flask

    from dockerflow_wsgi import checks
    from dockerflow_wsgi.flask import Dockerflow


    @checks.register
    def known_outage():
        return [checks.Error("the partner API is down", id="acme.health.E002")]


    def create_app():
        app = Flask(__name__)
        Dockerflow(app, silenced_checks=["acme.health.E002"])
        return app
"""


def test_heartbeat_without_checks_is_healthy(cli):
    result = cli("heartbeat")

    assert result.returncode == 0
    assert "No checks are configured." in result.stdout
    assert "status: ok (healthy)" in result.stdout


def test_heartbeat_runs_the_checks_of_the_apps_middleware_and_warnings_are_healthy(cli, tmp_path):
    write_module(tmp_path, "wrapped", WRAPPED_APP)

    result = cli("heartbeat", "--app", "wrapped:application")

    assert result.returncode == 0, result.stderr
    rows = [line.split(None, 2) for line in result.stdout.splitlines()]
    assert rows[0] == ["CHECK", "STATUS", "MESSAGES"]
    assert ["storage", "ok"] in rows
    assert ["disk", "warning", "acme.health.W001: disk almost full"] in rows
    assert "replaced_by_the_checks_keyword" not in result.stdout
    assert "status: warning (healthy)" in result.stdout


def test_heartbeat_json_is_the_heartbeat_body(cli, tmp_path):
    write_module(tmp_path, "wrapped", WRAPPED_APP)

    result = cli("heartbeat", "--json", "--app", "wrapped:application")

    assert result.returncode == 0
    # What the application printed went to stderr, so stdout is the body alone.
    assert "the application prints" in result.stderr
    assert json.loads(result.stdout) == {
        "status": "warning",
        "checks": {"storage": "ok", "disk": "warning"},
        "details": {
            "disk": {
                "status": "warning",
                "level": 30,
                "messages": {"acme.health.W001": "disk almost full"},
            }
        },
    }


def test_heartbeat_group_runs_only_that_groups_checks(cli, tmp_path):
    write_module(tmp_path, "wrapped", WRAPPED_APP)

    result = cli(
        "heartbeat",
        "--json",
        "--app",
        "wrapped:application",
        "--group",
        "readiness",
        DOCKERFLOW_HEARTBEAT_GROUPS="readiness=storage,cache;monitoring=disk",
    )

    assert result.returncode == 1, result.stderr
    body = json.loads(result.stdout)
    assert body["checks"] == {"storage": "ok", "cache": "error"}
    assert list(body["details"]["cache"]["messages"]) == ["dockerflow.health.E104"]


def test_heartbeat_of_an_unknown_group_is_a_usage_error(cli):
    result = cli("heartbeat", "--group", "readyness", DOCKERFLOW_HEARTBEAT_GROUPS="readiness=db")

    assert result.returncode == 2
    assert "no heartbeat group is named 'readyness' (configured: readiness)" in result.stderr
    assert result.stdout == ""


def test_heartbeat_runs_the_checks_a_bare_app_registers_on_import(cli, tmp_path):
    write_module(tmp_path, "registering", REGISTERING_APP)

    result = cli("heartbeat", "--app", "registering:app")

    assert result.returncode == 1
    assert "queue" in result.stdout
    assert "acme.health.E001: queue is 10000 jobs behind" in result.stdout
    assert "status: error (unhealthy)" in result.stdout


def test_heartbeat_uses_the_flask_shims_middleware_from_a_factory(cli, tmp_path):
    write_module(tmp_path, "flaskapp", FLASK_FACTORY_APP)

    result = cli("heartbeat", "--json", "--app", "flaskapp:create_app()")

    # The error is silenced by the shim's keyword, which only its middleware knows about.
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "status": "ok",
        "checks": {"known_outage": "ok"},
        "details": {},
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("missing_module:app", "cannot import 'missing_module': ModuleNotFoundError"),
        ("exploding:app", "cannot import 'exploding': RuntimeError: cannot reach"),
        ("registering:nothing_here", "module 'registering' has no attribute 'nothing_here'"),
        ("registering:checks", "not a WSGI or ASGI application"),
        ("registering:app()", "raised TypeError"),
        ("not a module", "is not of the form module:attribute"),
    ],
)
def test_heartbeat_with_an_app_that_cannot_be_loaded_is_a_usage_error(
    cli, tmp_path, spec, expected
):
    write_module(tmp_path, "registering", REGISTERING_APP)
    write_module(
        tmp_path,
        "exploding",
        f'raise RuntimeError("cannot reach postgresql://app:{DB_PASSWORD}@db/app")\n',
    )

    result = cli("heartbeat", "--app", spec)

    assert_clean_error(result, 2, expected)
    assert DB_PASSWORD not in result.stderr
    assert result.stdout == ""


def test_heartbeat_with_invalid_configuration_is_a_usage_error(cli):
    result = cli("heartbeat", DOCKERFLOW_CHECK_TIMEOUT="abc")

    assert_clean_error(result, 2, "DOCKERFLOW_CHECK_TIMEOUT", "'abc'")


def test_heartbeat_checks_the_database_of_database_url(cli, tmp_path):
    result = cli("heartbeat", DATABASE_URL=f"sqlite:///{tmp_path / 'app.sqlite3'}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1].split() == ["check_database_connected", "ok"]


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["table", "json"])
def test_heartbeat_reports_an_unreachable_redis_without_its_password(cli, output):
    # Nothing listens on port 1: the connection is refused at once.
    result = cli("heartbeat", *output, REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0")

    assert result.returncode == 1
    assert "dockerflow.health.E004" in result.stdout
    assert REDIS_PASSWORD not in result.stdout + result.stderr


def test_heartbeat_is_quiet_on_stderr_unless_verbose(cli, tmp_path):
    write_module(
        tmp_path,
        "broken",
        """
        from dockerflow_wsgi import DockerflowMiddleware

        def broken_check():
            raise ZeroDivisionError("division by zero")

        application = DockerflowMiddleware(lambda e, s: [], checks=[("broken", broken_check)])
        """,
    )

    quiet = cli("heartbeat", "--app", "broken")
    verbose = cli("heartbeat", "--verbose", "--app", "broken")

    assert quiet.returncode == verbose.returncode == 1
    assert "dockerflow.health.E101: ZeroDivisionError: division by zero" in quiet.stdout
    assert quiet.stderr == ""
    assert "Traceback" in verbose.stderr
    assert "broken_check" in verbose.stderr


@pytest.mark.parametrize(
    "body",
    [
        "raise SystemExit(3)",
        "raise SystemExit(0)",
        "raise KeyboardInterrupt",
        "return [checks.Error(float('nan'), id=['a', 'list'])]",
        "return [checks.Error(Unprintable())]",
        "return 'all good'",
    ],
)
@pytest.mark.parametrize("output", [[], ["--json"]])
def test_heartbeat_reports_a_check_that_exits_or_misbehaves_as_e101(cli, tmp_path, body, output):
    write_module(
        tmp_path,
        "misbehaving",
        f"""
        from dockerflow_wsgi import DockerflowMiddleware, checks

        class Unprintable:
            def __str__(self):
                raise RuntimeError("no text")

        def misbehaving():
            {body}

        application = DockerflowMiddleware(
            lambda e, s: [], checks=[("misbehaving", misbehaving), ("fine", list)]
        )
        """,
    )

    result = cli("heartbeat", *output, "--app", "misbehaving")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "dockerflow.health.E101" in result.stdout
    if output:
        assert json.loads(result.stdout)["checks"] == {"misbehaving": "error", "fine": "ok"}


def test_heartbeat_reports_a_hung_check_and_still_exits(cli, tmp_path):
    write_module(
        tmp_path,
        "hanging",
        """
        import threading

        from dockerflow_wsgi import DockerflowMiddleware

        def hangs():
            threading.Event().wait()

        application = DockerflowMiddleware(lambda e, s: [], checks=[("hangs", hangs)])
        """,
    )

    result = cli("heartbeat", "--app", "hanging", DOCKERFLOW_CHECK_TIMEOUT="0.2")

    assert result.returncode == 1
    assert "dockerflow.health.E102: check did not finish within 0.2 seconds" in result.stdout


def test_heartbeat_in_process_returns_the_exit_status(capsys):
    checks.register(lambda: [checks.Critical("on fire", id="acme.health.C001")], name="fire")

    status = main(["heartbeat", "--json"])

    assert status == 1
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "critical"
    assert body["details"]["fire"]["messages"] == {"acme.health.C001": "on fire"}


def test_app_is_imported_from_the_current_directory(tmp_path, monkeypatch, capsys):
    write_module(tmp_path, "cli_cwd_app", REGISTERING_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "cli_cwd_app", raising=False)

    try:
        status = main(["heartbeat", "--app", "cli_cwd_app:app"])
    finally:
        sys.modules.pop("cli_cwd_app", None)

    assert status == 1
    assert "acme.health.E001" in capsys.readouterr().out


def _plain_app(environ, start_response):
    start_response("200 OK", [])
    return [b""]


def _flask_rewrapped_after_the_shim() -> tuple[Flask, DockerflowMiddleware]:
    app = Flask(__name__)
    dockerflow = Dockerflow(app)
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(environ, start_response)
    return app, dockerflow.middleware


def _cyclic() -> tuple[object, None]:
    class Node:
        pass

    node = Node()
    node.app = node  # type: ignore[attr-defined]
    return node, None


def _cases() -> Iterator[tuple[str, object, object]]:
    middleware = DockerflowMiddleware(_plain_app)
    yield "the middleware itself", middleware, middleware
    yield "a bare app", _plain_app, None
    flask_app = Flask(__name__)
    flask_app.wsgi_app = middleware  # type: ignore[method-assign]
    yield "flask app.wsgi_app", flask_app, middleware
    yield "the flask shim, wrapped again", *_flask_rewrapped_after_the_shim()
    yield "behind two ProxyFix", ProxyFix(ProxyFix(middleware)), middleware
    yield "a wrapper cycle", *_cyclic()


@pytest.mark.parametrize(
    ("app", "expected"), [c[1:] for c in _cases()], ids=[c[0] for c in _cases()]
)
def test_find_middleware(app, expected):
    assert find_middleware(app) is expected


# -- --app given an ASGI application --------------------------------------------------------

ASGI_APPS = {
    "fastapi": """
        from fastapi import FastAPI

        from dockerflow_wsgi import checks
        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware


        def queue():
            return [checks.Warning("queue is slow", id="acme.health.W002")]


        app = FastAPI()
        app.add_middleware(
            DockerflowASGIMiddleware,
            check_timeout=3,
            checks=[("queue", queue)],
            heartbeat_groups={"jobs": ["queue"]},
        )
    """,
    "starlette, its stack built": """
        from starlette.applications import Starlette
        from starlette.middleware import Middleware

        from dockerflow_wsgi import checks
        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware


        def queue():
            return [checks.Warning("queue is slow", id="acme.health.W002")]


        app = Starlette(
            middleware=[
                Middleware(
                    DockerflowASGIMiddleware,
                    check_timeout=3,
                    checks=[("queue", queue)],
                    heartbeat_groups={"jobs": ["queue"]},
                )
            ]
        )
        app.middleware_stack = app.build_middleware_stack()
    """,
    "a raw ASGI middleware": """
        from dockerflow_wsgi import checks
        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware


        def queue():
            return [checks.Warning("queue is slow", id="acme.health.W002")]


        async def plain(scope, receive, send):
            pass


        app = DockerflowASGIMiddleware(
            plain, check_timeout=3, checks=[("queue", queue)], heartbeat_groups={"jobs": ["queue"]}
        )
    """,
    "sanic": """
        from sanic import Sanic

        from dockerflow_wsgi import checks
        from dockerflow_wsgi.sanic import Dockerflow


        def queue():
            return [checks.Warning("queue is slow", id="acme.health.W002")]


        app = Sanic("cli_sanic", configure_logging=False)
        Dockerflow(
            app, check_timeout=3, checks=[("queue", queue)], heartbeat_groups={"jobs": ["queue"]}
        )
    """,
}


@pytest.mark.parametrize("source", ASGI_APPS.values(), ids=ASGI_APPS.keys())
def test_check_config_finds_the_options_of_an_asgi_apps_middleware(cli, tmp_path, source):
    write_module(tmp_path, "asgiapp", source)

    result = cli("check-config", "--app", "asgiapp:app", DOCKERFLOW_CHECK_TIMEOUT="9")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    listed = settings(result.stdout)
    assert listed["check_timeout"] == ("3", "keyword")
    assert listed["checks"] == ("queue", "keyword")
    assert listed["heartbeat_groups"] == ("jobs=queue", "keyword")


@pytest.mark.parametrize("source", ASGI_APPS.values(), ids=ASGI_APPS.keys())
def test_heartbeat_runs_the_checks_of_an_asgi_apps_middleware(cli, tmp_path, source):
    write_module(tmp_path, "asgiapp", source)

    result = cli("heartbeat", "--json", "--group", "jobs", "--app", "asgiapp:app")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["checks"] == {"queue": "warning"}


def test_invalid_options_given_to_add_middleware_are_a_usage_error(cli, tmp_path):
    write_module(
        tmp_path,
        "asgiapp",
        """
        from fastapi import FastAPI

        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

        app = FastAPI()
        app.add_middleware(DockerflowASGIMiddleware, check_timeout="soon")
        """,
    )

    result = cli("heartbeat", "--app", "asgiapp:app")

    assert_clean_error(result, 2, "invalid configuration", "check_timeout", "'soon'")


def test_an_app_without_dockerflow_is_said_to_have_none(cli, tmp_path):
    write_module(tmp_path, "registering", REGISTERING_APP)

    result = cli("check-config", "--app", "registering:app")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "dockerflow-wsgi: warning: registering:app has no Dockerflow middleware or "
        "integration: its registered checks run with options from the environment"
    ]
    assert settings(result.stdout)["checks"] == ("queue", "default")


# -- version-json ------------------------------------------------------------------------------

PROVIDERS = {
    "github-tag": (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": SHA,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/service",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_REF_NAME": "v1.2.3",
            "GITHUB_RUN_ID": "4242",
        },
        {
            "source": "https://github.com/acme/service",
            "version": "v1.2.3",
            "commit": SHA,
            "build": "https://github.com/acme/service/actions/runs/4242",
        },
    ),
    "github-branch": (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": SHA,
            "GITHUB_SERVER_URL": "https://github.example.com",
            "GITHUB_REPOSITORY": "acme/service",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_REF_NAME": "main",
            "GITHUB_RUN_ID": "7",
        },
        {
            "source": "https://github.example.com/acme/service",
            "version": SHA,
            "commit": SHA,
            "build": "https://github.example.com/acme/service/actions/runs/7",
        },
    ),
    "circleci-repository-url": (
        {
            "CIRCLECI": "true",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_TAG": "v2.0.0",
            "CIRCLE_REPOSITORY_URL": "git@github.com:acme/service.git",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/service/99",
        },
        {
            "source": "https://github.com/acme/service",
            "version": "v2.0.0",
            "commit": SHA,
            "build": "https://circleci.com/gh/acme/service/99",
        },
    ),
    "circleci-project": (
        {
            "CIRCLECI": "true",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_PROJECT_USERNAME": "acme",
            "CIRCLE_PROJECT_REPONAME": "service",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/service/100",
        },
        {
            "source": "https://github.com/acme/service",
            "version": SHA,
            "commit": SHA,
            "build": "https://circleci.com/gh/acme/service/100",
        },
    ),
    "gitlab": (
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": SHA,
            "CI_COMMIT_TAG": "release-3",
            "CI_PROJECT_URL": "https://gitlab.com/acme/service",
            "CI_JOB_URL": "https://gitlab.com/acme/service/-/jobs/5",
        },
        {
            "source": "https://gitlab.com/acme/service",
            "version": "release-3",
            "commit": SHA,
            "build": "https://gitlab.com/acme/service/-/jobs/5",
        },
    ),
    "generic": (
        {
            "GIT_COMMIT": SHA.upper(),
            "VERSION": "2024.06.01",
            "SOURCE_URL": "https://deploy:hunter2@git.example.com/acme/service.git",
            "BUILD_URL": "https://jenkins.example.com/job/service/12/",
        },
        {
            "source": "https://git.example.com/acme/service",
            "version": "2024.06.01",
            "commit": SHA,
            "build": "https://jenkins.example.com/job/service/12/",
        },
    ),
}


@pytest.mark.parametrize(("variables", "expected"), PROVIDERS.values(), ids=PROVIDERS.keys())
def test_version_json_from_the_build_environment(cli, variables, expected):
    result = cli("version-json", **variables)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
    assert list(json.loads(result.stdout)) == ["source", "version", "commit", "build"]


def test_version_json_in_process(monkeypatch, capsys, tmp_path):
    for name in list(os.environ):
        if name.startswith(_OUTSIDE_PREFIXES) or name in _OUTSIDE_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_SHA", SHA[:12])
    monkeypatch.setenv("CI_PROJECT_URL", "https://gitlab.com/acme/service")

    assert main(["version-json"]) == 0

    assert json.loads(capsys.readouterr().out) == {
        "source": "https://gitlab.com/acme/service",
        "version": SHA[:12],
        "commit": SHA[:12],
        "build": "",
    }


def git(repository: Path, *args: str) -> str:
    result = subprocess.run(
        [
            "git",
            *("-c", "user.name=Test", "-c", "user.email=test@example.com"),
            *("-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"),
            *args,
        ],
        cwd=repository,
        env=clean_environment(repository),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A real git working tree with one commit and a remote whose URL holds a token."""
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "commit", "--quiet", "--allow-empty", "--message", "first")
    git(
        tmp_path,
        "remote",
        "add",
        "origin",
        "https://x-access-token:ghp_T0KEN@github.com/acme/service.git",
    )
    return tmp_path


@needs_git
def test_version_json_falls_back_to_git(cli, repository):
    head = git(repository, "rev-parse", "HEAD")

    untagged = cli("version-json")
    git(repository, "tag", "v3.1.4")
    tagged = cli("version-json")

    assert untagged.returncode == tagged.returncode == 0
    assert json.loads(untagged.stdout) == {
        "source": "https://github.com/acme/service",
        "version": head,
        "commit": head,
        "build": "",
    }
    assert json.loads(tagged.stdout)["version"] == "v3.1.4"
    assert "ghp_T0KEN" not in untagged.stdout + tagged.stdout


@needs_git
def test_version_json_takes_from_git_only_what_the_variables_leave_open(cli, repository):
    git(repository, "remote", "set-url", "origin", "git@github.com:acme/service.git")

    result = cli("version-json", VERSION="1.0", BUILD_URL="https://ci.example.com/1")

    assert json.loads(result.stdout) == {
        "source": "https://github.com/acme/service",
        "version": "1.0",
        "commit": git(repository, "rev-parse", "HEAD"),
        "build": "https://ci.example.com/1",
    }


def test_version_json_without_a_commit_fails(cli):
    result = cli("version-json", VERSION="1.0", SOURCE_URL="https://github.com/acme/service")

    assert_clean_error(result, 1, "no commit found", "GIT_COMMIT")
    assert result.stdout == ""


@pytest.mark.parametrize("commit", ["main", "abc12", "g123456", SHA + "0"])
def test_version_json_rejects_a_commit_that_is_not_a_sha(cli, commit):
    result = cli("version-json", GIT_COMMIT=commit)

    assert_clean_error(result, 1, "is not a git sha")


@pytest.mark.parametrize("into_directory", [False, True], ids=["file", "directory"])
def test_version_json_output_writes_the_file_atomically(cli, tmp_path, into_directory):
    target = tmp_path / "app"
    target.mkdir()
    (target / "version.json").write_text("old")
    umask = os.umask(0o022)
    os.umask(umask)

    output = target if into_directory else target / "version.json"
    result = cli("version-json", "--output", str(output), GIT_COMMIT=SHA)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert json.loads((target / "version.json").read_text())["commit"] == SHA
    assert os.listdir(target) == ["version.json"]
    assert (target / "version.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_version_json_output_into_a_missing_directory_fails(cli, tmp_path):
    result = cli("version-json", "-o", str(tmp_path / "nowhere" / "version.json"), GIT_COMMIT=SHA)

    assert_clean_error(result, 1, "cannot write")


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("git@github.com:acme/service.git", "https://github.com/acme/service"),
        (
            "ssh://git@gitlab.example.com:2222/acme/service.git",
            "https://gitlab.example.com/acme/service",
        ),
        ("https://user:token@github.com/acme/service.git", "https://github.com/acme/service"),
        (
            "https://oauth2:tok@gitlab.com/acme/service/?private_token=x",
            "https://gitlab.com/acme/service",
        ),
        ("https://github.com/acme/service", "https://github.com/acme/service"),
        ("/srv/git/service.git", "/srv/git/service"),
    ],
)
def test_repository_url(remote, expected):
    assert repository_url(remote) == expected


# -- check-config ------------------------------------------------------------------------------


def settings(stdout: str) -> dict[str, tuple[str, str]]:
    """``name = value  (source)`` lines as {name: (value, source)}."""
    parsed = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(" = ")
        value, _, source = rest.rpartition("  (")
        parsed[name] = (value, source.rstrip(")"))
    return parsed


def test_check_config_lists_every_option_with_its_default(cli, tmp_path):
    result = cli("check-config")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    listed = settings(result.stdout)
    # Every setting, and not the record of where each came from.
    config_fields = {field.name for field in dataclasses.fields(Config)} - {"sources"}
    assert list(listed) == [name for name, _ in OPTIONS]
    assert set(listed) == config_fields | {"checks"}
    assert {source for _, source in listed.values()} == {"default"}
    assert listed["version_path"][0] == str(tmp_path)
    assert listed["check_timeout"][0] == "5"
    assert listed["heartbeat_failed_status_code"][0] == "500"
    assert listed["heartbeat_details"][0] == "on"
    assert listed["db"][0] == "none"


def test_check_config_names_the_variable_each_value_came_from(cli, tmp_path):
    result = cli(
        "check-config",
        DOCKERFLOW_CHECK_TIMEOUT="2.5",
        DOCKERFLOW_SILENCED_CHECKS="acme.health.W001, acme.health.E001",
        DOCKERFLOW_SUMMARY_LOG_QUERYSTRING="Yes",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.sqlite3'}",
    )

    assert result.returncode == 0, result.stderr
    listed = settings(result.stdout)
    assert listed["check_timeout"] == ("2.5", "from DOCKERFLOW_CHECK_TIMEOUT")
    assert listed["silenced_checks"] == (
        "acme.health.E001, acme.health.W001",
        "from DOCKERFLOW_SILENCED_CHECKS",
    )
    assert listed["log_querystring"] == ("on", "from DOCKERFLOW_SUMMARY_LOG_QUERYSTRING")
    assert listed["checks"] == ("check_database_connected", "default")
    assert listed["heartbeat_cache_ttl"] == ("0", "default")


def test_check_config_rejects_an_invalid_value_naming_its_variable(cli):
    result = cli("check-config", DOCKERFLOW_CHECK_TIMEOUT="abc")

    assert_clean_error(result, 2, "DOCKERFLOW_CHECK_TIMEOUT", "'abc'")
    assert result.stdout == ""


def test_check_config_masks_passwords(cli):
    result = cli(
        "check-config",
        DATABASE_URL=f"postgresql+psycopg://app:{DB_PASSWORD}@db.invalid:5432/app",
        REDIS_URL=f"redis://:{REDIS_PASSWORD}@redis.invalid:6379/1",
    )

    assert result.returncode == 0, result.stderr
    listed = settings(result.stdout)
    assert listed["db"] == ("postgresql+psycopg://app:***@db.invalid:5432/app", "from DATABASE_URL")
    assert listed["redis"] == ("redis://:***@redis.invalid:6379/1", "from REDIS_URL")
    assert DB_PASSWORD not in result.stdout + result.stderr
    assert REDIS_PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "url", "shown"),
    [
        (
            "DATABASE_URL",
            "postgresql+psycopg://app@db.invalid/app?password=q-Pa55word-1",
            "postgresql+psycopg://app@db.invalid/app?password=***",
        ),
        (
            "DATABASE_URL",
            "mysql+pymysql://root@db.invalid/test?charset=utf8&passwd=q-Pa55word-1",
            "mysql+pymysql://root@db.invalid/test?charset=utf8&passwd=***",
        ),
        (
            "REDIS_URL",
            "redis://redis.invalid/0?password=q-Pa55word-1",
            "redis://redis.invalid/0?password=***",
        ),
        # A raw '@' in the password: redis-py reads up to the last '@', and so does masking.
        (
            "REDIS_URL",
            "redis://:hun@ter2-q-Pa55word-1@redis.invalid/0",
            "redis://:***@redis.invalid/0",
        ),
    ],
)
def test_check_config_masks_passwords_in_query_strings_and_with_a_raw_at(cli, variable, url, shown):
    result = cli("check-config", **{variable: url})

    assert result.returncode == 0, result.stderr
    option = "db" if variable == "DATABASE_URL" else "redis"
    assert settings(result.stdout)[option] == (shown, f"from {variable}")
    for part in ("q-Pa55word-1", "hun@ter2", "ter2-q"):
        assert part not in result.stdout + result.stderr


def test_check_config_of_an_app_shows_its_keywords_and_masks_its_engine(cli, tmp_path):
    write_module(
        tmp_path,
        "configured",
        f"""
        import redis
        import sqlalchemy

        from dockerflow_wsgi import DockerflowMiddleware


        def version(path):
            return {{}}


        application = DockerflowMiddleware(
            lambda environ, start_response: [],
            check_timeout=3,
            version_callback=version,
            db=sqlalchemy.create_engine("postgresql+psycopg://app:{DB_PASSWORD}@db.invalid/app"),
            redis=redis.Redis.from_url("redis://:{REDIS_PASSWORD}@redis.invalid:6379/2"),
        )
        """,
    )

    result = cli(
        "check-config",
        "--app",
        "configured",
        DOCKERFLOW_CHECK_TIMEOUT="abc",
        DOCKERFLOW_HEARTBEAT_CACHE_TTL="10",
    )

    # The keyword wins over the invalid variable, as it does in the application.
    assert result.returncode == 0, result.stderr
    listed = settings(result.stdout)
    assert listed["check_timeout"] == ("3", "keyword")
    assert listed["heartbeat_cache_ttl"] == ("10", "from DOCKERFLOW_HEARTBEAT_CACHE_TTL")
    assert listed["version_callback"] == ("<function configured.version>", "keyword")
    assert listed["db"] == ("<Engine postgresql+psycopg://app:***@db.invalid/app>", "keyword")
    assert listed["redis"] == ("<Redis redis.invalid:6379/2>", "keyword")
    assert listed["request_id_header"] == ("X-Request-ID", "default")
    assert DB_PASSWORD not in result.stdout + result.stderr
    assert REDIS_PASSWORD not in result.stdout + result.stderr


def test_check_config_warns_about_unknown_dockerflow_variables(cli):
    result = cli("check-config", DOCKERFLOW_CHECK_TIMOUT="3")

    assert result.returncode == 0
    assert "DOCKERFLOW_CHECK_TIMOUT is not a dockerflow-wsgi setting" in result.stderr
    assert "did you mean DOCKERFLOW_CHECK_TIMEOUT?" in result.stderr


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], ["heartbeat", "version-json", "check-config"]),
        (["heartbeat", "--help"], ["--app", "--json", "HEALTHCHECK", "exit status"]),
        (["version-json", "--help"], ["--output", "GitHub Actions", "GIT_COMMIT"]),
        (["check-config", "--help"], ["--app", "DOCKERFLOW_*", "masked"]),
    ],
)
def test_help(capsys, argv, expected):
    assert main(argv) == 0

    out = capsys.readouterr().out
    assert out.startswith("usage: dockerflow-wsgi")
    for fragment in expected:
        assert fragment in out


def test_check_config_help_names_every_variable_outside_dockerflow(capsys):
    """The variables of the option table that ``DOCKERFLOW_*`` does not cover."""
    assert main(["check-config", "--help"]) == 0

    description = " ".join(capsys.readouterr().out.split())
    others = [v for _, v in OPTIONS if v and not v.startswith("DOCKERFLOW_")]
    assert f"(DOCKERFLOW_*, {', '.join(others)})" in description


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"dockerflow-wsgi {__version__}\n"


def test_a_command_is_required(capsys):
    assert main([]) == 2
    assert "required" in capsys.readouterr().err


def test_python_dash_m_runs_the_command(cli):
    result = cli("--version")

    assert result.returncode == 0
    assert result.stdout == f"dockerflow-wsgi {__version__}\n"
