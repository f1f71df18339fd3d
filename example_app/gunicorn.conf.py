"""gunicorn settings for the example service: ``gunicorn --config gunicorn.conf.py app:app``.

From the environment: ``PORT`` (default 8000), ``WEB_CONCURRENCY`` worker processes
(default 2) and ``GUNICORN_THREADS`` threads in each (default 4).
"""

import os

# A worker that exits leaves prometheus_client's multiprocess files in a state the scrape
# understands (nothing without PROMETHEUS_MULTIPROC_DIR). For a drain on SIGTERM where no
# preStop hook runs, add ``when_ready = on_sigterm_drain`` (see docs/probes.rst).
from dockerflow_wsgi.gunicorn import child_exit  # noqa: F401 - a gunicorn hook, by its name

# The app is the module app.py beside this file, whatever directory gunicorn starts in.
chdir = os.path.dirname(os.path.abspath(__file__))
wsgi_app = "app:app"
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# request.summary, written by the middleware, is the access log.
accesslog = None
errorlog = "-"
# Stopped and scaled by its container's orchestrator, not through gunicornc; and no socket in
# $HOME, shared by every gunicorn of the user (gunicorn 25.1+; older versions ignore it).
control_socket_disable = True
