"""mozlog JSON on stdout, one line per record, every record of a request carrying its id.

Call ``logging.config.dictConfig(LOGGING)`` once at startup, before serving requests.
"""

LOGGING = {
    "version": 1,
    # Keep the loggers that imported modules already made (request.summary among them).
    "disable_existing_loggers": False,
    "formatters": {
        "mozlog": {
            "()": "dockerflow_wsgi.logging.JsonLogFormatter",
            "logger_name": "myservice",  # the Logger field: your application's name
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
    },
}
