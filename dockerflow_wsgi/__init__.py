"""Dockerflow for any WSGI application: wrap it once with :class:`DockerflowMiddleware`."""

from .logging import JsonLogFormatter, MozlogFormatter, RequestIdLogFilter
from .middleware import DeliberateError, DockerflowMiddleware
from .request_id import current_request_id

__all__ = [
    "DeliberateError",
    "DockerflowMiddleware",
    "JsonLogFormatter",
    "MozlogFormatter",
    "RequestIdLogFilter",
    "current_request_id",
]

__version__ = "0.1.0"
