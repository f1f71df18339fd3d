"""What dead workers' files in ``PROMETHEUS_MULTIPROC_DIR`` cost a ``/__metrics__`` scrape.

``python benchmarks/multiproc_scrape.py [DEAD ...]`` (default 0 10 100 1000).

In multiprocess mode each worker writes its counters and its histogram to files of its own
(``counter_<pid>.db``, ``histogram_<pid>.db``). When it exits, gunicorn's ``child_exit`` hook
(``prometheus_client.multiprocess.mark_process_dead``) removes only its live gauges' files: its
counts must stay in the totals, or counters would go back. So the folder keeps two files for
every worker that ever ran since it was last emptied, and every scrape reads them all.

One real worker is run first, in a subprocess: a middleware with metrics on serves a mix of
requests and heartbeats, then exits and is marked dead, as under gunicorn. Its two files are
then copied under new pids, byte for byte and as sparse as the originals, for each dead
worker. The scrape is timed in this process, a live worker with values of its own, by calling
the middleware with a GET of ``/__metrics__``, as many times as ``--scrapes`` says; the median
is printed with the folder's size (apparent and on disk) as one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# One worker's life: requests of the usual methods and codes, heartbeats passing and failing.
_WORKER = """
import os
from wsgiref.util import setup_testing_defaults

from dockerflow_wsgi import DockerflowMiddleware, checks

failing = False


def database():
    return [checks.Error("down", id="myservice.E001")] if failing else []


def app(environ, start_response):
    code = environ["PATH_INFO"].strip("/") or "200"
    start_response(f"{code} Status", [("Content-Type", "text/plain")])
    return [b"body"]


middleware = DockerflowMiddleware(
    app, metrics=True, checks=[("database", database), ("cache", lambda: [])], log_probes=False
)


def get(path, method="GET"):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    body = middleware(environ, lambda status, headers, exc_info=None: None)
    b"".join(body)
    body.close()


for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
    for path in ("/", "/201", "/302", "/404", "/500"):
        get(path, method)
get("/__heartbeat__")
failing = True
get("/__heartbeat__")
print(os.getpid())
"""


def run_dead_worker(directory: Path) -> int:
    """Run one worker to its end in ``directory``, mark it dead; its pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", _WORKER], env=env, capture_output=True, text=True, check=True
    )
    pid = int(done.stdout.strip())
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))
    return pid


def copy_sparse(source: Path, target: Path) -> None:
    """``source`` as a dead worker's file of another pid: its used bytes, then the same size.

    A file's first 4 bytes are the bytes it uses; the rest of its mapped size was never
    written, and stays a hole on disk in the copy as in the original.
    """
    with source.open("rb") as reader:
        data = reader.read()
    (used,) = struct.unpack_from("i", data, 0)
    with target.open("wb") as writer:
        writer.write(data[:used])
        writer.truncate(len(data))


def folder_size(directory: Path) -> tuple[int, int]:
    """(apparent bytes, bytes on disk) of the files in ``directory``."""
    apparent = on_disk = 0
    for path in directory.iterdir():
        status = path.stat()
        apparent += status.st_size
        on_disk += status.st_blocks * 512
    return apparent, on_disk


def time_scrapes(middleware: Any, scrapes: int) -> list[float]:
    from wsgiref.util import setup_testing_defaults

    seconds = []
    statuses: list[str] = []
    for _ in range(scrapes):
        environ = {"PATH_INFO": "/__metrics__", "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        start = time.perf_counter()
        body = middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        body.close()
        seconds.append(time.perf_counter() - start)
    assert set(statuses) == {"200 OK"}, statuses
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dead", nargs="*", type=int, default=[0, 10, 100, 1000])
    parser.add_argument("--scrapes", type=int, default=15)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="multiproc-scrape-"))
    try:
        live = directory / "live"
        live.mkdir()
        # prometheus_client picks its value class from the variable when it is first imported.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(live)
        template_dir = directory / "template"
        template_dir.mkdir()
        pid = run_dead_worker(template_dir)
        templates = sorted(template_dir.iterdir())
        from dockerflow_wsgi import DockerflowMiddleware

        middleware = DockerflowMiddleware(
            lambda environ, start_response: [], metrics=True, checks=[], log_probes=False
        )
        time_scrapes(middleware, 3)  # this worker's own files made, imports done
        made = 0
        for dead in sorted(args.dead):
            for fake_pid in range(1_000_000 + made, 1_000_000 + dead):
                for template in templates:
                    name = template.name.replace(f"_{pid}.db", f"_{fake_pid}.db")
                    copy_sparse(template, live / name)
            made = max(made, dead)
            seconds = time_scrapes(middleware, args.scrapes)
            apparent, on_disk = folder_size(live)
            print(
                json.dumps(
                    {
                        "dead_workers": dead,
                        "files": len(list(live.iterdir())),
                        "median_scrape_ms": round(statistics.median(seconds) * 1000, 2),
                        "apparent_mib": round(apparent / 2**20, 1),
                        "on_disk_mib": round(on_disk / 2**20, 2),
                        "dead_worker_files": [t.name.split("_")[0] for t in templates],
                    }
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
