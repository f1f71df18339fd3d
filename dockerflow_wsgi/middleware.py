"""The WSGI adapter's former module name, kept importable: see :mod:`dockerflow_wsgi.wsgi`."""

from .wsgi import DeliberateError, DockerflowMiddleware, find_middleware

__all__ = ["DeliberateError", "DockerflowMiddleware", "find_middleware"]
