"""The ``--app`` of a command: importing the application and finding its middleware.

The application's code runs inside the command, so this module also keeps what it prints
and logs away from the command's own output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, Optional

from ..core import DockerflowCore
from ..discovery import find_middleware
from ..redact import mask_secrets
from .errors import EXIT_USAGE, CommandError, warn

__all__ = ["application_context", "application_options", "core_of", "load_app"]


def application_options() -> argparse.ArgumentParser:
    """The ``--app`` and ``--verbose`` options, as a parent of the commands that run checks."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="import the WSGI or ASGI application as gunicorn or uvicorn does, from the current "
        "directory (ATTR defaults to 'application'; 'create_app()' calls a factory). The "
        "options and checks of its Dockerflow middleware or integration are used if it has "
        "one; otherwise the checks its modules register run with options from the environment",
    )
    options.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="write dockerflow_wsgi log records (e.g. a failing check's traceback) to stderr",
    )
    return options


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` the way gunicorn does, from the current directory.

    The attribute defaults to ``application``, may be dotted, and may end in ``()`` to call an
    application factory without arguments (``myapp:create_app()``).

    :raises CommandError: (exit status 2) for anything that keeps the object from loading.
    """
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "application"
    factory = attribute.endswith("()")
    path = attribute[:-2] if factory else attribute
    if not all(part.isidentifier() for part in [*module_name.split("."), *path.split(".")]):
        raise CommandError(
            f"--app {spec!r} is not of the form module:attribute (e.g. myproject.wsgi:application)",
            EXIT_USAGE,
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        found: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise CommandError(f"cannot import {module_name!r}: {_describe(exc)}", EXIT_USAGE) from None
    for name in path.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise CommandError(
                f"module {module_name!r} has no attribute {path!r}", EXIT_USAGE
            ) from None
    if factory:
        try:
            found = found()
        except (Exception, SystemExit) as exc:
            raise CommandError(
                f"{module_name}:{attribute} raised {_describe(exc)}", EXIT_USAGE
            ) from None
    if not callable(found):
        raise CommandError(
            f"{spec} is a {type(found).__name__}, not a WSGI or ASGI application", EXIT_USAGE
        )
    return found


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def core_of(app_spec: Optional[str]) -> DockerflowCore:
    """The Dockerflow core of the application ``app_spec`` names, or one built from the
    environment.

    The application may be WSGI or ASGI, its Dockerflow anywhere :func:`find_middleware`
    looks. Importing it first also registers the checks its modules declare, which a core
    built here then runs; when it has no Dockerflow, a warning says so.

    :raises CommandError: (exit status 2) when the application does not load, or its
        middleware or the environment holds an invalid setting.
    """
    try:
        if app_spec is not None:
            found = find_middleware(load_app(app_spec))
            if found is not None:
                return found.core
            warn(
                f"{app_spec} has no Dockerflow middleware or integration: its registered "
                "checks run with options from the environment"
            )
        return DockerflowCore.from_options({})
    except ValueError as exc:
        raise CommandError(f"invalid configuration: {exc}", EXIT_USAGE) from None


@contextlib.contextmanager
def application_context(verbose: bool) -> Iterator[None]:
    """Keep stdout for our output and decide where log records go.

    The application's prints and stdout log handlers (set up while it is imported) land on
    stderr, so ``--json`` stays parseable. Log records are dropped unless ``verbose``: a probe's
    output should be its verdict, and the messages already say what failed.
    """
    with contextlib.redirect_stdout(sys.stderr), _log_records(verbose):
        yield


class _MaskingFormatter(logging.Formatter):
    """A plain text formatter that masks secrets, in tracebacks too.

    The library's own records carry a failure's traceback (masked already) in a
    ``traceback`` field rather than as ``exc_info``: it is written after the line.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        traceback = getattr(record, "traceback", None)
        if isinstance(traceback, str) and traceback:
            text = f"{text}\n{traceback.rstrip()}"
        # A failing check's traceback may quote the URL of the server it could not reach.
        return mask_secrets(text)


@contextlib.contextmanager
def _log_records(verbose: bool) -> Iterator[None]:
    """Drop every log record, or with ``verbose`` write ours to stderr at any level."""
    if not verbose:
        previous_disable = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous_disable)
        return
    logger = logging.getLogger("dockerflow_wsgi")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
