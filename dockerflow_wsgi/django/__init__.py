"""Dockerflow for Django: ``wsgi.py``, an app for ``INSTALLED_APPS`` and a middleware.

.. code-block:: python

    # wsgi.py (or asgi.py, with get_asgi_application)
    from dockerflow_wsgi.django import get_wsgi_application

    application = get_wsgi_application()

    # settings.py
    INSTALLED_APPS = [..., "dockerflow_wsgi.django"]   # Django's checks in the heartbeat
    MIDDLEWARE = [..., "dockerflow_wsgi.django.DockerflowDjangoMiddleware"]  # uid, errors

Importable before the settings are configured: ``INSTALLED_APPS`` and ``MIDDLEWARE`` name it.
"""

from .asgi import get_asgi_application
from .middleware import DockerflowDjangoMiddleware
from .wsgi import get_wsgi_application

__all__ = ["DockerflowDjangoMiddleware", "get_asgi_application", "get_wsgi_application"]
