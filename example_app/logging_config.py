"""Logging for the example: every record as one mozlog JSON line on the process's stdout."""

from __future__ import annotations

import logging.config
import os
import sys
from typing import TextIO


def process_stdout() -> TextIO:
    """A text stream on the process's standard output, whichever server runs the app.

    Usually ``sys.stdout``; but uWSGI's Python 3 plugin points ``sys.stdout`` at file
    descriptor 2 (unbit/uwsgi#1601), and the logs belong on file descriptor 1. A stdout
    without a file descriptor (a test's capture) is used as it is.
    """
    try:
        if sys.stdout.fileno() != 1:
            return open(1, "w", encoding="utf-8", buffering=1, closefd=False)
    except (AttributeError, OSError, ValueError):
        pass
    return sys.stdout


def configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.config.dictConfig(
        {
            "version": 1,
            # gunicorn's own loggers exist before the app is imported; keep them.
            "disable_existing_loggers": False,
            "formatters": {
                "mozlog": {
                    "()": "dockerflow_wsgi.logging.JsonLogFormatter",
                    "logger_name": "example_app",
                }
            },
            "filters": {"request_id": {"()": "dockerflow_wsgi.logging.RequestIdLogFilter"}},
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": process_stdout(),
                    "formatter": "mozlog",
                    "filters": ["request_id"],
                }
            },
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {"request.summary": {"level": "INFO"}},
        }
    )
