"""Side-by-side benchmark of dockerflow-wsgi and the ``dockerflow`` package (``make bench``).

In-process scenarios call each WSGI stack directly with a prepared environ, iterate and close
the body, and log ``request.summary`` through each library's own mozlog formatter into a
null stream, so the log line's cost counts as it does in production. Figures are the median
of several rounds in microseconds per request; ratios come from the same run.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.logging import JsonLogFormatter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
DOCS_TABLE = os.path.join(ROOT, "docs", "_generated", "performance-results.rst")
DOCS_CHART = os.path.join(ROOT, "docs", "_static", "performance.png")
DOCS_INSTRUCTIONS_CHART = os.path.join(ROOT, "docs", "_static", "performance-instructions.png")

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


# ---------------------------------------------------------------------------------------------
# Applications under test


def hello_app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def flask_hello():
    from flask import Flask

    app = Flask("bench")

    @app.route("/")
    def index():
        return "hello"

    return app


def trivial_check() -> list:
    return []


# ---------------------------------------------------------------------------------------------
# Measurement


def environ_for(path: str, method: str = "GET") -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost:8000",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT_LANGUAGE": "en-US",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _start_response(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    pass


def one_request(app: WSGIApp, template: dict[str, Any]) -> None:
    body = app(dict(template), _start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


@dataclass
class Stack:
    """One scenario: an app, the path requested, and the formatter its summary goes through."""

    name: str
    app: WSGIApp
    path: str = "/"
    formatter: logging.Formatter | None = None
    timings: list[float] = field(default_factory=list)


def measure_interleaved(stacks: list[Stack], log: SummaryLog, requests: int, rounds: int) -> None:
    """Time every stack once per round, round after round, and keep each round's mean.

    Interleaving the stacks means a change in the machine's load during the run (these are
    shared machines) affects all of them alike instead of whichever ran at that moment.
    """
    templates = [environ_for(stack.path) for stack in stacks]
    for stack, template in zip(stacks, templates):
        log.use(stack.formatter)
        for _ in range(min(requests, 2000)):
            one_request(stack.app, template)
    for _ in range(rounds):
        for stack, template in zip(stacks, templates):
            log.use(stack.formatter)
            started = time.perf_counter_ns()
            for _ in range(requests):
                one_request(stack.app, template)
            stack.timings.append((time.perf_counter_ns() - started) / requests / 1000)


class SummaryLog:
    """Route ``request.summary`` to a null stream through the given formatter."""

    def __init__(self) -> None:
        self.stream = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
        self.handler = logging.StreamHandler(self.stream)
        self.logger = logging.getLogger("request.summary")
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def use(self, formatter: logging.Formatter) -> None:
        self.handler.setFormatter(formatter)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.stream.close()


@dataclass
class Report:
    rows: list[tuple[str, float]] = field(default_factory=list)
    targets: list[tuple[str, bool, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str, microseconds: float) -> float:
        self.rows.append((name, microseconds))
        print(f"  {name:<58} {microseconds:9.2f} µs", flush=True)
        return microseconds

    def target(self, name: str, passed: bool, detail: str) -> None:
        self.targets.append((name, passed, detail))


# ---------------------------------------------------------------------------------------------
# Scenarios


def heartbeat_scenarios(report: Report) -> None:
    """Concurrency of the checks and single-flight of the heartbeat."""
    print("Heartbeat: 8 checks of 200 ms each", flush=True)
    eight = [(f"sleep_{n}", lambda: time.sleep(0.2)) for n in range(8)]
    app = DockerflowMiddleware(hello_app, checks=eight, check_timeout=5, log_probes=False)
    one_request(app, environ_for("/__heartbeat__"))  # start the pool's threads
    walls = []
    for _ in range(5):
        started = time.perf_counter()
        one_request(app, environ_for("/__heartbeat__"))
        walls.append((time.perf_counter() - started) * 1000)
    wall_ms = statistics.median(walls)
    print(f"  answered in {wall_ms:.1f} ms (sequential would be 1600 ms)", flush=True)
    report.extra["heartbeat_8x200ms_ms"] = round(wall_ms, 1)
    report.target("8 checks of 200 ms answered within 210 ms", wall_ms <= 210, f"{wall_ms:.1f} ms")

    print("Heartbeat: 100 concurrent requests, one slow check", flush=True)
    calls = []

    def counted() -> list:
        calls.append(1)
        time.sleep(0.2)
        return []

    app = DockerflowMiddleware(hello_app, checks=[("counted", counted)], log_probes=False)
    gate = threading.Barrier(100)

    def probe() -> None:
        gate.wait()
        one_request(app, environ_for("/__heartbeat__"))

    threads = [threading.Thread(target=probe) for _ in range(100)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    storm_ms = (time.perf_counter() - started) * 1000
    print(f"  100 requests in {storm_ms:.0f} ms ran the check {len(calls)} time(s)", flush=True)
    report.extra["storm_100_check_runs"] = len(calls)
    report.target(
        "100 concurrent heartbeats run the check once", len(calls) == 1, f"{len(calls)} run(s)"
    )


def dockerflow_flask(app, **options):
    """The ``dockerflow`` package's Flask extension, or None where it is not installed."""
    try:
        from dockerflow.flask import Dockerflow
    except ImportError:
        return None
    return Dockerflow(app, **options)


