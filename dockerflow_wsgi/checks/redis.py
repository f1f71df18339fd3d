"""The Redis check: does the server answer ``PING``? (``dockerflow-wsgi[redis]``)"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import health
from ..redact import mask_secrets
from .messages import CheckMessage, Error

__all__ = ["check_redis_connected", "client_from_url"]


def _secret(client: Any) -> str | None:
    try:
        password = client.connection_pool.connection_kwargs.get("password")
    except AttributeError:
        return None
    return password if isinstance(password, str) else None


def check_redis_connected(client: Any) -> list[CheckMessage]:
    """``PING`` the server with ``client``.

    E004 when it cannot be reached (refused, timed out), E010 for any other Redis error, E007
    when the ping is answered but not with success.
    """
    try:
        answered = client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return [
            Error(
                f"Could not connect to Redis: {mask_secrets(str(exc), _secret(client))}",
                id=health.ERROR_CANNOT_CONNECT_REDIS,
            )
        ]
    except redis.RedisError as exc:
        return [
            Error(
                f"Redis error: {mask_secrets(str(exc), _secret(client))}",
                id=health.ERROR_REDIS_EXCEPTION,
            )
        ]
    if not answered:
        return [Error("Redis ping failed", id=health.ERROR_REDIS_PING_FAILED)]
    return []


def client_from_url(url: str, timeout: float) -> redis.Redis:
    """The client the Redis check uses, made once from ``REDIS_URL`` or ``redis=``.

    Socket timeouts are short and retries are off: a heartbeat must report a dead server
    within its time limit, not retry it with backoff.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
