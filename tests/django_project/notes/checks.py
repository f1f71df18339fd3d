"""Checks for ``settings.DOCKERFLOW_CHECKS``: a Django one and a dockerflow-wsgi one."""

from django.core import checks as django_checks

from dockerflow_wsgi import checks


def check_storage(app_configs, **kwargs):
    return [django_checks.Warning("storage is 91% full", hint="add a disk", id="notes.W001")]


def check_queue():
    return [checks.Info("12 jobs waiting", id="notes.I001")]
