"""Flask, through the extension: ``gunicorn flask_shim:app``."""

from flask import Flask, g, jsonify

import dockerflow_wsgi.logging
from dockerflow_wsgi.flask import Dockerflow

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout

app = Flask(__name__)
dockerflow = Dockerflow(app)  # takes the same keyword options as DockerflowMiddleware


@app.get("/")
def hello():
    return jsonify(message="hello", request_id=g.request_id)
