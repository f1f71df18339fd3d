"""httpx request event hooks that pass the current request's id on.

.. code-block:: python

    import httpx
    from dockerflow_wsgi.propagation import add_request_id_header, async_add_request_id_header

    client = httpx.Client(event_hooks={"request": [add_request_id_header]})
    async_client = httpx.AsyncClient(event_hooks={"request": [async_add_request_id_header]})

httpx runs the hooks in the code that sends the request, so they see the id of the request
being handled there; an ``AsyncClient`` awaits its hooks, hence the second one. Neither needs
httpx to be imported: this module does not import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .headers import add_request_id

if TYPE_CHECKING:
    import httpx

__all__ = ["add_request_id_header", "async_add_request_id_header"]


def add_request_id_header(request: httpx.Request) -> None:
    """An ``httpx.Client`` request hook: send the current request's id with ``request``.

    Under the header name of the middleware handling the request (``X-Request-ID`` by default);
    nothing outside a request, and nothing when ``request`` already has that header.
    """
    add_request_id(request.headers)


async def async_add_request_id_header(request: httpx.Request) -> None:
    """The ``httpx.AsyncClient`` twin of :func:`add_request_id_header`."""
    add_request_id(request.headers)
