"""Applications whose route templates ``test_route_templates.py`` reads from real servers.

Each one serves ``/api/items/<name>`` from a router (a blueprint) mounted at ``/api``, and
logs its mozlog lines on stdout:

- ``gunicorn 'route_apps:flask_app()'``: Flask, with the shim;
- ``uvicorn --factory route_apps:fastapi_app``: FastAPI, an ``APIRouter`` with a prefix;
- ``python -m route_apps sanic PORT``: Sanic under its own server.
"""

from __future__ import annotations

import logging
import sys
from typing import Any


def _log_to_stdout() -> None:
    from dockerflow_wsgi.logging import MozlogHandler

    logging.basicConfig(handlers=[MozlogHandler(name="route-apps")], level=logging.INFO)


def flask_app() -> Any:
    from flask import Blueprint, Flask

    from dockerflow_wsgi.flask import Dockerflow

    _log_to_stdout()
    app = Flask(__name__)
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.get("/items/<name>")
    def item(name: str) -> str:
        return name

    app.register_blueprint(api)
    Dockerflow(app)
    return app


def fastapi_app() -> Any:
    from fastapi import APIRouter, FastAPI

    from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

    _log_to_stdout()
    app = FastAPI()
    api = APIRouter(prefix="/api")

    @api.get("/items/{item_id}")
    async def item(item_id: str) -> str:
        return item_id

    app.include_router(api)
    app.add_middleware(DockerflowASGIMiddleware)
    return app


def sanic_app() -> Any:
    from sanic import Blueprint, Request, Sanic, response

    from dockerflow_wsgi.sanic import Dockerflow

    app = Sanic("route_apps", configure_logging=False)
    api = Blueprint("api", url_prefix="/api")

    @api.get("/items/<name:str>")
    async def item(request: Request, name: str) -> Any:
        return response.text(name)

    app.blueprint(api)
    Dockerflow(app)
    return app


if __name__ == "__main__":
    _log_to_stdout()
    sanic_app().run(host="127.0.0.1", port=int(sys.argv[2]), single_process=True, motd=False)
