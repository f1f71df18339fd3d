"""``dockerflow-wsgi check-config``: validate the environment and show the effective settings."""

from __future__ import annotations

import argparse
import difflib
import os
import textwrap
from collections.abc import Mapping
from typing import Any

from .. import health
from ..config import ENVIRONMENT_VARIABLES
from ..core import DockerflowCore
from ..discovery import readable_attribute
from ..redact import mask_secrets
from .application import application_context, application_options, core_of
from .errors import EXIT_OK, warn

__all__ = [
    "add_command",
    "describe_settings",
    "format_value",
    "ignored_options",
    "run_check_config",
    "unknown_check_names",
    "unknown_variables",
]

_VARIABLES = frozenset(variable for variable in ENVIRONMENT_VARIABLES.values() if variable)

_DESCRIPTION = textwrap.fill(
    "Build the middleware from the environment (DOCKERFLOW_*, "
    + ", ".join(
        variable
        for variable in ENVIRONMENT_VARIABLES.values()
        if variable and not variable.startswith("DOCKERFLOW_")
    )
    + "), which creates database engines and Redis clients without connecting, and print every "
    'setting as "name = value  (source)", where the source is the variable, the default, or '
    "(with --app) a keyword argument of the application's own middleware or the key of its "
    "framework's configuration (app.config, Django's settings). Passwords are masked. Warns "
    "about DOCKERFLOW_* variables that no option reads, about options that the others make "
    "meaningless, and about group, timeout and non-critical names that none of the checks "
    "found has.",
    width=76,
)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check-config`` and its options to the ``commands`` of the top-level parser."""
    check_config = commands.add_parser(
        "check-config",
        parents=[application_options()],
        help="validate the DOCKERFLOW_* environment and print the effective settings",
        description=_DESCRIPTION,
        epilog="exit status: 0 valid, 2 invalid (the problem is printed on stderr)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check_config.set_defaults(handler=run_check_config)


def _source(name: str, core: DockerflowCore) -> str:
    """Where ``core``'s value of ``name`` came from, as the configuration recorded it."""
    if name == "checks":
        return "default" if core.checks.explicit is None else "keyword"
    source = core.config.sources.get(name, "default")
    return source if source in ("default", "keyword") else f"from {source}"


def format_value(value: Any) -> str:
    """A setting as an operator reads it, with any password masked."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (set, frozenset)):
        return ", ".join(sorted(value)) or "none"
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return _describe_mapping(value)
    return _describe_object(value)


def _describe_mapping(value: Mapping[Any, Any]) -> str:
    """A mapping as its variable is written, so that it can be pasted back: ``startup=a,b;
    cache=c`` for groups of names, ``check_redis_connected=0.5`` for a value per name."""
    if not value:
        return "none"
    if any(isinstance(item, (list, tuple, set, frozenset)) for item in value.values()):
        return ";".join(f"{key}={','.join(map(str, items))}" for key, items in value.items())
    return ",".join(f"{key}={format_value(item)}" for key, item in value.items())


def _describe_object(value: Any) -> str:
    """``<Type detail>`` for an engine, client or callable; never the object's own repr.

    A repr may print a connection's password, so only fields known to be safe are shown.
    """
    kind = type(value).__name__
    url = readable_attribute(value, "url")
    if url is not None:  # a SQLAlchemy Engine
        render = readable_attribute(url, "render_as_string")
        text = render(hide_password=True) if callable(render) else str(url)
        return f"<{kind} {mask_secrets(text)}>"
    pool = readable_attribute(value, "connection_pool")
    connection = readable_attribute(pool, "connection_kwargs")
    if isinstance(connection, Mapping):  # a redis client
        where = connection.get("path") or f"{connection.get('host')}:{connection.get('port')}"
        return f"<{kind} {where}/{connection.get('db', 0)}>"
    name = readable_attribute(value, "__qualname__")
    if isinstance(name, str):
        return f"<{kind} {readable_attribute(value, '__module__')}.{name}>"
    return f"<{kind}>"


def describe_settings(core: DockerflowCore) -> list[str]:
    """``name = value  (source)`` for every option of ``core``."""
    lines = []
    for name in ENVIRONMENT_VARIABLES:
        if name == "checks":
            value = ", ".join(check for check, _ in core.checks.current()) or "none"
        else:
            value = format_value(getattr(core.config, name))
        lines.append(f"{name} = {value}  ({_source(name, core)})")
    return lines


def unknown_check_names(core: DockerflowCore) -> list[str]:
    """A warning for each name in ``heartbeat_groups``, ``check_timeouts`` and
    ``non_critical_checks`` that none of the checks found now has.

    The service starts with such a name (a check registered later may take it), so it is a
    warning; but usually it is a typo, or an example copied with names of checks that exist
    elsewhere: a group then fails its probe with E104, a timeout or a non-critical mark is
    never applied.
    """
    config = core.config
    found = [name for name, _ in core.checks.current()]
    known = set(found)

    def hint(name: str) -> str:
        close = difflib.get_close_matches(name, found, n=1)
        return f" (did you mean {close[0]}?)" if close else ""

    def warning(option: str, problem: str) -> str:
        listing = ", ".join(found) or "none"
        return f"{option} ({_source(option, core)}): {problem}; the checks found: {listing}"

    warnings = []
    for group, members in config.heartbeat_groups.items():
        for name in members:
            if name not in known:
                problem = (
                    f"group {group!r} names {name!r}, which no check has{hint(name)}; "
                    f"/__heartbeat__/{group} reports it as {health.ERROR_UNKNOWN_CHECK}"
                )
                warnings.append(warning("heartbeat_groups", problem))
    for name in config.check_timeouts:
        if name not in known:
            problem = f"{name!r} names no check{hint(name)}, so its timeout is never used"
            warnings.append(warning("check_timeouts", problem))
    for name in sorted(config.non_critical_checks):
        if name not in known:
            problem = f"{name!r} names no check{hint(name)}, so it makes nothing non-critical"
            warnings.append(warning("non_critical_checks", problem))
    return warnings


def ignored_options(core: DockerflowCore) -> list[str]:
    """A warning for each option set where the others make it mean nothing: the service starts
    (it serves as it would without it), but its operator expected something else."""
    config = core.config
    warnings = []
    if config.heartbeat_shared and config.heartbeat_interval <= 0:
        warnings.append(
            f"heartbeat_shared ({_source('heartbeat_shared', core)}) is on but "
            "heartbeat_interval is 0, so it is ignored: with no background runs there is no "
            "run to share, and each heartbeat runs the checks itself (set "
            "DOCKERFLOW_HEARTBEAT_INTERVAL)"
        )
    return warnings


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each ``DOCKERFLOW_*`` variable the middleware does not read (a typo?)."""
    warnings = []
    for variable in sorted(env):
        if variable.startswith("DOCKERFLOW_") and variable not in _VARIABLES:
            close = difflib.get_close_matches(variable, _VARIABLES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{variable} is not a dockerflow-wsgi setting and is ignored{hint}")
    return warnings


def run_check_config(args: argparse.Namespace) -> int:
    """Print every setting with its source, after a warning for each unknown variable, each
    option set in vain, and each group, timeout or non-critical name that no check has."""
    with application_context(args.verbose):
        core = core_of(args.app)
        lines = describe_settings(core)
        unknown_names = unknown_check_names(core)
        ignored = ignored_options(core)
    for warning in [*unknown_variables(os.environ), *ignored, *unknown_names]:
        warn(warning)
    print("\n".join(lines))
    return EXIT_OK
