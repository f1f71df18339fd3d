"""What heartbeats cost the backends, counted where the backends receive it (``make fleet``).

The example service runs under gunicorn (``--workers`` processes, gthread) against a real
PostgreSQL and a real Redis; ``/__heartbeat__`` is probed at fixed rates on new connections, as
a kubelet probes, with the checks answered on demand, through the TTL cache and from the
background runner (``heartbeat_interval``). Nothing is counted inside the service, so a query
the library makes without meaning to is counted too; a fleet's load is then extrapolated from
the figures on paper.

The service reaches each server through a relay in this process that counts what crosses the
wire: PostgreSQL statements and transactions, Redis commands. Reading the servers' own
statistics over a window of seconds is not reliable for PostgreSQL: a backend flushes its
counters at most once a second and may put that off for ten seconds, so a window of a few
seconds of ``pg_stat_database`` was seen off by a factor of five. The relay counts the moment
the server receives, and only this service's traffic (Redis' ``commandstats`` also counts every
other client's ``PING``). The servers' own counters are still read over each service's whole
life, from before it starts to after its last backend has exited (and so flushed), as a check
on the relay.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE_APP = os.path.join(ROOT, "example_app")
DOCS_TABLE = os.path.join(ROOT, "docs", "_generated", "fleet-results.rst")

#: A kubelet's probe; the service cannot tell it from any other client, but its log could.
PROBE_HEADERS = {"User-Agent": "kube-probe/fleet", "Connection": "close"}
#: Probes a second reaching one pod, for the fleet's extrapolation: a kubelet's readiness and
#: liveness probes every 10 s, both every second, and those plus load balancers' health
#: checkers and monitors (a rate the service does not control).
FLEET_PROBE_RATES = (
    (0.2, "readiness + liveness every 10 s"),
    (2.0, "readiness + liveness every 1 s"),
    (10.0, "plus load balancers and monitors"),
)
#: Counts kept by the relays.
STATEMENTS, TRANSACTIONS, PINGS = "statements", "transactions", "PING"
CONNECTIONS, UNPARSED = "connections", "unparsed"


# ---------------------------------------------------------------------------------------------
# Counting what the servers receive


class Relay:
    """A TCP relay on loopback between the service and one server, counting with ``parser``.

    :param target: the server's host and port.
    :param parser: makes, for each connection, the pair of callables that read the bytes sent
        to the server and the bytes it answers, and count into the relay.
    """

    def __init__(
        self,
        target: tuple[str, int],
        parser: Callable[[Relay], tuple[Callable[[bytes], None], Callable[[bytes], None]]],
    ) -> None:
        self.target = target
        self.parser = parser
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True).start()

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def counts(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._counts)

    def close(self) -> None:
        _hang_up(self.listener)  # wakes the thread blocked in accept()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _hang_up(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
                self._counts[CONNECTIONS] += 1
            to_server, to_client = self.parser(self)
            for source, sink, feed in ((client, server, to_server), (server, client, to_client)):
                threading.Thread(target=self._pipe, args=(source, sink, feed), daemon=True).start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, feed: Callable[[bytes], None]
    ) -> None:
        """Pass one direction's bytes on, counted first; when either side hangs up, hang up
        both. Bytes the parser cannot read are still passed on, and no longer counted."""
        try:
            while data := source.recv(65536):
                try:
                    feed(data)
                except Exception:
                    self.count(UNPARSED)
                    feed = _ignore
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _hang_up(source)
            _hang_up(sink)


def _ignore(data: bytes) -> None:
    pass


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


#: The startup packets that ask for encryption: the relay could not read what follows.
_ENCRYPTION_REQUESTS = frozenset({80877103, 80877104})


def postgresql_parser(relay: Relay) -> tuple[Callable[[bytes], None], Callable[[bytes], None]]:
    """Count a PostgreSQL connection's statements and transactions (protocol 3).

    A statement is a simple query (``Q``) or an extended-protocol execution (``E``): the pool's
    pre-ping (an empty query) counts as one, as the server runs it. A transaction ends each
    time the server reports itself idle again (``ReadyForQuery``, status ``I``) after a query,
    which is what ``pg_stat_database`` counts as a commit or rollback.
    """
    sent = bytearray()
    answered = bytearray()
    state = {"started": False, "ready": False, "readable": True}

    def to_server(data: bytes) -> None:
        if not state["readable"]:
            return
        sent.extend(data)
        while True:
            if not state["started"]:
                if len(sent) < 8:
                    return
                length = int.from_bytes(sent[:4], "big")
                if int.from_bytes(sent[4:8], "big") in _ENCRYPTION_REQUESTS:
                    state["readable"] = False
                    relay.count(UNPARSED)
                    return
                if len(sent) < length:
                    return
                del sent[:length]
                state["started"] = True
                continue
            end = 1 + int.from_bytes(sent[1:5], "big") if len(sent) >= 5 else 0
            if not end or len(sent) < end:
                return
            kind = sent[:1]
            del sent[:end]
            if kind in (b"Q", b"E"):
                relay.count(STATEMENTS)

    def to_client(data: bytes) -> None:
        if not state["readable"]:
            return
        answered.extend(data)
        while len(answered) >= 5:
            end = 1 + int.from_bytes(answered[1:5], "big")
            if len(answered) < end:
                return
            kind, status = answered[:1], answered[5:6]
            del answered[:end]
            if kind == b"Z":
                # The first one only says the connection is ready: no transaction ended.
                if state["ready"] and status == b"I":
                    relay.count(TRANSACTIONS)
                state["ready"] = True

    return to_server, to_client


def redis_parser(relay: Relay) -> tuple[Callable[[bytes], None], Callable[[bytes], None]]:
    """Count a Redis connection's commands by name (RESP arrays, or inline commands)."""
    sent = bytearray()

    def to_server(data: bytes) -> None:
        sent.extend(data)
        while True:
            name, used = _resp_command(sent)
            if not used:
                return
            del sent[:used]
            relay.count(name)

    return to_server, _ignore


