"""The template of the route a framework matched, read from what it leaves in the request's
environ or scope: no framework is imported here, and an app of another framework pays nothing.

Each reader returns the template as the framework writes it (``/users/<int:user_id>``,
``/users/{user_id}``), or ``None`` when no route matched (a 404, a redirect to add a slash).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Callable, Optional

__all__ = ["asgi_route", "werkzeug_route", "wsgi_route_finder"]


def werkzeug_route(environ: Mapping[str, Any]) -> Optional[str]:
    """Flask's ``request.url_rule.rule``: werkzeug keeps the request at
    ``environ["werkzeug.request"]``, and Flask calls ``start_response`` before it ends the
    request's context, while its URL rule is still there (blueprint prefixes included)."""
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    rule_text = getattr(rule, "rule", None)
    return rule_text if isinstance(rule_text, str) else None


def wsgi_route_finder(app: Any) -> Optional[Callable[[Mapping[str, Any]], Optional[str]]]:
    """The reader of the route ``app`` matched, for a WSGI app whose framework is known: a
    Flask app, or its ``wsgi_app`` (as wrapped by ``app.wsgi_app =
    DockerflowMiddleware(app.wsgi_app)`` or the Flask shim). ``None`` for any other app, which
    may set ``environ["dockerflow.route"]`` itself. Flask is recognised only when it is imported
    already: nothing is imported here."""
    flask = sys.modules.get("flask")
    if flask is None:
        return None
    # The Flask app itself, or its wsgi_app method.
    if isinstance(app, flask.Flask) or isinstance(getattr(app, "__self__", None), flask.Flask):
        return werkzeug_route
    return None


def asgi_route(scope: Mapping[str, Any]) -> Optional[str]:
    """The template of the route Starlette or FastAPI matched, from the scope its router was
    given (it writes ``scope["route"]`` there, in place).

    FastAPI 0.137 and later leave the prefixes of ``include_router()`` out of
    ``scope["route"].path``; the whole template is then FastAPI's
    ``scope["fastapi"]["effective_route_context"].path`` (what Sentry's integration reads too),
    taken when it belongs to the route matched. Every step is guarded: it is not public API.
    """
    route = scope.get("route")
    if route is None:
        return None
    fastapi = scope.get("fastapi")
    # A dict, as FastAPI makes it: isinstance() of an abstract Mapping costs more than the rest.
    if isinstance(fastapi, dict):
        context = fastapi.get("effective_route_context")
        if context is not None and getattr(context, "original_route", None) is route:
            path = getattr(context, "path", None)
            if isinstance(path, str):
                return path
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None
