"""The AMQP check against the real RabbitMQ: connected, refused, stopped and started again,
wrong credentials, a broker that never answers; and ``AMQP_URL``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Callable

import pytest
from services import RABBITMQ, established_connections
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.checks import ERROR
from dockerflow_wsgi.checks.amqp import check_amqp_connected

E220 = "dockerflow.health.E220"
E221 = "dockerflow.health.E221"
PASSWORD = "s3cr3t-amqp-pw"
CHECK = "check_amqp_connected"
CHECK_TIMEOUT = 1.0
# Generous: the check must answer within its timeout, with room for a slow machine.
SLACK = 2.0


def ids(messages: list[Any]) -> list[tuple[str, int]]:
    return [(message.id, message.level) for message in messages]


def heartbeat(middleware: DockerflowMiddleware) -> Any:
    return TestApp(middleware).get("/__heartbeat__", status="*")


def through_the_heartbeat(url: str, hello_app: Any) -> tuple[Any, float]:
    """The heartbeat of a middleware running only the AMQP check of ``url``, and its time."""
    check = checks.register_partial(check_amqp_connected, url)
    middleware = DockerflowMiddleware(
        hello_app, checks=[(CHECK, check)], check_timeout=CHECK_TIMEOUT
    )
    started = time.monotonic()
    response = heartbeat(middleware)
    return response, time.monotonic() - started


# -- check_amqp_connected --------------------------------------------------------------------


@pytest.mark.services
def test_running_broker_is_connected_and_the_connection_closed(amqp_url: str) -> None:
    before = established_connections(RABBITMQ.port)

    for _ in range(3):
        assert check_amqp_connected(amqp_url) == []

    assert established_connections(RABBITMQ.port) == before


@pytest.mark.services
def test_rejected_credentials_are_e221_without_the_password(amqp_url: str) -> None:
    messages = check_amqp_connected(amqp_url.replace("guest:guest", f"guest:{PASSWORD}"))

    assert ids(messages) == [(E221, ERROR)]
    assert "ACCESS_REFUSED" in messages[0].msg
    assert PASSWORD not in messages[0].msg


@pytest.mark.services
def test_an_unknown_virtual_host_is_e221(amqp_url: str) -> None:
    messages = check_amqp_connected(amqp_url.rstrip("/") + "/no-such-vhost")

    assert ids(messages) == [(E221, ERROR)]
    assert "no-such-vhost" in messages[0].msg


def test_refused_connection_is_e220_without_the_password(unused_port: Callable[[], int]) -> None:
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{unused_port()}//"

    messages = check_amqp_connected(url)

    assert ids(messages) == [(E220, ERROR)]
    assert "Connection refused" in messages[0].msg
    assert PASSWORD not in messages[0].msg
    assert "amqp://guest:***@127.0.0.1:" in messages[0].msg


def test_a_broker_that_never_answers_is_e220_within_the_check_timeout(
    silent_port: int, hello_app: Any
) -> None:
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{silent_port}//"

    response, took = through_the_heartbeat(url, hello_app)

    # The check's own E220, naming the broker, before the heartbeat's E102.
    assert response.status_int == 500
    assert response.json["details"][CHECK]["messages"] == {
        E220: f"Could not connect to AMQP broker amqp://guest:***@127.0.0.1:{silent_port}//: "
        f"no answer within {0.8 * CHECK_TIMEOUT:g} seconds"
    }
    assert took < CHECK_TIMEOUT + SLACK


@pytest.mark.services
def test_rabbitmq_stopped_then_started(
    amqp_url: str, servers: Any, rabbitmq_server: Any, hello_app: Any
) -> None:
    assert check_amqp_connected(amqp_url) == []

    servers.stop(rabbitmq_server)
    response, took = through_the_heartbeat(amqp_url, hello_app)

    assert response.status_int == 500
    assert list(response.json["details"][CHECK]["messages"]) == [E220]
    # The password is masked wherever it appears: here it is the user's name too.
    assert "amqp://***:***@127.0.0.1:5672//" in response.text
    assert took < CHECK_TIMEOUT + SLACK

    servers.start(rabbitmq_server)
    assert check_amqp_connected(amqp_url) == []


# -- registering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [f"http://guest:{PASSWORD}@127.0.0.1/", f"amqp://guest:{PASSWORD}@h:port//", "rabbitmq"],
)
def test_a_url_kombu_cannot_use_stops_the_registration(url: str) -> None:
    with pytest.raises(ValueError, match="url") as raised:
        checks.register_partial(check_amqp_connected, url)

    assert PASSWORD not in str(raised.value)
    assert checks.get_checks() == {}


# -- AMQP_URL --------------------------------------------------------------------------------


@pytest.mark.services
def test_amqp_url_registers_the_check(
    amqp_url: str, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("AMQP_URL", amqp_url)

    response = heartbeat(DockerflowMiddleware(hello_app))

    assert response.status_int == 200
    assert response.json["checks"] == {CHECK: "ok"}


def test_amqp_url_of_a_broker_that_is_not_there_fails_the_heartbeat(
    monkeypatch: pytest.MonkeyPatch, hello_app: Any, unused_port: Callable[[], int]
) -> None:
    monkeypatch.setenv("AMQP_URL", f"amqp://guest:{PASSWORD}@127.0.0.1:{unused_port()}//")

    response = heartbeat(DockerflowMiddleware(hello_app, check_timeout=CHECK_TIMEOUT))

    assert response.status_int == 500
    assert list(response.json["details"][CHECK]["messages"]) == [E220]
    assert PASSWORD not in response.text


@pytest.mark.parametrize(("selection", "registered"), [("amqp", True), ("redis", False)])
def test_dockerflow_builtin_checks_selects_it(
    monkeypatch: pytest.MonkeyPatch, hello_app: Any, selection: str, registered: bool
) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("DOCKERFLOW_BUILTIN_CHECKS", selection)

    names = [name for name, _ in DockerflowMiddleware(hello_app).current_checks()]

    assert (CHECK in names) is registered


@pytest.mark.parametrize(
    "url", [f"http://guest:{PASSWORD}@127.0.0.1/", "rabbitmq", f"amqp://u:{PASSWORD}@h:x//"]
)
def test_a_bad_amqp_url_stops_the_start_naming_the_variable(
    url: str, monkeypatch: pytest.MonkeyPatch, hello_app: Any
) -> None:
    monkeypatch.setenv("AMQP_URL", url)

    with pytest.raises(ValueError, match="AMQP_URL") as raised:
        DockerflowMiddleware(hello_app)

    assert PASSWORD not in str(raised.value)


def test_without_kombu_amqp_url_stops_the_start_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['kombu'] = None\n"
        "from dockerflow_wsgi import DockerflowMiddleware\n"
        "try:\n"
        "    DockerflowMiddleware(lambda e, s: [])\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672//"}

    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert "AMQP_URL" in done.stdout
    assert "pip install 'dockerflow-wsgi[amqp]'" in done.stdout
