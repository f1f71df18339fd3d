"""What one pod's heartbeats cost whatever its workers, and what a steady failure writes
(``make fleet``, after ``fleet.py``).

The example service runs under gunicorn with 1, 2, 4 and 8 workers and ``heartbeat_interval``,
with ``heartbeat_shared`` off and on, against the real PostgreSQL and Redis through
``fleet.py``'s counting relays: the runs of the checks per interval per pod are the Redis
``PING``\\ s the relay counted (the Redis check sends one per run) over an idle window, after a
burst of heartbeats has woken every worker. Then Redis is made unreachable for a service of
two workers and the records on ``dockerflow_wsgi.checks`` are counted over a window, with
``health_log_repeat=0`` (a record after every run, as before health transitions) and with its
default: the log lines an hour of one steady failure writes, before and after.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from fleet import PINGS, ROOT, Backends, Setup, _free_port, _heartbeat_status, serve

DOCS_TABLE = os.path.join(ROOT, "docs", "_generated", "fleet-pod-results.rst")
WORKERS = (1, 2, 4, 8)


def wake_every_worker(port: int, workers: int) -> None:
    """A burst of heartbeats on new connections: each worker starts its background runs with
    its first request."""
    with ThreadPoolExecutor(max_workers=4 * workers) as pool:
        for _ in range(5):
            list(pool.map(_heartbeat_status, [port] * (4 * workers)))
            time.sleep(0.2)


def runs_per_interval(
    backends: Backends, workers: int, shared: bool, interval: float, window: float
) -> float:
    """The checks' runs per interval for the pod, counted on the wire at Redis."""
    with tempfile.TemporaryDirectory() as state_dir:
        setup = Setup(
            "shared" if shared else "per worker",
            {
                "DOCKERFLOW_HEARTBEAT_INTERVAL": f"{interval:g}",
                "DOCKERFLOW_HEARTBEAT_SHARED": "on" if shared else "off",
                "DOCKERFLOW_STATE_DIR": state_dir,
            },
            interval=interval,
        )
        with serve(setup, backends, workers, threads=2) as service:
            wake_every_worker(service.port, workers)
            time.sleep(2 * interval)
            before = service.counts()[PINGS]
            time.sleep(window)
            pings = service.counts()[PINGS] - before
    return pings / window * interval


def check_records(backends: Backends, repeat: float, window: float) -> tuple[int, int]:
    """Records on ``dockerflow_wsgi.checks`` over ``window`` seconds of an unreachable Redis,
    for a service of two workers running its checks every second: (message records,
    transition records)."""
    setup = Setup(
        f"health_log_repeat={repeat:g}",
        {
            "DOCKERFLOW_HEARTBEAT_INTERVAL": "1",
            "DOCKERFLOW_HEALTH_LOG_REPEAT": f"{repeat:g}",
            "DOCKERFLOW_CHECK_TIMEOUTS": "check_redis_connected=0.5",
            "LOG_LEVEL": "INFO",
        },
        interval=1,
    )
    unreachable = f"redis://127.0.0.1:{_free_port()}/0"
    with serve(setup, backends, 2, threads=2, redis_url=unreachable) as service:
        # From the failure's start: each worker's first run finds it, and logs it then.
        started = time.monotonic()
        wake_every_worker(service.port, 2)
        time.sleep(max(0.0, window - (time.monotonic() - started)))
        text = service.log_text()
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("Logger") == "dockerflow_wsgi.checks" or record.get("Type") == (
                "dockerflow_wsgi.checks"
            ):
                records.append(record)
    transitions = sum(" is now " in r["Fields"].get("msg", "") for r in records)
    return len(records) - transitions, transitions


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=1.0, help="heartbeat_interval (1)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds counted (15)")
    parser.add_argument("--log-window", type=float, default=30.0, help="log seconds (30)")
    parser.add_argument("--pods", type=int, default=500, help="the fleet's pods, on paper (500)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FLEET_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--database", default="fleet_bench")
    parser.add_argument(
        "--redis", default=os.environ.get("FLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--output", default=DOCS_TABLE, help="the RST fragment ('-': none)")
    options = parser.parse_args(argv)

    backends = Backends(options.postgres, options.database, options.redis)
    runs: dict[tuple[int, bool], float] = {}
    try:
        backends.prepare()
        for workers in WORKERS:
            for shared in (False, True):
                runs[workers, shared] = runs_per_interval(
                    backends, workers, shared, options.interval, options.window
                )
                print(
                    f"  {workers} workers, {'shared' if shared else 'per worker'}: "
                    f"{runs[workers, shared]:.2f} runs per interval",
                    flush=True,
                )
        every_run = check_records(backends, 0, options.log_window)
        repeated = check_records(backends, 300, options.log_window)
    finally:
        backends.close()
    print(
        f"  steady failure over {options.log_window:g} s (message records, transitions): "
        f"every run {every_run}, repeat 300 {repeated}"
    )

    hour = 3600 / options.log_window
    lines = [
        f".. Written by benchmarks/fleet_pod.py on {datetime.date.today().isoformat()}; "
        "make fleet runs it.",
        "",
        f"Runs of the checks per interval per pod (``heartbeat_interval={options.interval:g}``), "
        f"counted at Redis over {options.window:g} s, on a {os.cpu_count()}-core machine; the "
        "interval runs from the end of one run to the start of the next, so one process makes a "
        "little under one run per interval (its checks take their time): the columns in "
        "brackets divide by what one process running its own checks makes.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - workers",
        "     - each worker its own runs",
        "     - ``heartbeat_shared``",
    ]
    one = runs[1, False] or 1.0
    for workers in WORKERS:
        lines += [
            f"   * - {workers}",
            f"     - {runs[workers, False]:.2f} ({runs[workers, False] / one:.2f})",
            f"     - {runs[workers, True]:.2f} ({runs[workers, True] / one:.2f})",
        ]
    per_s = options.pods / options.interval
    lines += [
        "",
        f"For {options.pods} pods of 8 workers at an interval of {options.interval:g} s: "
        f"{8 * per_s:,.0f} runs a second against the same database each running its own, "
        f"{per_s:,.0f} shared (measured: {runs[8, False]:.2f} and {runs[8, True]:.2f} runs per "
        "interval for a pod of 8).",
        "",
        f"One steady failure (Redis unreachable) from the service's start, two workers running "
        f"their checks every second, records on ``dockerflow_wsgi.checks`` over its first "
        f"{options.log_window:g} s: {every_run[0]} message records with "
        f"``health_log_repeat=0`` (every run, as before health transitions), {repeated[0]} with "
        f"the default 300 s; {repeated[1]} transition records (``check_redis_connected is now "
        f"error``, one per worker). An hour of it: {every_run[0] * hour:,.0f} message records "
        f"before, {repeated[0] * 3600 // 300:,.0f} after (each worker's when the failure began, "
        "then one every 300 s), besides the transitions; with ``heartbeat_shared``, the pod's one "
        "runner writes them, once for the pod.",
    ]
    if options.output != "-":
        with open(options.output, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        print(f"Wrote {os.path.relpath(options.output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
