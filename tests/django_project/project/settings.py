"""Settings of the test project: production-like (``DEBUG`` off), one database.

The database comes from ``PROJECT_DATABASE``: ``sqlite:///<path>`` or
``postgresql://user@host:port/name?schema=<schema>`` (the tests keep each run in a schema of
its own). Not ``DATABASE_URL``: that name is an option of the middleware.
"""

import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "test-project-7Hq2vX9pLm4Rk8sWz3Ny6Tb1Jc5Fd0Ga-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "dockerflow_wsgi.django",
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dockerflow_wsgi.django.DockerflowDjangoMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "notes.middleware.FailOnRequestMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"


def _database(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path}
    schema = parse_qs(parts.query).get("schema", ["public"])[0]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": {
            "options": f"-c search_path={schema}",
            "connect_timeout": 3,
            # The tests count this process's connections by it.
            "application_name": f"django-project-{os.getpid()}",
        },
    }


DATABASES = {
    "default": _database(
        os.environ.get(
            "PROJECT_DATABASE",
            f"sqlite:///{Path(tempfile.gettempdir()) / 'dockerflow-wsgi-django-project.sqlite3'}",
        )
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Logging in takes microseconds instead of the default hasher's second.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
# TLS ends at the load balancer, and the tests speak plain HTTP to the project.
SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W012", "security.W016"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"mozlog": {"()": "dockerflow_wsgi.logging.JsonLogFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "mozlog",
        }
    },
    # On the root logger only: naming request.summary here would take away, each time Django
    # is set up, the handlers the tests add to it.
    "root": {"handlers": ["stdout"], "level": "INFO"},
}
