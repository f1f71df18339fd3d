"""The summary's ``route``: the template of the route the framework matched, as it writes it.

One test per framework, in this process: Flask (the shim and ``DockerflowMiddleware`` on
``app.wsgi_app``), Starlette, FastAPI, Pyramid and Falcon through the docs' snippets, and a
bare WSGI or ASGI app that reports its own. Django's run in the test project's process
(``test_django_routes.py``); Sanic's only under Sanic's own server, here and in the conformance
table, which also holds what every adapter shares (the Dockerflow paths' route, an unknown
group's none). Then one request each under gunicorn, uvicorn and Sanic's server
(``route_apps.py``), the summary read from the server's output.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest
import webtest
from asgi_scope import http_scope
from server_process import HOST, ServerProcess, unused_port

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

TESTS = Path(__file__).resolve().parent
SNIPPETS = TESTS.parent / "docs" / "snippets"
BIN = Path(sys.executable).parent


def taken(records: list[logging.LogRecord]) -> logging.LogRecord:
    """The one summary record written since the last taken, taken from ``records``."""
    (record,) = records
    records.clear()
    return record


def route_of(record: logging.LogRecord) -> Optional[str]:
    """A summary's ``route``; ``None`` when it has no such field."""
    return getattr(record, "route", None)


# -- WSGI: Flask, Pyramid, Falcon, a bare app -----------------------------------------------------


def flask_app(wiring: str) -> Any:
    from flask import Blueprint, Flask, request

    from dockerflow_wsgi.flask import Dockerflow

    app = Flask(__name__)
    api = Blueprint("api", __name__, url_prefix="/api")
    v2 = Blueprint("v2", __name__, url_prefix="/v2")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return str(user_id)

    @app.get("/boom")
    def boom() -> str:
        raise LookupError("the view failed")

    @app.get("/reported")
    def reported() -> str:
        request.environ["dockerflow.route"] = "/the-apps-own/<name>"
        return "reported"

    @api.get("/items/<name>")
    def item(name: str) -> str:
        return name

    @v2.get("/deep/<path:rest>")
    def deep(rest: str) -> str:
        return rest

    api.register_blueprint(v2)
    app.register_blueprint(api)
    app.register_blueprint(api, url_prefix="/other", name="other")
    if wiring == "shim":
        Dockerflow(app, heartbeat_groups={"ready": []})
    else:
        app.wsgi_app = DockerflowMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, heartbeat_groups={"ready": []}
        )
    return app


@pytest.mark.parametrize("wiring", ["shim", "wsgi_app"])
def test_flask_gives_its_url_rule_with_the_blueprints_prefixes(wiring, summary_records):
    client = webtest.TestApp(flask_app(wiring))
    expected = {
        "/users/3": (200, "/users/<int:user_id>"),
        "/api/items/a": (200, "/api/items/<name>"),
        "/api/v2/deep/a/b": (200, "/api/v2/deep/<path:rest>"),
        "/other/items/a": (200, "/other/items/<name>"),
        # Flask answers the view's exception with its 500 page while its request is there.
        "/boom": (500, "/boom"),
        # What the application reports wins over what its framework says.
        "/reported": (200, "/the-apps-own/<name>"),
        "/nope": (404, None),
        "/users/x": (404, None),
        # A redirect to the rule with a slash matched no rule.
        "/users/3/": (404, None),
        "/__heartbeat__": (200, "/__heartbeat__"),
        "/__heartbeat__/": (200, "/__heartbeat__"),
        "/__lbheartbeat__/": (200, "/__lbheartbeat__"),
        "/__heartbeat__/ready/": (200, "/__heartbeat__/ready"),
        "/__heartbeat__/nope": (404, None),
    }
    seen = {}
    for path in expected:
        response = client.get(path, expect_errors=True)
        seen[path] = (response.status_int, route_of(taken(summary_records)))
    assert seen == expected


def test_a_404_summary_has_no_route_field(summary_records):
    client = webtest.TestApp(flask_app("shim"))

    client.get("/nope", status=404)

    assert not hasattr(taken(summary_records), "route")


def snippet(name: str) -> Any:
    """Import ``docs/snippets/<name>.py`` (once) as the module ``name``, as ``test_docs`` does."""
    if str(SNIPPETS) not in sys.path:
        sys.path.insert(0, str(SNIPPETS))
    return importlib.import_module(name)


@pytest.mark.parametrize(
    ("name", "template"),
    [("pyramid_route", "/notes/{note_id}"), ("falcon_route", "/notes/{note_id}")],
)
def test_the_docs_snippets_report_pyramids_and_falcons_route(name, template, summary_records):
    client = webtest.TestApp(snippet(name).app)

    assert client.get("/notes/7").json == {"note": "7"}
    assert taken(summary_records).route == template

    client.get("/nope", status=404)
    assert not hasattr(taken(summary_records), "route")


