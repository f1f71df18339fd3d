"""The request id made readable to browser code: one rule for every adapter.

A browser lets a page's script read a cross-origin response's header only when
``Access-Control-Expose-Headers`` names it. A response the application made for CORS (it
carries ``Access-Control-Allow-Origin``) therefore gets the request id header's name added to
that list, so that a front end can report the id of a failed call. Responses without CORS are
left as they are: the browser shows them to no other origin anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

__all__ = [
    "ALLOW_ORIGIN",
    "EXPOSE_HEADERS",
    "EXPOSE_HEADERS_NAME",
    "exposed_headers",
    "with_request_id_exposed",
]

#: The header names, lowercase: how adapters compare them (ASGI sends its names so).
ALLOW_ORIGIN = "access-control-allow-origin"
EXPOSE_HEADERS = "access-control-expose-headers"
#: The name as a response written as text carries it.
EXPOSE_HEADERS_NAME = "Access-Control-Expose-Headers"


def exposed_headers(headers: Iterable[tuple[str, str]], request_id_header: str) -> Optional[str]:
    """The ``Access-Control-Expose-Headers`` value a response with ``headers`` must carry,
    in place of any it has, for browser code to read ``request_id_header``; ``None`` when it
    needs no change.

    Only a response with ``Access-Control-Allow-Origin`` changes, and only when its list
    (all its ``Access-Control-Expose-Headers`` fields, as HTTP combines them) names neither
    the header, in any case, nor ``*``. The list keeps what the application put in it.

    :param headers: the response's header names and values, as text, any case.
    :param request_id_header: the request id header's name, as the response carries it.
    """
    cross_origin = False
    listed: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == ALLOW_ORIGIN:
            cross_origin = True
        elif lowered == EXPOSE_HEADERS:
            listed.append(value)
    if not cross_origin:
        return None
    wanted = request_id_header.lower()
    for value in listed:
        for item in value.split(","):
            item = item.strip(" \t").lower()
            if item == wanted or item == "*":
                return None
    return ", ".join([*(value for value in listed if value.strip(" \t")), request_id_header])


def with_request_id_exposed(
    headers: list[tuple[str, str]], request_id_header: str
) -> Optional[list[tuple[str, str]]]:
    """A new list of a response's ``headers`` in which browser code may read
    ``request_id_header``: the application's ``Access-Control-Expose-Headers`` fields replaced
    by one, with :func:`exposed_headers`' value; ``None`` when the response needs no change."""
    exposed = exposed_headers(headers, request_id_header)
    if exposed is None:
        return None
    return [
        *((name, value) for name, value in headers if name.lower() != EXPOSE_HEADERS),
        (EXPOSE_HEADERS_NAME, exposed),
    ]
