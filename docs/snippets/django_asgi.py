"""Django in one file, to run as it is: ``uvicorn django_asgi:application --no-access-log``.

In a project, ``asgi.py`` keeps only the import and the last line; the settings stay in
settings.py.
"""

from django.conf import settings
from django.http import JsonResponse
from django.urls import path

from dockerflow_wsgi.django import get_asgi_application

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
)


async def hello(request):
    return JsonResponse({"message": "hello", "request_id": request.scope["dockerflow.request_id"]})


urlpatterns = [path("", hello)]

application = get_asgi_application()
