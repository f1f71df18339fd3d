"""Rolling restarts behind a real load balancer, with and without a drain (``make drain-bench``).

Debian's HAProxy, on loopback, in front of two instances of a service, health-checking
``/__lbheartbeat__``; a steady stream of requests through it (half on keep-alive connections,
half on a new connection each, GETs and POSTs); and rolling restarts: stop instance A, start it
again, wait until HAProxy has it up again, then the same for B. Every error a client sees is
counted. Each server is measured in three ways of stopping an instance:

* ``sigterm``: SIGTERM alone, what an orchestrator does without a ``preStop`` hook;
* ``drain``: ``dockerflow-wsgi drain --seconds S`` first (a Kubernetes ``preStop`` hook), then
  SIGTERM;
* ``hook``: SIGTERM alone, to a gunicorn whose ``when_ready`` is ``on_sigterm_drain``
  (``DOCKERFLOW_DRAIN_SECONDS=S``); for uvicorn, gunicorn with uvicorn's worker class.

The servers: the example service (``example_app/``, Flask, SQLite in a temporary folder) under
gunicorn with two gthread workers, and a Starlette app (``drain_bench_asgi.py``) under uvicorn
with two workers. Each instance has its own ``DOCKERFLOW_STATE_DIR``: two instances on one host
are two pods, and a mark drains every process that shares its folder.

HAProxy's configuration (:data:`HAPROXY_CONFIG`) is a typical production one, nothing in it
tuned to hide errors: ``retries 3`` and ``option redispatch`` (HAProxy's default ``retry-on
connect-failure``: a request already sent to a server is never sent again), checks every
500 ms, down after 2 failures, up after 2 successes.

What a client sees, by kind: ``502`` (HAProxy had sent the request and the server closed the
connection without an answer: HAProxy's log says ``SH--``), ``503``/``504`` (no server, or
none in time), ``reset`` (the connection closed with no answer: on a keep-alive connection this
is HAProxy's own doing when a request it sent on a reused server connection fails, its
``abort_keep_alive``: it closes the client's connection without a word and without a log line,
"the client is required to retry"; the bench's clients do not retry, POSTs least of all),
``refused``, ``timeout`` (10 s), ``connection`` (any other socket error), ``5xx`` and ``other``
(any other answer than 200 and 201). Beside them, for each mode, how many stops HAProxy had
taken the instance out of its rotation before it stopped listening (``out first``; HAProxy's
status is read every 50 ms), by how much at least (``margin``), and how many requests HAProxy
had to send again after a failed connection to the stopped instance (``retried``, from its log:
no error for the client, but the time of a connection attempt and a retry).

Everything runs on loopback, on ports free at the time, in a temporary folder removed at the
end (``--keep`` keeps it, with every server's log and HAProxy's log of failed requests). Every
process started is stopped at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE_CONFIG = os.path.join(ROOT, "example_app", "gunicorn.conf.py")

SERVERS = ("gunicorn", "uvicorn")
#: ``dockerflow-wsgi drain``, from this checkout (its folder is first on ``PYTHONPATH``).
DRAIN_COMMAND = (sys.executable, "-m", "dockerflow_wsgi", "drain")
MODES = ("sigterm", "drain", "hook")

#: HAProxy's configuration; the bench fills in the folder and the ports.
HAPROXY_CONFIG = """\
global
    maxconn 4096
    stats socket {folder}/haproxy.sock mode 600 level admin
    log stderr format raw local0

defaults
    mode http
    log global
    option httplog
    # Only what failed is logged: a 5xx, a connection error, a retry or a redispatch.
    option dontlog-normal
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
    retries 3
    option redispatch

frontend service
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /__lbheartbeat__
    default-server inter 500ms fall 2 rise 2
    server a 127.0.0.1:{port_a} check
    server b 127.0.0.1:{port_b} check
"""

#: Why a client's request failed, by the exception it raised.
_ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "refused"),
    (TimeoutError, "timeout"),
    (socket.timeout, "timeout"),
    (ConnectionResetError, "reset"),
    (BrokenPipeError, "reset"),
    (http.client.RemoteDisconnected, "reset"),
    (http.client.IncompleteRead, "reset"),
    (http.client.BadStatusLine, "reset"),
    (OSError, "connection"),
    (http.client.HTTPException, "connection"),
)
#: The columns of the table, in order: every kind a client may see.
ERROR_COLUMNS = ("502", "503", "504", "5xx", "other", "reset", "refused", "timeout", "connection")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def python_environment(**extra: str) -> dict[str, str]:
    """The environment of every process the bench starts: this checkout's package first."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [environ.get("PYTHONPATH")])])
    environ.update(extra)
    return environ


