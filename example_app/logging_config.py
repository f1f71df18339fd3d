"""Logging for the example: every record as one mozlog JSON line on stdout."""

from __future__ import annotations

import logging.config
import os


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
                    "stream": "ext://sys.stdout",
                    "formatter": "mozlog",
                    "filters": ["request_id"],
                }
            },
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {"request.summary": {"level": "INFO"}},
        }
    )
