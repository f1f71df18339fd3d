"""``dockerflow-wsgi drain``: take the pod out of its load balancer before it stops."""

from __future__ import annotations

import argparse
import datetime
import time

from ..drain import cancel_mark, drain_settings_from_environment, make_mark, seconds_from
from ..state_dir import default_state_dir
from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError

__all__ = ["add_command", "run_drain"]

_DESCRIPTION = """\
Put a drain mark into the state folder that every process of the pod serving
through dockerflow-wsgi shares, then wait. Within a second, each of them answers
/__lbheartbeat__ (and the heartbeat groups of DOCKERFLOW_DRAIN_GROUPS, readiness
by default) with 503 {"status": "draining"}, while it serves every other request
as before; the load balancer stops sending new requests before the server stops
listening. The mark expires DOCKERFLOW_DRAIN_HOLD (600) seconds after the wait.
"""

_EPILOG = """\
exit status:
  0  the mark was made and the wait is over (--cancel: the mark is gone)
  1  the mark could not be written or removed
  2  usage error (a negative or non-numeric --seconds)

example (a Kubernetes container):
  lifecycle:
    preStop:
      exec:
        command: ["dockerflow-wsgi", "drain", "--seconds", "10"]
"""


def _seconds(text: str) -> float:
    try:
        return seconds_from(text, "--seconds")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``drain`` and its options to the ``commands`` of the top-level parser."""
    drain = commands.add_parser(
        "drain",
        help="fail the load balancer's probe in every process of the pod, then wait",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drain.add_argument(
        "--seconds",
        type=_seconds,
        metavar="S",
        help="how long to wait after making the mark (default: DOCKERFLOW_DRAIN_SECONDS, or 10)",
    )
    drain.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the pod's state folder (default: DOCKERFLOW_STATE_DIR, or dockerflow-<uid> in "
        "the temporary directory)",
    )
    drain.add_argument(
        "--cancel",
        action="store_true",
        help="remove the mark instead: the processes answer their probes as before",
    )
    drain.set_defaults(handler=run_drain)


def run_drain(args: argparse.Namespace) -> int:
    """Make the mark and wait (or remove it); the exit status."""
    try:
        state_dir, seconds, hold = drain_settings_from_environment()
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    folder = args.state_dir or state_dir or default_state_dir()
    if args.cancel:
        try:
            removed = cancel_mark(folder)
        except OSError as exc:
            message = f"cannot remove the drain mark in {folder}: {exc}"
            raise CommandError(message, EXIT_FAILURE) from None
        print(f"drain cancelled in {folder}" if removed else f"no drain mark in {folder}")
        return EXIT_OK
    if args.seconds is not None:
        seconds = args.seconds
    try:
        path = make_mark(folder, seconds, hold)
    except OSError as exc:
        message = f"cannot write the drain mark in {folder}: {exc}"
        raise CommandError(message, EXIT_FAILURE) from None
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=seconds + hold
    )
    print(
        f"draining: {path} (expires {until:%Y-%m-%dT%H:%M:%SZ}); waiting {seconds:g} s",
        flush=True,
    )
    time.sleep(seconds)
    return EXIT_OK
