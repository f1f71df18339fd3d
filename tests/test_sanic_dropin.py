"""What a service moving from ``dockerflow.sanic`` keeps: ``Dockerflow(app).check``,
``init_check`` and ``checks``, as the ``dockerflow`` package's Sanic documentation registers
checks; and an ERROR summary written as every adapter writes it.

The three methods behave as the ``dockerflow`` package's: each warns that it is deprecated,
naming what replaces it, and registers into (or reads) the checks the heartbeat runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sanic import Request, Sanic
from test_sanic import TESTS, Server

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter
from dockerflow_wsgi.sanic import Dockerflow


def new_app() -> Sanic:
    return Sanic(f"app_{uuid.uuid4().hex}", configure_logging=False)


def ok() -> list[checks.CheckMessage]:
    return []


def connected(resource: str) -> list[checks.CheckMessage]:
    return [checks.Info(f"connected to {resource}", id="acme.I001")]


def heartbeat_checks(dockerflow: Dockerflow) -> dict[str, Any]:
    assert dockerflow.core is not None
    return dict(dockerflow.core.checks.current())


# -- check, init_check, checks ---------------------------------------------------------------------


def test_check_as_a_bare_decorator_registers_under_the_functions_name() -> None:
    dockerflow = Dockerflow(new_app())

    with pytest.warns(DeprecationWarning, match=r"dockerflow_wsgi\.checks\.register\(\)"):
        decorated = dockerflow.check(ok)

    assert decorated is ok
    assert checks.get_checks() == {"ok": ok}
    assert heartbeat_checks(dockerflow) == {"ok": ok}


def test_check_with_a_name_registers_under_that_name() -> None:
    dockerflow = Dockerflow(new_app())

    with pytest.warns(DeprecationWarning):
        decorator = dockerflow.check(name="database")
    decorated = decorator(ok)

    assert decorated is ok
    assert checks.get_checks() == {"database": ok}


def test_init_check_registers_the_check_bound_to_its_resource() -> None:
    dockerflow = Dockerflow(new_app())

    with pytest.warns(DeprecationWarning, match=r"dockerflow_wsgi\.checks\.register_partial\(\)"):
        bound = dockerflow.init_check(connected, "redis://cache")

    assert checks.get_checks() == {"connected": bound}
    assert bound() == [checks.Info("connected to redis://cache", id="acme.I001")]


def test_checks_are_the_checks_the_heartbeat_runs() -> None:
    checks.register(ok)
    dockerflow = Dockerflow(new_app())

    with pytest.warns(DeprecationWarning, match=r"dockerflow_wsgi\.checks\.get_checks\(\)"):
        current = dockerflow.checks

    assert current == {"ok": ok}


def test_with_checks_given_the_instance_runs_what_it_registers() -> None:
    dockerflow = Dockerflow(new_app(), checks=[("ok", ok)])

    with pytest.warns(DeprecationWarning):
        dockerflow.check(name="database")(ok)
        bound = dockerflow.init_check(connected, "redis://cache")
        current = dockerflow.checks

    assert current == {"ok": ok, "database": ok, "connected": bound}
    assert heartbeat_checks(dockerflow) == current
    # The registry, which checks= replaces for this instance, is left alone.
    assert checks.get_checks() == {}


def test_checks_registered_before_init_app_are_the_apps() -> None:
    dockerflow = Dockerflow(checks=[])
    with pytest.warns(DeprecationWarning):
        dockerflow.check(ok)
        dockerflow.init_app(new_app())
        current = dockerflow.checks

    assert current == {"ok": ok}
    assert heartbeat_checks(dockerflow) == current


# -- the ERROR summary, whatever the adapter ------------------------------------------------------


class _Lines(logging.Handler):
    """The mozlog lines of the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLogFormatter(logger_name="test"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def summary_lines() -> Iterator[list[dict[str, Any]]]:
    logger = logging.getLogger("request.summary")
    handler = _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def wsgi_error_summary(lines: list[dict[str, Any]]) -> dict[str, Any]:
    def raising(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("exception message")

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/boom", "wsgi.input": None}
    with pytest.raises(ValueError):
        DockerflowMiddleware(raising, checks=[])(environ, lambda *args: None)
    return lines[-1]


def asgi_error_summary(lines: list[dict[str, Any]]) -> dict[str, Any]:
    async def raising(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("exception message")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    middleware = DockerflowASGIMiddleware(raising, checks=[])
    with pytest.raises(ValueError):
        asyncio.run(middleware({"type": "http", "method": "GET", "path": "/boom"}, receive, send))
    return lines[-1]


def raising_app() -> Sanic:
    app = Sanic("raising", configure_logging=False)

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise ValueError("exception message")

    Dockerflow(app, checks=[])
    return app


SERVE_SANIC = """\
import logging, sys
from dockerflow_wsgi.logging import MozlogHandler
logging.basicConfig(handlers=[MozlogHandler(name="test")], level=logging.INFO)
sys.path.insert(0, sys.argv[1])
import test_sanic_dropin
test_sanic_dropin.raising_app().run(
    host="127.0.0.1", port=int(sys.argv[2]), single_process=True, motd=False
)
"""


@pytest.fixture
def sanic_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, "raising", ["-c", SERVE_SANIC, str(TESTS), "{port}"])
    server.start()
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


#: What each adapter's ERROR summary must agree on: its message (none: ``msg`` absent), its
#: severity and the fields that report the error; not the traceback, whose frames differ.
COMPARED_FIELDS = ("msg", "code", "errno", "error")


@pytest.mark.servers
def test_an_error_summary_has_the_same_message_under_wsgi_asgi_and_sanic(
    summary_lines: list[dict[str, Any]], sanic_server: Server
) -> None:
    rid = f"boom-{uuid.uuid4().hex}"
    assert sanic_server.get("/boom", rid).status_code == 500
    by_adapter = {
        "wsgi": wsgi_error_summary(summary_lines),
        "asgi": asgi_error_summary(summary_lines),
        "sanic": sanic_server.summary(rid),
    }

    compared = {
        adapter: (
            line["Severity"],
            {name: line["Fields"].get(name) for name in COMPARED_FIELDS},
        )
        for adapter, line in by_adapter.items()
    }
    assert compared["wsgi"] == compared["asgi"] == compared["sanic"]
    assert compared["sanic"] == (
        3,
        {"msg": None, "code": 500, "errno": 500, "error": "ValueError('exception message')"},
    )
