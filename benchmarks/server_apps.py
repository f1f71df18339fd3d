"""WSGI apps for the real-server benchmark: ``gunicorn benchmarks.server_apps:bare`` etc.

``wrapped`` logs ``request.summary`` through JsonLogFormatter into a null stream, so the
log line is paid for as in production without the disk in the measurement; ``wrapped_quiet``
is the same with ``log_probes`` off.
"""

from __future__ import annotations

import logging
import os

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter

_handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives with the worker
_handler.setFormatter(JsonLogFormatter(logger_name="bench"))
_summary = logging.getLogger("request.summary")
_summary.addHandler(_handler)
_summary.setLevel(logging.INFO)
_summary.propagate = False


def bare(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


wrapped = DockerflowMiddleware(bare)
wrapped_quiet = DockerflowMiddleware(bare, log_probes=False)
