"""The header that passes the current request's id on, for any HTTP client."""

from __future__ import annotations

from collections.abc import MutableMapping

from ..request_id import current_request_id, current_request_id_header

__all__ = ["add_request_id", "request_id_headers"]


def request_id_headers() -> dict[str, str]:
    """``{header: id}`` while a request is handled, ``{}`` outside one.

    The headers to send with a call to another service from a client this package has no hook
    for (urllib3, aiohttp, ...). The header is the one the middleware handling the request reads
    (its ``request_id_header``, ``X-Request-ID`` by default), so a called service that runs
    dockerflow-wsgi with the same setting takes the id as its own.
    """
    request_id = current_request_id()
    if request_id is None:
        return {}
    return {current_request_id_header(): request_id}


def add_request_id(headers: MutableMapping[str, str]) -> None:
    """Add the current request's id to ``headers``, an HTTP client's case-insensitive header
    mapping, unless they already carry that header: an id the caller set on purpose (another
    request's, a job's) is the one to send."""
    request_id = current_request_id()
    if request_id is not None:
        headers.setdefault(current_request_id_header(), request_id)
