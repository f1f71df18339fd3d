"""A Starlette service with the middleware added as Starlette documents middleware:
``uvicorn starlette_service:app``. Its routes are those of every served app (see ``service``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import service
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

service.configure_logging()
service.register_checks()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    service.lifespan_event("startup")
    yield
    service.lifespan_event("shutdown")


async def request_id(request: Request) -> JSONResponse:
    return JSONResponse(service.request_ids(request.scope))


async def boom(request: Request) -> Response:
    raise LookupError("the view failed")


async def stream(request: Request) -> StreamingResponse:
    return StreamingResponse(service.held_stream(), media_type="text/plain")


async def release_stream(request: Request) -> Response:
    service.release_stream()
    return Response(status_code=204)


async def endless(request: Request) -> StreamingResponse:
    return StreamingResponse(service.endless_stream(), media_type="text/plain")


async def hold_sync_check(request: Request) -> Response:
    service.hold_sync_check()
    return Response(status_code=204)


async def release_sync_check(request: Request) -> Response:
    service.release_sync_check()
    return Response(status_code=204)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        service.websocket_echo(websocket.scope, await websocket.receive_text())
    )
    await websocket.close()


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(service.stats())


app = Starlette(
    routes=[
        Route("/request-id/", request_id),
        Route("/boom/", boom),
        Route("/stream/", stream),
        Route("/stream/release/", release_stream, methods=["POST"]),
        Route("/endless/", endless),
        Route("/sync-check/hold/", hold_sync_check, methods=["POST"]),
        Route("/sync-check/release/", release_sync_check, methods=["POST"]),
        WebSocketRoute("/ws/", echo),
        Route("/stats/", stats),
    ],
    lifespan=lifespan,
)
app.add_middleware(DockerflowASGIMiddleware)