def build_stacks() -> list[Stack]:
    """Every per-request scenario: ours first, then the ``dockerflow`` package's if installed."""
    from dockerflow_wsgi.flask import Dockerflow as Shim

    ours = JsonLogFormatter(logger_name="bench")
    # The same formatter without orjson (an optional extra): the fallback's cost, for the record.
    stdlib_json = JsonLogFormatter(logger_name="bench")
    stdlib_json._encode = stdlib_json._encoder.encode
    # Flask-Login is installed here (a test dependency) though the app does not use it, so the
    # shim adds its after_request hook for the Flask-Login user; the shim is also measured as
    # it is where Flask-Login is not installed: g.request_id alone.
    shimmed_app = flask_hello()
    with mock.patch("dockerflow_wsgi.flask._flask_login_installed", return_value=False):
        Shim(shimmed_app)
    shimmed_login_app = flask_hello()
    Shim(shimmed_login_app)
    core_app = flask_hello()
    core_app.wsgi_app = DockerflowMiddleware(core_app.wsgi_app)  # type: ignore[method-assign]
    # The same stack built again: how far apart two measurements of one thing fall in this run.
    control_app = flask_hello()
    control_app.wsgi_app = DockerflowMiddleware(control_app.wsgi_app)  # type: ignore[method-assign]
    stacks = [
        Stack("bare WSGI hello", hello_app, formatter=ours),
        Stack("bare + DockerflowMiddleware", DockerflowMiddleware(hello_app), formatter=ours),
        Stack(
            "bare + DockerflowMiddleware, stdlib json",
            DockerflowMiddleware(hello_app),
            formatter=stdlib_json,
        ),
        Stack("Flask hello", flask_hello().wsgi_app, formatter=ours),
        Stack("Flask + DockerflowMiddleware", core_app.wsgi_app, formatter=ours),
        Stack("Flask + DockerflowMiddleware, built again", control_app.wsgi_app, formatter=ours),
        Stack("Flask + dockerflow_wsgi.flask shim", shimmed_app.wsgi_app, formatter=ours),
        Stack(
            "Flask + shim, Flask-Login installed (hook)",
            shimmed_login_app.wsgi_app,
            formatter=ours,
        ),
        Stack(
            "/__lbheartbeat__ dockerflow-wsgi",
            DockerflowMiddleware(hello_app),
            "/__lbheartbeat__",
            ours,
        ),
        Stack(
            "/__lbheartbeat__ dockerflow-wsgi, log_probes off",
            DockerflowMiddleware(hello_app, log_probes=False),
            "/__lbheartbeat__",
            ours,
        ),
        Stack(
            "/__heartbeat__ dockerflow-wsgi, 1 trivial check",
            DockerflowMiddleware(hello_app, checks=[("trivial", trivial_check)]),
            "/__heartbeat__",
            ours,
        ),
    ]
    theirs_app = flask_hello()
    extension = dockerflow_flask(theirs_app)
    if extension is not None:
        from dockerflow.logging import JsonLogFormatter as TheirFormatter

        theirs = TheirFormatter(logger_name="bench")
        extension.check(trivial_check, name="trivial")
        stacks += [
            Stack("Flask + dockerflow package extension", theirs_app.wsgi_app, formatter=theirs),
            Stack(
                "/__lbheartbeat__ dockerflow package",
                theirs_app.wsgi_app,
                "/__lbheartbeat__",
                theirs,
            ),
            Stack(
                "/__heartbeat__ dockerflow package, 1 trivial check",
                theirs_app.wsgi_app,
                "/__heartbeat__",
                theirs,
            ),
        ]
    return stacks


