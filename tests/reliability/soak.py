"""The long soak, ``make soak``: not part of the test suite (pytest does not collect it).

``python soak.py inprocess [--requests N]``
    N (default 10**6) requests through one ``DockerflowMiddleware`` in this process, with the
    mozlog formatter and the request id filter writing every record: app routes, a streamed
    body, a body closed half-way (a client hanging up), an app raising before and in the middle
    of its body, the three Dockerflow paths (the heartbeat with a raising check), good, bad and
    missing request ids. RSS, threads and open file descriptors are printed at the start,
    every 100 000 requests and at the end. Exit status 1 unless, between the end of the
    warm-up (the first 100 000) and the end, RSS grew less than 2 MiB and the thread and
    descriptor counts did not change, and every request was answered and logged once.

``python soak.py gunicorn [--minutes 30] [--redis-restart-every M]``
    The example under gunicorn (2 workers of 4 threads, as configured by default) with the
    Redis check, under a mixed keep-alive load for the given minutes, Redis being stopped and
    started again every M minutes (default: six times in the run). Exit status 1 unless every
    request was answered with its expected status (the heartbeat: 200, or 500 with E004 while
    Redis is down), the heartbeat came back to 200 after each restart, every request has
    exactly one ``request.summary`` line, every line is mozlog JSON, and gunicorn stops
    cleanly.

Redis is always left running, also when the run fails.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from harness import (  # noqa: E402 - after the path set-up above
    Answer,
    Client,
    Exchange,
    Gunicorn,
    Load,
    iter_lines,
    mozlog_problem,
    proc_status,
    server_environment,
)
from services import REDIS, REDIS_URL, ServerControl  # noqa: E402

from dockerflow_wsgi import DockerflowMiddleware, checks  # noqa: E402
from dockerflow_wsgi.logging import JsonLogFormatter, RequestIdLogFilter  # noqa: E402

MIB = 1024 * 1024
CHECK_TIMEOUT = 1.0


def report(label: str, figures: dict[str, Any]) -> None:
    print(f"{label:>16}  " + "  ".join(f"{key}={value}" for key, value in figures.items()))
    sys.stdout.flush()


# -- in process ----------------------------------------------------------------------------------


class AppError(Exception):
    """What the in-process app raises on purpose."""


class Body:
    """A streamed body that knows whether it was closed."""

    closed = 0

    def __init__(self, chunks: int, fail_at: int = -1) -> None:
        self.chunks = chunks
        self.fail_at = fail_at

    def __iter__(self) -> Iterator[bytes]:
        for number in range(self.chunks):
            if number == self.fail_at:
                raise AppError("mid-stream")
            yield b"chunk %d\n" % number

    def close(self) -> None:
        Body.closed += 1


app_logger = logging.getLogger("soak.app")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ["PATH_INFO"]
    if path == "/raise-before":
        raise AppError("before start_response")
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/stream":
        return Body(5)
    if path == "/hang-up":
        return Body(1000)
    if path == "/raise-mid-stream":
        return Body(5, fail_at=2)
    app_logger.info("Saying hello")
    return [b"hello"]


# (path, method, expected status, how the driver consumes the body)
IN_PROCESS_ROUTES = [
    ("/", "GET", 200, "all"),
    ("/", "GET", 200, "all"),
    ("/stream", "GET", 200, "all"),
    ("/hang-up", "GET", 200, "first"),
    ("/missing", "GET", 404, "all"),
    ("/raise-before", "GET", 500, "raises"),
    ("/raise-mid-stream", "GET", 200, "raises"),
    ("/__lbheartbeat__", "GET", 200, "all"),
    ("/__version__", "GET", 200, "all"),
    ("/__version__", "POST", 405, "all"),
]
HEARTBEAT_EVERY = 1000
REQUEST_IDS = [None, "client-id-{n}", "bad id {n}", "x" * 200, "caf\u00c3\u00a9-{n}"]


class LineCounter(logging.Handler):
    """Formats every record, as a production handler would, and counts what it wrote."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLogFormatter(logger_name="soak"))
        self.addFilter(RequestIdLogFilter())
        self.lines = 0
        self.summaries = 0
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines += 1
        if record.name == "request.summary":
            self.summaries += 1
        # Every line is checked in full now and then; each one is checked to be one line.
        if "\n" in line or (self.lines % 997 == 0 and mozlog_problem(json.loads(line))):
            self.bad.append(line[:300])


def process_figures() -> dict[str, int]:
    figures = proc_status(os.getpid())
    figures["threads_py"] = threading.active_count()
    return figures