def bare_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path.startswith("/orders/"):
        environ["dockerflow.route"] = "/orders/:id"
    elif path == "/":
        environ["dockerflow.route"] = ""
    elif path == "/raise":
        environ["dockerflow.route"] = "/raise"
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_a_bare_wsgi_app_reports_its_route_in_the_environ(summary_records, make_environ, call_wsgi):
    app = DockerflowMiddleware(bare_wsgi_app)
    seen = {}
    for path in ("/orders/12", "/", "/elsewhere", "/__version__/"):
        call_wsgi(app, make_environ(path))
        seen[path] = route_of(taken(summary_records))

    # A matched route whose template is empty is still a route.
    assert seen == {
        "/orders/12": "/orders/:id",
        "/": "",
        "/elsewhere": None,
        "/__version__/": "/__version__",
    }
    with pytest.raises(RuntimeError):
        app(make_environ("/raise"), lambda *args: None)
    record = taken(summary_records)
    assert (record.levelname, record.route) == ("ERROR", "/raise")


# -- ASGI: Starlette, FastAPI, a bare app --------------------------------------------------------


def asgi_get(app: Any, path: str, method: str = "GET") -> tuple[int, Optional[BaseException]]:
    """The status a raw ASGI request got (0: none), and the exception that reached the server."""
    scope = http_scope(path, method)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raised = None
    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:
        raised = exc
    starts = [message["status"] for message in sent if message["type"] == "http.response.start"]
    return (starts[0] if starts else 0), raised


def asgi_routes(app: Any, requests: dict[str, Any], records: list[logging.LogRecord]) -> dict:
    """For each ``path`` (or ``(method, path)``): its status and its summary's route."""
    seen = {}
    for request in requests:
        method, path = request if isinstance(request, tuple) else ("GET", request)
        status, _ = asgi_get(app, path, method)
        seen[request] = (status, route_of(taken(records)))
    return seen


def test_starlette_gives_its_routes_path_relative_to_a_mount(summary_records):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    async def boom(request: Any) -> PlainTextResponse:
        raise LookupError("the view failed")

    things = Starlette(routes=[Route("/things/{thing_id:int}", hello)])
    app = Starlette(
        routes=[
            Route("/users/{user_id:int}", hello),
            Route("/only-post", hello, methods=["POST"]),
            Route("/boom", boom),
            Mount("/v1", routes=[Route("/items/{name}", hello)]),
            Mount("/sub", app=things),
        ]
    )
    app.add_middleware(DockerflowASGIMiddleware)

    assert asgi_routes(
        app,
        {
            "/users/3": None,
            "/v1/items/a": None,
            "/sub/things/1": None,
            # A partial match answers 405: its route was matched all the same.
            "/only-post": None,
            # The exception goes up through the middleware before Starlette's 500 page.
            "/boom": None,
            "/nope": None,
            "/users/x": None,
            "/__heartbeat__/": None,
            "/__heartbeat__/nope": None,
        },
        summary_records,
    ) == {
        "/users/3": (200, "/users/{user_id:int}"),
        "/v1/items/a": (200, "/items/{name}"),
        "/sub/things/1": (200, "/things/{thing_id:int}"),
        "/only-post": (405, "/only-post"),
        "/boom": (500, "/boom"),
        "/nope": (404, None),
        "/users/x": (404, None),
        "/__heartbeat__/": (200, "/__heartbeat__"),
        "/__heartbeat__/nope": (404, None),
    }


def test_fastapi_gives_the_whole_template_of_an_included_router(summary_records):
    from fastapi import APIRouter, FastAPI

    app = FastAPI()
    api = APIRouter(prefix="/api")
    v2 = APIRouter(prefix="/v2")

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> int:
        return user_id

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("the view failed")

    @api.get("/items/{item_id}")
    async def item(item_id: str) -> str:
        return item_id

    @v2.get("/deep/{name}")
    async def deep(name: str) -> str:
        return name

    api.include_router(v2)
    app.include_router(api)
    app.include_router(api, prefix="/again")
    app.add_middleware(DockerflowASGIMiddleware)

    assert asgi_routes(
        app,
        {
            "/users/3": None,
            "/users/x": None,
            ("HEAD", "/users/3"): None,
            "/api/items/a": None,
            "/api/v2/deep/q": None,
            "/again/api/items/a": None,
            "/again/api/v2/deep/q": None,
            "/boom": None,
            "/nope": None,
            "/__lbheartbeat__": None,
        },
        summary_records,
    ) == {
        "/users/3": (200, "/users/{user_id}"),
        # Validation failed after the route was matched.
        "/users/x": (422, "/users/{user_id}"),
        ("HEAD", "/users/3"): (405, "/users/{user_id}"),
        "/api/items/a": (200, "/api/items/{item_id}"),
        "/api/v2/deep/q": (200, "/api/v2/deep/{name}"),
        "/again/api/items/a": (200, "/again/api/items/{item_id}"),
        "/again/api/v2/deep/q": (200, "/again/api/v2/deep/{name}"),
        "/boom": (500, "/boom"),
        "/nope": (404, None),
        "/__lbheartbeat__": (200, "/__lbheartbeat__"),
    }


