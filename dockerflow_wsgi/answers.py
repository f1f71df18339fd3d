"""The Dockerflow answers as status, headers and body: what every adapter sends, in any protocol.

An adapter (WSGI, ASGI, Sanic) only turns an :class:`Answer` into its protocol's messages; which
path is answered, with which status, headers and JSON, is decided here once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from .checks import ERROR
from .checks.results import CheckResults, heartbeat_payload
from .config import Config
from .redact import describe_exception, mask_secrets, masked_traceback
from .version import VersionFileError, load_version_json

__all__ = [
    "ANSWERED_METHODS",
    "DRAINING",
    "GROUPS_PATH",
    "HEARTBEAT_PATH",
    "JSON_HEADERS",
    "LBHEARTBEAT",
    "METHOD_NOT_ALLOWED",
    "NO_SUCH_GROUP",
    "Answer",
    "DeliberateError",
    "Route",
    "error_endpoint",
    "heartbeat_answer",
    "is_group_path",
    "json_answer",
    "routes_of",
    "silent_routes_of",
    "version_answer",
]

logger = logging.getLogger("dockerflow_wsgi")

#: Methods a Dockerflow path answers; any other gets 405.
ANSWERED_METHODS = frozenset({"GET", "HEAD"})

#: Headers of every Dockerflow answer: JSON, and never cached by a proxy in between.
JSON_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-cache"))

# Strict RFC 8259: NaN and the infinities are refused rather than written as bare words.
_encode = json.JSONEncoder(separators=(",", ":"), default=repr, allow_nan=False).encode


class Answer(NamedTuple):
    """A response to send as it is: HEAD sends the same status and headers without the body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def json_answer(status: int, payload: Any, *headers: tuple[str, str]) -> Answer:
    """``payload`` as compact JSON, with its length.

    :raises ValueError: for a payload holding a float that is not finite.
    :raises TypeError: for a payload with keys JSON cannot have.
    """
    body = _encode(payload).encode("ascii")
    return Answer(status, (*JSON_HEADERS, ("Content-Length", str(len(body))), *headers), body)


#: The load balancer's probe: a constant, no checks, no JSON encoding per request.
LBHEARTBEAT = json_answer(200, {})
METHOD_NOT_ALLOWED = json_answer(405, {"error": "method not allowed"}, ("Allow", "GET, HEAD"))
NO_SUCH_GROUP = json_answer(404, {"error": "no heartbeat group of that name"})
#: The load balancer's probe, and each of ``drain_groups``, while the pod drains.
DRAINING = json_answer(503, {"status": "draining"})


class Route:
    """The Dockerflow paths, and what the request summary makes of each.

    A configured heartbeat group's route is ``GROUP_PREFIX + <group name>``.
    """

    LBHEARTBEAT = "lbheartbeat"
    HEARTBEAT = "heartbeat"
    VERSION = "version"
    ERROR = "error"
    METRICS = "metrics"
    GROUP_PREFIX = "heartbeat/"
    #: ``/__heartbeat__/<name>`` for a name no group has.
    UNKNOWN_GROUP = "heartbeat/?"


HEARTBEAT_PATH = "/__heartbeat__"
#: Where heartbeat groups are, ``/__heartbeat__/<group>``.
GROUPS_PATH = HEARTBEAT_PATH + "/"
_PATHS = {
    "/__lbheartbeat__": Route.LBHEARTBEAT,
    HEARTBEAT_PATH: Route.HEARTBEAT,
    "/__version__": Route.VERSION,
}


def routes_of(config: Config) -> dict[str, str]:
    """Path to route, each path also with one trailing slash (Django users' probes have one).

    A dict, so that a request that is not for Dockerflow costs one lookup.
    """
    paths = dict(_PATHS)
    if config.error_endpoint:
        paths["/__error__"] = Route.ERROR
    if config.metrics:
        paths["/__metrics__"] = Route.METRICS
    for group in config.heartbeat_groups:
        paths[f"{HEARTBEAT_PATH}/{group}"] = Route.GROUP_PREFIX + group
    return {**paths, **{f"{path}/": route for path, route in paths.items()}}


def is_group_path(path: str) -> bool:
    """Whether ``path`` asks for a heartbeat group (``/__heartbeat__/<name>``, with one
    trailing slash or none), whether or not one has that name."""
    if not path.startswith(GROUPS_PATH):
        return False
    name = path[len(GROUPS_PATH) :]
    if name.endswith("/"):
        name = name[:-1]
    return bool(name) and "/" not in name


def silent_routes_of(config: Config, routes: dict[str, str]) -> frozenset[str]:
    """Routes whose requests get no summary: the probes (every heartbeat group's included),
    when ``log_probes`` is off. ``/__error__`` is no probe: its summary is part of the error
    report it tests."""
    if config.log_probes:
        return frozenset()
    return frozenset(route for route in routes.values() if route != Route.ERROR) | {
        Route.UNKNOWN_GROUP
    }


def heartbeat_answer(results: CheckResults, config: Config) -> Answer:
    """The heartbeat's JSON: 200 below ERROR, ``heartbeat_failed_status_code`` from ERROR on."""
    failed = results.level >= ERROR
    return json_answer(
        config.heartbeat_failed_status_code if failed else 200,
        heartbeat_payload(results, details=config.heartbeat_details),
    )


def version_answer(config: Config) -> Answer:
    """``version.json`` (or what ``version_callback`` gives), 404 without one, a JSON 500 and
    one ERROR record for anything that cannot be served. Reads a file: blocking."""
    callback = config.version_callback or load_version_json
    try:
        version = callback(config.version_path)
    except VersionFileError as exc:
        # A callback may raise it too, with a text of its own: masked like any other.
        reason = mask_secrets(str(exc))
        logger.error("Cannot serve /__version__: %s", reason)
        return json_answer(500, {"error": reason})
    except BaseException as exc:
        # SystemExit and KeyboardInterrupt included: this is one request to a server, and let
        # through they end a uWSGI worker (gunicorn answers an HTML page).
        logger.error(
            "version_callback failed: %s",
            describe_exception(exc),
            extra={"traceback": masked_traceback(exc)},
        )
        return json_answer(500, {"error": f"version callback failed: {type(exc).__name__}"})
    if version is None:
        return json_answer(404, {"error": "version.json not found"})
    if not isinstance(version, Mapping):
        logger.error("version_callback returned %s, not a dict", type(version).__name__)
        return json_answer(500, {"error": "version information is not a JSON object"})
    try:
        return json_answer(200, dict(version))
    except BaseException as exc:
        # NaN, Infinity, keys JSON cannot have, a value whose repr() (JSON's last resort)
        # raises: the answer must be strict JSON or nothing.
        logger.error(
            "version_callback returned what JSON cannot carry: %s", describe_exception(exc)
        )
        return json_answer(500, {"error": "version information is not valid JSON"})


class DeliberateError(Exception):
    """Raised by ``/__error__`` so that error reporting can be tested end to end."""


def error_endpoint() -> Answer:
    """``/__error__``: an ERROR record, then an exception for the server to report."""
    logger.error("The __error__ endpoint was called")
    raise DeliberateError("/__error__ raised this exception on purpose")
