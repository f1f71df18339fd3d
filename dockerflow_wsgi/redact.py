"""Keeping passwords from connection URLs out of responses, log lines and messages."""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "mask_url", "scrub", "url_password"]

MASK = "***"

# scheme://user:password@host — the password is whatever lies between the first ':' after
# '//' and the last '@' before the host.
_URL_PASSWORD = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda match: f"{match['prefix']}{MASK}@", url)


def url_password(url: str) -> Optional[str]:
    """The password in ``url``, percent-decoded, or ``None``."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def scrub(text: str, *secrets: Optional[str]) -> str:
    """``text`` with URL passwords and each of ``secrets`` (raw and percent-decoded) masked."""
    text = mask_url(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
            decoded = unquote(secret)
            if decoded != secret:
                text = text.replace(decoded, MASK)
    return text
