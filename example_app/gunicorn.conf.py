"""gunicorn settings for the example service: ``gunicorn --config gunicorn.conf.py app:app``."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# request.summary, written by the middleware, is the access log.
accesslog = None
errorlog = "-"
