"""Records of a request carry its OpenTelemetry span: the ids are added by the request id
filter, in the attribute names of OpenTelemetry's own logging integration."""

import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from dockerflow_wsgi import DockerflowMiddleware

trace.set_tracer_provider(TracerProvider())
tracer = trace.get_tracer("myservice")
logger = logging.getLogger("myservice")


def hello(environ, start_response):
    with tracer.start_as_current_span("hello"):
        # Fields: rid, otelTraceID, otelSpanID, otelTraceSampled (and msg).
        logger.info("saying hello")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]


app = DockerflowMiddleware(hello)
