"""Pass the request id on: to the services a request calls and to the work it starts.

The id goes out under the header name of the middleware handling the request (its
``request_id_header``, ``X-Request-ID`` by default), so a called service running
dockerflow-wsgi takes it as its own and its log lines carry the same ``rid``. Outside a request
nothing is added.

* httpx: :func:`add_request_id_header` and :func:`async_add_request_id_header`, request event
  hooks;
* requests: :class:`RequestIdAdapter`, or a session with it mounted from
  :func:`request_id_session`;
* any other client: :func:`request_id_headers`, the headers to send;
* Celery: :func:`install_celery_request_id`;
* Sentry: :class:`RequestIdIntegration`.

None of these libraries is a dependency of dockerflow-wsgi: each is imported only when a name
that needs it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .headers import request_id_headers
from .httpx import add_request_id_header, async_add_request_id_header

if TYPE_CHECKING:
    from .celery import install_celery_request_id
    from .requests import RequestIdAdapter, request_id_session
    from .sentry import RequestIdIntegration

__all__ = [
    "RequestIdAdapter",
    "RequestIdIntegration",
    "add_request_id_header",
    "async_add_request_id_header",
    "install_celery_request_id",
    "request_id_headers",
    "request_id_session",
]

# The names whose module imports a library, and that module.
_LAZY = {
    "RequestIdAdapter": "requests",
    "request_id_session": "requests",
    "install_celery_request_id": "celery",
    "RequestIdIntegration": "sentry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
