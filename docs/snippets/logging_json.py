"""mozlog JSON on stdout, one line per record, every record of a request carrying its id.

Call ``logging.config.dictConfig(LOGGING)`` once at startup, before serving requests.
"""

LOGGING = {
    "version": 1,
    # Keep the loggers that imported modules already made (request.summary and
    # dockerflow_wsgi among them): without this line their records are silently dropped.
    "disable_existing_loggers": False,
    "handlers": {
        # mozlog JSON on the process's stdout (under uWSGI too), with each record's request
        # id; "name" is the Logger field: your application's name.
        "mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "myservice"},
    },
    "root": {"handlers": ["mozlog"], "level": "INFO"},
    "loggers": {
        "request.summary": {"level": "INFO"},
    },
}
