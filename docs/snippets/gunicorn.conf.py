"""gunicorn settings: ``gunicorn --config gunicorn.conf.py myservice.wsgi:application``.

From the environment: ``PORT`` (default 8000), ``WEB_CONCURRENCY`` worker processes (default
2) and ``GUNICORN_THREADS`` threads in each (default 4).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# request.summary, written by the middleware, is the access log.
accesslog = None
# Containers are stopped by their orchestrator, not through gunicornc (gunicorn 25.1+; older
# versions ignore this).
control_socket_disable = True

# gunicorn passes this to logging.config.dictConfig, over its own defaults, when it starts.
# An application that calls dockerflow_wsgi.logging.configure() (as every quickstart does)
# replaces the root's MozlogHandler with its own when it is loaded: each record is written once.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "stdout": {"()": "dockerflow_wsgi.logging.MozlogHandler", "name": "myservice"},
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "request.summary": {"level": "INFO"},
        # gunicorn's own messages (workers starting, timeouts) as mozlog too.
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"level": "WARNING"},
    },
}
