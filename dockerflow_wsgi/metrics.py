"""Prometheus metrics of the requests and the health checks, served at ``/__metrics__``.

Made with ``prometheus_client`` (the ``[prometheus]`` extra) only when the ``metrics`` option is
on. One set of metrics per process, shared by every middleware instance in it and registered in
``prometheus_client``'s default registry, so an application that already exposes that registry
shows them too. Under ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn, uWSGI), each worker writes its
values to that directory and ``/__metrics__`` reads every live worker's, whichever answers.

Labels take only bounded values: the method (the usual ones, else ``other``), the status code
(100 to 599, else ``other``), the template of the route the application matched (from its own
route table), a check's name, a run's status, the build's version.json values (one series).
Never the path: one label value per URL a client can invent would grow the server's memory and
the time series without bound.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional

from .answers import Answer
from .checks.messages import OK, STATUSES, level_to_text

if TYPE_CHECKING:
    from .checks.results import CheckResults

__all__ = ["Metrics", "process_metrics"]

#: Methods that get a label of their own; any other is counted as ``other``.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
#: The label of a method not in ``_METHODS`` and of a status outside 100 to 599.
_OTHER = "other"

#: The keys of version.json that label ``dockerflow_build_info``, in their order.
_BUILD_KEYS = ("version", "commit", "source")

#: The most request children :class:`Metrics` keeps at hand; see ``Metrics._child``.
_CHILDREN_CAP = 4096

_EXTRA_NEEDED = (
    "metrics (DOCKERFLOW_METRICS) needs prometheus_client: "
    "pip install 'dockerflow-wsgi[prometheus]'"
)


class Metrics:
    """The metrics of one process; see :func:`process_metrics`.

    The request metrics' children are kept in a plain dictionary, keyed by the request's method,
    status and route: a request then costs a dictionary lookup and the increments, not
    ``labels()``'s validation and lock.
    """

    def __init__(self) -> None:
        try:
            import prometheus_client
        except ImportError as exc:
            raise ValueError(_EXTRA_NEEDED) from exc
        self._client = prometheus_client
        self.requests = prometheus_client.Counter(
            "dockerflow_requests",
            "Requests answered, by method, status code and route (Dockerflow paths included).",
            ["method", "code", "route"],
        )
        self.request_duration = prometheus_client.Histogram(
            "dockerflow_request_duration_seconds",
            "Time from the request's arrival to the end of its response body, by method and route.",
            ["method", "route"],
        )
        # Each worker's own checks: the worst level any live worker saw last.
        self.check_status = prometheus_client.Gauge(
            "dockerflow_check_status",
            "Level of the check's last run: 0 ok, 20 info, 30 warning, 40 error, 50 critical.",
            ["check"],
            multiprocess_mode="livemax",
        )
        self.check_duration = prometheus_client.Gauge(
            "dockerflow_check_duration_seconds",
            "Duration of the check's last run (up to its timeout when it did not finish).",
            ["check"],
            multiprocess_mode="livemostrecent",
        )
        self.heartbeat_runs = prometheus_client.Counter(
            "dockerflow_heartbeat_runs",
            "Runs of the checks, by the status of their result.",
            ["status"],
        )
        self.check_transitions = prometheus_client.Counter(
            "dockerflow_check_transitions",
            "Changes of a check's reported level, by check and new level (see transition_runs).",
            ["check", "level"],
        )
        # Each status counted from 0 at start: rate() sees no increase in a series whose first
        # sample is already 1, so a process's first failed run would never show on a dashboard.
        for status in STATUSES.values():
            self.heartbeat_runs.labels(status)
        # 1 for the build the process runs. "livemax": a worker forked from a process that set
        # it (gunicorn --preload) writes the same series at 0 to its own file, which the maximum
        # ignores; and a dead worker's file goes with it, where "max" would leave one per worker.
        self.build_info = prometheus_client.Gauge(
            "dockerflow_build_info",
            "The build the process runs, labelled from version.json; always 1.",
            list(_BUILD_KEYS),
            multiprocess_mode="livemax",
        )
        self._build: Optional[tuple[str, ...]] = None
        # Summed over the live workers only: a dead worker's requests are not in progress.
        self.requests_in_progress = prometheus_client.Gauge(
            "dockerflow_requests_in_progress",
            "Requests received whose response has not ended yet.",
            multiprocess_mode="livesum",
        )
        # 1 while the pod drains: any live worker that sees the mark says so.
        self.draining = prometheus_client.Gauge(
            "dockerflow_draining",
            "1 while the pod drains (its load balancer's probe answers 503), else 0.",
            multiprocess_mode="livemax",
        )
        self._draining_folders: set[str] = set()
        self._draining_lock = threading.Lock()
        self._children: dict[tuple[str, int, str], tuple[Any, Any]] = {}

    def observe_request(
        self, method: str, code: int, route: str, seconds: float, failed: bool
    ) -> None:
        """Count one request that ended with ``code`` after ``seconds``; one that ``failed``
        before any status was sent counts as the server's ``500``, as in its summary.

        ``route`` is the template of the route the application matched, ``""`` when none did.
        It must come from the application's route table, never from the request: each value is
        a series of its own.
        """
        if failed and not code:
            code = 500
        key = (method, code, route)
        children = self._children.get(key)
        if children is None:
            children = self._child(key)
        children[0].inc()
        children[1].observe(seconds)

    def _child(self, key: tuple[str, int, str]) -> tuple[Any, Any]:
        """The request counter's and the duration histogram's children for ``key``, kept for
        the next request with the same key when every label is one of a bounded set."""
        method, code, route = key
        method_label = method if method in _METHODS else _OTHER
        code_label = str(code) if 100 <= code <= 599 else _OTHER
        children = (
            self.requests.labels(method_label, code_label, route),
            self.request_duration.labels(method_label, route),
        )
        # An unknown method or status is looked up each time rather than kept: a client sending
        # random ones must not grow this dictionary.
        if method_label != _OTHER and code_label != _OTHER:
            # The routes are bounded by the application's table, but the product of routes,
            # methods and statuses can still be large, and a caller that passed the request's
            # path would grow it forever. Emptying it bounds what this object holds whatever
            # the callers pass, at the cost of one labels() per key afterwards: prometheus_client
            # keeps the children themselves.
            if len(self._children) >= _CHILDREN_CAP:
                self._children.clear()
            self._children[key] = children
        return children

    def request_started(self) -> None:
        """Count a request as in progress, until :meth:`request_finished` is called for it."""
        self.requests_in_progress.inc()

    def request_finished(self) -> None:
        """Stop counting a request that :meth:`request_started` counted; once per request, so
        that the gauge does not drift."""
        self.requests_in_progress.dec()

    def set_draining(self, state_dir: str, draining: bool) -> None:
        """Record whether the pod drains, as the mark in ``state_dir`` says (a listener of the
        drain watch of each middleware's folder; one is enough for 1)."""
        with self._draining_lock:
            if draining:
                self._draining_folders.add(state_dir)
            else:
                self._draining_folders.discard(state_dir)
            self.draining.set(1 if self._draining_folders else 0)

    def set_build_info(self, version: Mapping[str, Any]) -> None:
        """Show the build in ``version`` (version.json's content) as
        ``dockerflow_build_info{version,commit,source} 1``, so that a dashboard can tell which
        build served what: a value that is not a string as its ``str()``, a missing or null one
        as ``""``.

        A process runs one build: a call with other values replaces the series of the last
        one. Under ``PROMETHEUS_MULTIPROC_DIR``, the replaced series stays in this worker's file
        at 0, as long as the worker lives (prometheus_client cannot delete a value there).
        """
        build = tuple(_build_label(version.get(key)) for key in _BUILD_KEYS)
        if build == self._build:
            return
        if self._build is not None:
            # 0 first: remove() forgets the child but not its value in a multiprocess file.
            self.build_info.labels(*self._build).set(0)
            self.build_info.remove(*self._build)
        self.build_info.labels(*build).set(1)
        self._build = build

    def observe_run(self, results: CheckResults) -> None:
        """Record a run of the checks: each one's level and duration, and the run's status."""
        # The levels the heartbeat reports: silenced messages left out, non-critical checks'
        # errors counted as warnings.
        for name in results.statuses:
            self.check_status.labels(name).set(results.details.get(name, {}).get("level", OK))
        for name, seconds in results.durations.items():
            self.check_duration.labels(name).set(seconds)
        self.heartbeat_runs.labels(level_to_text(results.level)).inc()

    def observe_transition(self, check: str, level: str) -> None:
        """Count one transition of ``check`` to ``level`` (its text)."""
        self.check_transitions.labels(check, level).inc()

    def exposition(self) -> Answer:
        """The text format of every metric of the process, or of every live worker's under
        ``PROMETHEUS_MULTIPROC_DIR``."""
        client = self._client
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory is not None:
            registry = client.CollectorRegistry()
            registry.register(_WorkersCollector(directory))
        else:
            registry = client.REGISTRY
        return Answer(
            200,
            (("Content-Type", client.CONTENT_TYPE_LATEST),),
            client.generate_latest(registry),
        )


def _build_label(value: Any) -> str:
    """A value of version.json as a label: JSON's ``null`` would otherwise read ``None``."""
    return "" if value is None else str(value)


class _WorkersCollector:
    """``prometheus_client``'s multiprocess collector, without the files of workers that are
    still making theirs.

    A worker creates its file empty, then sizes it. ``MultiProcessCollector`` reads every file
    it finds and fails on an empty one (a ``struct.error`` reading its header), which failed
    the whole scrape with a 500 whenever it met a worker starting: under gunicorn's
    ``--max-requests``, now and then. An empty file holds no value yet; leaving it out gives the
    scrape a moment later would have given.
    """

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def collect(self) -> Iterable[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector

        if not os.path.isdir(self._directory):
            raise ValueError(f"PROMETHEUS_MULTIPROC_DIR is not a directory: {self._directory!r}")
        files = []
        for path in glob.glob(os.path.join(self._directory, "*.db")):
            try:
                if os.path.getsize(path):
                    files.append(path)
            except FileNotFoundError:
                # Removed meanwhile: a dead worker's live gauges, which merge() expects too.
                continue
        return MultiProcessCollector.merge(files, accumulate=True)


_process_metrics: Optional[Metrics] = None
_lock = threading.Lock()


def process_metrics() -> Metrics:
    """This process's metrics, made at the first call (a metric is registered only once).

    :raises ValueError: when ``prometheus_client`` is not installed.
    """
    global _process_metrics
    if _process_metrics is None:
        with _lock:
            if _process_metrics is None:
                _process_metrics = Metrics()
    return _process_metrics
