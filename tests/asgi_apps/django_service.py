"""The test project's ASGI application (``project/asgi.py``, which calls
``dockerflow_wsgi.django.get_asgi_application()``), with the checks every served app has:
``uvicorn django_service:application``, with ``DJANGO_SETTINGS_MODULE=django_settings``.

Logging is the project's ``LOGGING`` setting: mozlog JSON on stdout from the root logger.
"""

import service

service.register_checks()

from project.asgi import application  # noqa: E402 - the checks first, as a service's imports

__all__ = ["application"]
