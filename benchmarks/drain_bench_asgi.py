"""The ASGI service of ``make drain-bench``: ``uvicorn drain_bench_asgi:app`` (from this folder).

A Starlette app with the middleware as Starlette documents it, and the two routes the bench's
load uses, the twins of the example service's: ``GET /`` and ``POST /notes`` (a small JSON
body, read whole, answered ``201``). The drain needs nothing of the app: the middleware answers
``/__lbheartbeat__`` from the mark in ``DOCKERFLOW_STATE_DIR``.
"""

from __future__ import annotations

import itertools
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

_ids = itertools.count(1)


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"message": "hello from dockerflow-wsgi"})


async def create_note(request: Request) -> JSONResponse:
    try:
        payload = json.loads(await request.body())
    except ValueError:
        payload = None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip():
        return JSONResponse({"error": 'expected a JSON object with a "text" string'}, 400)
    return JSONResponse({"id": next(_ids), "text": text}, 201)


app = Starlette(routes=[Route("/", index), Route("/notes", create_note, methods=["POST"])])
app.add_middleware(DockerflowASGIMiddleware)
