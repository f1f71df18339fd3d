"""The URL check against a real HTTP server the test starts: 200, 500, refused, too slow, a
redirect that is not followed, Basic authentication; every message masked."""

from __future__ import annotations

import base64
import string
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.checks import ERROR
from dockerflow_wsgi.checks.http import check_url

E210 = "dockerflow.health.E210"
E211 = "dockerflow.health.E211"
PASSWORD = "s3cr3t-url-pw"
TOKEN = "t0ken-value-42"
CHECK_TIMEOUT = 1.0
# Generous: the check must answer within its timeout, with room for a slow machine.
SLACK = 2.0


class Upstream(ThreadingHTTPServer):
    """A service the checked one depends on; remembers the paths it was asked for."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.authorizations: list[str] = []
        self.release = threading.Event()

    def url(self, path: str, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.server_port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.server.authorizations.append(self.headers.get("Authorization", ""))
        path = self.path.split("?", 1)[0]
        if path == "/slow":
            self.server.release.wait(10)  # until the test ends
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        elif path == "/auth":
            expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
            self.send_response(200 if self.headers.get("Authorization") == expected else 401)
        else:
            self.send_response({"/ok": 200, "/slow": 200, "/fail": 500}.get(path, 404))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def ids(messages: list[Any]) -> list[tuple[str, int]]:
    return [(message.id, message.level) for message in messages]


def heartbeat(url: str, hello_app: Any, **keywords: Any) -> tuple[Any, float]:
    """The heartbeat of a middleware running only ``check_url(url, **keywords)``, and its time."""
    check = checks.register_partial(check_url, url, name="upstream", **keywords)
    middleware = DockerflowMiddleware(
        hello_app, checks=[("upstream", check)], check_timeout=CHECK_TIMEOUT
    )
    started = time.monotonic()
    response = TestApp(middleware).get("/__heartbeat__", status="*")
    return response, time.monotonic() - started


# -- statuses --------------------------------------------------------------------------------


def test_200_is_ok(upstream: Upstream) -> None:
    assert check_url(upstream.url("/ok")) == []
    assert upstream.paths == ["/ok"]


def test_500_is_e211_with_the_status(upstream: Upstream) -> None:
    (message,) = check_url(upstream.url("/fail"))

    assert (message.id, message.level) == (E211, ERROR)
    assert message.msg == f"{upstream.url('/fail')} answered 500, expected 200-399"


def test_the_expected_statuses_may_be_any_container(upstream: Upstream) -> None:
    assert check_url(upstream.url("/fail"), expect={200, 500}) == []
    (message,) = check_url(upstream.url("/missing"), expect={200, 204})
    assert message.msg.endswith("answered 404, expected 200, 204")


def test_a_redirect_is_an_answer_and_is_not_followed(upstream: Upstream) -> None:
    assert check_url(upstream.url("/redirect")) == []

    (message,) = check_url(upstream.url("/redirect"), expect=range(200, 300))

    assert message.id == E211
    assert "answered 302, expected 200-299" in message.msg
    assert upstream.paths == ["/redirect", "/redirect"]


# -- no answer -------------------------------------------------------------------------------


def test_a_refused_connection_is_e210(unused_port: Callable[[], int]) -> None:
    url = f"http://127.0.0.1:{unused_port()}/health"

    (message,) = check_url(url)

    assert (message.id, message.level) == (E210, ERROR)
    assert message.msg.startswith(f"Could not get {url} (")
    assert "refused" in message.msg


def test_the_reason_survives_a_secret_at_the_end_of_the_url(
    unused_port: Callable[[], int],
) -> None:
    url = f"http://127.0.0.1:{unused_port()}/health?token=abc"

    (message,) = checks.run_checks([("sidecar", lambda: check_url(url))]).messages["sidecar"]

    assert message.msg.startswith("Could not get http://127.0.0.1:")
    assert message.msg.endswith("/health?token=*** ([Errno 111] Connection refused)")


def test_too_slow_is_e210_within_the_timeout_given(upstream: Upstream) -> None:
    started = time.monotonic()
    (message,) = check_url(upstream.url("/slow"), timeout=0.5)

    assert time.monotonic() - started < 0.5 + SLACK
    assert message.id == E210
    assert message.msg.endswith("(no answer within 0.5 seconds)")


def test_too_slow_is_e210_within_the_check_timeout(upstream: Upstream, hello_app: Any) -> None:
    """Without ``timeout``, the check gives up before the heartbeat does: its own E210, which
    names the URL, rather than the heartbeat's E102."""
    response, took = heartbeat(upstream.url("/slow"), hello_app)

    assert response.status_int == 500
    assert response.json["details"]["upstream"]["messages"] == {
        E210: f"Could not get {upstream.url('/slow')} (no answer within "
        f"{0.8 * CHECK_TIMEOUT:g} seconds)"
    }
    assert took < CHECK_TIMEOUT + SLACK