def request_scenarios(report: Report, requests: int, rounds: int) -> None:
    """Per-request cost of each stack, both libraries logging through their formatters."""
    stacks = build_stacks()
    print(f"Per request ({requests} requests x {rounds} rounds, interleaved, median)", flush=True)
    log = SummaryLog()
    try:
        measure_interleaved(stacks, log, requests, rounds)
    finally:
        log.close()
    figures = [report.row(stack.name, statistics.median(stack.timings)) for stack in stacks]
    bare, wrapped, _stdlib_json, flask, core_on_flask, control, shim, shim_login = figures[:8]
    lb_ours, lb_quiet, hb_ours, *theirs_figures = figures[8:]
    if not theirs_figures:
        print("  (the dockerflow package is not installed: no side-by-side figures)")
        return
    df_flask, lb_theirs, hb_theirs = theirs_figures
    # Side by side in the same environment: both extensions handle Flask-Login here.
    our_overhead = shim_login - flask
    their_overhead = df_flask - flask
    bare_overhead = wrapped - bare
    print(
        f"  overhead on Flask: ours {our_overhead:.2f} µs, theirs {their_overhead:.2f} µs; "
        f"on bare WSGI: {bare_overhead:.2f} µs",
        flush=True,
    )
    ratio = our_overhead / their_overhead if their_overhead > 0 else float("inf")
    report.extra.update(
        flask_overhead_ours_us=round(our_overhead, 2),
        flask_overhead_theirs_us=round(their_overhead, 2),
        bare_overhead_us=round(bare_overhead, 2),
    )
    report.target("pass-through overhead on Flask <= 1/3 of theirs", ratio <= 1 / 3, f"{ratio:.3f}")
    report.target("stretch: <= 1/4 of theirs", ratio <= 1 / 4, f"{ratio:.3f}")
    report.target("bare WSGI overhead <= 15 µs", bare_overhead <= 15, f"{bare_overhead:.2f} µs")
    report.target("stretch: <= 10 µs", bare_overhead <= 10, f"{bare_overhead:.2f} µs")
    report.target(
        "/__lbheartbeat__ >= 5x faster than theirs (summary written)",
        lb_theirs / lb_ours >= 5,
        f"{lb_theirs / lb_ours:.1f}x",
    )
    report.target(
        "/__lbheartbeat__ >= 30x faster than theirs (log_probes off)",
        lb_theirs / lb_quiet >= 30,
        f"{lb_theirs / lb_quiet:.1f}x",
    )
    report.target(
        "/__heartbeat__ (1 check) no slower than theirs",
        hb_ours <= hb_theirs,
        f"{hb_ours:.1f} vs {hb_theirs:.1f} µs",
    )
    # The shim is measured against the same Flask app wrapped by the core middleware alone:
    # overhead on Flask and on a bare app differ by cache effects, not by the shim.
    # "Measurable" means more than two measurements of one stack differ by in this run (and
    # more than 1 µs and 1 %).
    shim_cost = shim - core_on_flask
    noise = max(1.0, 0.01 * core_on_flask, abs(control - core_on_flask))
    report.target(
        "shim (g.request_id; no Flask-Login) adds no measurable cost over the core middleware",
        shim_cost <= noise,
        f"Flask + shim {shim:.2f} µs vs Flask + DockerflowMiddleware {core_on_flask:.2f} µs "
        f"({shim_cost:+.2f}; noise bound {noise:.2f}); with Flask-Login installed "
        f"{shim_login - core_on_flask:+.2f} µs",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                response.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _load_with_wrk(url: str, seconds: int) -> float:
    output = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")


def _load_with_python(url: str, seconds: int) -> float:
    """A keep-alive load from 8 threads, for machines without wrk."""
    import http.client

    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]
    counts = [0] * 8
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.monotonic() < stop:
            connection.request("GET", path)
            connection.getresponse().read()
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


