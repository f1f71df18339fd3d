"""The Redis check against a real Redis server."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest
import redis
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.checks import ERROR
from dockerflow_wsgi.checks.redis import check_redis_connected, client_from_url

E004 = "dockerflow.health.E004"
E007 = "dockerflow.health.E007"
E010 = "dockerflow.health.E010"
PASSWORD = "s3cr3t-pw"
CHECK = "check_redis_connected"

# Generous: the check must answer within its timeout, with room for a slow machine.
SLACK = 2.0


class SilentRedis(redis.Redis):
    """Reaches the server, but its ``PING`` answer does not say success."""

    def ping(self, **kwargs: Any) -> bool:
        super().ping(**kwargs)
        return False


def heartbeat(middleware: DockerflowMiddleware) -> Any:
    return TestApp(middleware).get("/__heartbeat__", status="*")


def ids(messages: list[Any]) -> list[tuple[str, int]]:
    return [(message.id, message.level) for message in messages]


# -- check_redis_connected -------------------------------------------------------------------


@pytest.mark.services
def test_running_server_is_connected(redis_url: str) -> None:
    client = client_from_url(redis_url, timeout=1)

    assert check_redis_connected(client) == []


def test_unreachable_server_is_e004_within_the_timeout(unused_port: Callable[[], int]) -> None:
    client = client_from_url(f"redis://:{PASSWORD}@127.0.0.1:{unused_port()}/0", timeout=1)

    started = time.monotonic()
    messages = check_redis_connected(client)

    assert time.monotonic() - started < 1 + SLACK
    assert ids(messages) == [(E004, ERROR)]
    assert PASSWORD not in messages[0].msg


@pytest.mark.services
def test_rejected_credentials_are_e004_without_the_password(redis_url: str) -> None:
    # The server has no user "alice": it refuses AUTH, which redis-py raises as an
    # AuthenticationError, a kind of ConnectionError.
    client = client_from_url(redis_url.replace("//", f"//alice:{PASSWORD}@"), timeout=1)

    messages = check_redis_connected(client)

    assert ids(messages) == [(E004, ERROR)]
    assert PASSWORD not in messages[0].msg


@pytest.mark.services
def test_other_redis_error_is_e010(redis_url: str) -> None:
    # Connected, but the server refuses to SELECT a database it does not have.
    client = client_from_url(redis_url.rsplit("/", 1)[0] + "/99", timeout=1)

    messages = check_redis_connected(client)

    assert ids(messages) == [(E010, ERROR)]
    assert "out of range" in messages[0].msg


@pytest.mark.services
def test_unsuccessful_ping_is_e007(redis_url: str) -> None:
    client = SilentRedis.from_url(redis_url, socket_timeout=1)

    assert ids(check_redis_connected(client)) == [(E007, ERROR)]


@pytest.mark.services
def test_redis_stopped_then_started_with_the_same_client(
    redis_url: str, servers: Any, redis_server: Any
) -> None:
    client = client_from_url(redis_url, timeout=1)
    assert check_redis_connected(client) == []

    servers.stop(redis_server)
    started = time.monotonic()
    messages = check_redis_connected(client)
    elapsed = time.monotonic() - started

    assert [message.id for message in messages] == [E004]
    assert elapsed < 1 + SLACK

    servers.start(redis_server)
    assert check_redis_connected(client) == []


# -- client_from_url -------------------------------------------------------------------------


def test_client_from_url_times_out_and_does_not_retry() -> None:
    client = client_from_url("redis://127.0.0.1:6379/0", timeout=1.5)
    kwargs = client.connection_pool.connection_kwargs

    assert kwargs["socket_connect_timeout"] == 1.5
    assert kwargs["socket_timeout"] == 1.5
    assert kwargs["retry"].get_retries() == 0


# -- through the middleware ------------------------------------------------------------------


@pytest.mark.services
def test_heartbeat_with_redis_url(redis_url: str, hello_app: Any) -> None:
    response = heartbeat(DockerflowMiddleware(hello_app, redis=redis_url))

    assert response.status_int == 200
    assert response.json == {"status": "ok", "checks": {CHECK: "ok"}, "details": {}}


@pytest.mark.services
def test_heartbeat_with_redis_url_environment(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)

    response = heartbeat(DockerflowMiddleware(hello_app))

    assert response.status_int == 200
    assert response.json["checks"] == {CHECK: "ok"}


def test_heartbeat_of_unreachable_redis_fails_without_the_password(
    hello_app: Any, unused_port: Callable[[], int]
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{unused_port()}/0"
    middleware = DockerflowMiddleware(hello_app, redis=url, check_timeout=1)

    started = time.monotonic()
    response = heartbeat(middleware)

    assert time.monotonic() - started < 1 + SLACK
    assert response.status_int == 500
    assert response.json["checks"] == {CHECK: "error"}
    assert list(response.json["details"][CHECK]["messages"]) == [E004]
    assert PASSWORD not in response.text


@pytest.mark.services
def test_redis_client_is_used_as_it_is(redis_url: str, hello_app: Any) -> None:
    client = SilentRedis.from_url(redis_url, socket_timeout=1)

    response = heartbeat(DockerflowMiddleware(hello_app, redis=client))

    assert response.status_int == 500
    assert response.json["details"][CHECK]["messages"] == {E007: "Redis ping failed"}


BAD_REDIS_URLS = [
    pytest.param(f"http://:{PASSWORD}@127.0.0.1:6379/0", id="wrong-scheme"),
    pytest.param(f"redis://:{PASSWORD}@127.0.0.1:notaport/0", id="bad-port"),
    pytest.param("not a url", id="not-a-url"),
]


@pytest.mark.parametrize("url", BAD_REDIS_URLS)
def test_bad_redis_url_fails_at_construction(url: str, hello_app: Any) -> None:
    with pytest.raises(ValueError, match="REDIS_URL") as raised:
        DockerflowMiddleware(hello_app, redis=url)

    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize("url", BAD_REDIS_URLS)
def test_bad_redis_url_environment_fails_at_construction(
    url: str, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("REDIS_URL", url)

    with pytest.raises(ValueError, match="REDIS_URL") as raised:
        DockerflowMiddleware(hello_app)

    assert PASSWORD not in str(raised.value)


def test_redis_of_another_type_fails_at_construction(hello_app: Any) -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        DockerflowMiddleware(hello_app, redis=42)
