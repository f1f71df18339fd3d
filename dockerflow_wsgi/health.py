"""Check message ids: the ``dockerflow`` package's, under the same names, and ours (E101-E105,
I106).

A check that ports from the ``dockerflow`` package keeps its ids, so dashboards and alerts keyed
on them keep working::

    from dockerflow_wsgi import health

    checks.Error("cannot reach the database", id=health.ERROR_CANNOT_CONNECT_DATABASE)
"""

__all__ = [
    "ERROR_CANNOT_CONNECT_DATABASE",
    "ERROR_CANNOT_CONNECT_REDIS",
    "ERROR_CHECK_FAILED",
    "ERROR_CHECK_PLUGIN_BROKEN",
    "ERROR_CHECK_TIMED_OUT",
    "ERROR_DB_API_EXCEPTION",
    "ERROR_MISCONFIGURED_DATABASE",
    "ERROR_MISCONFIGURED_REDIS",
    "ERROR_MISSING_REDIS_CLIENT",
    "ERROR_REDIS_EXCEPTION",
    "ERROR_REDIS_PING_FAILED",
    "ERROR_SQLALCHEMY_EXCEPTION",
    "ERROR_STALE_RESULT",
    "ERROR_UNKNOWN_CHECK",
    "ERROR_UNUSABLE_DATABASE",
    "INFO_CANT_CHECK_MIGRATIONS",
    "INFO_MESSAGES_LEFT_OUT",
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