def stop_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop ``process`` and everything in its process group: SIGTERM, then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Workers the leader left behind go too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)


class HAProxy:
    """HAProxy in the foreground, its state read over its stats socket."""

    def __init__(self, executable: str, folder: str, port_a: int, port_b: int) -> None:
        self.folder = folder
        self.port = free_port()
        self.config = HAPROXY_CONFIG.format(
            folder=folder, port=self.port, port_a=port_a, port_b=port_b
        )
        path = os.path.join(folder, "haproxy.cfg")
        with open(path, "w") as file:
            file.write(self.config)
        self.log = open(os.path.join(folder, "haproxy.log"), "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [executable, "-db", "-f", path],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(folder, "haproxy.sock")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not start; see {self.log.name}")
            time.sleep(0.05)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as stats:
            stats.settimeout(5)
            stats.connect(os.path.join(self.folder, "haproxy.sock"))
            stats.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := stats.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """Each server's row of ``show stat``: its ``status`` (``UP``, ``DOWN``, ``UP 1/2``…),
        its failed checks (``chkfail``), its falls to ``DOWN`` (``chkdown``)…"""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "instances" and row.get("svname") in ("a", "b"):
                rows[row["svname"]] = row
        return rows

    def failures(self, server: str) -> tuple[int, int]:
        """How many checks of ``server`` failed, and how often it went down, so far."""
        row = self.servers()[server]
        return int(row["chkfail"] or 0), int(row["chkdown"] or 0)

    def status(self) -> dict[str, str]:
        return {name: row["status"] for name, row in self.servers().items()}

    def wait_for(self, server: str, wanted: str, timeout: float = 60.0) -> float:
        """Wait until HAProxy has ``server`` in the status ``wanted``; the seconds it took."""
        start = time.monotonic()
        while (status := self.status().get(server)) != wanted:
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"HAProxy still has {server} {status}, not {wanted}")
            time.sleep(0.05)
        return time.monotonic() - start

    def log_size(self) -> int:
        return os.path.getsize(self.log.name)

    def retried_since(self, offset: int) -> tuple[int, int]:
        """How many requests HAProxy logged since ``offset`` in its log as sent again to a
        server after a failed connection: (retried, of which redispatched to the other).
        The client saw no error for these: ``retries`` and ``option redispatch`` hid it."""
        with open(self.log.name, "rb") as file:
            file.seek(offset)
            lines = file.read().decode(errors="replace").splitlines()
        retried = redispatched = 0
        for line in lines:
            fields = line.split()
            # The request lines of "option httplog": the connection counts are the 11th field,
            # "actconn/feconn/beconn/srv_conn/retries", retries with "+" when redispatched.
            if len(fields) > 10 and fields[0].startswith("127.0.0.1:"):
                retries = fields[10].rsplit("/", 1)[-1]
                if retries not in ("0", ""):
                    retried += 1
                    redispatched += retries.startswith("+")
        return retried, redispatched

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


