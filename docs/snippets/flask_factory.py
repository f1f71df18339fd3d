"""Flask with an application factory: ``gunicorn 'flask_factory:create_app()'``."""

from flask import Flask, g, jsonify

from dockerflow_wsgi.flask import Dockerflow

dockerflow = Dockerflow()


def create_app() -> Flask:
    app = Flask(__name__)
    dockerflow.init_app(app)

    @app.get("/")
    def hello():
        return jsonify(message="hello", request_id=g.request_id)

    return app
