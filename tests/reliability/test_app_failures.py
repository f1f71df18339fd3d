"""The wrapped application failing, and a client hanging up mid-stream, under gunicorn.

``served_app``'s raw routes sit between the example's middleware and Flask, so what they
raise reaches gunicorn as from any WSGI application. Whatever happens, the request has one
``request.summary`` line (ERROR with the traceback when the app raised), ``close()`` reaches
the application's iterable, the exception reaches the server (gunicorn logs it and answers or
drops the connection), and the worker goes on serving.

The same rules with a fake server, in process: ``tests/test_middleware.py``'s
``test_app_raising_in_its_call_gives_an_error_summary_and_the_same_exception``,
``test_app_raising_mid_stream_gives_an_error_summary_at_close`` and
``test_app_iterable_is_closed_exactly_once``.
"""

from __future__ import annotations

import http.client
import socket
from typing import Any

import pytest
from harness import HOST, Client, Gunicorn, log_problems, tally, wait_until

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def server(serve: Any) -> Gunicorn:
    return serve("app-failures", threads=4, RELIABILITY_RAW_ROUTES="1")


def traceback_count(server: Gunicorn, text: str) -> int:
    """How often gunicorn logged an exception with ``text`` (it has "Error handling request")."""
    return server.stderr_text().count(text)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("raise-before", "RawRouteError: raise-before start_response"),
        ("raise-after", "RawRouteError: raise-after start_response"),
    ],
)
def test_an_app_raising_before_sending_headers(server: Gunicorn, route: str, message: str) -> None:
    request_id = f"{route}-1"
    answer = Client(server.port).request(
        "GET", f"/_reliability/{route}", {"X-Request-ID": request_id}
    )
    tally("faults injected")

    # gunicorn answers with its own 500: the exception reached it.
    assert answer.status == 500
    assert wait_until(lambda: traceback_count(server, message), 10) == 1
    [summary] = server.wait_for_summary(request_id)
    assert summary["Severity"] == 3
    fields = summary["Fields"]
    assert (fields["code"], fields["errno"]) == (500, 500)
    assert "RawRouteError" in fields["error"]
    assert message in fields["traceback"]
    tally("faults recovered")


def test_an_app_raising_mid_stream(server: Gunicorn) -> None:
    request_id = "raise-mid-stream-1"
    connection = http.client.HTTPConnection(HOST, server.port, timeout=10)
    connection.request(
        "GET", "/_reliability/raise-mid-stream", headers={"X-Request-ID": request_id}
    )
    response = connection.getresponse()
    tally("faults injected")
    assert response.status == 200
    assert response.getheader("X-Request-ID") == request_id
    # Two chunks, then gunicorn drops the connection: the body is cut short.
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert cut.value.partial.count(b"chunk") == 2
    connection.close()

    [summary] = server.wait_for_summary(request_id)
    assert summary["Severity"] == 3
    fields = summary["Fields"]
    assert (fields["code"], fields["errno"]) == (200, 500)
    assert "raise-mid-stream after 2 chunks" in fields["traceback"]
    assert traceback_count(server, "RawRouteError: raise-mid-stream after 2 chunks") == 1
    assert server.stats()["raw"][request_id] == {"chunks": 2, "closed": 1}
    tally("faults recovered")


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    received = b""
    while marker not in received and len(received) < limit:
        data = sock.recv(4096)
        if not data:
            break
        received += data
    return received


def test_a_client_hanging_up_mid_stream(server: Gunicorn) -> None:
    """The client reads the first chunk of a long stream, then closes its socket: gunicorn's
    next writes fail, it stops iterating and closes the response."""
    before = server.stats()
    errors_before = traceback_count(server, "Error handling request")
    request_id = "hang-up-1"
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /_reliability/drip HTTP/1.1\r\nHost: test\r\n"
            + f"X-Request-ID: {request_id}\r\n\r\n".encode()
        )
        head = read_until(sock, b"chunk 0000")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert f"X-Request-ID: {request_id}\r\n".encode() in head
    tally("faults injected")

    [summary] = server.wait_for_summary(request_id, timeout=20)
    fields = summary["Fields"]
    # The app did not fail: a plain INFO summary, with the status that was sent.
    assert summary["Severity"] == 6
    assert (fields["code"], fields["errno"]) == (200, 0)
    events = server.stats()["raw"][request_id]
    assert events["closed"] == 1
    assert events["chunks"] < 2000, "the stream was iterated to the end"
    # A hang-up is no application error: gunicorn logs no exception for it.
    assert traceback_count(server, "Error handling request") == errors_before

    # Nothing was left open (the worker closes its side of a connection a moment after the
    # client did), and no thread is stuck on the dead connection: gthread starts its request
    # threads lazily and keeps them, so the count may grow, but never past its pool.
    assert wait_until(lambda: server.stats()["fds"] <= before["fds"], 10)
    assert server.stats()["threads"] <= before["threads"] + server.threads
    tally("faults recovered")


def test_each_failed_request_was_logged_once_and_the_worker_stops_cleanly(
    server: Gunicorn,
) -> None:
    assert Client(server.port).request("GET", "/").status == 200
    assert server.stop() == 0
    lines = server.stdout_lines()
    assert log_problems(lines) == []
    for request_id in ("raise-before-1", "raise-after-1", "raise-mid-stream-1", "hang-up-1"):
        assert len(server.summaries(request_id)) == 1, request_id
