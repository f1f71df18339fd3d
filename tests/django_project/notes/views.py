from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Note


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "hello", "request_id": request.META["dockerflow.request_id"]})


def notes(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"notes": list(Note.objects.values_list("text", flat=True))})


# The tests post credentials without a form, hence without a CSRF token.
@csrf_exempt
@require_POST
def log_in(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        raise PermissionDenied("wrong credentials")
    login(request, user)
    return HttpResponse("logged in")


@csrf_exempt
@require_POST
def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("logged out")


@login_required
def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pk": request.user.pk})


def boom(request: HttpRequest) -> HttpResponse:
    raise LookupError("the view failed")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such page")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not for you")
