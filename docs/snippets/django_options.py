"""In settings.py: options of the middleware, named as their environment variables."""

import os

DEBUG = os.environ.get("DJANGO_DEBUG") == "on"

DOCKERFLOW_CHECK_TIMEOUT = 2
DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE = 503
# Show the checks' details only while debugging, as the dockerflow package did.
DOCKERFLOW_HEARTBEAT_DETAILS = DEBUG
DOCKERFLOW_VERSION_PATH = "/app"