# (label, app in server_apps, path, extra gunicorn options); the first is the baseline.
_SERVERS = (
    ("bare app", "bare", "/", ()),
    ("bare app + DockerflowMiddleware, pass-through", "wrapped", "/", ()),
    ("bare app + DockerflowMiddleware, /__lbheartbeat__", "wrapped", "/__lbheartbeat__", ()),
    (
        "bare app + DockerflowMiddleware, /__lbheartbeat__, log_probes off",
        "wrapped_quiet",
        "/__lbheartbeat__",
        (),
    ),
    # Not targets: what one log line per request costs, whoever writes it. gunicorn's own
    # access log; and the bare app writing a summary-shaped JSON line itself, no logging
    # module, no middleware: the least any per-request JSON line can cost.
    ("bare app + gunicorn's own access log", "bare", "/", ("--access-logfile", os.devnull)),
    ("bare app writing one JSON line itself", "bare_json_line", "/", ()),
)


# One worker of each: gunicorn's default (sync: a request at a time, a connection per request)
# and the example service's (gthread: threads share the GIL, connections are kept alive).
_WORKERS = (
    ("sync", ("--worker-class", "sync")),
    ("gthread", ("--worker-class", "gthread", "--threads", "4")),
)


def _start_gunicorn(
    app: str, worker: tuple[str, ...], options: tuple[str, ...]
) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    server = subprocess.Popen(
        [
            gunicorn,
            *("--workers", "1", *worker),
            *("--bind", f"127.0.0.1:{port}", "--chdir", HERE),
            *options,
            f"server_apps:{app}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


def server_scenarios(report: Report, seconds: int, rounds: int) -> None:
    """Throughput under gunicorn, loaded over loopback, each server in turn, round after round.

    For each worker class, all the servers run for the whole scenario (an idle one costs
    nothing); each round loads each of them once, and a ratio is taken within a round, so a
    change in the machine's load between rounds does not land on one server only. The figure
    is the median over rounds.
    """
    load = _load_with_wrk if shutil.which("wrk") else _load_with_python
    for worker, worker_options in _WORKERS:
        print(
            f"Under gunicorn ({worker} worker), {rounds} rounds of {seconds} s per server, "
            f"load by {load.__name__[11:]}",
            flush=True,
        )
        _serve_and_load(report, worker, worker_options, load, seconds, rounds)


def _serve_and_load(
    report: Report,
    worker: str,
    worker_options: tuple[str, ...],
    load: Callable[[str, int], float],
    seconds: int,
    rounds: int,
) -> None:
    servers = [_start_gunicorn(app, worker_options, options) for _, app, _, options in _SERVERS]
    try:
        urls = [
            f"http://127.0.0.1:{port}{path}"
            for (_, _, path, _), (_, port) in zip(_SERVERS, servers)
        ]
        for url in urls:
            _wait_until_serving(url)
            load(url, 1)  # warm up: imports, first connections
        rates: list[list[float]] = [[] for _ in _SERVERS]
        for round_number in range(rounds):
            # Each round starts with another server, so that being loaded right after another
            # (its connections still closing, with the sync worker) falls on each in turn.
            for step in range(len(urls)):
                index = (round_number + step) % len(urls)
                rates[index].append(load(urls[index], seconds))
    finally:
        for server, _ in servers:
            server.terminate()
        for server, _ in servers:
            server.wait(30)
    baseline = rates[0]
    ratios = {}
    for (label, *_), server_rates in zip(_SERVERS, rates):
        ratio = statistics.median(rate / base for rate, base in zip(server_rates, baseline))
        median_rate = statistics.median(server_rates)
        ratios[label] = ratio
        print(f"  {label:<66} {median_rate:7.0f} req/s  {ratio:4.2f}x", flush=True)
        report.extra[f"gunicorn {worker}: {label}"] = {
            "requests_per_s": median_rate,
            "ratio": round(ratio, 3),
        }
    # The summary line against the same line written by the app itself: each synchronous
    # write gives up the GIL, and that price is the floor of losing no line.
    floor = ratios["bare app writing one JSON line itself"]
    ours = ratios["bare app + DockerflowMiddleware, pass-through"]
    report.target(
        f"gunicorn {worker}: pass-through within 0.05 of the bare app writing its line itself",
        ours >= floor - 0.05,
        f"{ours:.2f}x vs {floor:.2f}x of bare",
    )


def asgi_scenarios(
    report: Report, requests: int, rounds: int, seconds: int, server_rounds: int
) -> None:
    """FastAPI bare, with DockerflowASGIMiddleware and with the dockerflow package's FastAPI
    integration: in process (raw ASGI calls), then under uvicorn."""
    try:
        import asgi_bench
    except ImportError as exc:
        print(f"ASGI: skipped ({exc.name} is not installed)")
        return
    print(f"ASGI in process ({requests} requests x {rounds} rounds, interleaved, median)")
    timings = [report.row(label, value) for label, value in asgi_bench.in_process(requests, rounds)]
    _asgi_targets(report, "in process", timings)
    load = _load_with_wrk if shutil.which("wrk") else _load_with_python
    print(f"ASGI under uvicorn, {server_rounds} rounds of {seconds} s per server", flush=True)
    served = asgi_bench.under_uvicorn(seconds, server_rounds, load, _wait_until_serving, _free_port)
    for label, rate, ratio in served:
        print(f"  {label:<66} {rate:7.0f} req/s  {ratio:4.2f}x", flush=True)
        report.extra[f"uvicorn: {label}"] = {"requests_per_s": rate, "ratio": round(ratio, 3)}
    _asgi_targets(report, "uvicorn", [1e6 / rate for _, rate, _ in served])


def _asgi_targets(report: Report, where: str, microseconds: list[float]) -> None:
    """Overheads over FastAPI hello, and a probe's cost over the raw ASGI floor; the figures
    in the order of asgi_bench's scenarios."""
    bare, floor, ours, theirs, lb_ours, lb_theirs = microseconds
    if theirs == bare:
        print("  (the dockerflow package is not installed: no side-by-side figures)")
        return
    ratio = (ours - bare) / (theirs - bare)
    report.extra[f"asgi {where}: overhead ours/theirs"] = round(ratio, 3)
    report.target(
        f"ASGI ({where}): pass-through overhead <= 1/3 of the dockerflow package's",
        ratio <= 1 / 3,
        f"{ours - bare:.2f} vs {theirs - bare:.2f} µs ({ratio:.3f})",
    )
    ours_cost, theirs_cost = lb_ours - floor, lb_theirs - floor
    if ours_cost <= 0:
        # Under a server the probe can cost no more than the raw application, within the
        # run's noise: a ratio to nothing would mean nothing.
        detail = f"{ours_cost:.2f} vs {theirs_cost:.2f} µs (ours within the noise of the floor)"
        faster = theirs_cost > 0
    else:
        speedup = theirs_cost / ours_cost
        detail = f"{ours_cost:.2f} vs {theirs_cost:.2f} µs ({speedup:.1f}x)"
        faster = speedup >= 5
    report.target(
        f"ASGI ({where}): /__lbheartbeat__ >= 5x faster than theirs (cost over the raw floor)",
        faster,
        detail,
    )


# Instructions per request before the options of the orchestration and observability issues
# (metrics, groups, traceparent, background checks) existed: the pass-through with the default
# options, as the performance issue measured it. An option that is off must not add to it.
PASS_THROUGH_BEFORE_THE_OPTIONS = 68_500


def instruction_scenarios(report: Report) -> None:
    """Instructions per request (callgrind), and the targets stated in them."""
    if shutil.which("valgrind") is None:
        print("Instructions: skipped (valgrind is not installed)")
        return
    import instructions

    print("Instructions per request (callgrind; the same figure on a busy or an idle machine)")
    counts: dict[str, float] = {}
    for name in instructions.SCENARIOS:
        try:
            counts[name] = instructions.per_request(name)
        except RuntimeError as exc:  # the dockerflow package is not installed, say
            print(f"  {name}: {exc}".splitlines()[0])
            continue
        print(f"  {instructions.label(name):<66} {counts[name]:9,.0f}", flush=True)
    report.extra["instructions"] = {
        instructions.label(name): round(value) for name, value in counts.items()
    }
    bare, floor, ours = counts["bare"], counts["floor"], counts["ours"]
    essentials = counts["essentials"]
    report.target(
        "pass-through overhead <= 2x the hand-written line's (instructions)",
        ours - bare <= 2 * (floor - bare),
        f"{ours - bare:,.0f} vs {floor - bare:,.0f} ({(ours - bare) / (floor - bare):.2f}x; "
        f"a middleware's bare duties in one function: "
        f"{(essentials - bare) / (floor - bare):.2f}x)",
    )
    report.target(
        "/__lbheartbeat__ with its summary <= 45k instructions",
        counts["lb"] <= 45_000,
        f"{counts['lb']:,.0f}",
    )
    report.target(
        "/__lbheartbeat__ with log_probes off <= 10k instructions",
        counts["lb_quiet"] <= 10_000,
        f"{counts['lb_quiet']:,.0f}",
    )
    report.target(
        "every option off: pass-through no dearer than before the options existed",
        ours <= PASS_THROUGH_BEFORE_THE_OPTIONS,
        f"{ours:,.0f} vs {PASS_THROUGH_BEFORE_THE_OPTIONS:,}; when on: "
        + ", ".join(
            f"{instructions.label(name)[2:]} {counts[name] - ours:+,.0f}"
            for name in ("metrics", "groups", "traceparent", "interval", "ours_otel")
        ),
    )
    if "flask_theirs" in counts:
        ours_flask = counts["flask_ours"] - counts["flask"]
        theirs_flask = counts["flask_theirs"] - counts["flask"]
        report.target(
            "Flask overhead <= 1/6 of the dockerflow extension's (instructions)",
            ours_flask * 6 <= theirs_flask,
            f"{ours_flask:,.0f} vs {theirs_flask:,.0f} (1/{theirs_flask / ours_flask:.2f})",
        )
        report.target(
            "/__heartbeat__ from a background run >= 10x cheaper than the extension's",
            counts["hb_background"] * 10 <= counts["hb_theirs"],
            f"{counts['hb_background']:,.0f} vs {counts['hb_theirs']:,.0f} "
            f"({counts['hb_theirs'] / counts['hb_background']:.1f}x)",
        )
        report.target(
            "/__heartbeat__ on demand (1 trivial check) within 1.2x of the extension's",
            counts["hb_ours"] <= 1.2 * counts["hb_theirs"],
            f"{counts['hb_ours']:,.0f} vs {counts['hb_theirs']:,.0f} "
            f"({counts['hb_ours'] / counts['hb_theirs']:.2f}x)",
        )
    if "asgi_theirs" in counts:
        ours_asgi = counts["asgi_ours"] - counts["asgi_bare"]
        theirs_asgi = counts["asgi_theirs"] - counts["asgi_bare"]
        floor_asgi = counts["asgi_floor"] - counts["asgi_bare"]
        report.target(
            "ASGI overhead <= 1/6 of the dockerflow FastAPI integration's (instructions)",
            ours_asgi * 6 <= theirs_asgi,
            f"{ours_asgi:,.0f} vs {theirs_asgi:,.0f} (1/{theirs_asgi / ours_asgi:.2f}; "
            f"the app writing its own line: {floor_asgi:,.0f})",
        )


def memory_scenario(report: Report, requests: int) -> None:
    print(f"Memory: RSS around {requests:,} pass-through requests", flush=True)
    finished = subprocess.run(
        [sys.executable, os.path.join(HERE, "memory.py"), str(requests)],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    figures = json.loads(finished.stdout)
    growth_mib = (figures["rss_after_kib"] - figures["rss_before_kib"]) / 1024
    print(f"  {figures['rss_before_kib']} KiB -> {figures['rss_after_kib']} KiB", flush=True)
    report.extra["rss_growth_mib"] = round(growth_mib, 3)
    report.target(
        f"RSS growth over {requests:,} requests < 1 MiB", growth_mib < 1, f"{growth_mib:.2f} MiB"
    )


def write_docs(report: Report) -> None:
    """The results table (included by docs/performance.rst) and its bar chart."""
    os.makedirs(os.path.dirname(DOCS_TABLE), exist_ok=True)
    width = max(len(name) for name, _ in report.rows) + 2
    rule = f"{'=' * width}  {'=' * 12}"
    lines = [rule, f"{'scenario':<{width}}  {'µs/request':>12}", rule]
    lines += [f"{name:<{width}}  {value:>12.2f}" for name, value in report.rows]
    lines += [rule, ""]
    for prefix, heading in (("gunicorn ", "under gunicorn"), ("uvicorn: ", "under uvicorn")):
        served = [
            (key[len(prefix) :], value)
            for key, value in report.extra.items()
            if key.startswith(prefix) and isinstance(value, dict)
        ]
        if not served:
            continue
        served_width = max(len(name) for name, _ in served) + 2
        served_rule = f"{'=' * served_width}  {'=' * 10}  {'=' * 13}"
        lines += [
            served_rule,
            f"{heading:<{served_width}}  {'requests/s':>10}  {'ratio to bare':>13}",
            served_rule,
        ]
        lines += [
            f"{name:<{served_width}}  {value['requests_per_s']:>10.0f}  {value['ratio']:>13.2f}"
            for name, value in served
        ]
        lines += [served_rule, ""]
    counted = report.extra.get("instructions")
    if counted:
        counted_width = max(len(name) for name in counted) + 2
        counted_rule = f"{'=' * counted_width}  {'=' * 12}"
        lines += [
            counted_rule,
            f"{'scenario':<{counted_width}}  {'instructions':>12}",
            counted_rule,
        ]
        lines += [f"{name:<{counted_width}}  {value:>12,}" for name, value in counted.items()]
        lines += [counted_rule, ""]
    lines += [
        ".. list-table:: Targets",
        "   :header-rows: 1",
        "",
        "   * - target",
        "     - result",
        "     - figure",
    ]
    for name, passed, detail in report.targets:
        lines += [f"   * - {name}", f"     - {'PASS' if passed else 'FAIL'}", f"     - {detail}"]
    with open(DOCS_TABLE, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (matplotlib not installed: no chart)")
        return
    _bar_chart(plt, report.rows, "µs per request (median; lower is better)", DOCS_CHART)
    if counted:
        _bar_chart(
            plt,
            list(counted.items()),
            "thousands of instructions per request (callgrind; lower is better)",
            DOCS_INSTRUCTIONS_CHART,
            scale=1000,
        )


def _bar_chart(
    plt: Any, rows: list[tuple[str, float]], unit: str, path: str, scale: float = 1
) -> None:
    """A horizontal bar a row, ours in blue and the dockerflow package's in orange."""
    names = [name for name, _ in rows]
    values = [value / scale for _, value in rows]
    colours = ["#4c72b0" if "dockerflow package" not in name else "#dd8452" for name in names]
    figure, axes = plt.subplots(figsize=(11, 0.42 * len(names) + 1))
    axes.barh(range(len(names)), values[::-1], color=colours[::-1], tick_label=names[::-1])
    axes.set_xlabel(unit)
    axes.set_title("dockerflow-wsgi (blue) and the dockerflow package (orange)")
    figure.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def profile_stacks(name_part: str, requests: int) -> int:
    """Profile the stacks whose name contains ``name_part`` with pyinstrument: where the time
    of one request goes, as a call tree. Figures are inflated by the profiler; the shape is
    what counts."""
    from pyinstrument import Profiler

    stacks = [stack for stack in build_stacks() if name_part.lower() in stack.name.lower()]
    if not stacks:
        print(f"no scenario's name contains {name_part!r}", file=sys.stderr)
        return 2
    log = SummaryLog()
    try:
        for stack in stacks:
            log.use(stack.formatter)
            template = environ_for(stack.path)
            for _ in range(min(requests, 2000)):
                one_request(stack.app, template)
            profiler = Profiler(interval=0.0001)
            with profiler:
                for _ in range(requests):
                    one_request(stack.app, template)
            print(f"== {stack.name}: {requests} requests")
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        log.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the docs' table")
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="profile the per-request scenarios whose name contains NAME instead of measuring",
    )
    options = parser.parse_args(argv)
    requests, rounds = (2_000, 3) if options.quick else (10_000, 15)
    if options.profile:
        return profile_stacks(options.profile, requests)
    gc.collect()
    report = Report()
    checks.clear_checks()
    instruction_scenarios(report)
    request_scenarios(report, requests, rounds)
    heartbeat_scenarios(report)
    server_scenarios(report, seconds=2, rounds=2 if options.quick else 10)
    asgi_scenarios(report, requests, rounds, seconds=2, server_rounds=2 if options.quick else 10)
    memory_scenario(report, 100_000 if options.quick else 1_000_000)
    if not options.no_docs:
        write_docs(report)
    print("\nTargets")
    for name, passed, detail in report.targets:
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(
            {"rows": report.rows, "targets": report.targets, **report.extra}, handle, indent=2
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
