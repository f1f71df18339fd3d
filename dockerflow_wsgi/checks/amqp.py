"""The AMQP check: does the message broker accept a connection? (``dockerflow-wsgi[amqp]``)

Each run opens a connection of its own with kombu (the library Celery uses), without retries,
and closes it before returning: no connection to the broker is held between heartbeats.
"""

from __future__ import annotations

from kombu import Connection
from kombu.exceptions import KombuError, OperationalError

from .. import health
from ..redact import mask_secrets
from .messages import CheckMessage, Error
from .time_limit import service_wait

__all__ = ["check_amqp_connected"]


def _check_arguments(url: str) -> None:
    """Raise :class:`ValueError` for a URL kombu cannot use, before the check runs; an
    :class:`ImportError` for a transport whose library is not installed."""
    if not isinstance(url, str) or "://" not in url:
        shown = mask_secrets(url) if isinstance(url, str) else repr(url)
        raise ValueError(f"url must be a broker URL such as amqp://host:5672//, got {shown}")
    try:
        Connection(url).get_transport_cls()
    except (KeyError, ValueError) as exc:
        detail = mask_secrets(str(exc.args[0]) if exc.args else type(exc).__name__)
        raise ValueError(
            f"url {mask_secrets(url)} is not a broker URL kombu knows: {detail}"
        ) from None


def check_amqp_connected(url: str) -> list[CheckMessage]:
    """Connect to the broker at ``url`` (``amqp://user:password@host:5672/vhost``, or any
    URL kombu knows) and close the connection again.

    E220 when the broker cannot be reached (refused, timed out, the connection closed before
    the broker answered), E221 when it answered but refused the connection (bad credentials,
    an unknown virtual host) or any other error. The wait is four fifths of the check's time
    limit (``check_timeouts`` or ``check_timeout``), so a broker that does not answer is
    reported as E220 before the heartbeat gives up on it. Messages never contain the URL's
    password.

    .. code-block:: python

        checks.register_partial(check_amqp_connected, "amqp://guest:guest@rabbitmq:5672//")
    """
    wait = service_wait()
    with Connection(url, connect_timeout=wait) as connection:
        secret = connection.password
        where = mask_secrets(url, secret)
        try:
            # One attempt: kombu's own retries would sleep seconds between them.
            connection.ensure_connection(max_retries=0)
        except OperationalError as exc:
            # kombu's name for the transport's recoverable errors: refused, timed out, reset.
            return [
                Error(
                    f"Could not connect to AMQP broker {where}: {_detail(exc, secret, wait)}",
                    id=health.ERROR_CANNOT_CONNECT_AMQP,
                )
            ]
        except (KombuError, *connection.connection_errors, *connection.channel_errors) as exc:
            return [
                Error(
                    f"AMQP error at {where}: {_detail(exc, secret, wait)}",
                    id=health.ERROR_AMQP_EXCEPTION,
                )
            ]
    return []


def _detail(exc: BaseException, secret: object, wait: float) -> str:
    """The error's text on one line, masked; a time-out says how long was waited."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if text == "timed out":
        text = f"no answer within {wait:g} seconds"
    return mask_secrets(text, secret if isinstance(secret, str) else None)


check_amqp_connected.check_arguments = _check_arguments  # type: ignore[attr-defined]
