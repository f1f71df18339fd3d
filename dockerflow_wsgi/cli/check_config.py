"""``dockerflow-wsgi check-config``: validate the environment and show the effective settings."""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Mapping
from typing import Any, Optional

from ..config import ENVIRONMENT_VARIABLES, Config, environment_value
from ..middleware import DockerflowMiddleware, _attribute
from ..redact import mask_secrets
from .application import application_context, application_options, middleware_of
from .errors import EXIT_OK, warn

__all__ = [
    "add_command",
    "describe_settings",
    "format_value",
    "run_check_config",
    "unknown_variables",
]

_DESCRIPTION = """\
Build the middleware from the environment (DOCKERFLOW_*, DATABASE_URL,
REDIS_URL, ALEMBIC_CONFIG), which creates database engines and Redis clients
without connecting, and print every setting as "name = value  (source)",
where the source is the variable, the default, or (with --app) a keyword
argument of the application's own middleware. Passwords are masked.
"""

_VARIABLES = frozenset(variable for variable in ENVIRONMENT_VARIABLES.values() if variable)


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


def _source(
    name: str, variable: Optional[str], config: Config, env: Mapping[str, str], default: Config
) -> str:
    """Where ``config``'s value of ``name`` came from: its variable, the default or a keyword.

    The configuration keeps values, not their origin, so the origin is recovered by parsing
    the variable alone and comparing; a keyword equal to that value is credited to the
    variable, which changes nothing the operator needs to know.
    """
    value = getattr(config, name)
    raw = environment_value(env, variable)
    if variable is None or raw is None:
        return "default" if value == getattr(default, name) else "keyword"
    try:
        from_env = getattr(Config.from_options(environ={variable: raw}), name)
    except ValueError:
        return "keyword"
    return f"from {variable}" if value == from_env else "keyword"


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
    return _describe_object(value)


def _describe_object(value: Any) -> str:
    """``<Type detail>`` for an engine, client or callable; never the object's own repr.

    A repr may print a connection's password, so only fields known to be safe are shown.
    """
    kind = type(value).__name__
    url = _attribute(value, "url")
    if url is not None:  # a SQLAlchemy Engine
        render = _attribute(url, "render_as_string")
        text = render(hide_password=True) if callable(render) else str(url)
        return f"<{kind} {mask_secrets(text)}>"
    connection = _attribute(_attribute(value, "connection_pool"), "connection_kwargs")
    if isinstance(connection, Mapping):  # a redis client
        where = connection.get("path") or f"{connection.get('host')}:{connection.get('port')}"
        return f"<{kind} {where}/{connection.get('db', 0)}>"
    name = _attribute(value, "__qualname__")
    if isinstance(name, str):
        return f"<{kind} {_attribute(value, '__module__')}.{name}>"
    return f"<{kind}>"


def describe_settings(middleware: DockerflowMiddleware, env: Mapping[str, str]) -> list[str]:
    """``name = value  (source)`` for every option of ``middleware``, read from ``env``."""
    config = middleware.config
    default = Config.from_options(environ={})
    lines = []
    for name, variable in ENVIRONMENT_VARIABLES.items():
        if name == "checks":
            value = ", ".join(check for check, _ in middleware.current_checks()) or "none"
            source = "keyword" if middleware.checks is not None else "default"
        else:
            value = format_value(getattr(config, name))
            source = _source(name, variable, config, env, default)
        lines.append(f"{name} = {value}  ({source})")
    return lines


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
    """Print every setting with its source, after a warning for each unknown variable."""
    with application_context(args.verbose):
        lines = describe_settings(middleware_of(args.app), os.environ)
    for warning in unknown_variables(os.environ):
        warn(warning)
    print("\n".join(lines))
    return EXIT_OK
