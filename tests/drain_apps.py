"""The services of ``test_drain_servers.py``, one per protocol, as the real servers import them.

Every process that imports this module logs mozlog JSON to stdout and says ``started`` (with
its ``Pid``): the test knows each serving process from that line, and then expects one
``draining`` record from each. Every app answers ``/`` with the id of the process serving it.
``DOCKERFLOW_STATE_DIR`` comes from the environment, as in a deployment.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import MozlogHandler

logging.basicConfig(handlers=[MozlogHandler(name="drain-test")], level=logging.INFO, force=True)
logging.getLogger("drain-test").info("started")


def _pid_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


wsgi = DockerflowMiddleware(_pid_wsgi)


async def _pid_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = str(os.getpid()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


asgi = DockerflowASGIMiddleware(_pid_asgi)


def sanic_app() -> Any:
    """The Sanic service (``sanic drain_apps:sanic_app --factory``)."""
    from sanic import Sanic, response

    from dockerflow_wsgi.sanic import Dockerflow

    app = Sanic("drain_test", configure_logging=False)

    @app.get("/")
    async def index(request: Any) -> Any:
        return response.text(str(os.getpid()))

    Dockerflow(app)
    return app
