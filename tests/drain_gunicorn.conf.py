"""gunicorn settings of ``test_drain_servers.py``: the hooks of ``dockerflow_wsgi.gunicorn``, by
assignment as the docs show them."""

from dockerflow_wsgi.gunicorn import child_exit, on_sigterm_drain

__all__ = ["child_exit", "when_ready"]

when_ready = on_sigterm_drain
workers = 4
worker_class = "sync"
graceful_timeout = 10
control_socket_disable = True
