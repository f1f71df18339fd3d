"""The keys Dockerflow adds to a WSGI environ or an ASGI scope, and reads from it."""

__all__ = ["EXC_INFO_KEY", "REQUEST_ID_KEY", "ROUTE_KEY", "SPAN_KEY", "USER_ID_KEY"]

#: The request's id, for the application.
REQUEST_ID_KEY = "dockerflow.request_id"
#: Where a framework integration reports the exception it turned into an error page.
EXC_INFO_KEY = "dockerflow.exc_info"
#: Where an integration (or the application) reports who made the request: the summary's uid.
USER_ID_KEY = "dockerflow.user_id"
#: Where an integration (or the application) reports the template of the route it matched,
#: for an app whose framework the adapters do not read themselves (Pyramid, Falcon, ...).
ROUTE_KEY = "dockerflow.route"
#: Where an integration reports the OpenTelemetry span of the request when that span is no
#: longer current as the response starts (Django's instrumentation ends it in its middleware,
#: before Django starts the response): the summary's ``trace_id`` and ``span_id``.
SPAN_KEY = "dockerflow.span"
