"""The app named ``"dockerflow_wsgi.django"`` in ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig

from ..checks.registry import register_check_source
from .check_source import heartbeat_checks, listed_checks


class DockerflowConfig(AppConfig):
    """Puts Django's checks in the heartbeat, once Django has loaded every app.

    The checks are a check source, read at every heartbeat run, and are not registered with
    Django's own check framework: ``manage.py check``, ``migrate`` and ``makemigrations`` never
    connect to a database because of this app.
    """

    name = "dockerflow_wsgi.django"
    label = "dockerflow_wsgi"
    verbose_name = "Dockerflow"

    def ready(self) -> None:
        # A typo in DOCKERFLOW_CHECKS stops the start, as a bad option does, rather than
        # failing every heartbeat.
        listed_checks()
        register_check_source("django", heartbeat_checks)
