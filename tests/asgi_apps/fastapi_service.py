"""A FastAPI service with the middleware added as FastAPI documents middleware:
``uvicorn fastapi_service:app``. Its routes are those of every served app (see ``service``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import service
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

service.configure_logging()
service.register_checks()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service.lifespan_event("startup")
    yield
    service.lifespan_event("shutdown")


app = FastAPI(lifespan=lifespan)
app.add_middleware(DockerflowASGIMiddleware)


@app.get("/request-id/")
async def request_id(request: Request) -> dict[str, Any]:
    return service.request_ids(request.scope)


@app.get("/boom/")
async def boom() -> None:
    raise LookupError("the view failed")


@app.get("/stream/")
async def stream() -> StreamingResponse:
    return StreamingResponse(service.held_stream(), media_type="text/plain")


@app.post("/stream/release/")
async def release_stream() -> None:
    service.release_stream()


@app.get("/endless/")
async def endless() -> StreamingResponse:
    return StreamingResponse(service.endless_stream(), media_type="text/plain")


@app.post("/sync-check/hold/")
async def hold_sync_check() -> None:
    service.hold_sync_check()


@app.post("/sync-check/release/")
async def release_sync_check() -> None:
    service.release_sync_check()


@app.websocket("/ws/")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        service.websocket_echo(websocket.scope, await websocket.receive_text())
    )
    await websocket.close()


@app.get("/stats/")
async def stats() -> dict[str, Any]:
    return service.stats()
