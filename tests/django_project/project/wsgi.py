"""WSGI entry point of the project: ``gunicorn project.wsgi:application``."""

import os

from dockerflow_wsgi.django import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

application = get_wsgi_application()
