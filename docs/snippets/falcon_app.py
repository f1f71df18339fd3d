"""Falcon: ``gunicorn falcon_app:app``."""

import falcon

from dockerflow_wsgi import DockerflowMiddleware


class Hello:
    def on_get(self, req, resp):
        resp.media = {"message": "hello", "request_id": req.env["dockerflow.request_id"]}


api = falcon.App()
api.add_route("/", Hello())

app = DockerflowMiddleware(api)
