"""A database check of one's own, for a project that wraps Django in DockerflowMiddleware alone.

With "dockerflow_wsgi.django" in INSTALLED_APPS, its built-in check does this for every
database. Import this module from an AppConfig.ready() or from wsgi.py.
"""

from django.db import connections
from django.db.utils import DatabaseError

from dockerflow_wsgi import checks


@checks.register
def check_database_connected():
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        # The dockerflow package's id, so silencing and alerts keep working.
        return [
            checks.Error(f"Could not connect to the database: {exc}", id="dockerflow.health.E001")
        ]
    finally:
        # Checks run on the middleware's threads, and Django's connections are per thread.
        connection.close()
    return []
