"""Django in one file, to run as it is: ``gunicorn django_wsgi:application``.

In a project, only the last lines belong in ``wsgi.py``; the settings stay in settings.py.
"""

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path

from dockerflow_wsgi import DockerflowMiddleware

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
)


def hello(request):
    return JsonResponse({"message": "hello", "request_id": request.META["dockerflow.request_id"]})


urlpatterns = [path("", hello)]

application = DockerflowMiddleware(get_wsgi_application())
