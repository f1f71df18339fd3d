"""In Django's settings.py: everything as mozlog JSON on stdout."""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "mozlog": {
            "()": "dockerflow_wsgi.logging.JsonLogFormatter",
            "logger_name": "myproject",
        },
    },
    "filters": {
        "request_id": {"()": "dockerflow_wsgi.logging.RequestIdLogFilter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "mozlog",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "request.summary": {"level": "INFO"},
        # Django's own loggers keep their default handlers unless they are named here.
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        # request.summary already records every request: no second access line.
        "django.server": {"level": "WARNING"},
    },
}
