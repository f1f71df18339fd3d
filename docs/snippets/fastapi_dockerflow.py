"""A FastAPI service on the dockerflow package's FastAPI integration, before the migration."""

from dockerflow import checks
from dockerflow.fastapi import router as dockerflow_router
from dockerflow.fastapi.middleware import MozlogRequestSummaryLogger, RequestIdMiddleware
from dockerflow.logging import request_id_context
from fastapi import FastAPI

app = FastAPI()
app.include_router(dockerflow_router)
app.add_middleware(MozlogRequestSummaryLogger)
app.add_middleware(RequestIdMiddleware)
app.state.APP_DIR = "/app"
app.state.DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE = 503
app.state.DOCKERFLOW_SUMMARY_LOG_QUERYSTRING = True


@checks.register
def storage():
    return [checks.Warning("storage is 91% full", id="myservice.health.W001")]


@app.get("/")
async def hello() -> dict:
    return {"request_id": request_id_context.get()}
