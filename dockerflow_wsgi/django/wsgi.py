"""``get_wsgi_application()``: Django's WSGI application, wrapped, for a project's ``wsgi.py``."""

from __future__ import annotations

from typing import Any

from django.core.wsgi import get_wsgi_application as django_wsgi_application

from ..wsgi import DockerflowMiddleware
from .options import settings_options, settings_source

__all__ = ["get_wsgi_application"]


def get_wsgi_application(**options: Any) -> DockerflowMiddleware:
    """Set Django up and return its WSGI application inside
    :class:`~dockerflow_wsgi.DockerflowMiddleware`.

    .. code-block:: python

        # wsgi.py
        import os

        from dockerflow_wsgi.django import get_wsgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
        application = get_wsgi_application()

    The Dockerflow paths are answered before Django runs: no middleware, no ``ALLOWED_HOSTS``
    check, no database connection for ``/__lbheartbeat__``. Each option comes from its
    keyword, else from ``settings`` under its environment variable's name
    (``DOCKERFLOW_CHECK_TIMEOUT = 2``), else from the environment; ``version.json`` is looked
    for in ``settings.BASE_DIR`` by default.

    :param options: options of :class:`~dockerflow_wsgi.DockerflowMiddleware`.
    :raises ValueError: for a bad option or setting, naming it (``settings.DOCKERFLOW_...``).
    """
    # Django first: its setup loads the settings, configures logging and readies the apps.
    application = django_wsgi_application()
    return DockerflowMiddleware.with_framework_settings(
        application, settings_source(), **settings_options(options)
    )
