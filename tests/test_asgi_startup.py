"""A bad option stops an ASGI service at start, under the real uvicorn and hypercorn, and a
Sanic service under Sanic's own server.

DESIGN: "A bad option stops an ASGI service at start: under uvicorn and hypercorn with their
default settings (--lifespan auto), Starlette's lazily built middleware included, the server
stops (uvicorn exits non-zero; hypercorn 0.18 stops, whatever its exit status) with the error's
text in its log instead of answering 500 to every request."

Starlette builds ``app.add_middleware``'s middleware on its first call, the lifespan's: an
exception there is taken by both servers for an application without lifespan support, and the
server would go on answering 500.
"""

from __future__ import annotations

import asyncio
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest
from asgi_apps.harness import BIN, SERVERS, environment, server_command
from server_process import ServerProcess, unused_port

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

#: Longer than any server takes to start and stop again on this machine.
STOP_TIMEOUT = 20.0

APPS = {
    # Built lazily, on Starlette's first call.
    "fastapi": textwrap.dedent(
        """
        from fastapi import FastAPI

        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

        app = FastAPI()
        app.add_middleware(DockerflowASGIMiddleware)
        """
    ),
    # Built at import.
    "raw": textwrap.dedent(
        """
        from dockerflow_wsgi.asgi import DockerflowASGIMiddleware


        async def hello(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"hello"})


        app = DockerflowASGIMiddleware(hello)
        """
    ),
}

#: A module that stands for redis-py not being installed, as Python reports that.
NO_REDIS = 'raise ModuleNotFoundError("No module named \'redis\'", name="redis")\n'

#: The bad option, and a piece of the error's text the server's log must show.
BAD_OPTIONS = {
    "check-timeout": ({"DOCKERFLOW_CHECK_TIMEOUT": "abc"}, "DOCKERFLOW_CHECK_TIMEOUT"),
    "redis-missing": ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "dockerflow-wsgi[redis]"),
}


@pytest.mark.servers
@pytest.mark.parametrize("bad", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("server", SERVERS)
def test_a_bad_option_stops_the_server_at_start_with_the_error_in_its_log(
    tmp_path: Path, server: str, app: str, bad: tuple[dict[str, str], str]
) -> None:
    if not (BIN / server).exists():
        pytest.skip(f"{server} is not installed in {BIN}")
    variables, error_text = bad
    (tmp_path / "service.py").write_text(APPS[app], encoding="utf-8")
    command = server_command(server, "service:app", unused_port())
    status = _run_until_stopped(tmp_path, command, variables, error_text)
    if server == "uvicorn":
        assert status != 0


def _run_until_stopped(
    workdir: Path, command: list[str], variables: dict[str, str], error_text: str
) -> int:
    """Run ``command`` in ``workdir`` with redis-py hidden; fail unless it stops by itself
    with ``error_text`` in its output. Its exit status."""
    shadows = workdir / "shadows"
    shadows.mkdir()
    (shadows / "redis.py").write_text(NO_REDIS, encoding="utf-8")
    environ = environment(**variables)
    environ["PYTHONPATH"] = str(shadows)
    with ServerProcess(command, cwd=workdir, env=environ, stdout_path=workdir / "output") as server:
        status = server.wait(STOP_TIMEOUT)
        if status is None:
            server.kill()
            pytest.fail(
                f"{command[0]} still serving after {STOP_TIMEOUT:g} s:\n" + server.output()[-3000:]
            )
    text = server.output()
    assert error_text in text, text
    return status


# -- in-process: what the servers above are sent ---------------------------------------------------


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("the application is never reached")


def _built_while_serving(**options: Any) -> Any:
    """The middleware as Starlette builds it: in a call the server's event loop runs."""

    async def build() -> Any:
        return DockerflowASGIMiddleware(_hello, **options)

    return asyncio.run(build())


def test_built_outside_an_event_loop_a_bad_option_raises_at_once() -> None:
    with pytest.raises(ValueError, match="check_timeout must be a number of seconds"):
        DockerflowASGIMiddleware(_hello, check_timeout="abc")


def test_built_while_serving_a_bad_option_fails_the_lifespan_startup_with_its_text() -> None:
    middleware = _built_while_serving(check_timeout="abc")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(ValueError, match="check_timeout must be a number of seconds"):
        asyncio.run(middleware({"type": "lifespan"}, receive, send))

    [failed] = sent
    assert failed["type"] == "lifespan.startup.failed"
    assert "check_timeout must be a number of seconds, got 'abc'" in failed["message"]


@pytest.mark.parametrize(
    ("options", "error"),
    [({"check_timeout": "abc"}, ValueError), ({"check_timeuot": 1}, TypeError)],
)
def test_built_while_serving_a_bad_option_fails_every_request_with_its_error(
    options: dict[str, Any], error: type[Exception]
) -> None:
    middleware = _built_while_serving(**options)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    depths = []
    for _ in range(3):
        with pytest.raises(error) as raised:
            asyncio.run(middleware({"type": "http", "path": "/"}, receive, send))
        depths.append(len(list(traceback.walk_tb(raised.value.__traceback__))))
    # Each time the refusal's traceback and this call's, not one grown by every call.
    assert depths[0] == depths[1] == depths[2]


SANIC_APP = textwrap.dedent(
    """
    from sanic import Sanic
    from sanic.response import text

    from dockerflow_wsgi.sanic import Dockerflow

    app = Sanic("service")
    Dockerflow(app)


    @app.get("/")
    async def index(request):
        return text("hello")
    """
)


@pytest.mark.servers
@pytest.mark.parametrize("bad", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_a_bad_option_stops_sanic_at_start_with_the_error_in_its_log(
    tmp_path: Path, bad: tuple[dict[str, str], str]
) -> None:
    if not (BIN / "sanic").exists():
        pytest.skip(f"sanic is not installed in {BIN}")
    variables, error_text = bad
    (tmp_path / "service.py").write_text(SANIC_APP, encoding="utf-8")
    command = [str(BIN / "sanic"), "service:app", "--host", "127.0.0.1"]
    command += ["--port", str(unused_port())]
    # Sanic's command logs an error that loading the app raised and exits, with status 0: its
    # own choice, so only the stop and the log are checked.
    _run_until_stopped(tmp_path, command, variables, error_text)
