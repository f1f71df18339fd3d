"""Sentry: events captured during a request carry its id as the tag ``request_id``.

.. code-block:: python

    import sentry_sdk
    from dockerflow_wsgi.propagation import RequestIdIntegration

    sentry_sdk.init(dsn=..., integrations=[RequestIdIntegration()])

An event is tagged when it is captured while the request is handled: by
``sentry_sdk.capture_*``, by Sentry's logging integration, by a framework integration that
captures inside the request (Flask's, Django's), or by Sentry's own WSGI or ASGI middleware
placed inside Dockerflow's. Sentry's middleware may also wrap Dockerflow's (so that it sees
``/__error__``): an exception that leaves Dockerflow's middleware carries the id of the request
it ended (:data:`~dockerflow_wsgi.request_id.EXCEPTION_ATTRIBUTE`), which tags its event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sentry_sdk
from sentry_sdk.integrations import Integration
from sentry_sdk.scope import add_global_event_processor

from ..request_id import EXCEPTION_ATTRIBUTE, current_request_id

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

__all__ = ["TAG", "RequestIdIntegration"]

#: The tag holding the id of the request during which the event was captured.
TAG = "request_id"


class RequestIdIntegration(Integration):
    """A Sentry integration that tags each event captured during a request with its id.

    The tag is ``request_id`` (:data:`~dockerflow_wsgi.propagation.sentry.TAG`): search Sentry
    for ``request_id:<rid>`` to find the events of the request whose log lines have that
    ``rid``. A tag the application set itself
    is left as it is; events captured outside a request get none.
    """

    identifier = "dockerflow_request_id"

    @staticmethod
    def setup_once() -> None:
        # Once per process, whatever the number of sentry_sdk.init calls: the processor asks
        # the client of the moment whether the integration is on.
        add_global_event_processor(_tag_request_id)


def _tag_request_id(event: Event, hint: Hint) -> Event:
    """Processors run while the event is captured, in the code capturing it: the id current
    there is the one of the request it was captured in. An exception captured by an error
    reporter wrapped around the middleware has left the request: it carries its id."""
    request_id = current_request_id()
    if request_id is None:
        exc_info = hint.get("exc_info") if hint else None
        if exc_info:
            request_id = getattr(exc_info[1], EXCEPTION_ATTRIBUTE, None)
    if (
        request_id is not None
        and sentry_sdk.get_client().get_integration(RequestIdIntegration) is not None
    ):
        event.setdefault("tags", {}).setdefault(TAG, request_id)
    return event
