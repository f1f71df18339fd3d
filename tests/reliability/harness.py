"""Serving ``served_app`` (or ``fork_app``) under gunicorn or uWSGI, driving it with keep-alive
clients, reading its log.

Shared by the reliability tests and by ``soak.py``. Nothing here asserts: it starts and stops
servers, sends requests and parses log lines, and the callers decide what must hold.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from server_process import HOST, ServerProcess, unused_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLE_APP = REPO / "example_app"
GUNICORN = Path(sys.executable).parent / "gunicorn"
UWSGI = Path(sys.executable).parent / "uwsgi"
DOCKERFLOW_CLI = Path(sys.executable).parent / "dockerflow-wsgi"

MOZLOG_KEYS = frozenset(
    {"Timestamp", "Type", "Logger", "Hostname", "EnvVersion", "Severity", "Pid", "Fields"}
)
#: Summary fields whose value comes from the client, clipped by ``summary.clip``.
CLIENT_FIELDS = ("agent", "lang", "method", "path", "uid", "querystring")

#: The ``version.json`` the services start with.
VERSION = {
    "source": "https://github.com/example/dockerflow-wsgi",
    "version": "1.2.3",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/42",
}

STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0

# Variables of the developer's or CI's environment that would change what is tested.
_FOREIGN_VARIABLES = frozenset(
    {"PORT", "WEB_CONCURRENCY", "DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG", "LOG_LEVEL"}
)
_FOREIGN_PREFIXES = ("DOCKERFLOW_", "GUNICORN_", "UWSGI_", "RELIABILITY_")


#: What the suite did, for the closing report: requests sent and answered, lines logged,
#: faults injected and recovered from. Add with :func:`tally`.
TALLY: collections.Counter[str] = collections.Counter()
_tally_lock = threading.Lock()


def tally(key: str, count: int = 1) -> None:
    with _tally_lock:
        TALLY[key] += count


def server_environment(pythonpath: Iterable[str] = (), **variables: str) -> dict[str, str]:
    """This process's environment without what would change the service, plus ``variables``.

    ``PYTHONPATH`` holds the repository (for ``example_app``) after ``pythonpath``.
    """
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_VARIABLES and not name.startswith(_FOREIGN_PREFIXES)
    }
    environ["PYTHONPATH"] = os.pathsep.join([*pythonpath, str(REPO)])
    environ.update(variables)
    return environ


def install_plugin(directory: Path, distribution: str, check: str, source: str) -> None:
    """Install, in ``directory``, a distribution publishing ``check`` as an entry point of the
    ``dockerflow_wsgi.checks`` group: ``check = {check}_health:check``, with ``source`` as
    that module. Put ``directory`` on the service's ``PYTHONPATH``.
    """
    module = f"{check}_health"
    info = directory / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[dockerflow_wsgi.checks]\n{check} = {module}:check\n", encoding="utf-8"
    )
    (directory / f"{module}.py").write_text(source, encoding="utf-8")


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP response, as the client received it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    elapsed: float

    def header(self, name: str) -> Optional[str]:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP/1.1 connection to ``127.0.0.1:port``, reopened after a failure."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout
        self._connection: Optional[http.client.HTTPConnection] = None
        self._answered_on_connection = 0

    def connect(self) -> None:
        """Open the connection now rather than with the first request."""
        if self._connection is None:
            self._connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            self._connection.connect()
        except BaseException:
            self.close()
            raise

    def request(
        self,
        method: str,
        path: str,
        headers: Optional[Mapping[str, str]] = None,
        body: Optional[bytes] = None,
    ) -> Answer:
        started = time.monotonic()
        if self._connection is None:
            # Connected first, so that a refused connection is not counted as a request.
            self.connect()
        assert self._connection is not None
        tally("requests sent")
        reused = self._answered_on_connection > 0
        try:
            response, data = self._exchange(method, path, headers, body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            # The server closed this keep-alive connection while it was idle (gunicorn's
            # keepalive timeout) and never saw the request: as HTTP clients do, send it
            # once more on a new connection. It is still one request.
            self.connect()
            try:
                response, data = self._exchange(method, path, headers, body)
            except BaseException:
                self.close()
                raise
        except BaseException:
            self.close()
            raise
        self._answered_on_connection += 1
        tally("requests answered")
        if response.will_close:
            self.close()
        return Answer(response.status, response.getheaders(), data, time.monotonic() - started)

    def _exchange(
        self,
        method: str,
        path: str,
        headers: Optional[Mapping[str, str]],
        body: Optional[bytes],
    ) -> tuple[http.client.HTTPResponse, bytes]:
        assert self._connection is not None
        self._connection.request(method, path, body=body, headers=dict(headers or {}))
        response = self._connection.getresponse()
        return response, response.read()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._answered_on_connection = 0


def fetch(port: int, method: str, path: str, **headers: str) -> Answer:
    """One request on a connection of its own, which the server closes after answering."""
    client = Client(port)
    try:
        return client.request(method, path, {"Connection": "close", **headers})
    finally:
        client.close()


# -- servers -------------------------------------------------------------------------------------


class Server:
    """A WSGI server serving ``app`` (a ``module:attribute`` of this directory).

    Bound to a free loopback port, in its own session (so that it and its workers can be
    killed together), with stdout and stderr in files of ``workdir``. A subclass gives the
    command line and says when every worker is ready.
    """

    name = "server"

    def __init__(
        self,
        workdir: Path,
        environ: Mapping[str, str],
        *,
        app: str = "served_app:app",
        workers: int = 1,
        threads: int = 8,
    ) -> None:
        self.workdir = workdir
        self.environ = dict(environ)
        self.app = app
        self.workers = workers
        self.threads = threads
        self.port = unused_port()
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.process: Optional[ServerProcess] = None
        #: Ids of the requests the harness sent itself: readiness probes, stats.
        self.own_ids: list[str] = []

    @property
    def command(self) -> list[str]:
        raise NotImplementedError

    def workers_ready(self) -> bool:
        """Whether the server's log says that every worker is serving."""
        raise NotImplementedError

    def start(self) -> None:
        """Start, then wait until every worker has booted and one answers a probe."""
        self.process = ServerProcess(
            self.command,
            cwd=HERE,
            env=self.environ,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
            name=self.name,
        ).start()
        answered = False

        def ready() -> bool:
            nonlocal answered
            if not answered:
                probe_id = f"ready-{len(self.own_ids)}"
                self.own_ids.append(probe_id)
                answered = (
                    fetch(self.port, "GET", "/__lbheartbeat__", **{"X-Request-ID": probe_id})
                ).status == 200
            return answered and self.workers_ready()

        self.process.wait_until(ready, STARTUP_TIMEOUT, interval=0.1)

    def stop(self) -> int:
        """SIGTERM, and wait for a graceful exit; killed (and an error) if it does not come."""
        assert self.process is not None
        returncode = self.process.stop(SHUTDOWN_TIMEOUT)
        if returncode is None:
            raise RuntimeError(f"{self.name} did not stop within {SHUTDOWN_TIMEOUT:g} s of SIGTERM")
        return returncode

    def kill(self) -> None:
        """Kill the server and its workers (its session), if it still runs."""
        if self.process is not None:
            self.process.kill()

    def running(self) -> bool:
        """Whether the process started (gunicorn's or uWSGI's master) still runs."""
        return self.process is not None and self.process.running()

    def worker_pids(self) -> set[int]:
        """The processes the master has now: its workers."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return {int(pid) for pid in children.read_text(encoding="ascii").split()}
        except FileNotFoundError:
            return set()

    def stdout_lines(self) -> list[str]:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The stdout lines that are JSON objects (see :func:`log_problems` for the others)."""
        return parse_lines(self.stdout_lines())[0]

    def summaries(self, request_id: str) -> list[dict[str, Any]]:
        return summaries_of(self.records(), request_id)

    def wait_for_summary(self, request_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The summary lines of ``request_id``, once at least one is written.

        A client may have the whole response before the server closes it and logs.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.summaries(request_id)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        """``/_reliability/stats`` of the worker that answers (``RELIABILITY_PROBES=1``)."""
        request_id = f"stats-{len(self.own_ids)}"
        self.own_ids.append(request_id)
        answer = fetch(self.port, "GET", "/_reliability/stats", **{"X-Request-ID": request_id})
        assert answer.status == 200, answer
        return answer.json()


class Gunicorn(Server):
    """gunicorn, configured by ``example_app/gunicorn.conf.py`` (gthread workers by default).

    ``worker_class`` replaces the config file's; ``sync`` needs ``threads=1``, as gunicorn
    runs gthread workers for any more. ``preload`` imports the app once, in the master, and
    forks the workers from it.
    """

    name = "gunicorn"

    def __init__(
        self,
        workdir: Path,
        environ: Mapping[str, str],
        *,
        app: str = "served_app:app",
        workers: int = 1,
        threads: int = 8,
        worker_class: Optional[str] = None,
        preload: bool = False,
    ) -> None:
        if worker_class == "sync" and threads != 1:
            raise ValueError("gunicorn runs gthread workers for more than one thread")
        super().__init__(workdir, environ, app=app, workers=workers, threads=threads)
        self.worker_class = worker_class
        self.preload = preload

    @property
    def command(self) -> list[str]:
        options = [
            "--config",
            str(EXAMPLE_APP / "gunicorn.conf.py"),
            "--chdir",
            str(HERE),
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            # Clients pause between phases of a test; their connections must outlive that.
            "--keep-alive",
            "60",
        ]
        if self.worker_class is not None:
            options += ["--worker-class", self.worker_class]
        if self.preload:
            options.append("--preload")
        return [str(GUNICORN), *options, self.app]

    def workers_ready(self) -> bool:
        return self.stderr_text().count("Booting worker") >= self.workers


class Uwsgi(Server):
    """uWSGI with the settings of ``example_app/uwsgi.ini`` that matter here.

    An HTTP socket, a master, ``workers`` processes of ``threads`` threads with Python
    threads enabled, a graceful stop on SIGTERM. With ``lazy_apps`` (the example's setting)
    each worker imports the app itself; without it the master imports it once and forks the
    workers from it, in C, where Python's fork hooks never run.
    """

    name = "uwsgi"

    def __init__(
        self,
        workdir: Path,
        environ: Mapping[str, str],
        *,
        app: str = "served_app:app",
        workers: int = 1,
        threads: int = 4,
        lazy_apps: bool = True,
    ) -> None:
        super().__init__(workdir, environ, app=app, workers=workers, threads=threads)
        self.lazy_apps = lazy_apps

    @property
    def command(self) -> list[str]:
        options = [
            "--strict",
            "--http-socket",
            f"{HOST}:{self.port}",
            "--chdir",
            str(HERE),
            "--module",
            self.app,
            "--need-app",
            "--master",
            "--processes",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--enable-threads",
            "--single-interpreter",
            "--die-on-term",
            "--hook-master-start",
            "unix_signal:15 gracefully_kill_them_all",
            "--disable-logging",
        ]
        if self.lazy_apps:
            options.append("--lazy-apps")
        return [str(UWSGI), *options]

    def workers_ready(self) -> bool:
        # uWSGI 2.0 ignores a graceful stop while a worker still imports the app: the test
        # waits until each one that imports it has.
        log = self.stderr_text()
        imports = self.workers if self.lazy_apps else 1
        return (
            log.count("spawned uWSGI worker") >= self.workers
            and log.count("WSGI app 0 (mountpoint='') ready in") >= imports
        )


# -- the log -------------------------------------------------------------------------------------


def parse_lines(lines: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The lines that are JSON objects, and the lines that are not."""
    records: list[dict[str, Any]] = []
    bad: list[str] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(line)
    return records, bad


def mozlog_problem(record: dict[str, Any]) -> Optional[str]:
    """Why ``record`` is not a mozlog line as DESIGN.md defines it, or ``None``."""
    if set(record) != MOZLOG_KEYS:
        return f"keys {sorted(record)}"
    if record["EnvVersion"] != "2.0" or not isinstance(record["Timestamp"], int):
        return "EnvVersion or Timestamp"
    fields = record["Fields"]
    if not isinstance(fields, dict):
        return "Fields is not an object"
    nested = [key for key, value in fields.items() if isinstance(value, dict)]
    if nested:
        return f"objects nested in Fields: {nested}"
    return None


def log_problems(lines: Iterable[str]) -> list[str]:
    """Every line of ``lines`` that is not one mozlog JSON object, with what is wrong."""
    problems = []
    for line in lines:
        records, bad = parse_lines([line])
        if bad:
            problems.append(f"not a JSON object: {line[:300]!r}")
        elif (problem := mozlog_problem(records[0])) is not None:
            problems.append(f"{problem}: {line[:300]!r}")
    return problems


def is_summary(record: dict[str, Any]) -> bool:
    return record.get("Type") == "request.summary"


def summaries_of(records: Iterable[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [r for r in records if is_summary(r) and r["Fields"].get("rid") == request_id]


# -- load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One kind of request of the load, and the status it must get."""

    name: str
    method: str
    path: str
    expected: int
    payload: Any = None

    def body(self) -> Optional[bytes]:
        return None if self.payload is None else json.dumps(self.payload).encode()


NOTE_TEXT = "a note from the load"

#: The example app's routes and the Dockerflow paths, with how often each is sent.
MIXED_ROUTES: tuple[tuple[Route, int], ...] = (
    (Route("hello", "GET", "/", 200), 20),
    (Route("list", "GET", "/notes", 200), 5),
    (Route("create", "POST", "/notes", 201, {"text": NOTE_TEXT}), 3),
    (Route("invalid", "POST", "/notes", 400, {"text": ""}), 3),
    (Route("stream", "GET", "/stream", 200), 12),
    (Route("boom", "GET", "/boom", 500), 5),
    (Route("missing", "GET", "/no/such/page", 404), 4),
    (Route("lbheartbeat", "GET", "/__lbheartbeat__", 200), 20),
    (Route("heartbeat", "GET", "/__heartbeat__", 200), 8),
    (Route("version", "GET", "/__version__", 200), 8),
    (Route("version_head", "HEAD", "/__version__", 200), 2),
    (Route("refused", "POST", "/__heartbeat__", 405), 2),
)


@dataclass
class Exchange:
    """A request of the load and what came back (``error`` when nothing usable did)."""

    route: Route
    sent_id: Optional[str]
    client: int
    status: Optional[int] = None
    echoed: Optional[str] = None
    body: bytes = b""
    elapsed: float = 0.0
    #: ``time.monotonic()`` when the answer (or the failure) came.
    finished: float = 0.0
    error: Optional[str] = None

    @property
    def request_id(self) -> Optional[str]:
        """The id the server used: the one sent, or the one it made and echoed."""
        return self.echoed if self.sent_id is None else self.sent_id


@dataclass
class Load:
    """Concurrent keep-alive clients sending a mix of routes.

    Each client sends up to ``per_client`` requests, stops early when ``stop`` is set, and
    never sends after ``deadline`` (seconds from :meth:`start`). Every ``anonymous_every``-th
    request carries no request id, so that the server makes one (0: none of them); the others
    carry ``{prefix}-{client}-{n}``. ``record`` receives each :class:`Exchange`; by default
    they are kept in ``exchanges``.
    """

    port: int
    clients: int
    per_client: int
    deadline: float
    routes: tuple[tuple[Route, int], ...] = MIXED_ROUTES
    prefix: str = "load"
    anonymous_every: int = 3
    seed: int = 0
    record: Optional[Callable[[Exchange], None]] = None
    keep_bodies: bool = True
    exchanges: list[Exchange] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        ends = time.monotonic() + self.deadline
        for number in range(self.clients):
            thread = threading.Thread(
                target=self._client, args=(number, ends), name=f"load-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def join(self) -> Load:
        """Wait for every client (at most the deadline plus one request's timeout)."""
        for thread in self._threads:
            thread.join(self.deadline + REQUEST_TIMEOUT + 5)
        if any(thread.is_alive() for thread in self._threads):
            raise RuntimeError("a load client is stuck")
        return self

    def run(self) -> Load:
        return self.start().join()

    def _client(self, number: int, ends: float) -> None:
        chooser = random.Random(self.seed * 1000 + number)
        routes = [route for route, _ in self.routes]
        weights = [weight for _, weight in self.routes]
        client = Client(self.port)
        try:
            for sequence in range(self.per_client):
                if self.stop.is_set():
                    break
                if time.monotonic() > ends:
                    self.timed_out = True
                    break
                route = chooser.choices(routes, weights)[0]
                every = self.anonymous_every
                anonymous = every > 0 and sequence % every == every - 1
                sent_id = None if anonymous else f"{self.prefix}-{number}-{sequence}"
                self._deliver(self._send(client, number, route, sent_id))
        finally:
            client.close()

    def _send(self, client: Client, number: int, route: Route, sent_id: Optional[str]) -> Exchange:
        exchange = Exchange(route, sent_id, number)
        headers = {"User-Agent": f"reliability-load/{number}", "Accept-Language": "en"}
        if sent_id is not None:
            headers["X-Request-ID"] = sent_id
        if route.payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = client.request(route.method, route.path, headers, route.body())
        except Exception as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            exchange.finished = time.monotonic()
            return exchange
        exchange.finished = time.monotonic()
        exchange.status = answer.status
        exchange.echoed = answer.header("X-Request-ID")
        exchange.elapsed = answer.elapsed
        if self.keep_bodies:
            exchange.body = answer.body
        return exchange

    def _deliver(self, exchange: Exchange) -> None:
        if self.record is not None:
            self.record(exchange)
            return
        with self._lock:
            self.exchanges.append(exchange)


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something true; that value, or ``None`` at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def proc_status(pid: int) -> dict[str, int]:
    """RSS (KiB), threads and open file descriptors of process ``pid``."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return {
        "rss_kib": values["VmRSS"],
        "threads": values["Threads"],
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def iter_lines(path: Path) -> Iterator[str]:
    """The lines of a (possibly large) log file, one at a time."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            yield line.rstrip("\n")
