"""project/wsgi.py of a Django project traced by OpenTelemetry. Its settings have
"dockerflow_wsgi.django.DockerflowDjangoMiddleware" in MIDDLEWARE, which hands the span of
Django's instrumentation to the summary: Django's span ends before its response starts.

pip install '/path/to/dockerflow-wsgi[django]' opentelemetry-sdk \
    opentelemetry-instrumentation-django
"""

import os

from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from dockerflow_wsgi.django import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)
# Before the application is made: the instrumentation puts its middleware first.
DjangoInstrumentor().instrument()

application = get_wsgi_application()
