"""``DockerflowDjangoMiddleware``: what only Django knows, told to the request summary.

The summary is the core middleware's, written around Django; four things it cannot see from
there: who the user is, which route Django matched (``request.resolver_match.route``), that
the 500 page Django answered stands for an exception, and the OpenTelemetry span Django's
instrumentation made for the request (which it ends before Django starts the response).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse

from ..request_keys import EXC_INFO_KEY, REQUEST_ID_KEY, ROUTE_KEY, SPAN_KEY, USER_ID_KEY
from ..tracing import request_span, span_watch

__all__ = ["DockerflowDjangoMiddleware"]


def _request_keys(request: Any) -> Optional[dict[str, Any]]:
    """Where the summary reads from: the WSGI environ, or the ASGI scope."""
    environ = getattr(request, "environ", None)
    if environ is None:
        environ = getattr(request, "scope", None)
    return environ if isinstance(environ, dict) else None


def _report_exception(sender: Any, request: Optional[HttpRequest] = None, **kwargs: Any) -> None:
    """``got_request_exception``: Django is about to answer a 500 page for this exception.

    Sent for views, other middleware and error handlers alike, from inside Django's ``except``
    block, so the exception is the one being handled. ``Http404`` and ``PermissionDenied``
    are answers, not failures: Django sends nothing for them.
    """
    keys = _request_keys(request)
    exc_info = sys.exc_info()
    if keys is not None and exc_info[0] is not None:
        keys[EXC_INFO_KEY] = exc_info


def _report_span(request: HttpRequest) -> None:
    """The span current in Django's middleware (its instrumentation's, which comes first), for
    the summary's ids; it gets the request's id as an attribute."""
    keys = _request_keys(request)
    request_id = request.META.get(REQUEST_ID_KEY)
    if keys is None or request_id is None:
        return
    span = request_span(request_id)
    if span is not None:
        keys[SPAN_KEY] = span


def _authenticated_user_id(request: HttpRequest) -> Optional[str]:
    user = getattr(request, "user", None)
    try:
        if user is None or not user.is_authenticated:
            return None
        return str(user.pk)
    except Exception:
        # The session or the user could not be loaded (the database is down): the summary
        # goes without a uid rather than fail the request.
        return None


class DockerflowDjangoMiddleware:
    """Give the request summary the user's id and the exceptions Django answers with a 500.

    .. code-block:: python

        MIDDLEWARE = [
            ...,
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "dockerflow_wsgi.django.DockerflowDjangoMiddleware",
        ]

    Under ASGI it also puts the request id in ``request.META["dockerflow.request_id"]``, where
    it is under WSGI. The summary's ``uid`` is the authenticated ``request.user``'s primary
    key, as it is when the response leaves (a login or logout during the request counts). An
    exception that
    Django turns into a 500 page (from a view, another middleware or an error handler) makes
    the summary an ERROR with its traceback. With OpenTelemetry's Django instrumentation, the
    summary's ``trace_id`` and ``span_id`` are those of the span it made for the request.
    The request id and the summary themselves come
    from :func:`dockerflow_wsgi.django.get_wsgi_application`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_report_exception, dispatch_uid=__name__)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scope = getattr(request, "scope", None)
        if scope is not None and REQUEST_ID_KEY in scope:
            # Under ASGI, Django builds META from the scope's headers only: the id goes where a
            # view finds it under WSGI.
            request.META[REQUEST_ID_KEY] = scope[REQUEST_ID_KEY]
        if span_watch.tracing:
            _report_span(request)
        try:
            response = self.get_response(request)
        finally:
            # Also when a view's exception goes on up: the route was matched before it ran.
            keys = _request_keys(request)
            match = getattr(request, "resolver_match", None)
            if keys is not None and match is not None:
                keys[ROUTE_KEY] = match.route
        user_id = _authenticated_user_id(request)
        if user_id is not None and keys is not None:
            keys[USER_ID_KEY] = user_id
        return response
