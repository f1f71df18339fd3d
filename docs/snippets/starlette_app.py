"""Starlette: ``uvicorn starlette_app:app --no-access-log``."""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

import dockerflow_wsgi.logging
from dockerflow_wsgi import current_request_id
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout


async def hello(request):
    return JSONResponse({"message": "hello", "request_id": current_request_id()})


app = Starlette(
    routes=[Route("/", hello)],
    middleware=[Middleware(DockerflowASGIMiddleware)],
)