def _resp_command(buffer: bytearray) -> tuple[str, int]:
    """The name of the first complete command in ``buffer`` and its length; 0 if incomplete."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return "", 0
    if buffer[:1] != b"*":
        return bytes(buffer[:end]).split(b" ", 1)[0].decode("latin-1").upper(), end + 2
    name, position = "", end + 2
    for index in range(int(buffer[1:end])):
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return "", 0
        start = end + 2
        stop = start + int(buffer[position + 1 : end])
        if len(buffer) < stop + 2:
            return "", 0
        if index == 0:
            name = bytes(buffer[start:stop]).decode("latin-1").upper()
        position = stop + 2
    return name, position


# ---------------------------------------------------------------------------------------------
# The servers


@dataclass(frozen=True)
class ServerCounters:
    """What the servers themselves had counted at one moment, and who was counting (a server
    restarted between two readings makes their difference meaningless)."""

    pg_transactions: int
    pg_started: str
    redis_pings: int
    redis_run_id: str


class Backends:
    """The two servers, read from outside the service.

    PostgreSQL is read through a connection to the administration database, not the benchmark's
    own, so that reading adds nothing to the counts; in autocommit each reading is a
    transaction of its own, which sees fresh statistics.
    """

    def __init__(self, admin_url: str, database: str, redis_url: str) -> None:
        self.admin_url = admin_url
        self.database = database
        self.redis_url = redis_url
        try:
            self.pg = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise SystemExit(
                f"PostgreSQL at {_where(admin_url)} is unreachable: {_first_line(exc)}"
            ) from exc
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            self.pg.close()
            raise SystemExit(
                f"Redis at {_where(redis_url)} is unreachable: {_first_line(exc)}"
            ) from exc

    def close(self) -> None:
        self.pg.close()
        self.redis.close()

    def database_url(self, port: Optional[int] = None) -> str:
        """The benchmark's database through psycopg 3, at ``port`` on loopback (a relay's) if
        given. Unencrypted: a relay could not read TLS (and on loopback it protects nothing)."""
        url = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=self.database)
        if port is not None:
            url = url.set(host="127.0.0.1", port=port).update_query_dict(
                {"sslmode": "disable", "gssencmode": "disable"}
            )
        return url.render_as_string(hide_password=False)

    def redis_url_at(self, port: int) -> str:
        parts = urllib.parse.urlsplit(self.redis_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def targets(self) -> tuple[tuple[str, int], tuple[str, int]]:
        pg = make_url(self.admin_url)
        parts = urllib.parse.urlsplit(self.redis_url)
        return (
            (pg.host or "127.0.0.1", pg.port or 5432),
            (parts.hostname or "127.0.0.1", parts.port or 6379),
        )

    def versions(self) -> tuple[str, str]:
        pg_version = self.pg.execute("SHOW server_version").fetchone()
        return str(pg_version[0] if pg_version else "?"), str(
            self.redis.info("server").get("redis_version", "?")
        )

    def prepare(self) -> None:
        """Create the benchmark's database if needed and apply the example's migrations, as a
        release step would: the migrations check then finds nothing missing, and the heartbeat
        is ``ok``."""
        exists = self.pg.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
        ).fetchone()
        if not exists:
            self.pg.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        subprocess.run(
            [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
            cwd=EXAMPLE_APP,
            env=_service_environment({"DATABASE_URL": self.database_url(), "LOG_LEVEL": "WARNING"}),
            check=True,
        )

    def read_when_flushed(self) -> ServerCounters:
        """The servers' counters once no backend of the benchmark's database is left: each
        flushes its statistics as it exits, shortly after leaving ``pg_stat_activity``."""
        deadline = time.monotonic() + 30
        while True:
            row = self.pg.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
            ).fetchone()
            if not row or not row[0] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        row = self.pg.execute(
            "SELECT xact_commit + xact_rollback, pg_postmaster_start_time()::text"
            " FROM pg_stat_database WHERE datname = %s",
            (self.database,),
        ).fetchone()
        if row is None:
            raise RuntimeError(f"pg_stat_database has no row for {self.database!r}")
        commandstats = self.redis.info("commandstats")
        return ServerCounters(
            pg_transactions=int(row[0]),
            pg_started=str(row[1]),
            redis_pings=int(commandstats.get("cmdstat_ping", {}).get("calls", 0)),
            redis_run_id=str(self.redis.info("server")["run_id"]),
        )


def _where(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# The service


@dataclass(frozen=True)
class Setup:
    """One way of answering heartbeats, as the service's environment sets it."""

    label: str
    environment: dict[str, str]
    ttl: float = 0.0
    interval: float = 0.0


