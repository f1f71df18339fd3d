"""Sanic, served by Sanic's own server: ``sanic sanic_app:app``."""

import logging

from sanic import Sanic, json

import dockerflow_wsgi.logging
from dockerflow_wsgi import checks
from dockerflow_wsgi.sanic import Dockerflow

# Every record, Sanic's own included, as one mozlog JSON line on stdout: Sanic leaves its
# loggers to the root logger's handler when it does not configure logging itself.
dockerflow_wsgi.logging.configure(name="orders", level="INFO")
app = Sanic("orders", configure_logging=False)
dockerflow = Dockerflow(app)  # options: keywords, app.config["DOCKERFLOW_..."], environment

logger = logging.getLogger("orders")


@checks.register
async def payments_reachable():
    return []  # or [checks.Error("payments API is down", id="orders.health.E001")]


@app.get("/")
async def index(request):
    logger.info("Listing orders")  # carries the request's id as rid
    return json({"orders": [], "request_id": request.ctx.request_id})