def run_in_process(requests: int, report_every: int) -> int:
    version_dir = tempfile.mkdtemp(prefix="dockerflow-soak-")
    Path(version_dir, "version.json").write_text('{"version": "soak"}', encoding="utf-8")
    middleware = DockerflowMiddleware(
        app,
        version_path=version_dir,
        check_timeout=1,
        checks=[
            ("fine", lambda: []),
            ("slow", lambda: [checks.Warning("slow", id="soak.W001")]),
            ("fire", lambda: 1 / 0),
        ],
    )
    counter = LineCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    root.setLevel(logging.INFO)
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    wrong: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    warm: dict[str, int] = {}
    report("start", process_figures())

    for number in range(requests):
        if number % HEARTBEAT_EVERY == HEARTBEAT_EVERY - 1:
            path, method, expected, consume = "/__heartbeat__", "GET", 500, "all"
        else:
            path, method, expected, consume = IN_PROCESS_ROUTES[number % len(IN_PROCESS_ROUTES)]
        request_id = REQUEST_IDS[number % len(REQUEST_IDS)]
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": f"n={number}",
            "SERVER_NAME": "soak",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_USER_AGENT": "soak/1.0",
            "wsgi.input": BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
        }
        if request_id is not None:
            environ["HTTP_X_REQUEST_ID"] = request_id.format(n=number)
        status = drive(middleware, environ, consume)
        statuses[(path, status)] += 1
        if status != expected:
            wrong[f"{method} {path} -> {status}"] += 1
        if (number + 1) % report_every == 0:
            gc.collect()
            figures = process_figures()
            if number + 1 == report_every:
                warm = figures
            report(
                f"{number + 1:,}", {**figures, "req/s": int(number / (time.monotonic() - started))}
            )

    gc.collect()
    end = process_figures()
    report("end", end)
    root.removeHandler(counter)
    shutil.rmtree(version_dir)

    problems = []
    growth = (end["rss_kib"] - warm["rss_kib"]) * 1024
    if growth >= 2 * MIB:
        problems.append(f"RSS grew by {growth / MIB:.2f} MiB after the warm-up")
    for key in ("threads", "threads_py", "fds"):
        if end[key] != warm[key]:
            problems.append(f"{key}: {warm[key]} after the warm-up, {end[key]} at the end")
    if wrong:
        problems.append(f"unexpected statuses: {dict(wrong)}")
    if counter.summaries != requests:
        problems.append(f"{counter.summaries} summary lines for {requests} requests")
    if counter.bad:
        problems.append(f"{len(counter.bad)} bad log lines, e.g. {counter.bad[0]}")
    expected_closes = sum(
        n
        for (path, _), n in statuses.items()
        if path in ("/stream", "/hang-up", "/raise-mid-stream")
    )
    if Body.closed != expected_closes:
        problems.append(f"{Body.closed} bodies closed of {expected_closes}")
    print(
        f"in process: {requests} requests sent, {sum(statuses.values())} answered, "
        f"{counter.summaries} request.summary lines, {counter.lines} log lines, "
        f"{Body.closed} streamed bodies closed; RSS growth after warm-up "
        f"{growth / 1024:.0f} KiB; threads {warm['threads']} -> {end['threads']}; "
        f"fds {warm['fds']} -> {end['fds']}; {time.monotonic() - started:.0f} s"
    )
    for problem in problems:
        print(f"FAIL: {problem}")
    print("PASS" if not problems else "FAIL")
    return 1 if problems else 0


def drive(middleware: Any, environ: dict[str, Any], consume: str) -> int:
    """Run one request as a server does; the status it would send (500 if the app raised)."""
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append(status)
        return lambda data: None

    try:
        body = middleware(environ, start_response)
    except AppError:
        return 500
    try:
        for _ in body:
            if consume == "first":
                break
    except AppError:
        pass
    finally:
        body.close()
    return int(started[-1][:3])


# -- gunicorn ------------------------------------------------------------------------------------


