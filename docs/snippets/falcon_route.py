"""Falcon, its matched route in the summary and metrics: ``gunicorn falcon_route:app``."""

import falcon

from dockerflow_wsgi import DockerflowMiddleware


class DockerflowRoute:
    """Report the template of the route Falcon matched (also for a responder that raised)."""

    def process_response(self, req, resp, resource, req_succeeded):
        if req.uri_template:  # None when no route matched
            req.env["dockerflow.route"] = req.uri_template


class Note:
    def on_get(self, req, resp, note_id):
        resp.media = {"note": note_id}


api = falcon.App(middleware=[DockerflowRoute()])
api.add_route("/notes/{note_id}", Note())

app = DockerflowMiddleware(api)
