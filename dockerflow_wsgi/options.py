"""The options of Dockerflow, declared once: :data:`OPTIONS`.

Each :class:`Option` says what an option is called, which environment variable it falls back
to, how a value is read and checked, its default and what it does. Everything else comes from
this table: :class:`~dockerflow_wsgi.config.Config` is built by one loop over it, the
middleware's keyword documentation and the options table of the configuration docs are
rendered from it, and ``dockerflow-wsgi check-config`` lists it.

Adding an option:

1. one :class:`Option` in :data:`OPTIONS`, where it belongs in the docs' order;
2. its typed attribute on :class:`~dockerflow_wsgi.config.Config`;
3. its keyword in :class:`~dockerflow_wsgi.DockerflowMiddleware`'s signature, typed as the
   entry's ``accepts`` says (the other adapters take the same ``**options``);
4. the code that uses it.

The tests hold the signature, ``Config`` and the docs to this table, so a step left out fails
them rather than shipping an option that one path ignores.
"""

from __future__ import annotations

import inspect
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

from .request_id import DEFAULT_REQUEST_ID_HEADER
from .state_dir import default_state_dir

__all__ = [
    "BUILTIN_CHECK_WORDS",
    "OPTIONS",
    "Option",
    "VersionCallback",
    "is_header_name",
    "keyword_options",
    "parse_bool",
    "with_option_docs",
]

VersionCallback = Callable[[str], Optional[Mapping[str, Any]]]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: RFC 9110 ``tchar``: the characters allowed in a header field name.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")


# -- reading a value -----------------------------------------------------------------------------
# Each parser takes the value as given (a keyword's object, a configuration's typed value or an
# environment variable's text) and the name to blame, and returns the value or raises ValueError.


def _as_given(value: Any, name: str) -> Any:
    """Objects used as they are: an engine, client or URL is checked when its built-in check is
    made, the ``(name, check)`` pairs when the checks are collected."""
    return value


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


def _parse_callback(value: Any, name: str) -> VersionCallback:
    if not callable(value):
        raise ValueError(f"{name} must be callable, got {value!r}")
    return value  # type: ignore[no-any-return]


def _parse_alembic_config(value: Any, name: str) -> Any:
    """An alembic ``Config`` object is used as it is; anything else must be a path."""
    return value if hasattr(value, "get_main_option") else _parse_path(value, name)


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


def _parse_positive_seconds(value: Any, name: str) -> float:
    return _parse_seconds(value, name, allow_zero=False)


def _parse_seconds_or_zero(value: Any, name: str) -> float:
    return _parse_seconds(value, name, allow_zero=True)


def _parse_sample_rate(value: Any, name: str) -> float:
    problem = f"{name} must be a number from 0 to 1 (the share of requests logged), got {value!r}"
    if isinstance(value, bool):
        raise ValueError(problem)
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(problem) from None
    # A NaN fails both comparisons, and so the test.
    if not 0 <= rate <= 1:
        raise ValueError(problem)
    return rate


def _parse_milliseconds(value: Any, name: str) -> int:
    problem = f"{name} must be a whole number of milliseconds, zero or more, got {value!r}"
    if isinstance(value, bool):
        raise ValueError(problem)
    try:
        milliseconds = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ValueError(problem) from None
    if milliseconds < 0:
        raise ValueError(problem)
    return milliseconds


def _parse_run_count(value: Any, name: str) -> int:
    problem = f"{name} must be a whole number of runs, 1 or more, got {value!r}"
    if isinstance(value, bool):
        raise ValueError(problem)
    try:
        runs = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ValueError(problem) from None
    if runs < 1:
        raise ValueError(problem)
    return runs


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


def _parse_group_names(value: Any, name: str) -> frozenset[str]:
    """Heartbeat group names, as ``a,b`` or an iterable of names; empty: none."""
    form = "readiness,startup"
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"{name} must look like {form} ({_NAME_RULE}), got {value!r}")
    return frozenset(_check_name(item, name, form) for item in items if str(item).strip())


def _parse_folder(value: Any, name: str) -> str:
    folder = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not folder:
        raise ValueError(f"{name} must be the path of a folder, got {value!r}")
    return str(folder)


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


