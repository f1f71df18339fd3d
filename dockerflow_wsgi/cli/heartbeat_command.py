"""``dockerflow-wsgi heartbeat``: run the health checks once, for Docker and Kubernetes probes."""

from __future__ import annotations

import argparse
import json

from ..checks import ERROR, CheckResults, level_to_text
from ..checks.results import heartbeat_payload
from .application import application_context, application_options, core_of
from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError

__all__ = ["add_command", "format_table", "run_heartbeat"]

_DESCRIPTION = """\
Run every configured check once, as /__heartbeat__ would: the checks of entry
points, the built-ins that DATABASE_URL, REDIS_URL and ALEMBIC_CONFIG ask for,
and those that --app registers. With --group, only the checks of that heartbeat
group, as /__heartbeat__/<group> would. For Docker HEALTHCHECK and Kubernetes exec
probes.
"""

_EPILOG = """\
exit status:
  0  healthy (warnings included)
  1  unhealthy: a check is at error or critical
  2  usage or configuration error (bad --app, invalid DOCKERFLOW_* value, unknown
     --group)

example:
  HEALTHCHECK CMD dockerflow-wsgi heartbeat --app myproject.wsgi:application
"""


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``heartbeat`` and its options to the ``commands`` of the top-level parser."""
    heartbeat = commands.add_parser(
        "heartbeat",
        parents=[application_options()],
        help="run the health checks once; exit 0 when healthy, 1 when not",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    heartbeat.add_argument(
        "--json",
        action="store_true",
        help="print the heartbeat JSON body {status, checks, details} instead of a table",
    )
    heartbeat.add_argument(
        "--group",
        metavar="NAME",
        help="run only the checks of this heartbeat group (DOCKERFLOW_HEARTBEAT_GROUPS)",
    )
    heartbeat.set_defaults(handler=run_heartbeat)


def format_table(results: CheckResults) -> str:
    """One row per check (name, status, then each message id and text), then the verdict."""
    rows: list[tuple[str, str, str]] = [("CHECK", "STATUS", "MESSAGES")]
    for name, status in results.statuses.items():
        messages = results.details.get(name, {}).get("messages", {})
        texts = [f"{ident}: {' '.join(str(text).split())}" for ident, text in messages.items()]
        rows.append((name, status, texts[0] if texts else ""))
        rows.extend(("", "", text) for text in texts[1:])
    lines = []
    if len(rows) == 1:
        lines.append("No checks are configured.")
    else:
        name_width = max(len(row[0]) for row in rows)
        status_width = max(len(row[1]) for row in rows)
        lines.extend(
            f"{name:<{name_width}}  {status:<{status_width}}  {messages}".rstrip()
            for name, status, messages in rows
        )
    verdict = "healthy" if results.level < ERROR else "unhealthy"
    lines.append(f"\nstatus: {level_to_text(results.level)} ({verdict})")
    return "\n".join(lines)


def run_heartbeat(args: argparse.Namespace) -> int:
    """Print the checks' result as a table or, with ``--json``, as the heartbeat body.

    The body always has ``checks`` and ``details``, whatever ``heartbeat_details`` says: that
    option hides them from the public endpoint, and this command runs inside the container,
    for its operators.
    """
    with application_context(args.verbose):
        core = core_of(args.app)
        heartbeat = core.heartbeat if args.group is None else core.groups.get(args.group)
        if heartbeat is None:
            configured = ", ".join(sorted(core.groups)) or "none"
            raise CommandError(
                f"no heartbeat group is named {args.group!r} (configured: {configured})",
                EXIT_USAGE,
            )
        results = heartbeat.results()
    text = json.dumps(heartbeat_payload(results)) if args.json else format_table(results)
    print(text)
    return EXIT_OK if results.level < ERROR else EXIT_FAILURE
