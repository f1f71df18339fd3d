"""Flask with an application factory: ``gunicorn 'flask_factory:create_app()'``."""

from flask import Flask, g, jsonify

import dockerflow_wsgi.logging
from dockerflow_wsgi.flask import Dockerflow

dockerflow = Dockerflow()


def create_app() -> Flask:
    dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout
    app = Flask(__name__)
    dockerflow.init_app(app)

    @app.get("/")
    def hello():
        return jsonify(message="hello", request_id=g.request_id)

    return app
