"""How a command reports trouble: its exit statuses, and one-line errors and warnings."""

from __future__ import annotations

import sys

from ..redact import mask_secrets

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "PROG", "CommandError", "warn"]

PROG = "dockerflow-wsgi"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure reported as one line on stderr, ending the command with ``status``."""

    def __init__(self, message: str, status: int) -> None:
        # Exception texts from an application or a driver may quote a connection URL.
        super().__init__(mask_secrets(message))
        self.status = status


def warn(message: str) -> None:
    """Tell the operator about something that does not stop the command, on stderr."""
    print(f"{PROG}: warning: {message}", file=sys.stderr)
