"""Keeping passwords out of everything the library shows: responses, log records, the command.

:func:`mask_secrets` is the one function every text goes through before it leaves the
library, whoever wrote the text: the library, a user's check, a driver's exception.
"""

from __future__ import annotations

import re
import traceback
from typing import Optional
from urllib.parse import unquote

__all__ = ["MASK", "SECRET_PARAMETERS", "describe_exception", "mask_secrets", "masked_traceback"]

MASK = "***"
TRUNCATION_MARKER = "..."

#: Query parameters (and ``key=value`` settings) whose values are secrets, any case.
SECRET_PARAMETERS = (
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "auth",
)

# scheme://user:password@host. The password runs to the last '@' of the line before the next
# "://": redis-py takes the last '@' of the authority (``redis://:hun@ter2@host``), and
# SQLAlchemy accepts spaces, '/', ':' and '#' in a password. Where that also covers a host or an
# e-mail address further on, more is hidden than needed, never less. The user name may hold an
# '@' (``u@corp:pw@host``) but not a ':', a '/' or a space. A scheme starts a word: the
# lookbehind keeps the search linear in long runs of letters.
_URL_CREDENTIALS = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/\s]*:)"
    r"(?P<password>(?:(?!://)[^\r\n])*)@"
)

# password=... in a query string, a libpq-style "key=value" string or a command line: the
# value runs to the next '&', '#' or space, or is quoted.
_SECRET_PARAMETER = re.compile(
    r"(?<![\w\-])(?P<name>" + "|".join(SECRET_PARAMETERS) + r")=(?P<value>"
    r"'[^'\r\n]*'?|\"[^\"\r\n]*\"?|[^&#\s]+)",
    re.IGNORECASE,
)


def mask_secrets(text: str, *secrets: Optional[str], limit: Optional[int] = None) -> str:
    """``text`` with every secret replaced by ``***``, then cut to ``limit`` characters.

    Masked are URL passwords (``scheme://user:password@``), the values of the query parameters
    in :data:`SECRET_PARAMETERS`, and each of ``secrets`` (a password known to the caller, raw
    and percent-decoded). Each kind is looked for in the original text and the union of what
    they find is masked, so that one kind cannot hide part of a secret from another
    (``redis://host/0?password=pa@ss``). Masking comes before cutting, so that a cut can never
    leave part of a secret that masking would have recognised whole.
    """
    spans = []
    if "@" in text:
        spans += [match.span("password") for match in _URL_CREDENTIALS.finditer(text)]
    if "=" in text:
        spans += [match.span("value") for match in _SECRET_PARAMETER.finditer(text)]
    for secret in secrets:
        if secret:
            spans += _occurrences(text, secret)
            decoded = unquote(secret)
            if decoded != secret:
                spans += _occurrences(text, decoded)
    if spans:
        text = _masked(text, spans)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - len(TRUNCATION_MARKER), 0)] + TRUNCATION_MARKER
    return text


def _occurrences(text: str, secret: str) -> list[tuple[int, int]]:
    spans = []
    start = text.find(secret)
    while start >= 0:
        spans.append((start, start + len(secret)))
        start = text.find(secret, start + 1)
    return spans


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each run of overlapping or touching ``spans`` replaced by one mask."""
    parts = []
    kept_from = 0
    masking_until = -1
    for start, end in sorted(spans):
        if start > masking_until:
            if masking_until >= 0:
                parts.append(MASK)
            parts.append(text[kept_from:start])
        masking_until = max(masking_until, end)
        kept_from = masking_until
    parts.append(MASK)
    parts.append(text[kept_from:])
    return "".join(parts)


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when even that raises."""
    try:
        return str(exc)
    except BaseException:
        return "<the exception's text cannot be shown>"


def describe_exception(exc: BaseException, limit: Optional[int] = None) -> str:
    """``Type: text`` of an exception, masked (and cut to ``limit``); never raises."""
    text = _text_of(exc)
    name = type(exc).__name__
    return mask_secrets(f"{name}: {text}" if text else name, limit=limit)


def masked_traceback(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` (chained exceptions included), masked; never raises."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:
        text = describe_exception(exc)
    return mask_secrets(text)
