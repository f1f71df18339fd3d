"""Flask traced by OpenTelemetry: each summary carries the trace_id and span_id of the span
Flask's instrumentation made for the request, and each heartbeat run is a trace of spans.

pip install '/path/to/dockerflow-wsgi[flask]' opentelemetry-sdk opentelemetry-instrumentation-flask
"""

from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from dockerflow_wsgi import checks
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.logging import configure

configure(name="myservice")

# Spans printed to stdout; a real service exports them with a BatchSpanProcessor and OTLP.
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)

app = Flask(__name__)
Dockerflow(app)
FlaskInstrumentor().instrument_app(app)


@checks.register
def queue_reachable():
    # Its span, dockerflow.check, is current here: a client's spans would be its children.
    return []


@app.route("/")
def index():
    return "hello"
