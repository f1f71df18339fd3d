"""ASGI entry point of the project: ``uvicorn project.asgi:application``."""

import os

from dockerflow_wsgi.django import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

application = get_asgi_application()
