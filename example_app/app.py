"""The example service: a Flask app with Dockerflow endpoints, request ids and mozlog logs.

Configured entirely from the environment (``DOCKERFLOW_*``; see the configuration docs).
"""

from __future__ import annotations

import logging
import os

from flask import Flask, g, jsonify

from dockerflow_wsgi.flask import Dockerflow

try:
    from .logging_config import configure_logging
except ImportError:  # served as a top-level module from this directory (make run)
    from logging_config import configure_logging  # type: ignore[no-redef]

logger = logging.getLogger("example_app")

HERE = os.path.dirname(os.path.abspath(__file__))
#: Without DATABASE_URL the service keeps its data in a SQLite file beside this module.
DEFAULT_DATABASE_URL = f"sqlite:///{os.path.join(HERE, 'example.sqlite3')}"


def create_app() -> Flask:
    configure_logging()
    app = Flask(__name__)
    # REDIS_URL, when set, adds the Redis check; DOCKERFLOW_* variables set the rest.
    Dockerflow(app, db=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)

    @app.get("/")
    def index():
        logger.info("Saying hello")
        return jsonify(message="hello from dockerflow-wsgi", request_id=g.request_id)

    return app


app = create_app()
