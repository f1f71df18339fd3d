"""``get_asgi_application()``: Django's ASGI application, wrapped, for a project's ``asgi.py``."""

from __future__ import annotations

from typing import Any

from django.core.asgi import get_asgi_application as django_asgi_application

from ..asgi import DockerflowASGIMiddleware
from .options import settings_options, settings_source

__all__ = ["get_asgi_application"]


def get_asgi_application(**options: Any) -> DockerflowASGIMiddleware:
    """Set Django up and return its ASGI application inside
    :class:`~dockerflow_wsgi.asgi.DockerflowASGIMiddleware`.

    .. code-block:: python

        # asgi.py
        import os

        from dockerflow_wsgi.django import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
        application = get_asgi_application()

    The same as :func:`~dockerflow_wsgi.django.get_wsgi_application`, for uvicorn, hypercorn
    or daphne: options from the keyword, ``settings`` or the environment, the Dockerflow paths
    answered before Django, the request id at ``request.scope["dockerflow.request_id"]``.

    :param options: options of :class:`~dockerflow_wsgi.DockerflowMiddleware`.
    :raises ValueError: for a bad option or setting, naming it (``settings.DOCKERFLOW_...``).
    """
    # Django first: its setup loads the settings, configures logging and readies the apps.
    application = django_asgi_application()
    return DockerflowASGIMiddleware.with_framework_settings(
        application, settings_source(), **settings_options(options)
    )
