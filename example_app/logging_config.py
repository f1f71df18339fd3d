"""Logging for the example: every record as one mozlog JSON line on the process's stdout."""

from __future__ import annotations

import logging.config
import os


def configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.config.dictConfig(
        {
            "version": 1,
            # gunicorn's own loggers, and the library's, exist before this runs; keep them.
            "disable_existing_loggers": False,
            # On the process's stdout, also under uWSGI, with each record's request id.
            "handlers": {
                "mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "example_app"}
            },
            "root": {"handlers": ["mozlog"], "level": level},
            "loggers": {"request.summary": {"level": "INFO"}},
        }
    )