def test_a_check_timeout_of_its_own_applies(upstream: Upstream, hello_app: Any) -> None:
    check = checks.register_partial(check_url, upstream.url("/slow"), name="upstream")
    middleware = DockerflowMiddleware(
        hello_app, checks=[("upstream", check)], check_timeouts={"upstream": 0.5}
    )

    started = time.monotonic()
    response = TestApp(middleware).get("/__heartbeat__", status="*")

    assert time.monotonic() - started < 0.5 + SLACK
    assert "no answer within 0.4 seconds" in response.text


# -- credentials and masking -----------------------------------------------------------------


def test_userinfo_is_sent_as_basic_authentication(upstream: Upstream) -> None:
    assert check_url(upstream.url("/auth", f"user:{PASSWORD}@")) == []
    assert ids(check_url(upstream.url("/auth", "user:wrong@"))) == [(E211, ERROR)]


def test_no_message_shows_the_password_or_a_token(upstream: Upstream, hello_app: Any) -> None:
    url = upstream.url(f"/fail?page=2&access_token={TOKEN}", f"user:{PASSWORD}@")

    response, _ = heartbeat(url, hello_app)

    assert response.json["checks"] == {"upstream": "error"}
    assert PASSWORD not in response.text
    assert TOKEN not in response.text
    assert "user:***@" in response.text
    # The token was sent: it is the service's own business what its query holds.
    assert upstream.paths == [f"/fail?page=2&access_token={TOKEN}"]


# Prefixed, so that no secret drawn can be a part of the message's own text ("127.0.0.1").
_SECRETS = st.text(string.ascii_letters + string.digits + "-._~", min_size=4, max_size=30)


@settings(max_examples=50)
@given(
    password=_SECRETS.map("pw".__add__),
    token=_SECRETS.map("tk".__add__),
    name=st.sampled_from(["token", "api_key", "Secret", "password"]),
)
def test_secrets_of_any_url_are_masked_in_every_message(
    unused_port: Callable[[], int], password: str, token: str, name: str
) -> None:
    url = f"http://me:{password}@127.0.0.1:{unused_port()}/x?{name}={token}&b=1"

    (message,) = check_url(url)

    assert password not in message.msg
    assert token not in message.msg


# -- registering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "keywords", "problem"),
    [
        (f"ftp://me:{PASSWORD}@127.0.0.1/", {}, "http:// or https://"),
        ("localhost:8000/health", {}, "http:// or https://"),
        ("http:///health", {}, "with a host"),
        (f"http://me:{PASSWORD}@127.0.0.1:port/", {}, "not a URL"),
        ("http://127.0.0.1/", {"timeout": 0}, "timeout"),
        ("http://127.0.0.1/", {"timeout": "1"}, "timeout"),
        ("http://127.0.0.1/", {"expect": 200}, "expect"),
    ],
)
def test_a_url_or_option_that_cannot_work_stops_the_registration(
    url: str, keywords: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        checks.register_partial(check_url, url, **keywords)

    assert PASSWORD not in str(raised.value)
    assert checks.get_checks() == {}
