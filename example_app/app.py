"""The example service: a Flask app with Dockerflow endpoints, request ids and mozlog logs.

Configured entirely from the environment (``DOCKERFLOW_*``; see the configuration docs).
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify

from dockerflow_wsgi.flask import Dockerflow

try:
    from .logging_config import configure_logging
except ImportError:  # served as a top-level module from this directory (make run)
    from logging_config import configure_logging  # type: ignore[no-redef]

logger = logging.getLogger("example_app")


def create_app() -> Flask:
    configure_logging()
    app = Flask(__name__)
    Dockerflow(app)

    @app.get("/")
    def index():
        logger.info("Saying hello")
        return jsonify(message="hello from dockerflow-wsgi", request_id=g.request_id)

    return app


app = create_app()
