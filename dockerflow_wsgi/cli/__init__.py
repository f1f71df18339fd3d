"""The ``dockerflow-wsgi`` command: health probes, ``version.json``, configuration checks, drain.

.. code-block:: text

    dockerflow-wsgi heartbeat --app myproject.wsgi:application   # Docker HEALTHCHECK, exec probes
    dockerflow-wsgi version-json --output version.json           # in the image's build step
    dockerflow-wsgi check-config                                 # before a deploy, or at start
    dockerflow-wsgi drain --seconds 10                           # a Kubernetes preStop hook

Exit status: 0 success (healthy), 1 failure (unhealthy, no commit found), 2 a usage or
configuration error. Errors are one line on stderr, never a traceback, and no output of this
command contains a password from a URL.

Each command lives in its own module (:mod:`.heartbeat_command`, :mod:`.version_json`,
:mod:`.check_config`, :mod:`.drain_command`) with its options and help; this one only puts
them together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from .. import __version__
from . import check_config, drain_command, heartbeat_command, version_json
from .errors import EXIT_USAGE, PROG, CommandError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``dockerflow-wsgi`` argument parser and its commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Dockerflow tools for WSGI services that use dockerflow-wsgi.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (heartbeat_command, version_json, check_config, drain_command):
        command.add_command(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dockerflow-wsgi`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has printed what it had to say.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
