"""gunicorn server hooks: drain on SIGTERM, and the metrics of a worker that has gone.

A ``gunicorn.conf.py`` uses them by assignment:

.. code-block:: python

    from dockerflow_wsgi.gunicorn import child_exit, on_sigterm_drain

    when_ready = on_sigterm_drain   # SIGTERM: drain first, then gunicorn's graceful stop
    # child_exit is then a hook of this file too, by its name

gunicorn closes its listeners as soon as SIGTERM arrives, while a load balancer that probes the
pod keeps sending requests until its probe fails. With :func:`on_sigterm_drain`, SIGTERM first
puts a drain mark into ``state_dir`` (as ``dockerflow-wsgi drain`` does), waits
``DOCKERFLOW_DRAIN_SECONDS`` while every worker serves and fails the probe, then stops the way
gunicorn always does. It is for services that get no ``preStop`` hook (docker compose, ECS,
Nomad); under Kubernetes the ``preStop`` command does the same for any server. uvicorn and
hypercorn run no such hooks: give them the ``preStop`` command.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import threading
from typing import Any

from .drain import MARK_NAME, drain_settings_from_environment, make_mark
from .state_dir import default_state_dir

__all__ = ["child_exit", "on_sigterm_drain"]


def on_sigterm_drain(server: Any) -> None:
    """A gunicorn ``when_ready`` hook: from now on, the master's first SIGTERM starts a drain of
    ``DOCKERFLOW_DRAIN_SECONDS`` (10 by default) in ``DOCKERFLOW_STATE_DIR``, then gunicorn's
    own graceful stop. A second SIGTERM stops at once, as gunicorn would; SIGINT and SIGQUIT are
    untouched. The mark is removed when the master exits, so that the server started next on
    this machine does not drain.

    A bad ``DOCKERFLOW_DRAIN_*`` value stops the server from starting, with its error.
    """
    state_dir, seconds, hold = drain_settings_from_environment()
    folder = state_dir or default_state_dir()
    stop = signal.getsignal(signal.SIGTERM)
    master = os.getpid()

    def remove_own_mark() -> None:
        """At the master's exit, the mark it made, unless another has replaced it."""
        if os.getpid() != master:
            return  # a worker forked after SIGTERM exits with the master's exit handlers
        path = os.path.join(folder, MARK_NAME)
        with contextlib.suppress(OSError, ValueError), open(path) as file:
            if json.load(file).get("pid") == master:
                os.unlink(path)

    def drain_then_stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, stop)
        try:
            make_mark(folder, seconds, hold)
        except OSError as exc:
            server.log.warning("SIGTERM: cannot drain (%s); stopping now", exc)
            os.kill(master, signal.SIGTERM)
            return
        atexit.register(remove_own_mark)
        server.log.info("SIGTERM: draining for %g s, then stopping", seconds)
        later = threading.Timer(seconds, os.kill, (master, signal.SIGTERM))
        later.daemon = True
        later.start()

    signal.signal(signal.SIGTERM, drain_then_stop)


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn ``child_exit`` hook: under ``PROMETHEUS_MULTIPROC_DIR``, the worker that has
    gone leaves its live gauges (its counts stay in the totals, so that counters never go back).
    Nothing without prometheus_client's multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(worker.pid)
