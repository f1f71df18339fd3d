"""The test project's settings, with the routes every served app has (``django_urls``) and
the logging every served app has: ``MozlogHandler`` on the root logger, whose built-in filter
gives each record of a request its ``rid``."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "django_urls"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "asgi-tests"}
    },
    "root": {"handlers": ["mozlog"], "level": "INFO"},
}