def test_a_fastapi_404_summary_has_no_route_field(summary_records):
    from fastapi import FastAPI

    app = FastAPI()
    app.add_middleware(DockerflowASGIMiddleware)

    status, _ = asgi_get(app, "/nope")

    assert status == 404
    assert not hasattr(taken(summary_records), "route")


async def bare_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path.startswith("/orders/"):
        scope["dockerflow.route"] = "/orders/:id"
    elif path == "/":
        scope["dockerflow.route"] = ""
    elif path == "/raise":
        scope["dockerflow.route"] = "/raise"
        raise RuntimeError("boom")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_bare_asgi_app_reports_its_route_in_the_scope(summary_records):
    app = DockerflowASGIMiddleware(bare_asgi_app)

    assert asgi_routes(
        app, dict.fromkeys(["/orders/12", "/", "/elsewhere", "/raise"]), summary_records
    ) == {
        "/orders/12": (200, "/orders/:id"),
        "/": (200, ""),
        "/elsewhere": (200, None),
        "/raise": (0, "/raise"),
    }


# -- under the real servers -----------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``serve(command, port)``: a server of ``route_apps`` started from ``tests/``, answering
    ``/__lbheartbeat__``; stopped on the way out."""
    started: list[ServerProcess] = []

    def start(command: list[str], port: int, stop_signal: Any = None) -> ServerProcess:
        options = {} if stop_signal is None else {"stop_signal": stop_signal}
        server = ServerProcess(
            command,
            cwd=TESTS,
            env=route_apps_environment(),
            stdout_path=tmp_path / f"{len(started)}.out",
            stderr_path=tmp_path / f"{len(started)}.err",
            **options,
        ).start()
        started.append(server)

        def answers() -> bool:
            try:
                return httpx.get(f"http://{HOST}:{port}/__lbheartbeat__", timeout=1).is_success
            except httpx.TransportError:
                return False

        server.wait_until(answers)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def route_apps_environment() -> dict[str, str]:
    environ = {
        name: value for name, value in os.environ.items() if not name.startswith("DOCKERFLOW_")
    }
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), environ.get("PYTHONPATH")]))
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


def served_route(server: ServerProcess, port: int, path: str, request_id: str) -> dict[str, Any]:
    """The summary fields of one request the server answered with 200."""
    response = httpx.get(f"http://{HOST}:{port}{path}", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    server.wait_for_output(f'"rid":"{re.escape(request_id)}"', timeout=10)
    (fields,) = [
        record["Fields"]
        for record in map(json.loads, server.output().splitlines())
        if record["Type"] == "request.summary" and record["Fields"]["rid"] == request_id
    ]
    return fields


@pytest.mark.servers
def test_flask_under_gunicorn(serve):
    port = unused_port()
    command = [BIN / "gunicorn", "--bind", f"{HOST}:{port}", "--workers", "1"]
    server = serve([*command, "route_apps:flask_app()"], port)

    fields = served_route(server, port, "/api/items/abc", "gunicorn-route")

    assert fields["route"] == "/api/items/<name>"


@pytest.mark.servers
def test_fastapi_under_uvicorn(serve):
    port = unused_port()
    command = [BIN / "uvicorn", "--factory", "--host", HOST, "--port", str(port)]
    server = serve([*command, "--no-access-log", "route_apps:fastapi_app"], port)

    fields = served_route(server, port, "/api/items/abc", "uvicorn-route")

    assert fields["route"] == "/api/items/{item_id}"


@pytest.mark.servers
def test_sanic_under_its_own_server(serve):
    port = unused_port()
    command = [sys.executable, "-m", "route_apps", "sanic", str(port)]
    server = serve(command, port, stop_signal=signal.SIGINT)

    fields = served_route(server, port, "/api/items/abc", "sanic-route")

    # As Sanic writes it: no leading slash.
    assert fields["route"] == "api/items/<name:str>"


def test_a_route_the_app_reports_that_is_no_text_is_logged_as_text(summary_records):
    def app(environ, start_response):
        environ["dockerflow.route"] = 123
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    webtest.TestApp(DockerflowMiddleware(app)).get("/anything")

    assert route_of(taken(summary_records)) == "123"


def test_a_flask_app_wrapped_whole_has_its_route(summary_records):
    from flask import Flask

    app = Flask("whole")

    @app.get("/notes/<int:note_id>")
    def note(note_id: int) -> str:
        return "note"

    webtest.TestApp(DockerflowMiddleware(app)).get("/notes/7")

    assert route_of(taken(summary_records)) == "/notes/<int:note_id>"


def test_flask_propagating_a_views_exception_keeps_its_route(summary_records):
    from flask import Flask

    from dockerflow_wsgi.flask import Dockerflow

    app = Flask("propagating")
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/boom/<int:n>")
    def boom(n: int) -> str:
        raise RuntimeError("boom")

    Dockerflow(app)
    with pytest.raises(RuntimeError):
        webtest.TestApp(app).get("/boom/1")

    assert route_of(taken(summary_records)) == "/boom/<int:n>"