class Tally:
    """What the soak's clients saw, without keeping each exchange."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = 0
        self.statuses: collections.Counter[tuple[str, int]] = collections.Counter()
        self.wrong: collections.Counter[str] = collections.Counter()
        self.samples: list[str] = []
        self.heartbeat_failures = 0
        self.last_sequence: dict[int, int] = {}

    def record(self, exchange: Exchange) -> None:
        route = exchange.route
        with self.lock:
            self.sent += 1
            self.last_sequence[exchange.client] = self.last_sequence.get(exchange.client, -1) + 1
            if exchange.status is not None:
                self.answered += 1
                self.statuses[(route.name, exchange.status)] += 1
            ok = exchange.status == route.expected
            if route.name == "heartbeat" and exchange.status == 500:
                ok = b"dockerflow.health.E004" in exchange.body
                self.heartbeat_failures += 1
            if not ok or exchange.echoed != exchange.sent_id:
                self.wrong[f"{route.name}: {exchange.status} {exchange.error or ''}"] += 1
                if len(self.samples) < 10:
                    self.samples.append(f"{exchange.sent_id} {exchange.status} {exchange.error}")


def worker_figures(server: Gunicorn) -> list[dict[str, int]]:
    assert server.process is not None
    master = server.process.pid
    figures = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if parent == master:
                figures.append({"pid": int(entry), **proc_status(int(entry))})
        except (OSError, ValueError):
            continue
    return sorted(figures, key=lambda figure: figure["pid"])


def run_gunicorn(minutes: float, restart_every: float, clients: int) -> int:
    servers = ServerControl()
    workdir = Path(tempfile.mkdtemp(prefix="dockerflow-soak-gunicorn-"))
    (workdir / "version").mkdir()
    (workdir / "version" / "version.json").write_text('{"version": "soak"}', encoding="utf-8")
    environ = server_environment(
        DATABASE_URL=f"sqlite:///{workdir / 'example.sqlite3'}",
        DOCKERFLOW_VERSION_PATH=str(workdir / "version"),
        DOCKERFLOW_CHECK_TIMEOUT=str(CHECK_TIMEOUT),
        REDIS_URL=REDIS_URL,
    )
    server = Gunicorn(workdir, environ, workers=2, threads=4)
    tally = Tally()
    problems: list[str] = []
    faults = recovered = 0
    recovery_times: list[float] = []
    try:
        servers.start(REDIS)  # running, and answering, before the service starts
        server.start()
        report("workers", {"at start": worker_figures(server)})
        duration = minutes * 60
        load = Load(
            server.port,
            clients,
            10**9,
            duration + 60,
            prefix="soak",
            anonymous_every=0,
            record=tally.record,
            keep_bodies=True,
        ).start()
        prober = Prober(server.port)
        started = time.monotonic()
        next_restart = started + restart_every * 60
        while time.monotonic() - started < duration:
            time.sleep(1)
            if time.monotonic() < next_restart or time.monotonic() - started > duration - 30:
                continue
            next_restart += restart_every * 60
            faults += 1
            servers.stop(REDIS)
            if not went_down(prober, CHECK_TIMEOUT + 4):
                problems.append(f"Redis down, and no heartbeat failed with E004 (stop {faults})")
            time.sleep(5)
            restarted = time.monotonic()
            servers.start(REDIS)
            if recover(prober, 30):
                recovered += 1
                recovery_times.append(time.monotonic() - restarted)
            else:
                problems.append(f"the heartbeat did not come back after restart {faults}")
            report(
                f"restart {faults}",
                {
                    "elapsed_s": int(time.monotonic() - started),
                    "sent": tally.sent,
                    "recovered_in_s": round(recovery_times[-1], 2) if recovery_times else None,
                    "workers": worker_figures(server),
                },
            )
        load.stop.set()
        load.join()
        if not recover(prober, 30):
            problems.append("the heartbeat is not 200 at the end")
        prober.close()
        report("workers", {"at end": worker_figures(server)})
        stop_started = time.monotonic()
        if server.stop() != 0:
            problems.append("gunicorn did not exit cleanly")
        stopped_in = time.monotonic() - stop_started
    finally:
        server.kill()
        servers.restore()

    lines, logged, bad, unknown = verify_log(server, tally)
    histogram = logged.histogram()
    if tally.sent != tally.answered:
        problems.append(f"{tally.sent - tally.answered} requests not answered")
    if tally.wrong:
        problems.append(f"unexpected answers: {dict(tally.wrong)}; e.g. {tally.samples}")
    if bad:
        problems.append(f"{len(bad)} log lines are not mozlog JSON, e.g. {bad[:3]}")
    if unknown:
        problems.append(f"summary lines of unknown requests: {unknown[:5]}")
    if histogram[1] != tally.sent:
        problems.append(f"{tally.sent} requests; requests by number of summary lines: {histogram}")
    print(
        f"gunicorn: {minutes:g} min, {tally.sent} requests sent, {tally.answered} answered, "
        f"{histogram[1]} of them with exactly one request.summary line, {lines} log lines in all; "
        f"{faults} Redis restarts, {recovered} recovered (heartbeat back to 200 in "
        f"{max(recovery_times, default=0):.2f} s at most), {tally.heartbeat_failures} "
        f"heartbeats answered 500 E004 during the outages; gunicorn stopped in {stopped_in:.1f} s"
    )
    print(
        "statuses: " + ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(tally.statuses.items()))
    )
    for problem in problems:
        print(f"FAIL: {problem}")
    if problems:
        print(f"FAIL (gunicorn's output kept in {workdir})")
        return 1
    shutil.rmtree(workdir)
    print("PASS")
    return 0


class Prober(Client):
    """The soak's own heartbeats, with ids ``hb-{n}``."""

    def __init__(self, port: int) -> None:
        super().__init__(port, timeout=30)
        self.sent = 0

    def heartbeat(self) -> Answer:
        self.sent += 1
        return self.request("GET", "/__heartbeat__", {"X-Request-ID": f"hb-{self.sent}"})


