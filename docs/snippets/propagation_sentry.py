"""Sentry events captured during a request carry its id, as the tag ``request_id``."""

import os

import sentry_sdk
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.propagation import RequestIdIntegration

sentry_sdk.init(dsn=os.environ.get("SENTRY_DSN"), integrations=[RequestIdIntegration()])


def checkout(environ, start_response):
    if environ["PATH_INFO"] == "/checkout/expired":
        sentry_sdk.capture_message("Checkout of an expired cart")
    elif environ["PATH_INFO"] != "/checkout":
        raise LookupError(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Thank you"]


# Sentry's middleware inside Dockerflow's: an exception it captures is still in the request.
app = DockerflowMiddleware(SentryWsgiMiddleware(checkout))