# -- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option: its names, how its value is read, its default and what it does."""

    #: The keyword, and the attribute of :class:`~dockerflow_wsgi.config.Config`.
    name: str
    #: The environment variable (and framework configuration key) it falls back to; ``None``:
    #: only the keyword sets it.
    variable: Optional[str]
    #: What the keyword accepts, as :class:`~dockerflow_wsgi.DockerflowMiddleware`'s signature
    #: annotates it (the tests compare the two).
    accepts: str
    #: ``parse(value, name_to_blame)``: the value to use, or :class:`ValueError`.
    parse: Callable[[Any, str], Any]
    #: Makes the value used when nothing sets the option (called for each configuration, so
    #: that no two share a mutable default, and the working directory is read when it is used).
    default: Callable[[], Any]
    #: What it does, one sentence of reStructuredText, shown in the docs and the docstrings.
    doc: str
    #: How the docs show the default when the value alone would not say it; ``""``: the value.
    default_doc: str = ""
    #: Whether the adapters take it as a keyword. ``builtin_checks`` has none: a keyword
    #: ``db``, ``redis`` or ``alembic_config`` is the code asking for its built-in already;
    #: ``amqp_url`` has none in the design, only its variable ``AMQP_URL``.
    keyword: bool = True
    #: Whether :class:`~dockerflow_wsgi.config.Config` holds it: ``checks`` goes to the
    #: checks' runner instead.
    in_config: bool = True

    def shown_default(self) -> str:
        """The default as the docs write it."""
        if self.default_doc:
            return self.default_doc
        value = self.default()
        if value is None or value == frozenset() or value == {}:
            return "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float):
            return f"``{value:g}``"
        return f"``{value}``"


_T = TypeVar("_T")


def _value(value: _T) -> Callable[[], _T]:
    """The default of an option whose default is one immutable value."""
    return lambda: value


_SECONDS = "Optional[Union[float, str]]"
_FLAG = "Optional[Union[bool, str]]"
_NAMES = "Optional[Union[Iterable[str], str]]"

