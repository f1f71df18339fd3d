"""A middleware that fails when asked to: exceptions raised outside views are errors too."""

from typing import Callable

from django.http import HttpRequest, HttpResponse


class MiddlewareFailure(Exception):
    pass


class FailOnRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "X-Fail-In-Middleware" in request.headers:
            raise MiddlewareFailure("the middleware failed")
        return self.get_response(request)
