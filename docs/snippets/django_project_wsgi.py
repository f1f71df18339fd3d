"""WSGI config for mysite: Django's application, wrapped in the Dockerflow middleware."""

import os

from dockerflow_wsgi.django import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