def went_down(prober: Prober, timeout: float) -> bool:
    """Whether a heartbeat answers 500 with E004 within ``timeout`` seconds.

    Not necessarily the first: one that arrives while a run started before the stop is still
    going shares that run's (healthy) result.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = prober.heartbeat()
        if answer.status == 500 and b"dockerflow.health.E004" in answer.body:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def recover(prober: Prober, timeout: float) -> bool:
    """Whether the heartbeat answers 200 (on every worker) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while time.monotonic() < deadline:
        # Each worker has its own Redis connection, dropped by the restart: a few answers in
        # a row make it likely that both workers answered.
        in_a_row = in_a_row + 1 if prober.heartbeat().status == 200 else 0
        if in_a_row >= 4:
            return True
        time.sleep(0.1)
    return False


class Logged:
    """How many summary lines each request id of the load (``soak-{client}-{n}``) has.

    One byte per request, so that hours of load fit in a few megabytes.
    """

    def __init__(self, sent_by_client: dict[int, int]) -> None:
        self.counts = {client: bytearray(sent) for client, sent in sent_by_client.items()}

    def add(self, request_id: str) -> bool:
        """Count a summary of ``request_id``; ``False`` if it is no request of the load."""
        prefix, _, rest = request_id.partition("-")
        client, _, sequence = rest.partition("-")
        if prefix != "soak" or not client.isdigit() or not sequence.isdigit():
            return False
        counts = self.counts.get(int(client))
        if counts is None or int(sequence) >= len(counts):
            return False
        counts[int(sequence)] = min(counts[int(sequence)] + 1, 255)
        return True

    def histogram(self) -> collections.Counter[int]:
        """How many requests have 0, 1, 2... summary lines."""
        found: collections.Counter[int] = collections.Counter()
        for counts in self.counts.values():
            for value in range(256):
                number = counts.count(value)
                if number:
                    found[value] += number
        return found


def verify_log(server: Gunicorn, tally: Tally) -> tuple[int, Logged, list[str], list[str]]:
    """Read gunicorn's stdout once, line by line: every line must be mozlog JSON, and every
    summary line belong to a request of the load or of the soak itself."""
    logged = Logged({client: last + 1 for client, last in tally.last_sequence.items()})
    own = set(server.own_ids)
    bad: list[str] = []
    unknown: list[str] = []
    lines = 0
    for line in iter_lines(server.stdout_path):
        lines += 1
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line[:200])
            continue
        problem = mozlog_problem(record) if isinstance(record, dict) else "not an object"
        if problem:
            bad.append(f"{problem}: {line[:200]}")
            continue
        if record["Type"] != "request.summary":
            continue
        rid = record["Fields"]["rid"]
        if not logged.add(rid) and rid not in own and not rid.startswith("hb-"):
            unknown.append(rid)
    return lines, logged, bad, unknown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    inprocess = modes.add_parser("inprocess", help="10**6 requests in this process")
    inprocess.add_argument("--requests", type=int, default=10**6)
    inprocess.add_argument("--report-every", type=int, default=100_000)
    gunicorn = modes.add_parser("gunicorn", help="gunicorn under load, Redis restarted")
    gunicorn.add_argument("--minutes", type=float, default=30)
    gunicorn.add_argument(
        "--redis-restart-every",
        type=float,
        default=None,
        metavar="M",
        help="minutes between Redis restarts (default: the run's length / 6)",
    )
    gunicorn.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    if args.mode == "inprocess":
        return run_in_process(args.requests, args.report_every)
    restart_every = args.redis_restart_every or args.minutes / 6
    return run_gunicorn(args.minutes, restart_every, args.clients)


if __name__ == "__main__":
    sys.exit(main())