@dataclass
class Service:
    """A running service: its gunicorn master, its port, and the relays it reaches servers by."""

    server: subprocess.Popen
    port: int
    pg: Relay
    redis: Relay
    #: The file gunicorn and the service write to (mozlog JSON, gunicorn's own lines).
    log: Any = None

    def log_text(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def counts(self) -> collections.Counter[str]:
        return self.pg.counts() + self.redis.counts()


def _service_environment(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment without any Dockerflow or check setting of its own (which
    would change what a heartbeat does), plus ``overrides``."""
    ignored = {"DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG"}
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ignored and not name.startswith("DOCKERFLOW_")
    }
    environment.update(overrides)
    return environment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(
    setup: Setup,
    backends: Backends,
    workers: int,
    threads: int,
    redis_url: Optional[str] = None,
) -> Iterator[Service]:
    """The example service under gunicorn behind fresh relays, stopped whatever happens; its
    log goes to a file, shown when the service does not come up. ``redis_url``: another Redis
    than the relay's (one that does not answer)."""
    pg_target, redis_target = backends.targets()
    pg_relay = Relay(pg_target, postgresql_parser)
    redis_relay = Relay(redis_target, redis_parser)
    port = _free_port()
    environment = _service_environment(
        {
            "DATABASE_URL": backends.database_url(pg_relay.port),
            "REDIS_URL": redis_url or backends.redis_url_at(redis_relay.port),
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "LOG_LEVEL": "WARNING",
            "DOCKERFLOW_SUMMARY_LOG_PROBES": "false",
            **setup.environment,
        }
    )
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(
            [
                *(gunicorn, "--config", os.path.join(EXAMPLE_APP, "gunicorn.conf.py")),
                # Loopback only, whatever the example's configuration binds to.
                *("--bind", f"127.0.0.1:{port}"),
            ],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(server, port, workers, log)
            yield Service(server, port, pg_relay, redis_relay, log)
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            pg_relay.close()
            redis_relay.close()


def _wait_until_serving(server: subprocess.Popen, port: int, workers: int, log: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}:\n{_tail(log)}")
        try:
            status, _ = _get(port, "/__lbheartbeat__")
            if status == 200 and len(_worker_pids(server.pid)) >= workers:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not serve within 60 s:\n{_tail(log)}")
        time.sleep(0.2)


def _tail(log: Any) -> str:
    log.flush()
    log.seek(0)
    return "".join(log.readlines()[-30:])


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path, headers=PROBE_HEADERS)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _heartbeat_status(port: int) -> int:
    """The status of one heartbeat, 0 when it was not answered."""
    try:
        return _get(port, "/__heartbeat__")[0]
    except OSError:
        return 0


def _worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the processes whose parent is the master (Linux's ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            found.append(int(entry))
    return found


def _workers_connected(master: int, port: int) -> int:
    """How many workers hold a TCP connection to ``port`` (the PostgreSQL relay's), that is,
    have run their checks at least once: each keeps its pooled connections open afterwards."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines)
                for line in lines:
                    columns = line.split()
                    remote_port = int(columns[2].rsplit(":", 1)[1], 16)
                    if remote_port == port and columns[3] == "01":  # ESTABLISHED
                        inodes.add(f"socket:[{columns[9]}]")
        except OSError:
            continue
    connected = 0
    for pid in _worker_pids(master):
        try:
            targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        connected += bool(targets & inodes)
    return connected


def warm_up(service: Service, workers: int) -> int:
    """Send bursts of heartbeats until every worker has run its checks once.

    gunicorn's workers race for connections, so a few probes may all land on one of them; a
    worker that never got a request has no connections and, with ``heartbeat_interval``, no
    background runner yet. Measuring from there would understate the steady state.
    """
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=4 * workers) as pool:
        while True:
            connected = _workers_connected(service.server.pid, service.pg.port)
            if connected >= workers or time.monotonic() > deadline:
                break
            list(pool.map(_heartbeat_status, [service.port] * (4 * workers)))
            time.sleep(0.2)
    status, body = _get(service.port, "/__heartbeat__")
    if status != 200:
        raise RuntimeError(f"the heartbeat is not healthy ({status}): {body.decode()[:500]}")
    return connected


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Row:
    """One measured rate of one setup; ``rate`` 0 is the idle baseline, no probes at all."""

    setup: str
    rate: float
    sent: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statements_per_s: float = 0.0
    transactions_per_s: float = 0.0
    pings_per_s: float = 0.0

    def per_heartbeat(self, per_s: float) -> Optional[float]:
        return per_s / self.rate if self.rate else None

    def latency(self, quantile: float) -> Optional[float]:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    def record(
        self, before: collections.Counter[str], after: collections.Counter[str], seconds: float
    ) -> None:
        self.statements_per_s = (after[STATEMENTS] - before[STATEMENTS]) / seconds
        self.transactions_per_s = (after[TRANSACTIONS] - before[TRANSACTIONS]) / seconds
        self.pings_per_s = (after[PINGS] - before[PINGS]) / seconds


@dataclass
class Life:
    """One service's whole life as the servers counted it, and as its relays did."""

    setup: str
    server_transactions: int
    relay_transactions: int
    pg_connections: int
    server_pings: int
    relay_pings: int
    disturbed: bool


def probe(port: int, rate: float, duration: float, row: Row) -> None:
    """Send ``rate`` heartbeats a second for ``duration`` seconds, each on a connection of its
    own at its scheduled time, whether or not the previous ones were answered (a kubelet does
    not wait either), then wait out the last one's share of the window."""
    count = max(1, round(rate * duration))

    def one() -> tuple[int, float]:
        started = time.perf_counter()
        status = _heartbeat_status(port)
        return status, (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(max_workers=min(64, max(4, int(rate)))) as pool:
        start = time.monotonic()
        futures = []
        for index in range(count):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one))
        late = time.monotonic() - (start + (count - 1) / rate)
        answers = [future.result() for future in futures]
    time.sleep(max(0.0, start + count / rate - time.monotonic()))
    if late > 1:
        print(f"    (the prober fell {late:.1f} s behind its schedule)", flush=True)
    row.sent = count
    row.ok = sum(status == 200 for status, _ in answers)
    row.latencies_ms = [latency for _, latency in answers]


def measure(
    setup: Setup, backends: Backends, options: argparse.Namespace, rates: list[float]
) -> tuple[list[Row], Life]:
    """One service for the setup: once every worker has run its checks, an idle window, then
    each rate in turn, each counted by the relays from its first probe to the end of its
    window; and the servers' own count over the service's life."""
    rows = []
    before_life = backends.read_when_flushed()
    with serve(setup, backends, options.workers, options.threads) as service:
        connected = warm_up(service, options.workers)
        print(
            f"  {setup.label}: {connected} of {options.workers} workers have run their checks",
            flush=True,
        )
        idle = Row(setup.label, 0.0)
        before = service.counts()
        time.sleep(options.idle)
        idle.record(before, service.counts(), options.idle)
        rows.append(idle)
        _print_row(idle)
        for rate in rates:
            row = Row(setup.label, rate)
            before = service.counts()
            probe(service.port, rate, options.duration, row)
            row.record(before, service.counts(), row.sent / rate)
            rows.append(row)
            _print_row(row)
    life_counts = service.counts()
    if life_counts[UNPARSED]:
        raise RuntimeError(
            "a relay could not read what the service sent (encryption asked for?): no figures"
        )
    after_life = backends.read_when_flushed()
    life = Life(
        setup.label,
        server_transactions=after_life.pg_transactions - before_life.pg_transactions,
        relay_transactions=life_counts[TRANSACTIONS],
        pg_connections=service.pg.counts()[CONNECTIONS],
        server_pings=after_life.redis_pings - before_life.redis_pings,
        relay_pings=life_counts[PINGS],
        disturbed=(before_life.pg_started, before_life.redis_run_id)
        != (after_life.pg_started, after_life.redis_run_id),
    )
    print(
        f"    over the service's life: PostgreSQL counted {life.server_transactions} "
        f"transactions, the relay {life.relay_transactions} in {life.pg_connections} "
        "connections; Redis counted "
        f"{life.server_pings} PINGs, the relay {life.relay_pings}"
        + (" (a server restarted: run again)" if life.disturbed else ""),
        flush=True,
    )
    return rows, life


# ---------------------------------------------------------------------------------------------
# Reporting


MEASURED_HEADERS = [
    "setup",
    "probes/s",
    "answered 200",
    "latency p50 / p99 ms",
    "PostgreSQL statements/s",
    "PostgreSQL transactions/s",
    "Redis PINGs/s",
    "per heartbeat: statements / transactions / PINGs",
]


def _number(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _cells(row: Row) -> list[str]:
    per_heartbeat = " / ".join(
        _number(row.per_heartbeat(value), 2)
        for value in (row.statements_per_s, row.transactions_per_s, row.pings_per_s)
    )
    return [
        row.setup,
        f"{row.rate:g}" if row.rate else "0 (idle)",
        f"{row.ok}/{row.sent}" if row.rate else "n/a",
        f"{_number(row.latency(0.5))} / {_number(row.latency(0.99))}" if row.rate else "n/a",
        f"{row.statements_per_s:.1f}",
        f"{row.transactions_per_s:.1f}",
        f"{row.pings_per_s:.1f}",
        per_heartbeat if row.rate else "n/a",
    ]


def _print_row(row: Row) -> None:
    cells = _cells(row)
    print(
        f"    {cells[1]:>8} probes/s {cells[2]:>9} ok {cells[3]:>13} ms"
        f"  PostgreSQL {cells[4]:>6} statements/s {cells[5]:>6} tx/s"
        f"  Redis {cells[6]:>6} PING/s  per heartbeat {cells[7]}",
        flush=True,
    )


@dataclass(frozen=True)
class RunCost:
    """What one run of the checks costs the servers, from the on-demand row at the lowest
    rate: one run per heartbeat, as no two heartbeats of a process overlap to share one."""

    statements: float
    transactions: float
    pings: float


def run_cost(rows: list[Row], on_demand: str) -> RunCost:
    lowest = min((row for row in rows if row.setup == on_demand and row.rate), key=_rate)
    return RunCost(
        lowest.statements_per_s / lowest.rate,
        lowest.transactions_per_s / lowest.rate,
        lowest.pings_per_s / lowest.rate,
    )


def _rate(row: Row) -> float:
    return row.rate


def fleet_rows(
    setups: list[Setup], cost: RunCost, pods: int, workers: int
) -> list[tuple[str, str, list[str]]]:
    """The servers' load from a fleet for each setup and probe rate per pod, on paper.

    On demand, every probe is a run (single-flight merges only the concurrent ones, rare at
    these rates per process). With a TTL of t, each process runs at most once per t, so a pod
    at most ``min(r, w / t)`` times a second. With an interval of i, each process runs w / i
    times a second, whatever the probes.
    """
    rows = []
    for setup in setups:
        if setup.interval:
            formula = f"pods x workers / {setup.interval:g} s"
        elif setup.ttl:
            formula = f"at most pods x min(r, workers / {setup.ttl:g} s)"
        else:
            formula = "pods x r"
        cells = []
        for rate, _ in FLEET_PROBE_RATES:
            if setup.interval:
                runs = pods * workers / setup.interval
            elif setup.ttl:
                runs = pods * min(rate, workers / setup.ttl)
            else:
                runs = pods * rate
            cells.append(
                f"{runs:,.0f} runs: {runs * cost.statements:,.0f} / {runs * cost.pings:,.0f}"
            )
        rows.append((setup.label, f"{formula} runs a second", cells))
    return rows


def _list_table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for cells in [headers, *rows]:
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return [*lines, ""]


def write_docs(
    path: str,
    context: str,
    rows: list[Row],
    lives: list[Life],
    cost: RunCost,
    fleet: list[tuple[str, str, list[str]]],
    pods: int,
    workers: int,
) -> None:
    """The results included by docs/probes.rst: the measured table, then the extrapolation."""
    server = sum(life.server_transactions for life in lives)
    relay = sum(life.relay_transactions for life in lives)
    connections = sum(life.pg_connections for life in lives)
    server_pings = sum(life.server_pings for life in lives)
    relay_pings = sum(life.relay_pings for life in lives)
    others = " (the rest: other clients of the server)" if server_pings != relay_pings else ""
    fleet_headers = [
        "setup",
        "check runs a second (r: probes/s per pod)",
        *(f"r = {rate:g}/s ({what})" for rate, what in FLEET_PROBE_RATES),
    ]
    lines = [
        context,
        "",
        *_list_table("Measured", MEASURED_HEADERS, [_cells(row) for row in rows]),
        "The relays count what crosses the wire, window by window. As a check, over the "
        f"services' whole lives PostgreSQL's own ``pg_stat_database`` counted {server:,} "
        f"transactions, the relays {relay:,} in {connections} connections (the server also "
        "counts each connection's start); Redis' ``commandstats`` counted "
        f"{server_pings:,} ``PING`` calls, the relays {relay_pings:,}{others}.",
        "",
        f"A run of the checks cost {cost.statements:.2f} PostgreSQL statements (the pool's "
        f"pre-ping included) in {cost.transactions:.2f} transactions, and {cost.pings:.2f} Redis "
        f"``PING``. For a fleet of {pods} pods x {workers} workers, each cell is check runs a "
        "second, then PostgreSQL statements/s / Redis PINGs/s:",
        "",
        *_list_table(
            f"Extrapolated to {pods} pods x {workers} workers",
            fleet_headers,
            [[label, formula, *cells] for label, formula, cells in fleet],
        ),
        "On demand, the load follows the probes; with ``heartbeat_interval`` it does not, but "
        "every process runs its checks every interval: pods x workers / interval runs a second, "
        "less than on demand only where a pod is probed more than workers / interval times a "
        f"second ({workers / 10:g}/s for {workers} workers and 10 s). A TTL of the same length "
        "costs no more than either.",
    ]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines).rstrip("\n") + "\n")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (4)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per rate (20)")
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle baseline (10)")
    parser.add_argument("--rates", default="1,10,100", help="probes a second (1,10,100)")
    parser.add_argument("--ttl", type=float, default=1, help="heartbeat_cache_ttl, seconds (1)")
    parser.add_argument("--interval", type=float, default=1, help="heartbeat_interval, seconds (1)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FLEET_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="an administration database to create the benchmark's from and read statistics "
        "through (FLEET_POSTGRES_URL)",
    )
    parser.add_argument("--database", default="fleet_bench", help="the service's database")
    parser.add_argument(
        "--redis",
        default=os.environ.get("FLEET_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the service's Redis (FLEET_REDIS_URL)",
    )
    parser.add_argument("--pods", type=int, default=500, help="the fleet's pods, on paper (500)")
    parser.add_argument(
        "--fleet-workers", type=int, default=8, help="workers per pod, on paper (8)"
    )
    parser.add_argument(
        "--output", default=DOCS_TABLE, help="the RST fragment to write ('-': none)"
    )
    options = parser.parse_args(argv)
    try:
        rates = [float(rate) for rate in options.rates.split(",") if rate.strip()]
    except ValueError:
        rates = []
    if not rates or min(rates) <= 0:
        parser.error("--rates must be positive numbers, comma-separated")
    if options.idle < 1 or options.duration <= 0:
        parser.error("--idle must be at least 1 and --duration above 0")

    setups = [
        Setup(
            "on demand",
            {"DOCKERFLOW_HEARTBEAT_CACHE_TTL": "0", "DOCKERFLOW_HEARTBEAT_INTERVAL": "0"},
        ),
        Setup(
            f"heartbeat_cache_ttl={options.ttl:g}",
            {
                "DOCKERFLOW_HEARTBEAT_CACHE_TTL": f"{options.ttl:g}",
                "DOCKERFLOW_HEARTBEAT_INTERVAL": "0",
            },
            ttl=options.ttl,
        ),
        Setup(
            f"heartbeat_interval={options.interval:g}",
            {
                "DOCKERFLOW_HEARTBEAT_CACHE_TTL": "0",
                "DOCKERFLOW_HEARTBEAT_INTERVAL": f"{options.interval:g}",
            },
            interval=options.interval,
        ),
    ]
    backends = Backends(options.postgres, options.database, options.redis)
    rows: list[Row] = []
    lives: list[Life] = []
    try:
        backends.prepare()
        pg_version, redis_version = backends.versions()
        context = (
            f"Measured on {datetime.date.today().isoformat()}: {options.workers} gunicorn "
            f"workers x {options.threads} threads (gthread), {options.duration:g} s per rate "
            f"and {options.idle:g} s idle, on a {os.cpu_count()}-core machine; PostgreSQL "
            f"{pg_version}, Redis {redis_version}; the example service's checks: database and "
            "migrations (both on PostgreSQL), Redis."
        )
        print(context, flush=True)
        for setup in setups:
            measured, life = measure(setup, backends, options, rates)
            rows += measured
            lives.append(life)
    finally:
        backends.close()

    cost = run_cost(rows, setups[0].label)
    # Ten seconds, a kubelet's default period, for both bounds: the same staleness.
    fleet_setups = [*setups]
    if options.ttl != 10:
        fleet_setups.append(Setup("heartbeat_cache_ttl=10", {}, ttl=10))
    if options.interval != 10:
        fleet_setups.append(Setup("heartbeat_interval=10", {}, interval=10))
    fleet = fleet_rows(fleet_setups, cost, options.pods, options.fleet_workers)
    print(
        f"\nOne run: {cost.statements:.2f} PostgreSQL statements in {cost.transactions:.2f} "
        f"transactions, {cost.pings:.2f} Redis PINGs.\n{options.pods} pods x "
        f"{options.fleet_workers} workers: check runs, PostgreSQL statements/s / Redis PINGs/s"
        ", by probes a second per pod:"
    )
    print(f"  {'':<24}" + "".join(f"{f'r = {rate:g}/s':>30}" for rate, _ in FLEET_PROBE_RATES))
    for label, formula, cells in fleet:
        print(f"  {label:<24}" + "".join(f"{cell:>30}" for cell in cells) + f"   {formula}")
    if any(life.disturbed for life in lives):
        print("\nA server restarted during the measurements: run again.")
    if options.output != "-":
        write_docs(
            options.output, context, rows, lives, cost, fleet, options.pods, options.fleet_workers
        )
        print(f"\nWrote {os.path.relpath(options.output, ROOT)}")
    return 1 if any(life.disturbed for life in lives) else 0


if __name__ == "__main__":
    sys.exit(main())
