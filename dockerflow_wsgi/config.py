"""Options of :class:`~dockerflow_wsgi.DockerflowMiddleware`, read once and validated once.

Every option comes from its keyword argument, else from its environment variable, else from
its default. All parsing happens here, at construction, so that a typo in a deployment's
environment stops the service from starting with a message naming the variable, instead of
surfacing as a 500 on the first probe.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = ["Config", "parse_bool"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: RFC 9110 ``tchar``: the characters allowed in a header field name.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")

VersionCallback = Callable[[str], Optional[Mapping[str, Any]]]


def parse_bool(value: str | bool, name: str) -> bool:
    """Read a boolean the way operators write them in environment files."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be one of 1/true/yes/on or 0/false/no/off, got {value!r}")


def _parse_seconds(value: Any, name: str, *, allow_zero: bool) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


def _parse_status_code(value: Any, name: str) -> int:
    problem = f"{name} must be an HTTP status code from 400 to 599, got {value!r}"
    try:
        code = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ValueError(problem) from None
    if isinstance(code, bool) or not 400 <= code <= 599:
        raise ValueError(problem)
    return code


def _parse_header_name(value: Any, name: str) -> str:
    header = str(value).strip() if value is not None else ""
    if not header or not set(header) <= _TOKEN_CHARS:
        raise ValueError(f"{name} must be an HTTP header name such as X-Request-ID, got {value!r}")
    return header


def _parse_id_list(value: Any, name: str) -> frozenset[str]:
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ValueError(f"{name} must be a comma-separated list of check ids, got {value!r}")
    return frozenset(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class Config:
    """The middleware's settings after parsing; see the configuration docs for each one."""

    version_path: str
    version_callback: VersionCallback | None
    silenced_checks: frozenset[str]
    check_timeout: float
    heartbeat_cache_ttl: float
    heartbeat_failed_status_code: int
    request_id_header: str
    log_querystring: bool
    heartbeat_details: bool
    error_endpoint: bool
    log_probes: bool
    db: Any
    redis: Any
    alembic_config: str | None

    @property
    def request_id_environ_key(self) -> str:
        """The CGI-style environ key under which the server puts the request id header."""
        return "HTTP_" + self.request_id_header.upper().replace("-", "_")

    @classmethod
    def from_options(
        cls,
        *,
        version_path: str | os.PathLike[str] | None = None,
        version_callback: VersionCallback | None = None,
        silenced_checks: Iterable[str] | str | None = None,
        check_timeout: float | str | None = None,
        heartbeat_cache_ttl: float | str | None = None,
        heartbeat_failed_status_code: int | str | None = None,
        request_id_header: str | None = None,
        log_querystring: bool | str | None = None,
        heartbeat_details: bool | str | None = None,
        error_endpoint: bool | str | None = None,
        log_probes: bool | str | None = None,
        db: Any = None,
        redis: Any = None,
        alembic_config: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Build the settings from keyword arguments and ``environ`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ

        def pick(keyword: Any, variable: str | None) -> tuple[Any, str | None]:
            """The keyword if given, else the variable's value; also the name to blame."""
            if keyword is not None:
                return keyword, None
            if variable is not None and env.get(variable, "").strip() != "":
                return env[variable], variable
            return None, None

        def blame(keyword_name: str, variable: str | None) -> str:
            return variable if variable else keyword_name

        if version_callback is not None and not callable(version_callback):
            raise ValueError(f"version_callback must be callable, got {version_callback!r}")

        value, var = pick(version_path, "DOCKERFLOW_VERSION_PATH")
        resolved_version_path = os.fspath(value) if value is not None else os.getcwd()

        value, var = pick(silenced_checks, "DOCKERFLOW_SILENCED_CHECKS")
        silenced = (
            frozenset() if value is None else _parse_id_list(value, blame("silenced_checks", var))
        )

        value, var = pick(check_timeout, "DOCKERFLOW_CHECK_TIMEOUT")
        timeout = (
            5.0
            if value is None
            else _parse_seconds(value, blame("check_timeout", var), allow_zero=False)
        )

        value, var = pick(heartbeat_cache_ttl, "DOCKERFLOW_HEARTBEAT_CACHE_TTL")
        ttl = (
            0.0
            if value is None
            else _parse_seconds(value, blame("heartbeat_cache_ttl", var), allow_zero=True)
        )

        value, var = pick(heartbeat_failed_status_code, "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE")
        failed_code = (
            500
            if value is None
            else _parse_status_code(value, blame("heartbeat_failed_status_code", var))
        )

        value, var = pick(request_id_header, "DOCKERFLOW_REQUEST_ID_HEADER_NAME")
        header = (
            "X-Request-ID"
            if value is None
            else _parse_header_name(value, blame("request_id_header", var))
        )

        def flag(keyword: Any, keyword_name: str, variable: str, default: bool) -> bool:
            value, var = pick(keyword, variable)
            return default if value is None else parse_bool(value, blame(keyword_name, var))

        value, var = pick(alembic_config, "ALEMBIC_CONFIG")
        alembic_path = os.fspath(value) if value is not None else None

        return cls(
            version_path=resolved_version_path,
            version_callback=version_callback,
            silenced_checks=silenced,
            check_timeout=timeout,
            heartbeat_cache_ttl=ttl,
            heartbeat_failed_status_code=failed_code,
            request_id_header=header,
            log_querystring=flag(
                log_querystring, "log_querystring", "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING", False
            ),
            heartbeat_details=flag(
                heartbeat_details, "heartbeat_details", "DOCKERFLOW_HEARTBEAT_DETAILS", True
            ),
            error_endpoint=flag(
                error_endpoint, "error_endpoint", "DOCKERFLOW_ERROR_ENDPOINT", False
            ),
            log_probes=flag(log_probes, "log_probes", "DOCKERFLOW_SUMMARY_LOG_PROBES", True),
            db=pick(db, "DATABASE_URL")[0],
            redis=pick(redis, "REDIS_URL")[0],
            alembic_config=alembic_path,
        )
