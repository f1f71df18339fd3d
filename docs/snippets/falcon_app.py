"""Falcon: ``gunicorn falcon_app:app``."""

import falcon

import dockerflow_wsgi.logging
from dockerflow_wsgi import DockerflowMiddleware

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout


class Hello:
    def on_get(self, req, resp):
        resp.media = {"message": "hello", "request_id": req.env["dockerflow.request_id"]}


api = falcon.App()
api.add_route("/", Hello())

app = DockerflowMiddleware(api)
