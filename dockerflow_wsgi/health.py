"""Check message ids: the ``dockerflow`` package's, under the same names, and ours (E101-E105,
I106 about running checks; E201-E231 of the built-ins beyond the ``dockerflow`` package's).

A check that ports from the ``dockerflow`` package keeps its ids, so dashboards and alerts keyed
on them keep working::

    from dockerflow_wsgi import health

    checks.Error("cannot reach the database", id=health.ERROR_CANNOT_CONNECT_DATABASE)
"""

__all__ = [
    "ERROR_AMQP_EXCEPTION",
    "ERROR_CACHE_FAILED",
    "ERROR_CANNOT_CONNECT_AMQP",
    "ERROR_CANNOT_CONNECT_DATABASE",
    "ERROR_CANNOT_CONNECT_REDIS",
    "ERROR_CANNOT_CONNECT_URL",
    "ERROR_CHECK_FAILED",
    "ERROR_CHECK_PLUGIN_BROKEN",
    "ERROR_CHECK_TIMED_OUT",
    "ERROR_DB_API_EXCEPTION",
    "ERROR_DISK_SPACE_LOW",
    "ERROR_DISK_UNREADABLE",
    "ERROR_MISCONFIGURED_DATABASE",
    "ERROR_MISCONFIGURED_REDIS",
    "ERROR_MISSING_REDIS_CLIENT",
    "ERROR_REDIS_EXCEPTION",
    "ERROR_REDIS_PING_FAILED",
    "ERROR_SQLALCHEMY_EXCEPTION",
    "ERROR_STALE_RESULT",
    "ERROR_STORAGE_FAILED",
    "ERROR_UNKNOWN_CHECK",
    "ERROR_UNUSABLE_DATABASE",
    "ERROR_URL_UNEXPECTED_STATUS",
    "INFO_CANT_CHECK_MIGRATIONS",
    "INFO_MESSAGES_LEFT_OUT",
    "WARNING_DISK_SPACE_LOW",
    "WARNING_UNAPPLIED_MIGRATION",
]

# The dockerflow package's Django checks.
INFO_CANT_CHECK_MIGRATIONS = "dockerflow.health.I001"
WARNING_UNAPPLIED_MIGRATION = "dockerflow.health.W001"
ERROR_CANNOT_CONNECT_DATABASE = "dockerflow.health.E001"
ERROR_UNUSABLE_DATABASE = "dockerflow.health.E002"
ERROR_MISCONFIGURED_DATABASE = "dockerflow.health.E003"
ERROR_CANNOT_CONNECT_REDIS = "dockerflow.health.E004"
ERROR_MISSING_REDIS_CLIENT = "dockerflow.health.E005"
ERROR_MISCONFIGURED_REDIS = "dockerflow.health.E006"
ERROR_REDIS_PING_FAILED = "dockerflow.health.E007"

# The dockerflow package's Flask checks.
ERROR_DB_API_EXCEPTION = "dockerflow.health.E008"
ERROR_SQLALCHEMY_EXCEPTION = "dockerflow.health.E009"
ERROR_REDIS_EXCEPTION = "dockerflow.health.E010"

# Ours: what the heartbeat itself reports about a check.
#: The check raised (any exception, ``SystemExit`` included) or returned something that is not
#: a list of valid messages.
ERROR_CHECK_FAILED = "dockerflow.health.E101"
#: The check did not finish within its timeout (or is still running from an earlier heartbeat).
ERROR_CHECK_TIMED_OUT = "dockerflow.health.E102"
#: An entry point publishing a check could not be loaded.
ERROR_CHECK_PLUGIN_BROKEN = "dockerflow.health.E103"
#: A heartbeat group names a check that does not exist.
ERROR_UNKNOWN_CHECK = "dockerflow.health.E104"
#: The background runner's latest result is too old to be trusted.
ERROR_STALE_RESULT = "dockerflow.health.E105"
#: A check returned more messages than a heartbeat keeps: how many were left out.
INFO_MESSAGES_LEFT_OUT = "dockerflow.health.I106"

# Ours: the built-ins a django-health-check user expects, beyond the dockerflow package's.
#: :func:`~dockerflow_wsgi.checks.disk.check_disk_space`: less free space than ``error_below``.
ERROR_DISK_SPACE_LOW = "dockerflow.health.E201"
#: :func:`~dockerflow_wsgi.checks.disk.check_disk_space`: less free space than
#: ``warning_below``.
WARNING_DISK_SPACE_LOW = "dockerflow.health.W201"
#: :func:`~dockerflow_wsgi.checks.disk.check_disk_space`: the path's volume cannot be read.
ERROR_DISK_UNREADABLE = "dockerflow.health.E202"
#: :func:`~dockerflow_wsgi.checks.http.check_url`: no answer (refused, timed out, TLS failed).
ERROR_CANNOT_CONNECT_URL = "dockerflow.health.E210"
#: :func:`~dockerflow_wsgi.checks.http.check_url`: answered with a status not in ``expect``.
ERROR_URL_UNEXPECTED_STATUS = "dockerflow.health.E211"
#: :func:`~dockerflow_wsgi.checks.amqp.check_amqp_connected`: the broker cannot be reached.
ERROR_CANNOT_CONNECT_AMQP = "dockerflow.health.E220"
#: :func:`~dockerflow_wsgi.checks.amqp.check_amqp_connected`: the broker answered but refused
#: the connection (credentials, virtual host), or another AMQP error.
ERROR_AMQP_EXCEPTION = "dockerflow.health.E221"
#: Django's ``cache`` check: a cache alias failed to set, get or delete a key.
ERROR_CACHE_FAILED = "dockerflow.health.E230"
#: Django's ``storage`` check: the default storage failed to save, read or delete a file.
ERROR_STORAGE_FAILED = "dockerflow.health.E231"
