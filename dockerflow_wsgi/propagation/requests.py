"""requests: an adapter that sends the current request's id with every call of a session.

.. code-block:: python

    from dockerflow_wsgi.propagation import RequestIdAdapter, request_id_session

    session = request_id_session(max_retries=3)

    # or, on a session made elsewhere:
    session.mount("https://", RequestIdAdapter(max_retries=3))
    session.mount("http://", RequestIdAdapter(max_retries=3))
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .headers import add_request_id

__all__ = ["RequestIdAdapter", "request_id_session"]


class RequestIdAdapter(HTTPAdapter):
    """An :class:`~requests.adapters.HTTPAdapter` that sends the current request's id.

    :meth:`~requests.adapters.HTTPAdapter.add_headers` is requests' hook for the headers an
    adapter adds to every request it sends. It runs in the thread making the call, so a session
    shared by every thread of a threaded server sends each thread's own request id. The id goes
    under the header name of the middleware handling the request (``X-Request-ID`` by default);
    nothing is added outside a request, or to a request that already has that header.

    Takes :class:`~requests.adapters.HTTPAdapter`'s arguments (``pool_maxsize``,
    ``max_retries``, ...); a subclass of another adapter gains the behaviour by listing this
    class first among its bases.
    """

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        super().add_headers(request, **kwargs)
        add_request_id(request.headers)


def request_id_session(**adapter_options: Any) -> requests.Session:
    """A new :class:`requests.Session` that sends the current request's id with every call.

    :param adapter_options: the arguments of the :class:`RequestIdAdapter` mounted for
        ``http://`` and ``https://`` (those of :class:`~requests.adapters.HTTPAdapter`).
    """
    session = requests.Session()
    for prefix in ("https://", "http://"):
        session.mount(prefix, RequestIdAdapter(**adapter_options))
    return session
