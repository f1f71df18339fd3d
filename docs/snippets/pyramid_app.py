"""Pyramid: ``gunicorn pyramid_app:app``."""

from pyramid.config import Configurator

import dockerflow_wsgi.logging
from dockerflow_wsgi import DockerflowMiddleware

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout


def hello(request):
    return {"message": "hello", "request_id": request.environ["dockerflow.request_id"]}


with Configurator() as config:
    config.add_route("hello", "/")
    config.add_view(hello, route_name="hello", renderer="json")

app = DockerflowMiddleware(config.make_wsgi_app())
