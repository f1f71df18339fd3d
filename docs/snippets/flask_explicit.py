"""Flask, wrapped explicitly: ``gunicorn flask_explicit:app``."""

from flask import Flask, jsonify

import dockerflow_wsgi.logging
from dockerflow_wsgi import DockerflowMiddleware, current_request_id

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout

app = Flask(__name__)


@app.get("/")
def hello():
    return jsonify(message="hello", request_id=current_request_id())


app.wsgi_app = DockerflowMiddleware(app.wsgi_app)
