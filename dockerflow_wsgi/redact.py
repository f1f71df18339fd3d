"""Keeping passwords out of everything the library shows: responses, log records, the command.

:func:`mask_secrets` is the one function every text goes through before it leaves the
library, whoever wrote the text: the library, a user's check, a driver's exception. A request's
own query string and path, whose separators are known, go through :func:`mask_query` and
:func:`mask_path` instead, with the same names and the same URL rule.
"""

from __future__ import annotations

import re
import traceback
from typing import Optional
from urllib.parse import unquote

__all__ = [
    "MASK",
    "SECRET_PARAMETERS",
    "describe_exception",
    "mask_path",
    "mask_query",
    "mask_secrets",
    "masked_traceback",
]

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


def _literal_or_encoded(character: str) -> str:
    """``character`` as sent, or percent-encoded in either case (the patterns ignore case)."""
    codes = sorted({f"%{ord(form):02X}" for form in (character.lower(), character.upper())})
    return "(?:" + "|".join([re.escape(character), *codes]) + ")"


_OPEN = _literal_or_encoded("[")
_CLOSE = _literal_or_encoded("]")
# A secret parameter's name, as a query parser reads it: after percent-decoding, any case, and
# as one part of a bracketed name (``user[password]``, ``password[]``, ``password[0][x]``). It
# starts a word, or a bracket part. A bracket part holds no bracket, encoded or not, so that a
# failed match never scans past the next one: ``password[`` repeated stays linear. The
# lookahead of the names' first characters lets most positions fail at once (twice as fast).
_SECRET_NAME = (
    f"(?=[{''.join(sorted({name[0] for name in SECRET_PARAMETERS}))}%])"
    r"(?:(?<![\w\-])|(?<=%5B))(?P<name>"
    + "|".join("".join(map(_literal_or_encoded, name)) for name in SECRET_PARAMETERS)
    + rf"){_CLOSE}?(?:{_OPEN}(?:[^\[\]%=&\s]|%(?!5[BD]))*{_CLOSE})*="
)


def _secret_parameter(value: str) -> re.Pattern[str]:
    return re.compile(f"{_SECRET_NAME}(?P<value>{value})", re.IGNORECASE)


# password=... in free text (a libpq conninfo, a command line, a URL quoted in a message): the
# value runs to the next space, as libpq reads it (``password=ab&cd`` is one password), or is
# quoted, with backslash escapes, and then runs on to the next space too.
_FREE_TEXT_PARAMETER = _secret_parameter(
    r"(?:'(?:[^'\\\r\n]|\\.)*'?|\"(?:[^\"\\\r\n]|\\.)*\"?)\S*|\S+"
)
# password=... in a query string as sent: the value runs to the next '&'; anything else in it
# (a '#', a space) was sent as part of it.
_QUERY_PARAMETER = _secret_parameter(r"[^&]+")
# password=... after a '?' of a decoded path: decoding may have turned the value's own %26,
# %23 or %20 into a separator, so the value runs to the end of the path.
_DECODED_QUERY_PARAMETER = _secret_parameter(r"(?s:.+)")


def mask_secrets(text: str, *secrets: Optional[str], limit: Optional[int] = None) -> str:
    """``text`` with every secret replaced by ``***``, then cut to ``limit`` characters.

    Masked are URL passwords (``scheme://user:password@``), the values of the parameters in
    :data:`SECRET_PARAMETERS` (each up to the next space: free text has no other separator
    that a password cannot hold), and each of ``secrets`` (a password known to the caller, raw
    and percent-decoded). Each kind is looked for in the original text and the union of what
    they find is masked, so that one kind cannot hide part of a secret from another
    (``redis://host/0?password=pa@ss``). Masking comes before cutting, so that a cut can never
    leave part of a secret that masking would have recognised whole.
    """
    spans = _url_passwords(text) + _parameter_values(text, _FREE_TEXT_PARAMETER)
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


def mask_query(querystring: str) -> str:
    """A query string as sent (percent-encoded) with its secret values masked, each up to the
    next ``&``, and its URL passwords."""
    spans = _url_passwords(querystring) + _parameter_values(querystring, _QUERY_PARAMETER)
    return _masked(querystring, spans) if spans else querystring


def mask_path(path: str) -> str:
    """A decoded request path with its URL passwords masked and, after a ``?`` (which the
    client sent as ``%3F``), the secret values of what was then a query string, each to the
    end of the path: its ``&`` may be one the server decoded from a value's ``%26``."""
    spans = _url_passwords(path)
    question_mark = path.find("?")
    if question_mark >= 0:
        spans += _parameter_values(path, _DECODED_QUERY_PARAMETER, question_mark + 1)
    return _masked(path, spans) if spans else path


def _url_passwords(text: str) -> list[tuple[int, int]]:
    if "@" not in text:
        return []
    return [match.span("password") for match in _URL_CREDENTIALS.finditer(text)]


def _parameter_values(
    text: str, parameter: re.Pattern[str], start: int = 0
) -> list[tuple[int, int]]:
    if "=" not in text:
        return []
    return [match.span("value") for match in parameter.finditer(text, start)]


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
