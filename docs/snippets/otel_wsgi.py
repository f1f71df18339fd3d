"""Any WSGI application (Pyramid, Falcon, a bare callable) traced by OpenTelemetry's WSGI
middleware, around Dockerflow's: the probes are traced too, and a heartbeat run on demand is a
child of its probe's span.

pip install /path/to/dockerflow-wsgi opentelemetry-sdk opentelemetry-instrumentation-wsgi
"""

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import configure

configure(name="myservice")

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


application = OpenTelemetryMiddleware(DockerflowMiddleware(hello))
