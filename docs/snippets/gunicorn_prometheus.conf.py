"""gunicorn settings with Prometheus metrics added up across the workers.

``PROMETHEUS_MULTIPROC_DIR`` must be in the environment before gunicorn starts (set by the
container or its start script, not from Python): ``prometheus_client`` reads it when it is
imported, in every worker.
"""

import os

from prometheus_client import multiprocess

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = None
control_socket_disable = True


def on_starting(server):
    """Once, in the master, before any worker: the values of an earlier run would be added
    to this one's."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    """A worker has gone: its check levels and durations leave the scrape, its counts stay."""
    multiprocess.mark_process_dead(worker.pid)
