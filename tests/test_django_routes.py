"""The summary's ``route`` under Django: ``request.resolver_match.route``, as Django writes it.

The test project served by ``get_wsgi_application()`` and ``get_asgi_application()``, with
this module's URLs (an ``include()`` under a prefix, the root route ``""``) and
``DockerflowDjangoMiddleware`` in its ``MIDDLEWARE``. Collected only in a process set up for the
test project (``tests/test_django.py`` runs it in one); by hand::

    DJANGO_SETTINGS_MODULE=project.settings PYTHONPATH=tests/django_project \\
        PROJECT_DATABASE=sqlite:////tmp/db.sqlite3 python -m pytest tests/test_django_routes.py
"""

from __future__ import annotations

import os
from typing import Any, Optional

import pytest
import webtest
from asgi_scope import asgi_request, http_scope
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.test import override_settings
from django.urls import include, path, re_path

from dockerflow_wsgi.django import get_asgi_application, get_wsgi_application

__test__ = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"


def hello(request: HttpRequest, **params: Any) -> JsonResponse:
    return JsonResponse(params)


def boom(request: HttpRequest) -> JsonResponse:
    raise LookupError("the view failed")


urlpatterns = [
    path("", hello),
    path(
        "api/v1/",
        include(
            [
                path("", hello),
                path("notes/<int:pk>/", hello),
                path("boom/", boom),
                re_path(r"^legacy/(?P<slug>[a-z]+)/$", hello),
            ]
        ),
    ),
]

#: Request path to the status and the route its summary has (``None``: no ``route`` field).
EXPECTED = {
    # The root route's template is empty: a matched route all the same.
    "/": (200, ""),
    "/api/v1/": (200, "api/v1/"),
    "/api/v1/notes/3/": (200, "api/v1/notes/<int:pk>/"),
    # The view raised after its route was matched; Django answered its 500 page.
    "/api/v1/boom/": (500, "api/v1/boom/"),
    # Django joins a regex to the prefix without its "^".
    "/api/v1/legacy/abc/": (200, "api/v1/legacy/(?P<slug>[a-z]+)/$"),
    "/nope/": (404, None),
    # CommonMiddleware's redirect to add the slash: nothing was resolved.
    "/api/v1/notes/3": (301, None),
    "/__lbheartbeat__": (200, "/__lbheartbeat__"),
    "/__heartbeat__/nope/": (404, None),
}


def route_of(record: Any) -> Optional[str]:
    return getattr(record, "route", None)


@override_settings(ROOT_URLCONF=__name__)
def test_wsgi_summaries_have_the_route_django_resolved(summary_records):
    app = webtest.TestApp(get_wsgi_application())
    seen = {}
    for request_path in EXPECTED:
        summary_records.clear()
        response = app.get(request_path, expect_errors=True)
        (record,) = summary_records
        seen[request_path] = (response.status_int, route_of(record))

    assert seen == EXPECTED


def asgi_get(app: Any, request_path: str) -> int:
    return asgi_request(app, http_scope(request_path))[0]["status"]


@override_settings(ROOT_URLCONF=__name__)
def test_asgi_summaries_have_the_route_django_resolved(summary_records):
    app = get_asgi_application()
    seen = {}
    for request_path in EXPECTED:
        summary_records.clear()
        status = asgi_get(app, request_path)
        (record,) = summary_records
        seen[request_path] = (status, route_of(record))

    assert seen == EXPECTED


@pytest.mark.parametrize("get_application", [get_wsgi_application, get_asgi_application])
def test_without_the_django_middleware_there_is_no_route(get_application, summary_records):
    middleware = [
        name
        for name in settings.MIDDLEWARE
        if name != "dockerflow_wsgi.django.DockerflowDjangoMiddleware"
    ]
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=middleware):
        app = get_application()
        if get_application is get_wsgi_application:
            webtest.TestApp(app).get("/api/v1/notes/3/")
        else:
            assert asgi_get(app, "/api/v1/notes/3/") == 200

    (record,) = summary_records
    assert (record.code, route_of(record)) == (200, None)
