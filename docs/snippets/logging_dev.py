"""Readable lines for local development, with the request id in brackets (Python 3.10+)."""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "readable": {
            "()": "logging.Formatter",
            "fmt": "%(asctime)s %(levelname)s [%(rid)s] %(name)s: %(message)s",
            # Records made outside a request have no rid.
            "defaults": {"rid": "-"},
        },
    },
    "filters": {
        "request_id": {"()": "dockerflow_wsgi.logging.RequestIdLogFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "readable",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": "DEBUG"},
    "loggers": {
        # Its fields are attributes, not text: this format shows only its time and id.
        "request.summary": {"level": "WARNING"},
    },
}
