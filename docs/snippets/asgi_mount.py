"""A service mounted under ``/api`` of another ASGI application: ``uvicorn asgi_mount:app``.

The middleware wraps the mounted service, so its paths are ``/api/__lbheartbeat__``,
``/api/__heartbeat__`` and ``/api/__version__``.
"""

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

api = FastAPI()
api.add_middleware(DockerflowASGIMiddleware)


@api.get("/items")
async def items() -> list:
    return []


app = Starlette(routes=[Mount("/api", app=api)])
