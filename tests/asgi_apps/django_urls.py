"""The test project's URLs and views, plus the routes every served app has (see ``service``).

Async views: they run on the server's event loop, as the streams they return do.
"""

from __future__ import annotations

import service
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from project.urls import urlpatterns as project_urlpatterns


async def request_id(request: HttpRequest) -> JsonResponse:
    return JsonResponse(service.request_ids(request.scope))


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(service.held_stream(), content_type="text/plain")


@csrf_exempt
async def release_stream(request: HttpRequest) -> HttpResponse:
    service.release_stream()
    return HttpResponse(status=204)


async def endless(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(service.endless_stream(), content_type="text/plain")


@csrf_exempt
async def hold_sync_check(request: HttpRequest) -> HttpResponse:
    service.hold_sync_check()
    return HttpResponse(status=204)


@csrf_exempt
async def release_sync_check(request: HttpRequest) -> HttpResponse:
    service.release_sync_check()
    return HttpResponse(status=204)


async def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(service.stats())


urlpatterns = [
    *project_urlpatterns,  # boom/ among them: a view that raises LookupError
    path("request-id/", request_id),
    path("stream/", stream),
    path("stream/release/", release_stream),
    path("endless/", endless),
    path("sync-check/hold/", hold_sync_check),
    path("sync-check/release/", release_sync_check),
    path("stats/", stats),
]