class Instance:
    """One instance of the service (one pod): a server with its own state folder."""

    def __init__(
        self, name: str, server: str, mode: str, port: int, folder: str, drain_seconds: float
    ) -> None:
        self.name = name
        self.server = server
        self.mode = mode
        self.port = port
        self.drain_seconds = drain_seconds
        self.state_dir = os.path.join(folder, f"state-{name}")
        self.log_path = os.path.join(folder, f"{server}-{mode}-{name}.log")
        self.folder = folder
        self.process: Optional[subprocess.Popen] = None
        self.config_path = os.path.join(folder, f"{server}-{mode}-{name}.gunicorn.conf.py")

    def _write_gunicorn_config(self) -> None:
        """The gunicorn settings of this instance: the example's own (gthread, its app), or
        uvicorn's worker class for the ASGI app; two workers, this instance's port; the drain
        hook in the ``hook`` mode."""
        lines = []
        if self.server == "gunicorn":
            lines += [
                "import runpy",
                f"example = runpy.run_path({EXAMPLE_CONFIG!r})",
                "globals().update((k, v) for k, v in example.items() if not k.startswith('_'))",
            ]
        else:
            lines += [
                f"chdir = {HERE!r}",
                "wsgi_app = 'drain_bench_asgi:app'",
                "worker_class = 'uvicorn.workers.UvicornWorker'",
                "errorlog = '-'",
                "control_socket_disable = True",
            ]
        lines += [f"bind = '127.0.0.1:{self.port}'", "workers = 2"]
        if self.mode == "hook":
            lines += [
                "from dockerflow_wsgi.gunicorn import on_sigterm_drain",
                "when_ready = on_sigterm_drain",
            ]
        with open(self.config_path, "w") as file:
            file.write("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        python = sys.executable
        if self.server == "uvicorn" and self.mode != "hook":
            return [
                python,
                "-m",
                "uvicorn",
                "--app-dir",
                HERE,
                "drain_bench_asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "2",
                "--no-access-log",
            ]
        self._write_gunicorn_config()
        return [python, "-m", "gunicorn", "--config", self.config_path]

    def cancel_drain(self) -> None:
        """Remove a drain mark left in this instance's folder.

        ``dockerflow-wsgi drain`` leaves its mark after the server has stopped: in a real pod
        the container's files go with it, but here the next server starts on the same folder
        and would drain from its first probe (``on_sigterm_drain`` removes its own mark when
        the master exits; the command's mark is nobody's to remove).
        """
        subprocess.run(
            [*DRAIN_COMMAND, "--cancel", "--state-dir", self.state_dir],
            env=python_environment(),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.cancel_drain()
        environ = python_environment(
            DOCKERFLOW_STATE_DIR=self.state_dir,
            DOCKERFLOW_DRAIN_SECONDS=f"{self.drain_seconds:g}",
            DATABASE_URL=f"sqlite:///{os.path.join(self.folder, 'notes.sqlite3')}",
            # The example's workers: two of them (also set in the config), four threads each.
            WEB_CONCURRENCY="2",
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.folder,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the new server answers its ``/__lbheartbeat__`` itself with ``200`` (what
        an orchestrator's readiness probe waits for)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready in {timeout:g} s; see {self.log_path}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", "/__lbheartbeat__")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            time.sleep(0.1)

    def drain(self) -> None:
        """What a ``preStop`` hook does before the orchestrator's SIGTERM: the command."""
        subprocess.run(
            [*DRAIN_COMMAND, "--seconds", f"{self.drain_seconds:g}", "--state-dir", self.state_dir],
            env=python_environment(),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def terminate(self, timeout: float = 60.0) -> None:
        """SIGTERM to the server's main process (what a container's PID 1 gets), and wait."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            progress(f"  {self.name} did not stop within {timeout:g} s: killed")
        stop_group(self.process)

    def kill(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=2.0)


@dataclass
class Counts:
    """What the clients saw: requests, and errors by kind with when they happened."""

    requests: int = 0
    ok: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    # (seconds since the start, kind, method, whether on a keep-alive connection)
    error_log: list = field(default_factory=list)


class Load:
    """Clients sending a steady stream through HAProxy, on threads with ``http.client``.

    Half of the clients keep their connection open between requests (and open a new one when
    it fails), half open a new connection for each request. Each client alternates ``GET /``
    and ``POST /notes`` (a small JSON body), at its share of ``rate``, on a fixed schedule: a
    slow answer makes the next request go at once, not the stream thinner.
    """

    BODY = json.dumps({"text": "drain bench"}).encode()

    def __init__(
        self, port: int, rate: float, clients: int, start_time: float, timeout: float = 10.0
    ) -> None:
        self.port = port
        self.interval = clients / rate
        self.clients = clients
        self.timeout = timeout
        self.counts = Counts()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: What the times of the errors count from.
        self.start_time = start_time

    def start(self) -> None:
        for number in range(self.clients):
            thread = threading.Thread(
                target=self._client, args=(number, number % 2 == 0), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> Counts:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.counts

    def _record(self, kind: Optional[str], method: str, keep_alive: bool) -> None:
        with self._lock:
            self.counts.requests += 1
            if kind is None:
                self.counts.ok += 1
            else:
                self.counts.errors[kind] += 1
                self.counts.error_log.append(
                    (round(time.monotonic() - self.start_time, 3), kind, method, keep_alive)
                )

    def _client(self, number: int, keep_alive: bool) -> None:
        connection: Optional[http.client.HTTPConnection] = None
        # The clients start spread over one interval, not all at once.
        due = time.monotonic() + self.interval * number / self.clients
        sent = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 1.0:
                due = now  # more than a second behind: start the schedule again, no burst
            due += self.interval
            method = "POST" if sent % 2 else "GET"
            sent += 1
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, self.timeout)
            kind = None
            try:
                if method == "POST":
                    headers = {"Content-Type": "application/json"}
                    connection.request("POST", "/notes", self.BODY, headers)
                else:
                    connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                if response.status not in (200, 201):
                    kind = str(response.status)
                    if kind not in ERROR_COLUMNS:
                        kind = "5xx" if response.status >= 500 else "other"
            except (OSError, http.client.HTTPException) as exc:
                kind = next(name for cls, name in _ERROR_KINDS if isinstance(exc, cls))
                connection.close()
                connection = None
            if not keep_alive and connection is not None:
                connection.close()
                connection = None
            self._record(kind, method, keep_alive)
        if connection is not None:
            connection.close()


class Timeline:
    """What happened during one mode, in seconds since the load started: the bench's steps and
    each change of HAProxy's status of a server (read every 50 ms)."""

    def __init__(self, haproxy: HAProxy) -> None:
        self.haproxy = haproxy
        self.events: list[tuple[float, str, str]] = []
        self.start_time = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def add(self, server: str, what: str) -> None:
        self.events.append((round(time.monotonic() - self.start_time, 3), server, what))

    def _watch(self) -> None:
        seen: dict[str, str] = {}
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError):
                for server, status in self.haproxy.status().items():
                    if seen.get(server) != status:
                        seen[server] = status
                        self.add(server, f"HAProxy: {status}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def stops(self, listening_after_sigterm: float) -> list[dict[str, Any]]:
        """Each stop: when it began, when the server stopped listening (its SIGTERM, plus
        ``listening_after_sigterm`` for the gunicorn hook's drain) and when HAProxy had it
        ``DOWN`` (``None`` when HAProxy had it back up, or never saw it down, before the new
        server was ready: a restart quicker than two checks)."""
        stops = []
        for index, (began, server, what) in enumerate(self.events):
            if what != "stop":
                continue
            later = [event for event in self.events[index:] if event[1] == server]
            sigterm = next(time_ for time_, _, step in later if step == "SIGTERM")
            ready = next((time_ for time_, _, step in later if step == "ready"), float("inf"))
            down = next(
                (t for t, _, step in later if step == "HAProxy: DOWN" and t <= ready),
                None,
            )
            stops.append(
                {
                    "server": server,
                    "began": began,
                    "closed": round(sigterm + listening_after_sigterm, 3),
                    "down": down,
                }
            )
        return stops


def restart(instance: Instance, haproxy: HAProxy, timeline: Timeline) -> None:
    """Stop ``instance`` as its mode does, start it again, wait until it answers its probe
    itself, then until HAProxy has it ``UP`` again.

    HAProxy must have seen it gone: a stop and start quicker than HAProxy's checks would leave
    it ``UP`` all along, and the next instance would be stopped before this one serves. The
    server is down for longer than one check interval here (a stop, then an interpreter's
    start); the bench says so when HAProxy saw no failed check.
    """
    before = haproxy.failures(instance.name)
    timeline.add(instance.name, "stop")
    start = time.monotonic()
    if instance.mode == "drain":
        instance.drain()
    timeline.add(instance.name, "SIGTERM")
    instance.terminate()
    stopped = time.monotonic() - start
    timeline.add(instance.name, "exited")
    if instance.mode == "hook" and os.path.exists(os.path.join(instance.state_dir, "drain")):
        # on_sigterm_drain removes its mark when the master exits.
        progress(f"  WARNING: the gunicorn hook left its drain mark in {instance.state_dir}")
    instance.start()
    timeline.add(instance.name, "started")
    instance.wait_ready()
    timeline.add(instance.name, "ready")
    haproxy.wait_for(instance.name, "UP")
    after = haproxy.failures(instance.name)
    if after == before:
        progress(f"  WARNING: HAProxy saw no failed check of {instance.name} during its restart")
    progress(f"  {instance.name}: stopped in {stopped:.1f} s, up again")


def run_mode(
    server: str, mode: str, args: argparse.Namespace, folder: str, haproxy: HAProxy, ports: dict
) -> dict[str, Any]:
    """Both instances started afresh, the load on, ``args.restarts`` rolling restarts."""
    progress(f"{server} / {mode}: starting two instances")
    instances = [
        Instance(name, server, mode, ports[name], folder, args.drain_seconds) for name in ("a", "b")
    ]
    load = timeline = None
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
            haproxy.wait_for(instance.name, "UP")
        log_offset = haproxy.log_size()
        timeline = Timeline(haproxy)
        load = Load(haproxy.port, args.rate, args.clients, timeline.start_time)
        load.start()
        time.sleep(1.0)  # a steady stream before the first stop
        for number in range(1, args.restarts + 1):
            progress(f"{server} / {mode}: rolling restart {number}/{args.restarts}")
            for instance in instances:
                restart(instance, haproxy, timeline)
        time.sleep(1.0)
        counts = load.stop()
        elapsed = time.monotonic() - timeline.start_time
        retried, redispatched = haproxy.retried_since(log_offset)
    finally:
        if load is not None:
            load.stop()
        if timeline is not None:
            timeline.stop()
        for instance in instances:
            instance.kill()
        # The next mode starts from HAProxy's having both down, not from this mode's UP.
        with contextlib.suppress(RuntimeError, OSError):
            for instance in instances:
                haproxy.wait_for(instance.name, "DOWN", timeout=10)
    stops = timeline.stops(args.drain_seconds if mode == "hook" else 0.0)
    result = {
        "server": server,
        "mode": mode,
        "restarts": args.restarts,
        "seconds": round(elapsed, 1),
        "requests": counts.requests,
        "rate": round(counts.requests / elapsed, 1),
        "errors": sum(counts.errors.values()),
        "errors_by_kind": dict(counts.errors),
        # Requests that reached the stopped instance's closed port and that HAProxy sent
        # again (to the other instance, when redispatched): no error for the client.
        "retried_by_haproxy": retried,
        "redispatched_by_haproxy": redispatched,
        # The stops HAProxy took the instance out of its rotation before it stopped
        # listening (HAProxy's status is read every 50 ms: to that precision).
        "out_first": sum(
            stop["down"] is not None and stop["down"] < stop["closed"] for stop in stops
        ),
        # The least time between HAProxy's DOWN and the end of listening, over the stops
        # HAProxy saw (negative: HAProxy saw the instance gone only after it had stopped).
        "least_margin": min(
            (round(stop["closed"] - stop["down"], 2) for stop in stops if stop["down"]),
            default=None,
        ),
        "stops": stops,
        "error_log": counts.error_log,
        "events": timeline.events,
    }
    progress(
        f"{server} / {mode}: {result['requests']} requests, {result['errors']} errors "
        f"{dict(counts.errors) or ''}"
    )
    return result


def print_table(results: list[dict[str, Any]]) -> None:
    """One line per server and mode; ``out first`` counts the stops where HAProxy had taken the
    instance out before it stopped listening, ``margin`` is the least time by which it did."""
    header = ["server", "mode", "restarts", "requests", "req/s", "out first", "margin"]
    header += ["retried", "errors"]
    header += ERROR_COLUMNS
    rows = [
        [
            result["server"],
            result["mode"],
            str(result["restarts"]),
            str(result["requests"]),
            f"{result['rate']:.0f}",
            f"{result['out_first']}/{len(result['stops'])}",
            "-" if result["least_margin"] is None else f"{result['least_margin']:+.1f} s",
            str(result["retried_by_haproxy"]),
            str(result["errors"]),
            *(str(result["errors_by_kind"].get(kind, 0)) for kind in ERROR_COLUMNS),
        ]
        for result in results
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=10, help="rolling restarts per mode")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: one rolling restart per mode"
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma list of: " + ", ".join(SERVERS)
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma list of: " + ", ".join(MODES)
    )
    parser.add_argument(
        "--rate", type=float, default=120.0, help="requests per second, all clients together"
    )
    parser.add_argument("--clients", type=int, default=8, help="client threads (half keep-alive)")
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=2.0,
        help="the drain's wait: above HAProxy's inter * fall (1 s) with a margin",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results there as JSON too")
    parser.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs) and print its path"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.restarts = 1
    args.servers = [name for name in args.servers.split(",") if name]
    args.modes = [name for name in args.modes.split(",") if name]
    for name in args.servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
    for name in args.modes:
        if name not in MODES:
            parser.error(f"unknown mode {name!r}")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    folder = tempfile.mkdtemp(prefix="drain-bench-")
    ports = {"a": free_port(), "b": free_port()}
    haproxy = None
    results = []
    # SIGTERM to the bench stops it as Ctrl-C does: through the finally below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        haproxy = HAProxy(args.haproxy, folder, ports["a"], ports["b"])
        progress(f"HAProxy on 127.0.0.1:{haproxy.port}, instances on {ports['a']}, {ports['b']}")
        for server in args.servers:
            for mode in args.modes:
                results.append(run_mode(server, mode, args, folder, haproxy, ports))
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        if haproxy is not None:
            haproxy.stop()
        if args.keep:
            progress(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
        if results:
            print_table(results)
            if args.json:
                document = {
                    "haproxy_config": haproxy.config if haproxy else None,
                    "rate": args.rate,
                    "clients": args.clients,
                    "drain_seconds": args.drain_seconds,
                    "results": results,
                }
                with open(args.json, "w") as file:
                    json.dump(document, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
