"""Dockerflow for any WSGI application: wrap it once with :class:`DockerflowMiddleware`."""

from .logging import JsonLogFormatter, MozlogFormatter, RequestIdLogFilter
from .request_id import current_request_id
from .wsgi import DeliberateError, DockerflowMiddleware

__all__ = [
    "DeliberateError",
    "DockerflowMiddleware",
    "JsonLogFormatter",
    "MozlogFormatter",
    "RequestIdLogFilter",
    "current_request_id",
]

__version__ = "0.1.0"