#: Every option, in the order of its documentation and of the middleware's keywords.
OPTIONS: tuple[Option, ...] = (
    Option(
        "version_path",
        "DOCKERFLOW_VERSION_PATH",
        "Optional[Union[str, os.PathLike[str]]]",
        _parse_path,
        os.getcwd,
        "directory holding ``version.json``, served at ``/__version__``",
        default_doc="current working directory (the Flask shim: the parent directory of "
        "``app.root_path``)",
    ),
    Option(
        "version_callback",
        None,
        "Optional[VersionCallback]",
        _parse_callback,
        _value(None),
        "``callable(version_path) -> dict or None`` used instead; ``None`` answers ``404``",
        default_doc="reads ``version_path/version.json``",
    ),
    Option(
        "checks",
        None,
        "Optional[Iterable[tuple[str, Check]]]",
        _as_given,
        _value(None),
        "iterable of ``(name, check)`` pairs; replaces the default set for this instance",
        default_doc="global registry + entry points",
        in_config=False,
    ),
    Option(
        "silenced_checks",
        "DOCKERFLOW_SILENCED_CHECKS",
        _NAMES,
        _parse_id_list,
        frozenset,
        "check message ids left out of the heartbeat (the variable: a comma-separated list)",
    ),
    Option(
        "check_timeout",
        "DOCKERFLOW_CHECK_TIMEOUT",
        _SECONDS,
        _parse_positive_seconds,
        _value(5.0),
        "seconds (a float, above zero); a check still running after this counts as an error "
        "(``dockerflow.health.E102``)",
    ),
    Option(
        "heartbeat_cache_ttl",
        "DOCKERFLOW_HEARTBEAT_CACHE_TTL",
        _SECONDS,
        _parse_seconds_or_zero,
        _value(0.0),
        "seconds (a float, zero or more) the last heartbeat result is reused",
        default_doc="``0`` (off)",
    ),
    Option(
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "Optional[Union[int, str]]",
        _parse_status_code,
        _value(500),
        "status of ``/__heartbeat__`` when the level is ERROR or worse (``500`` to ``599``, "
        'the spec\'s "5xx")',
    ),
    Option(
        "request_id_header",
        "DOCKERFLOW_REQUEST_ID_HEADER_NAME",
        "Optional[str]",
        _parse_header_name,
        _value(DEFAULT_REQUEST_ID_HEADER),
        "header read for, and echoed with, the request id",
    ),
    Option(
        "log_querystring",
        "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING",
        _FLAG,
        parse_bool,
        _value(False),
        "add ``querystring`` to ``request.summary``",
    ),
    Option(
        "heartbeat_details",
        "DOCKERFLOW_HEARTBEAT_DETAILS",
        _FLAG,
        parse_bool,
        _value(True),
        "include ``checks`` and ``details`` in the heartbeat response (off: only ``status``; "
        "the details still go to the log)",
    ),
    Option(
        "error_endpoint",
        "DOCKERFLOW_ERROR_ENDPOINT",
        _FLAG,
        parse_bool,
        _value(False),
        "answer ``/__error__`` by logging an ERROR and raising "
        ":class:`~dockerflow_wsgi.DeliberateError`, to test error reporting end to end",
    ),
    Option(
        "log_probes",
        "DOCKERFLOW_SUMMARY_LOG_PROBES",
        _FLAG,
        parse_bool,
        _value(True),
        "also write ``request.summary`` for the three Dockerflow paths (off: no log line for "
        "probes)",
    ),
    Option(
        "db",
        "DATABASE_URL",
        "Any",
        _as_given,
        _value(None),
        "SQLAlchemy ``Engine`` or URL: registers the database check",
    ),
    Option(
        "redis",
        "REDIS_URL",
        "Any",
        _as_given,
        _value(None),
        "redis client or URL: registers the Redis check",
    ),
    Option(
        "alembic_config",
        "ALEMBIC_CONFIG",
        "Any",
        _parse_alembic_config,
        _value(None),
        "path to ``alembic.ini`` (needs ``db``): registers the migrations check",
    ),
    Option(
        "amqp_url",
        "AMQP_URL",
        "Any",
        _as_given,
        _value(None),
        "broker URL (``amqp://user:password@host:5672/vhost``, any URL kombu knows): registers "
        "the AMQP check",
        keyword=False,
    ),
    Option(
        "builtin_checks",
        "DOCKERFLOW_BUILTIN_CHECKS",
        _NAMES,
        _parse_builtin_words,
        _value(frozenset(BUILTIN_CHECK_WORDS)),
        "which built-ins ``DATABASE_URL``, ``REDIS_URL``, ``ALEMBIC_CONFIG`` and ``AMQP_URL`` "
        "register (see :ref:`builtin-checks-variable`)",
        default_doc="all",
        keyword=False,
    ),
    Option(
        "heartbeat_groups",
        "DOCKERFLOW_HEARTBEAT_GROUPS",
        "Optional[Union[Mapping[str, Any], str]]",
        _parse_groups,
        dict,
        "named subsets of the checks, each served at ``/__heartbeat__/<group>``: a mapping of "
        "group name to check names; the variable: "
        "``startup=check_database_connected;cache=check_redis_connected`` (see :doc:`probes`)",
    ),
    Option(
        "check_timeouts",
        "DOCKERFLOW_CHECK_TIMEOUTS",
        "Optional[Union[Mapping[str, Any], str]]",
        _parse_timeouts,
        dict,
        "per-check timeouts overriding ``check_timeout``: a mapping of check name to seconds; "
        "the variable: ``check_redis_connected=0.5,check_database_connected=2``",
    ),
    Option(
        "non_critical_checks",
        "DOCKERFLOW_NON_CRITICAL_CHECKS",
        _NAMES,
        _parse_names,
        frozenset,
        "check names (comma-separated) whose ERROR and CRITICAL messages count as WARNING: "
        "shown in the details with their own ids, never failing the heartbeat",
    ),
    Option(
        "heartbeat_interval",
        "DOCKERFLOW_HEARTBEAT_INTERVAL",
        _SECONDS,
        _parse_seconds_or_zero,
        _value(0.0),
        "seconds (a float, zero or more); above 0, each process runs its checks in the "
        "background every interval, and heartbeats answer from the latest run without waiting "
        "(see :doc:`probes`)",
        default_doc="``0`` (on demand)",
    ),
    Option(
        "metrics",
        "DOCKERFLOW_METRICS",
        _FLAG,
        parse_bool,
        _value(False),
        "record Prometheus metrics and answer ``/__metrics__`` (needs the ``[prometheus]`` "
        "extra; see :doc:`observability`)",
    ),
    Option(
        "state_dir",
        "DOCKERFLOW_STATE_DIR",
        "Optional[Union[str, os.PathLike[str]]]",
        _parse_folder,
        default_state_dir,
        "the folder the processes of one pod (container) share: the drain mark (see "
        ":ref:`drain`) and the shared heartbeat; services sharing a host give each its own",
        default_doc="``dockerflow-<uid>`` in the system's temporary directory",
    ),
    Option(
        "drain_groups",
        "DOCKERFLOW_DRAIN_GROUPS",
        _NAMES,
        _parse_group_names,
        _value(frozenset({"readiness"})),
        "heartbeat groups (comma-separated) that answer ``503`` while the pod drains, besides "
        "``/__lbheartbeat__``",
        default_doc="``readiness``",
    ),
    Option(
        "heartbeat_shared",
        "DOCKERFLOW_HEARTBEAT_SHARED",
        _FLAG,
        parse_bool,
        _value(False),
        "with ``heartbeat_interval`` above 0, the processes sharing ``state_dir`` and running "
        "the same checks run them once per interval between them, and every one answers from "
        "that run (ignored without an interval: ``dockerflow-wsgi check-config`` warns; see "
        ":ref:`shared-heartbeat`)",
    ),
    Option(
        "transition_runs",
        "DOCKERFLOW_TRANSITION_RUNS",
        "Optional[Union[int, str]]",
        _parse_run_count,
        _value(1),
        "consecutive runs (a whole number, 1 or more) that must agree on a check's new level "
        "before it counts as a transition, logged and signalled once (see "
        ":ref:`health-transitions`)",
    ),
    Option(
        "health_log_repeat",
        "DOCKERFLOW_HEALTH_LOG_REPEAT",
        _SECONDS,
        _parse_seconds_or_zero,
        _value(300.0),
        "seconds (a float, zero or more): while a check's message persists, it is logged again "
        "at most this often, and so is the heartbeat's status while it stays the same; ``0`` logs "
        "them after every run (see :ref:`health-transitions`)",
    ),
    Option(
        "summary_sample_rate",
        "DOCKERFLOW_SUMMARY_SAMPLE_RATE",
        "Optional[Union[float, str]]",
        _parse_sample_rate,
        _value(1.0),
        "share (``0`` to ``1``) of ordinary requests that get a ``request.summary``; errors, slow "
        "and trace-sampled requests always get theirs (see :ref:`summary-sampling`)",
        default_doc="``1`` (every request)",
    ),
    Option(
        "summary_slow_ms",
        "DOCKERFLOW_SUMMARY_SLOW_MS",
        "Optional[Union[int, str]]",
        _parse_milliseconds,
        _value(1000),
        "milliseconds: a request at least this slow always gets its summary, whatever "
        "``summary_sample_rate`` says",
    ),
)


def keyword_options() -> tuple[Option, ...]:
    """The options the adapters take as keywords, in their signature's order."""
    return tuple(option for option in OPTIONS if option.keyword)


_C = TypeVar("_C", bound=type)


def with_option_docs(cls: _C) -> _C:
    """Add a ``:param:`` for each keyword option to ``cls``'s docstring (for autodoc, ``help()``
    and IDEs), so that the table is the one place an option is described."""
    fields = []
    for option in keyword_options():
        where = f"variable ``{option.variable}``, " if option.variable else ""
        default = f"default {option.shown_default()}"
        fields.append(f":param {option.name}: {option.doc}; {where}{default}.")
    cls.__doc__ = "\n".join([inspect.cleandoc(cls.__doc__ or ""), "", *fields])
    return cls
