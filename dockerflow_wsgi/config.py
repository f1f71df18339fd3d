"""Options of :class:`~dockerflow_wsgi.DockerflowMiddleware`, read once and validated once.

Every option comes from its keyword argument, else from the framework's own configuration
under its environment variable's name (``app.config``, Django's ``settings``), else from its
environment variable, else from its default. All parsing happens here, at construction, so
that a typo in a deployment's configuration stops the service from starting with a message
naming the variable or key, instead of surfacing as a 500 on the first probe. What each option
is, and how its value is read, is declared once in :data:`~dockerflow_wsgi.options.OPTIONS`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from .options import OPTIONS, Option, VersionCallback

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "VARIABLE_ONLY_OPTIONS",
    "Config",
    "FrameworkSettings",
    "VersionCallback",
    "environment_value",
]

#: Every option, in the order of its documentation, with the environment variable it falls
#: back to (``None``: keyword only).
ENVIRONMENT_VARIABLES: dict[str, Optional[str]] = {
    option.name: option.variable for option in OPTIONS
}

#: Options that only their variable or the framework's configuration sets: every adapter
#: refuses one as a keyword, as it refuses any unknown name.
VARIABLE_ONLY_OPTIONS = frozenset(option.name for option in OPTIONS if not option.keyword)

#: The options :class:`Config` holds, in its attributes' order.
_CONFIG_OPTIONS = tuple(option for option in OPTIONS if option.in_config)


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

    def default(self, option: str) -> Any:
        """The framework's default for ``option``, ``None`` when it has none of its own."""
        return self.default_version_path if option == "version_path" else None

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
    amqp_url: Any
    #: Which built-ins ``db``, ``redis``, ``alembic_config`` and ``amqp_url`` register, as words of
    #: :data:`~dockerflow_wsgi.options.BUILTIN_CHECK_WORDS`.
    builtin_checks: frozenset[str]
    heartbeat_groups: Mapping[str, tuple[str, ...]]
    check_timeouts: Mapping[str, float]
    non_critical_checks: frozenset[str]
    heartbeat_interval: float
    metrics: bool
    state_dir: str
    drain_groups: frozenset[str]
    heartbeat_shared: bool
    transition_runs: int
    health_log_repeat: float
    summary_sample_rate: float
    summary_slow_ms: int
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
        environ: Optional[Mapping[str, str]] = None,
        framework: Optional[FrameworkSettings] = None,
        **keywords: Any,
    ) -> Config:
        """Build the settings from keyword arguments (an option's name to its value, ``None``
        for not given), ``framework``'s configuration and ``environ`` (``os.environ`` by
        default).

        :raises TypeError: for a keyword that names no option of the configuration.
        :raises ValueError: for a value that cannot work, naming where it came from.
        """
        unknown = keywords.keys() - {option.name for option in _CONFIG_OPTIONS}
        if unknown:
            raise TypeError(f"Config has no option {sorted(unknown)[0]!r}")
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for option in _CONFIG_OPTIONS:
            value, source = _given(option, keywords.get(option.name), env, framework)
            sources[option.name] = source
            if value is not None:
                blame = option.name if source in _UNNAMED else source
                values[option.name] = option.parse(value, blame)
                continue
            default = framework.default(option.name) if framework is not None else None
            values[option.name] = option.default() if default is None else default
        values["builtin_checks"] = _selected_builtins(values["builtin_checks"], keywords, framework)
        return cls(**values, sources=sources)


#: Sources that are no name to blame in an error: the option's own name is.
_UNNAMED = frozenset({"keyword", "default"})


def _given(
    option: Option,
    keyword: Any,
    environ: Mapping[str, str],
    framework: Optional[FrameworkSettings],
) -> tuple[Any, str]:
    """The value ``option`` is given (``None``: none) and where it comes from: the keyword if
    given, else the framework's configuration, else the environment variable."""
    if keyword is not None:
        return keyword, "keyword"
    if option.variable is None:
        return None, "default"
    if framework is not None:
        value = framework.value(option.variable)
        if value is not None:
            return value, framework.label.format(option.variable)
    value = environment_value(environ, option.variable)
    if value is not None:
        return value, option.variable
    return None, "default"


#: The built-in each keyword asks for.
_BUILTIN_OF_KEYWORD = {"db": "database", "redis": "redis", "alembic_config": "migrations"}


def _selected_builtins(
    selected: frozenset[str], keywords: Mapping[str, Any], framework: Optional[FrameworkSettings]
) -> frozenset[str]:
    """The built-ins to register: those ``DOCKERFLOW_BUILTIN_CHECKS`` selects among the ones
    that the variables and settings give, less those the framework checks itself, and always
    the ones asked for by keyword, which is the code asking for its built-in."""
    if framework is not None:
        selected -= framework.covered_builtins
    asked = {word for name, word in _BUILTIN_OF_KEYWORD.items() if keywords.get(name) is not None}
    return selected | asked
