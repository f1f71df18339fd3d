"""WSGI apps for the real-server benchmark: ``gunicorn benchmarks.server_apps:bare`` etc.

``wrapped`` logs ``request.summary`` through JsonLogFormatter into a null stream, so the
log line is paid for as in production without the disk in the measurement; ``wrapped_quiet``
is the same with ``log_probes`` off. ``bare_json_line`` is a reference, not a library: the
bare app writing a summary-shaped JSON line itself, with no logging module and no middleware,
the least any per-request JSON log line can cost.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter

_null_stream = open(os.devnull, "w")  # noqa: SIM115 - lives with the worker
_handler = logging.StreamHandler(_null_stream)
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

_hostname = socket.gethostname()


def bare_json_line(environ, start_response):
    started = time.perf_counter()
    body = bare(environ, start_response)
    line = json.dumps(
        {
            "Timestamp": time.time_ns(),
            "Type": "request.summary",
            "Logger": "bench",
            "Hostname": _hostname,
            "EnvVersion": "2.0",
            "Severity": 6,
            "Pid": os.getpid(),
            "Fields": {
                "agent": environ.get("HTTP_USER_AGENT", ""),
                "lang": environ.get("HTTP_ACCEPT_LANGUAGE", ""),
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "code": 200,
                "errno": 0,
                "t": int((time.perf_counter() - started) * 1000),
                "rid": "",
                "uid": "",
            },
        },
        separators=(",", ":"),
    )
    _null_stream.write(line + "\n")
    _null_stream.flush()
    return body
