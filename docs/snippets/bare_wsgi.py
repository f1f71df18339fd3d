"""A bare WSGI callable: ``gunicorn bare_wsgi:app``, or ``python bare_wsgi.py``."""

import json

import dockerflow_wsgi.logging
from dockerflow_wsgi import DockerflowMiddleware

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout


def hello(environ, start_response):
    body = json.dumps({"message": "hello", "request_id": environ["dockerflow.request_id"]}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = DockerflowMiddleware(hello)

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    with make_server("", 8000, app) as server:
        server.serve_forever()
