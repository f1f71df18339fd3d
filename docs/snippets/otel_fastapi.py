"""FastAPI traced by OpenTelemetry: the summary's trace_id and span_id are those of the span
FastAPI's instrumentation made for the request; the spans are kept in memory here, to read.

pip install /path/to/dockerflow-wsgi fastapi opentelemetry-sdk opentelemetry-instrumentation-fastapi
"""

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import configure

configure(name="myservice")

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)

app = FastAPI()
app.add_middleware(DockerflowASGIMiddleware)
# After add_middleware: the instrumentation wraps the whole stack, so its span is current
# while the middleware writes the summary.
FastAPIInstrumentor.instrument_app(app)


@app.get("/")
def index():
    return {"hello": "world"}
