"""Logging for the example: every record as one mozlog JSON line on the process's stdout."""

from __future__ import annotations

import os

import dockerflow_wsgi.logging


def configure_logging() -> None:
    # One MozlogHandler on the root logger (on descriptor 1, also under uWSGI), each record
    # with its request id; gunicorn's own loggers, and the library's, exist before this runs
    # and stay enabled; the request summaries are written whatever LOG_LEVEL says.
    dockerflow_wsgi.logging.configure(name="example_app", level=os.environ.get("LOG_LEVEL", "INFO"))
