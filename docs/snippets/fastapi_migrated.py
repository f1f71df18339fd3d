"""The same FastAPI service on dockerflow-wsgi: ``uvicorn fastapi_migrated:app --no-access-log``."""

import logging

from fastapi import FastAPI

from dockerflow_wsgi import checks
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import MozlogHandler, request_id_context

# What MozlogRequestSummaryLogger did itself: the summaries as mozlog JSON on stdout. The
# logging page's LOGGING does it for every logger.
summary_logger = logging.getLogger("request.summary")
summary_logger.addHandler(MozlogHandler(name="myservice"))
summary_logger.setLevel(logging.INFO)

app = FastAPI()
app.add_middleware(
    DockerflowASGIMiddleware,
    version_path="/app",
    heartbeat_failed_status_code=503,
    log_querystring=True,
)


@checks.register
def storage():
    return [checks.Warning("storage is 91% full", id="myservice.health.W001")]


@app.get("/")
async def hello() -> dict:
    return {"request_id": request_id_context.get()}
