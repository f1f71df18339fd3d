"""Everything Dockerflow does for a request, whatever the protocol that carries it.

The WSGI middleware, the ASGI middleware and the Sanic integration are adapters around one
:class:`DockerflowCore`: they read the request in their protocol, ask the core which Dockerflow
path it is, which request id it gets and what to answer, and hand the summary's fields to it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from .answers import (
    ANSWERED_METHODS,
    DRAINING,
    GROUPS_PATH,
    LBHEARTBEAT,
    METHOD_NOT_ALLOWED,
    NO_SUCH_GROUP,
    Answer,
    Route,
    error_endpoint,
    heartbeat_answer,
    is_group_path,
    routes_of,
    silent_routes_of,
    version_answer,
)
from .checks.background import BackgroundRuns
from .checks.heartbeat import Heartbeat
from .checks.messages import CheckMessage
from .checks.pool import DaemonThreadPool
from .checks.registry import Check
from .checks.results import CheckResults, fold_results
from .checks.runner import CheckRunner
from .checks.selection import CheckSelection
from .checks.shared import SharedRuns
from .checks.transitions import Transitions
from .config import ENVIRONMENT_VARIABLES, VARIABLE_ONLY_OPTIONS, Config, FrameworkSettings
from .drain import DrainWatch, watch_drain
from .metrics import Metrics, process_metrics
from .request_id import DEFAULT_REQUEST_ID_HEADER
from .request_keys import EXC_INFO_KEY, REQUEST_ID_KEY, USER_ID_KEY
from .state_dir import prepare_state_dir
from .summary import SummaryWriter
from .version import load_version_json

__all__ = ["EXC_INFO_KEY", "REQUEST_ID_KEY", "USER_ID_KEY", "DockerflowCore"]

logger = logging.getLogger("dockerflow_wsgi")

#: Threads that read ``version.json`` and the metrics for an event loop, a pool of their own:
#: on the check pool they would queue behind hung checks, and ``/__version__`` and
#: ``/__metrics__`` must never wait on anything a check holds. Started only as needed.
_ANSWER_THREADS = 4


def _publish_build_info(metrics: Metrics, config: Config) -> None:
    """``dockerflow_build_info`` from ``version.json`` (or ``version_callback``), from the first
    scrape on; nothing when there is none to read. ``/__version__`` reports what cannot be read:
    here it is only left out."""
    callback = config.version_callback or load_version_json
    try:
        version = callback(config.version_path)
    except Exception:
        return
    if isinstance(version, Mapping):
        metrics.set_build_info(version)


class DockerflowCore:
    """The options, checks, heartbeat, answers and summary of one middleware.

    :param config: the validated options.
    :param checks: ``checks=``, replacing the registry, entry points and check sources.
    :param sender: the sender of the heartbeat signals (the middleware, or a framework's app).
    """

    def __init__(
        self,
        config: Config,
        checks: Optional[Iterable[tuple[str, Check]]] = None,
        sender: Any = None,
    ) -> None:
        self.config = config
        self.checks = CheckSelection(config, checks)
        runner = CheckRunner(
            config.check_timeout,
            timeouts=config.check_timeouts,
            # The heartbeats' rules, for the levels the runs' spans report.
            fold=functools.partial(
                fold_results,
                silenced_check_ids=config.silenced_checks,
                non_critical_checks=config.non_critical_checks,
            ),
        )
        #: The process's Prometheus metrics, when ``metrics`` is on.
        self.metrics: Optional[Metrics] = process_metrics() if config.metrics else None
        if self.metrics is not None:
            _publish_build_info(self.metrics, config)
        #: What reports the runs of every heartbeat of this core (the groups' too), so that a
        #: check in several of them is tracked once: its transitions, its messages' records.
        self.transitions = Transitions(
            config.transition_runs, config.health_log_repeat, metrics=self.metrics
        )
        rules = {
            "cache_ttl": config.heartbeat_cache_ttl,
            "silenced_check_ids": config.silenced_checks,
            "non_critical_checks": config.non_critical_checks,
            "sender": sender,
            "metrics": self.metrics,
            "transitions": self.transitions,
        }
        self.heartbeat = Heartbeat(self.checks.current, runner, **rules)
        #: The heartbeat of each group, sharing the runner (a check in two groups runs once).
        self.groups = {
            name: Heartbeat(
                functools.partial(self.checks.group, members), runner, name=name, **rules
            )
            for name, members in config.heartbeat_groups.items()
        }
        #: The checks' runs in the background, when ``heartbeat_interval`` is above zero.
        self.background: Optional[BackgroundRuns] = None
        if config.heartbeat_interval > 0:
            self.background = self._background_runs(runner)
            for heartbeat in self._heartbeats():
                heartbeat.background = self.background
        #: Whether the pod drains, as ``state_dir`` says; ``None`` when the folder cannot be
        #: used (the service then never drains).
        self.drain: Optional[DrainWatch] = watch_drain(config.state_dir)
        if self.drain is not None and self.metrics is not None:
            self.drain.add_listener(self.metrics.set_draining)
        #: The routes that answer 503 while the pod drains.
        self.drain_routes = frozenset(
            {Route.LBHEARTBEAT, *(Route.GROUP_PREFIX + group for group in config.drain_groups)}
        )
        self.summary = SummaryWriter(log_querystring=config.log_querystring)
        self._answer_pool = DaemonThreadPool(_ANSWER_THREADS, name="dockerflow-answer")
        self._last_heartbeat_answer: Optional[tuple[CheckResults, Answer]] = None
        #: Path to route; :meth:`route` also knows the paths of unknown groups.
        self.routes = routes_of(config)
        # A group that drains answers 503 even when no group of its name is configured (a
        # readiness probe set up before its checks); until then it is an unknown group (404).
        self._unconfigured_drain_groups = {
            f"{GROUPS_PATH}{group}{slash}": Route.GROUP_PREFIX + group
            for group in config.drain_groups - config.heartbeat_groups.keys()
            for slash in ("", "/")
        }
        #: Routes whose requests get no summary: the probes, when ``log_probes`` is off.
        self.silent_routes = silent_routes_of(
            config, {**self.routes, **self._unconfigured_drain_groups}
        )
        #: The route template of each Dockerflow route: its path, without a trailing slash (an
        #: unknown group has none).
        self.route_templates = {
            route: path for path, route in self.routes.items() if not path.endswith("/")
        }
        #: With ``summary_sample_rate`` below 1: an ordinary request whose id's crc32 is below
        #: this gets its summary. ``None`` at rate 1, which costs each request one test.
        rate = config.summary_sample_rate
        self.sample_threshold: Optional[float] = None if rate >= 1 else rate * 2**32
        #: Set by an adapter that knows the framework it serves: the template of the route the
        #: framework matched, read from the request's environ or scope as the response starts.
        self.route_finder: Optional[Callable[[Any], Optional[str]]] = None
        #: The request id header, for code that passes the id on, when it is not the default.
        header = config.request_id_header
        #: The request id header's name, as given and lowered, and its length (to compare with a
        #: response's header names; known here, a response's len() call fewer): read for every
        #: response.
        self.request_id_header = header
        self.request_id_header_lower = header.lower()
        self.request_id_header_length = len(self.request_id_header_lower)
        self.header_in_context: Optional[str] = (
            None if header.lower() == DEFAULT_REQUEST_ID_HEADER.lower() else header
        )

    def _background_runs(self, runner: CheckRunner) -> BackgroundRuns:
        """The runs of each process, or with ``heartbeat_shared`` those the processes sharing
        ``state_dir`` share; each process's own where the folder cannot be used (it logged
        why)."""
        config = self.config

        def after_run(messages: dict[str, list[CheckMessage]]) -> None:
            self.heartbeat.report(self.heartbeat.fold(messages))

        if config.heartbeat_shared and prepare_state_dir(config.state_dir):
            return SharedRuns(
                self.checks.current,
                runner,
                config.heartbeat_interval,
                after_run,
                state_dir=config.state_dir,
                group_names={name for group in config.heartbeat_groups.values() for name in group},
                # Each check's reported level travels with the result: a takeover is no
                # transition.
                export_state=self.transitions.state,
                import_state=self._take_over_transitions,
            )
        return BackgroundRuns(self.checks.current, runner, config.heartbeat_interval, after_run)

    def _take_over_transitions(self, state: dict[str, Any]) -> None:
        """The reported levels of the runner this process takes over from; a state that is
        not one (another version's, a damaged file) is left out with a WARNING, and the checks'
        levels are then reported afresh."""
        try:
            self.transitions.restore(state)
        except ValueError as exc:
            logger.warning("The shared heartbeat's reported levels are ignored: %s", exc)

    def _heartbeats(self) -> list[Heartbeat]:
        return [self.heartbeat, *self.groups.values()]

    @property
    def sender(self) -> Any:
        """The sender of the heartbeat signals: the middleware, or a framework's app."""
        return self.heartbeat.sender

    @sender.setter
    def sender(self, sender: Any) -> None:
        for heartbeat in self._heartbeats():
            heartbeat.sender = sender

    def route(self, path: str) -> Optional[str]:
        """The Dockerflow route of a request for ``path`` (its path within the application),
        ``None`` for the application's own: a heartbeat group nobody configured is still ours
        (404)."""
        route = self.routes.get(path)
        # ``in`` first: for the usual path, which holds no group path at all, it costs a
        # fraction of a startswith() call.
        if route is None and GROUPS_PATH in path and is_group_path(path):
            return self._unconfigured_drain_groups.get(path, Route.UNKNOWN_GROUP)
        return route

    def respond(self, method: str, route: str) -> Answer:
        """The answer to a ``method`` request of ``route``: 405 for a method Dockerflow does
        not answer, GET's headers without the body for HEAD. May block (checks,
        ``version.json``)."""
        if method not in ANSWERED_METHODS:
            return METHOD_NOT_ALLOWED
        answer = self.answer(route)
        return answer._replace(body=b"") if method == "HEAD" else answer

    async def respond_async(self, method: str, route: str) -> Answer:
        """:meth:`respond` for an event loop's thread, as :meth:`answer_async` answers."""
        if method not in ANSWERED_METHODS:
            return METHOD_NOT_ALLOWED
        answer = await self.answer_async(route)
        return answer._replace(body=b"") if method == "HEAD" else answer

    @classmethod
    def from_options(
        cls,
        options: dict[str, Any],
        framework: Optional[FrameworkSettings] = None,
        sender: Any = None,
    ) -> DockerflowCore:
        """The core of a middleware given ``options`` (keyword name to value, ``checks``
        included), each also from ``framework``'s configuration and the environment.

        :raises TypeError: for a name that is no option.
        :raises ValueError: for a value that cannot work, naming where it came from.
        """
        unknown = options.keys() - (ENVIRONMENT_VARIABLES.keys() - VARIABLE_ONLY_OPTIONS)
        if unknown:
            raise TypeError(f"Dockerflow has no option {sorted(unknown)[0]!r}")
        settings = {name: value for name, value in options.items() if name != "checks"}
        config = Config.from_options(framework=framework, **settings)
        return cls(config, options.get("checks"), sender)

    def draining(self, route: str) -> bool:
        """Whether ``route`` answers 503 now, the pod draining (a probe pays one ``stat``)."""
        return route in self.drain_routes and self.drain is not None and self.drain.draining_now()

    def answer(self, route: str) -> Answer:
        """The answer to a GET of ``route``; may block (checks, ``version.json``)."""
        if self.draining(route):
            return DRAINING
        if route == Route.LBHEARTBEAT:
            return LBHEARTBEAT
        if route == Route.HEARTBEAT:
            return self._heartbeat_answer(self.heartbeat.results())
        if route == Route.VERSION:
            return version_answer(self.config)
        if route == Route.METRICS:
            return self.metrics.exposition()  # type: ignore[union-attr]
        if route == Route.ERROR:
            return error_endpoint()
        group = self._group(route)
        if group is None:
            return NO_SUCH_GROUP
        return self._heartbeat_answer(group.results())

    async def answer_async(self, route: str) -> Answer:
        """:meth:`answer` for an event loop's thread: checks are awaited, ``version.json`` is
        read on a pool thread, nothing blocks the loop."""
        if self.draining(route):
            return DRAINING
        if route == Route.LBHEARTBEAT:
            return LBHEARTBEAT
        if route == Route.HEARTBEAT:
            return self._heartbeat_answer(await self.heartbeat.results_async())
        if route == Route.VERSION:
            return await self._on_pool(version_answer, self.config)
        if route == Route.METRICS:
            # Under PROMETHEUS_MULTIPROC_DIR, the workers' files are read.
            return await self._on_pool(self.metrics.exposition)  # type: ignore[union-attr]
        if route == Route.ERROR:
            return error_endpoint()
        group = self._group(route)
        if group is None:
            return NO_SUCH_GROUP
        return self._heartbeat_answer(await group.results_async())

    def _heartbeat_answer(self, results: CheckResults) -> Answer:
        """The heartbeat's answer of ``results``, encoded once: a cached or background result
        answers many probes with the same object."""
        made = self._last_heartbeat_answer
        if made is not None and made[0] is results:
            return made[1]
        answer = heartbeat_answer(results, self.config)
        self._last_heartbeat_answer = (results, answer)
        return answer

    async def _on_pool(self, answer: Callable[..., Answer], *args: Any) -> Answer:
        """``answer(*args)`` on a thread of the answers' pool, for one that reads files."""
        context = contextvars.copy_context()
        return await asyncio.wrap_future(self._answer_pool.submit(context.run, answer, *args))

    def _group(self, route: str) -> Optional[Heartbeat]:
        return self.groups.get(route[len(Route.GROUP_PREFIX) :])
