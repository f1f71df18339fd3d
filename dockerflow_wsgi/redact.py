"""Keeping passwords from connection URLs out of responses, log lines and messages."""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import unquote

__all__ = ["MASK", "mask_url", "scrub"]

MASK = "***"

# scheme://user:password@host. The password runs to the '@' that ends the credentials; it may
# hold spaces, '/', ':' or '#', which SQLAlchemy accepts, but not a line break.
_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\r\n]*)@"
)


def mask_url(url: str) -> str:
    """``url`` (or any text holding URLs) with every password replaced by ``***``."""
    return _URL_CREDENTIALS.sub(lambda match: f"{match['prefix']}{MASK}@", url)


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
