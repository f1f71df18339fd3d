"""Options of :class:`~dockerflow_wsgi.DockerflowMiddleware`, read once and validated once.

Every option comes from its keyword argument, else from the framework's own configuration
under its environment variable's name (``app.config``, Django's ``settings``), else from its
environment variable, else from its default. All parsing happens here, at construction, so
that a typo in a deployment's configuration stops the service from starting with a message
naming the variable or key, instead of surfacing as a 500 on the first probe.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .request_id import DEFAULT_REQUEST_ID_HEADER

__all__ = [
    "BUILTIN_CHECK_WORDS",
    "ENVIRONMENT_VARIABLES",
    "VARIABLE_ONLY_OPTIONS",
    "Config",
    "FrameworkSettings",
    "environment_value",
    "is_header_name",
    "parse_bool",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: RFC 9110 ``tchar``: the characters allowed in a header field name.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")

VersionCallback = Callable[[str], Optional[Mapping[str, Any]]]

#: Every option of :class:`~dockerflow_wsgi.DockerflowMiddleware`, in the order of its
#: documentation, with the environment variable it falls back to (``None``: keyword only).
ENVIRONMENT_VARIABLES: dict[str, str | None] = {
    "version_path": "DOCKERFLOW_VERSION_PATH",
    "version_callback": None,
    "checks": None,
    "silenced_checks": "DOCKERFLOW_SILENCED_CHECKS",
    "check_timeout": "DOCKERFLOW_CHECK_TIMEOUT",
    "heartbeat_cache_ttl": "DOCKERFLOW_HEARTBEAT_CACHE_TTL",
    "heartbeat_failed_status_code": "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
    "request_id_header": "DOCKERFLOW_REQUEST_ID_HEADER_NAME",
    "log_querystring": "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING",
    "heartbeat_details": "DOCKERFLOW_HEARTBEAT_DETAILS",
    "error_endpoint": "DOCKERFLOW_ERROR_ENDPOINT",
    "log_probes": "DOCKERFLOW_SUMMARY_LOG_PROBES",
    "db": "DATABASE_URL",
    "redis": "REDIS_URL",
    "alembic_config": "ALEMBIC_CONFIG",
    # Which of the three above (and AMQP_URL) register their built-ins when set by variable
    # or setting; DESIGN gives DockerflowMiddleware no keyword for it, as a keyword db, redis
    # or alembic_config always registers its built-in.
    "builtin_checks": "DOCKERFLOW_BUILTIN_CHECKS",
    "heartbeat_groups": "DOCKERFLOW_HEARTBEAT_GROUPS",
    "check_timeouts": "DOCKERFLOW_CHECK_TIMEOUTS",
    "non_critical_checks": "DOCKERFLOW_NON_CRITICAL_CHECKS",
    "heartbeat_interval": "DOCKERFLOW_HEARTBEAT_INTERVAL",
    "metrics": "DOCKERFLOW_METRICS",
}

#: Options that only their variable or the framework's configuration sets: DESIGN gives them no
#: keyword, so every adapter refuses one as it refuses any unknown name.
VARIABLE_ONLY_OPTIONS = frozenset({"builtin_checks"})


@dataclass(frozen=True)
class FrameworkSettings:
    """A framework's own configuration, read under the environment variables' names.

    :param values: anything with ``get(name)``: Flask's ``app.config``, a view of Django's
        ``settings``. A value may be typed (``5.0``, ``True``, a list) or a string; ``None``
        and a blank string count as unset.
    :param label: how an error names a key, a format with one ``{}`` for the name:
        ``"app.config[{!r}]"``, ``"settings.{}"``.
    :param default_version_path: the framework's default for ``version_path``, used when
        neither the keyword, the configuration nor the environment gives one.
    :param covered_builtins: built-ins (words of ``DOCKERFLOW_BUILTIN_CHECKS``) that the
        framework does itself, which its variables never register: Django checks its
        ``DATABASES``, and a ``DATABASE_URL`` there is usually dj-database-url's.
    """

    values: Any
    label: str
    default_version_path: Optional[str] = None
    covered_builtins: frozenset[str] = frozenset()

    def value(self, variable: str) -> Any:
        """The value of ``variable``, or ``None`` when it is unset or blank."""
        value = self.values.get(variable)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value


def environment_value(environ: Mapping[str, str], variable: str | None) -> str | None:
    """``variable``'s value in ``environ``, or ``None`` when it is unset or blank.

    A blank variable counts as unset, so that ``FOO=`` in an environment file means "the
    default" rather than an invalid value.
    """
    if variable is None or environ.get(variable, "").strip() == "":
        return None
    return environ[variable]


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


def _parse_path(value: Any, name: str) -> str:
    try:
        return os.fspath(value)
    except TypeError:
        raise ValueError(f"{name} must be a path (str or os.PathLike), got {value!r}") from None


def _parse_seconds(value: Any, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
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
    problem = f"{name} must be an HTTP status code from 500 to 599 (5xx), got {value!r}"
    try:
        code = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ValueError(problem) from None
    if isinstance(code, bool) or not 500 <= code <= 599:
        raise ValueError(problem)
    return code


def is_header_name(value: object) -> bool:
    """Whether ``value`` is an HTTP header name (an RFC 9110 token)."""
    return isinstance(value, str) and bool(value) and set(value) <= _TOKEN_CHARS


def _parse_header_name(value: Any, name: str) -> str:
    header = str(value).strip() if value is not None else ""
    if not is_header_name(header):
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


_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_NAME_RULE = "names are 1-64 characters of A-Z a-z 0-9 _ . -"


def _check_name(item: Any, name: str, form: str) -> str:
    text = str(item).strip()
    if not _NAME.fullmatch(text):
        raise ValueError(f"{name} must look like {form} ({_NAME_RULE}): bad name {item!r}")
    return text


def _parse_names(value: Any, name: str) -> frozenset[str]:
    """Check names, as ``a,b,c`` or an iterable of names."""
    form = "check_redis_connected,check_migrations_applied"
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"{name} must look like {form} ({_NAME_RULE}), got {value!r}")
    return frozenset(_check_name(item, name, form) for item in items)


def _pairs(value: Any, name: str, form: str, separator: str, rule: str) -> list[tuple[Any, Any]]:
    """The ``key=value`` pairs of a mapping option: ``value`` a mapping, or a text of pairs
    split by ``separator``; an error shows ``form`` and ``rule``."""
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, str):
        raise ValueError(f"{name} must look like {form} ({rule}), got {value!r}")
    pairs = []
    for part in value.split(separator):
        key, sep, item = part.partition("=")
        if not sep:
            raise ValueError(f"{name} must look like {form} ({rule}): {part.strip()!r} has no '='")
        pairs.append((key, item))
    return pairs


def _parse_groups(value: Any, name: str) -> dict[str, tuple[str, ...]]:
    """Heartbeat groups, as ``startup=check_database_connected;cache=check_redis_connected`` or
    a mapping of group name to check names (an iterable, or a comma-separated string)."""
    form = "startup=check_database_connected;cache=check_redis_connected"
    groups: dict[str, tuple[str, ...]] = {}
    for group, members in _pairs(value, name, form, ";", _NAME_RULE):
        group_name = _check_name(group, name, form)
        if group_name in groups:
            raise ValueError(
                f"{name} must look like {form} ({_NAME_RULE}): group {group_name!r} is given twice"
            )
        items = members.split(",") if isinstance(members, str) else members
        checks = tuple(_check_name(item, name, form) for item in items)
        if len(set(checks)) != len(checks):
            raise ValueError(
                f"{name} must look like {form} ({_NAME_RULE}): group {group_name!r} names a "
                "check twice"
            )
        groups[group_name] = checks
    return groups


def _parse_timeouts(value: Any, name: str) -> dict[str, float]:
    """Per-check timeouts, as ``check_redis_connected=0.5,check_database_connected=2`` or a
    mapping of check name to seconds."""
    form = "check_redis_connected=0.5,check_database_connected=2"
    timeouts: dict[str, float] = {}
    for check, seconds in _pairs(value, name, form, ",", f"{_NAME_RULE}, seconds above 0"):
        check_name = _check_name(check, name, form)
        if check_name in timeouts:
            raise ValueError(f"{name} must look like {form}: {check_name!r} is given twice")
        timeouts[check_name] = _parse_seconds(seconds, f"{name} ({check_name})", allow_zero=False)
    return timeouts


#: The words of ``DOCKERFLOW_BUILTIN_CHECKS``, besides ``none``: the built-ins of
#: ``DATABASE_URL``, ``REDIS_URL``, ``ALEMBIC_CONFIG`` and ``AMQP_URL``.
BUILTIN_CHECK_WORDS = ("database", "redis", "migrations", "amqp")


def _parse_builtin_words(value: Any, name: str) -> frozenset[str]:
    """The built-ins to register, as ``database,redis`` (any case), an iterable of words, or
    ``none``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        items = [value]
    words = [str(item).strip().lower() for item in items]
    accepted = f"{', '.join(BUILTIN_CHECK_WORDS)} or none"
    for word in words:
        if word not in BUILTIN_CHECK_WORDS and word != "none":
            raise ValueError(f"{name} must be a comma list of {accepted}: unknown {word!r}")
    if "none" in words and len(words) > 1:
        raise ValueError(f"{name} must be a comma list of {accepted}: 'none' alone or not at all")
    return frozenset(words) - {"none"}


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
    alembic_config: Any
    #: Which built-ins ``db``, ``redis`` and ``alembic_config`` register, as words of
    #: :data:`BUILTIN_CHECK_WORDS`.
    builtin_checks: frozenset[str]
    heartbeat_groups: Mapping[str, tuple[str, ...]]
    check_timeouts: Mapping[str, float]
    non_critical_checks: frozenset[str]
    heartbeat_interval: float
    metrics: bool
    #: Where each option's value came from: ``"keyword"``, ``"default"``, or the key or variable
    #: it was read from (``"app.config['DOCKERFLOW_CHECK_TIMEOUT']"``, ``"DATABASE_URL"``), as
    #: an error would name it; kept for ``dockerflow-wsgi check-config``, which shows it.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

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
        alembic_config: Any = None,
        builtin_checks: Iterable[str] | str | None = None,
        heartbeat_groups: Mapping[str, Any] | str | None = None,
        check_timeouts: Mapping[str, Any] | str | None = None,
        non_critical_checks: Iterable[str] | str | None = None,
        heartbeat_interval: float | str | None = None,
        metrics: bool | str | None = None,
        environ: Mapping[str, str] | None = None,
        framework: FrameworkSettings | None = None,
    ) -> Config:
        """Build the settings from keyword arguments, ``framework``'s configuration and
        ``environ`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        sources = {"version_callback": "default" if version_callback is None else "keyword"}

        def pick(option: str, keyword: Any) -> tuple[Any, str]:
            """The keyword if given, else the framework's value, else the variable's; also
            the name to blame, and where the value came from in ``sources``."""
            if keyword is not None:
                sources[option] = "keyword"
                return keyword, option
            variable = ENVIRONMENT_VARIABLES[option]
            if variable is not None:
                if framework is not None:
                    value = framework.value(variable)
                    if value is not None:
                        sources[option] = framework.label.format(variable)
                        return value, sources[option]
                value = environment_value(env, variable)
                if value is not None:
                    sources[option] = variable
                    return value, variable
            sources[option] = "default"
            return None, option

        if version_callback is not None and not callable(version_callback):
            raise ValueError(f"version_callback must be callable, got {version_callback!r}")

        value, name = pick("version_path", version_path)
        if value is None and framework is not None:
            value = framework.default_version_path
        resolved_version_path = os.getcwd() if value is None else _parse_path(value, name)

        value, name = pick("silenced_checks", silenced_checks)
        silenced = frozenset() if value is None else _parse_id_list(value, name)

        value, name = pick("check_timeout", check_timeout)
        timeout = 5.0 if value is None else _parse_seconds(value, name, allow_zero=False)

        value, name = pick("heartbeat_cache_ttl", heartbeat_cache_ttl)
        ttl = 0.0 if value is None else _parse_seconds(value, name, allow_zero=True)

        value, name = pick("heartbeat_failed_status_code", heartbeat_failed_status_code)
        failed_code = 500 if value is None else _parse_status_code(value, name)

        value, name = pick("request_id_header", request_id_header)
        header = DEFAULT_REQUEST_ID_HEADER if value is None else _parse_header_name(value, name)

        def flag(option: str, keyword: Any, default: bool) -> bool:
            value, name = pick(option, keyword)
            return default if value is None else parse_bool(value, name)

        def parsed(
            option: str, keyword: Any, parse: Callable[[Any, str], Any], default: Any
        ) -> Any:
            value, name = pick(option, keyword)
            return default if value is None else parse(value, name)

        value, name = pick("alembic_config", alembic_config)
        # An alembic Config object is passed on as it is; anything else must be a path.
        if value is not None and not hasattr(value, "get_main_option"):
            value = _parse_path(value, name)

        builtins = parsed(
            "builtin_checks", builtin_checks, _parse_builtin_words, frozenset(BUILTIN_CHECK_WORDS)
        )
        if framework is not None:
            builtins -= framework.covered_builtins
        # A keyword is the code asking for its built-in: the variables select among their own.
        asked = {"database": db, "redis": redis, "migrations": alembic_config}
        builtins |= {word for word, keyword in asked.items() if keyword is not None}

        return cls(
            version_path=resolved_version_path,
            version_callback=version_callback,
            silenced_checks=silenced,
            check_timeout=timeout,
            heartbeat_cache_ttl=ttl,
            heartbeat_failed_status_code=failed_code,
            request_id_header=header,
            log_querystring=flag("log_querystring", log_querystring, False),
            heartbeat_details=flag("heartbeat_details", heartbeat_details, True),
            error_endpoint=flag("error_endpoint", error_endpoint, False),
            log_probes=flag("log_probes", log_probes, True),
            db=pick("db", db)[0],
            redis=pick("redis", redis)[0],
            alembic_config=value,
            builtin_checks=builtins,
            heartbeat_groups=parsed("heartbeat_groups", heartbeat_groups, _parse_groups, {}),
            check_timeouts=parsed("check_timeouts", check_timeouts, _parse_timeouts, {}),
            non_critical_checks=parsed(
                "non_critical_checks", non_critical_checks, _parse_names, frozenset()
            ),
            heartbeat_interval=parsed(
                "heartbeat_interval",
                heartbeat_interval,
                lambda value, name: _parse_seconds(value, name, allow_zero=True),
                0.0,
            ),
            metrics=flag("metrics", metrics, False),
            sources=sources,
        )
