"""Browser code can read the request id: ``Access-Control-Expose-Headers`` on CORS responses.

DESIGN: "A response that carries Access-Control-Allow-Origin gets the request id header's name
in Access-Control-Expose-Headers (added to what the app set, unless present or *), so browser
code can read the id." One table, through the WSGI middleware, the ASGI middleware and the Sanic
integration on Sanic's own server: each answers with the headers the row's application set.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from sanic import Request, Sanic, response
from test_sanic import TESTS, Server

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.cors import exposed_headers
from dockerflow_wsgi.sanic import Dockerflow

Headers = list[tuple[str, str]]

ORIGIN = ("Access-Control-Allow-Origin", "https://app.example.com")


def expose(value: str) -> tuple[str, str]:
    return ("Access-Control-Expose-Headers", value)


#: The headers the application sets, and the Access-Control-Expose-Headers the client gets (all
#: its fields, as HTTP combines them; None: no such header).
CASES: dict[str, tuple[Headers, Optional[str]]] = {
    "no-cors": ([("Content-Type", "text/plain")], None),
    "no-cors-own-list": ([expose("X-Total")], "X-Total"),
    "cors": ([ORIGIN], "X-Request-ID"),
    "cors-any-origin": ([("Access-Control-Allow-Origin", "*")], "X-Request-ID"),
    "cors-lowercase-name": ([("access-control-allow-origin", "https://a.example")], "X-Request-ID"),
    "other-names": ([ORIGIN, expose("X-Total, X-Page")], "X-Total, X-Page, X-Request-ID"),
    "two-fields": ([ORIGIN, expose("X-Total"), expose("X-Page")], "X-Total, X-Page, X-Request-ID"),
    "empty-list": ([ORIGIN, expose("")], "X-Request-ID"),
    "listed": ([ORIGIN, expose("X-Request-ID")], "X-Request-ID"),
    "listed-lowercase": ([ORIGIN, expose("x-request-id")], "x-request-id"),
    "listed-among-others": ([ORIGIN, expose("X-Total,X-REQUEST-ID")], "X-Total,X-REQUEST-ID"),
    "star": ([ORIGIN, expose("*")], "*"),
    "star-among-others": ([ORIGIN, expose("X-Total, *")], "X-Total, *"),
    "apps-own-id": ([ORIGIN, ("X-Request-ID", "the-apps")], "X-Request-ID"),
}

#: An adapter serving ``headers`` for one request: the response's headers as the client gets
#: them, names and values as text.
Serve = Callable[[Headers], Headers]


def serve_wsgi(headers: Headers) -> Headers:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", list(headers))
        return [b"body"]

    got: Headers = []

    def start_response(status: str, response_headers: Headers, exc_info: Any = None) -> None:
        got.extend(response_headers)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/cors", "wsgi.input": None}
    body = DockerflowMiddleware(app, checks=[])(environ, start_response)
    body.close()
    return got


def serve_asgi(headers: Headers) -> Headers:
    own = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    as_made = list(own)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": own})
        await send({"type": "http.response.body", "body": b"body"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = DockerflowASGIMiddleware(app, checks=[])
    asyncio.run(middleware({"type": "http", "method": "GET", "path": "/cors"}, receive, send))
    if any(name.lower() == "access-control-allow-origin" for name, _ in headers):
        # The application's own list is left as it made it: the middleware changes a copy.
        assert own == as_made
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in sent[0]["headers"]]


def cors_app() -> Sanic:
    """Answers ``/cors`` with the headers its query string holds, as JSON pairs."""
    app = Sanic("cors", configure_logging=False)

    @app.get("/cors")
    async def cors(request: Request) -> response.HTTPResponse:
        answer = response.text("body")
        for name, value in json.loads(request.args.get("headers")):
            answer.headers.add(name, value)
        return answer

    Dockerflow(app, checks=[])
    return app


SERVE_SANIC = """\
import sys
sys.path.insert(0, sys.argv[1])
import test_cors_expose
test_cors_expose.cors_app().run(
    host="127.0.0.1", port=int(sys.argv[2]), single_process=True, motd=False
)
"""


@pytest.fixture(scope="module")
def sanic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    output: Path = tmp_path_factory.mktemp("sanic-cors")
    server = Server(output, "cors", ["-c", SERVE_SANIC, str(TESTS), "{port}"])
    server.start()
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["wsgi", "asgi", pytest.param("sanic", marks=pytest.mark.servers)])
def serve(request: pytest.FixtureRequest) -> Serve:
    if request.param == "wsgi":
        return serve_wsgi
    if request.param == "asgi":
        return serve_asgi
    server: Server = request.getfixturevalue("sanic_server")

    def serve_sanic(headers: Headers) -> Headers:
        answer = server.get("/cors", params={"headers": json.dumps(headers)})
        assert answer.status_code == 200, answer.text
        return list(answer.headers.multi_items())

    return serve_sanic


@pytest.mark.parametrize(("headers", "exposed"), CASES.values(), ids=CASES.keys())
def test_a_cors_response_exposes_the_request_id_header(
    serve: Serve, headers: Headers, exposed: Optional[str]
) -> None:
    got = serve(headers)

    listed = [value for name, value in got if name.lower() == "access-control-expose-headers"]
    assert (", ".join(listed) if listed else None) == exposed
    assert any(name.lower() == "x-request-id" for name, _ in got)


@pytest.mark.parametrize(
    ("headers", "exposed"),
    [
        ([ORIGIN], "X-Correlation-ID"),
        ([ORIGIN, expose("x-correlation-id")], None),
        ([ORIGIN, expose("X-Request-ID")], "X-Request-ID, X-Correlation-ID"),
    ],
)
def test_the_name_exposed_is_the_configured_request_id_header(
    headers: Headers, exposed: Optional[str]
) -> None:
    assert exposed_headers(headers, "X-Correlation-ID") == exposed
