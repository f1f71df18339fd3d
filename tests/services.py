"""Real PostgreSQL, MariaDB, Redis and RabbitMQ servers for the tests: URLs, outages, unused
ports, and the connections this process holds to them.

Imported by the conftests that need them (``tests/checks/``, ``tests/reliability/``), which
re-export the fixtures. The service fixtures skip when their server is not running on this
machine, except under ``CI=true``, where a missing server fails the test: a CI job must never
pass by skipping. ``servers`` starts again every server a test stopped, whatever happens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from server_process import unused_port

HOST = "127.0.0.1"
WAIT_FOR_SERVER = 30.0


@dataclass(frozen=True)
class Server:
    label: str
    port: int
    stop_command: str = ""
    start_command: str = ""


POSTGRESQL = Server(
    "PostgreSQL",
    5432,
    stop_command="pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop",
    start_command="pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
)
MARIADB = Server("MariaDB", 3306)
REDIS = Server(
    "Redis",
    6379,
    stop_command="redis-cli -p 6379 shutdown nosave",
    start_command=(
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
)

# stop_app closes the AMQP listener and leaves the Erlang node running: a second to stop and
# start again, where stopping the service would take ten.
RABBITMQ = Server(
    "RabbitMQ",
    5672,
    stop_command="rabbitmqctl stop_app",
    start_command="rabbitmqctl start_app",
)

POSTGRES_URL = f"postgresql+psycopg://postgres@{HOST}:{POSTGRESQL.port}/test"
MARIADB_URL = f"mysql+pymysql://root@{HOST}:{MARIADB.port}/test"
REDIS_URL = f"redis://{HOST}:{REDIS.port}/0"
AMQP_URL = f"amqp://guest:guest@{HOST}:{RABBITMQ.port}//"


def _accepts_connections(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _require(server: Server) -> None:
    if _accepts_connections(server.port):
        return
    message = f"{server.label} not reachable on {HOST}:{server.port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so the service tests must run, not skip")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    """``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (trust authentication)."""
    _require(POSTGRESQL)
    return POSTGRES_URL


@pytest.fixture
def mariadb_url() -> str:
    """``mysql+pymysql://root@127.0.0.1:3306/test`` (root without a password)."""
    _require(MARIADB)
    return MARIADB_URL


@pytest.fixture
def redis_url() -> str:
    """``redis://127.0.0.1:6379/0`` (no password configured)."""
    _require(REDIS)
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    """``amqp://guest:guest@127.0.0.1:5672//`` (RabbitMQ's default user, from localhost)."""
    _require(RABBITMQ)
    return AMQP_URL


@pytest.fixture(name="unused_port", scope="session")
def _unused_port() -> Callable[[], int]:
    """``unused_port()``: a port to build URLs of a server that is not there."""
    return unused_port


def _is_ready(server: Server) -> bool:
    """Ready means answering queries, not only accepting TCP (PostgreSQL starts up first)."""
    if not _accepts_connections(server.port):
        return False
    if server is POSTGRESQL:
        command = ["pg_isready", "-q", "-h", HOST, "-p", str(server.port)]
        return subprocess.run(command, check=False, timeout=10).returncode == 0
    if server is REDIS:
        command = ["redis-cli", "-h", HOST, "-p", str(server.port), "ping"]
        answer = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
        return answer.stdout.strip() == "PONG"
    if server is RABBITMQ:
        return _answers_amqp(server.port)
    return True


def _answers_amqp(port: int) -> bool:
    """Whether the broker answers AMQP's protocol header with its first frame (a method frame,
    type 1): accepting TCP alone may come before the broker can take a connection."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as connection:
            connection.sendall(b"AMQP\x00\x00\x09\x01")
            return connection.recv(1) == b"\x01"
    except OSError:
        return False


def established_connections(port: int) -> int:
    """How many TCP connections this process holds open to ``port`` on the loopback address
    (Linux: its sockets' inodes matched with ``/proc/net/tcp``'s established connections)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_FOR_SERVER
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} after {WAIT_FOR_SERVER:g} s")
        time.sleep(0.2)


class ServerControl:
    """Stops servers for a test; every server it stopped is started again at teardown."""

    def __init__(self) -> None:
        self._stopped: list[Server] = []

    def stop(self, server: Server) -> None:
        # Recorded first: even a stop that fails halfway is followed by a start.
        if server not in self._stopped:
            self._stopped.append(server)
        subprocess.run(server.stop_command, shell=True, check=True, capture_output=True)
        _wait_until(lambda: not _accepts_connections(server.port), f"{server.label} still accepts")

    def start(self, server: Server) -> None:
        """Start ``server`` (unless it already runs) and wait until it answers."""
        if not _is_ready(server):
            subprocess.run(server.start_command, shell=True, check=False, capture_output=True)
            _wait_until(lambda: _is_ready(server), f"{server.label} did not come back")
        if server in self._stopped:
            self._stopped.remove(server)

    def restore(self) -> None:
        failures = []
        for server in list(self._stopped):
            try:
                self.start(server)
            except Exception as exc:
                failures.append(f"{server.label}: {exc}")
        if failures:
            raise RuntimeError("could not restart: " + "; ".join(failures))


@pytest.fixture
def servers() -> Iterator[ServerControl]:
    """``servers.stop(POSTGRESQL)`` / ``servers.start(POSTGRESQL)``; never leaves one down."""
    control = ServerControl()
    try:
        yield control
    finally:
        control.restore()


@pytest.fixture
def postgresql_server(postgres_url: str) -> Server:
    """The PostgreSQL server, to pass to ``servers.stop`` / ``servers.start``."""
    return POSTGRESQL


@pytest.fixture
def redis_server(redis_url: str) -> Server:
    """The Redis server, to pass to ``servers.stop`` / ``servers.start``."""
    return REDIS


@pytest.fixture
def rabbitmq_server(amqp_url: str) -> Server:
    """The RabbitMQ server, to pass to ``servers.stop`` / ``servers.start``."""
    return RABBITMQ


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never sends a byte: a server stuck
    after accepting (its process paused, a proxy whose backend is gone). The connections it
    accepted are closed at the end, which ends a check still waiting on one."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(64)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except socket.timeout:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for connection in accepted:
            connection.close()
