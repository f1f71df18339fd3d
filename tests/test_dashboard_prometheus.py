"""The dashboard's queries (docs/snippets/dashboard.promql) evaluated by a real Prometheus that
scrapes a served application's ``/__metrics__``.

Prometheus is Debian's ``prometheus`` package (``.ci/run`` installs it); without it the test
skips, except under ``CI=true``, where it fails: a CI job must never pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from server_process import ServerProcess, unused_port

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "snippets" / "dashboard.promql"
HOST = "127.0.0.1"
SCRAPE_INTERVAL = 1

# Serves a middleware with metrics on and one check, which fails while a file exists.
_APP = """
import os, sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from dockerflow_wsgi import DockerflowMiddleware, checks


def flaky():
    if os.path.exists(sys.argv[1]):
        return [checks.Error("the flag says so", id="myservice.E001")]
    return []


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


app = DockerflowMiddleware(hello, metrics=True, checks=[("flaky", flaky)], log_probes=False)
server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"""


def _queries() -> dict[str, str]:
    """Each query of the dashboard file under the first line of its comment."""
    queries = {}
    for block in DASHBOARD.read_text(encoding="utf-8").strip().split("\n\n"):
        comment, *lines = block.strip().splitlines()
        queries[comment.removeprefix("# ")] = " ".join(line.strip() for line in lines)
    return queries


def _query(comment: str) -> str:
    """The query whose comment starts with ``comment``."""
    (query,) = [query for text, query in _queries().items() if text.startswith(comment)]
    return query


def _prometheus_binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true, so this test must run, not skip")
        pytest.skip(message)
    return found


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def served_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The application's ``host:port``, and the file whose presence fails its check."""
    flag = tmp_path / "fail"
    with ServerProcess(
        [sys.executable, "-c", _APP, str(flag)],
        cwd=tmp_path,
        # One process: its own metrics, not a multiprocess directory's.
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        stdout_path=tmp_path / "app.log",
        name="the application",
    ) as process:
        port = int(process.wait_for_output(r"(?m)^(\d+)\n").group(1))
        yield f"{HOST}:{port}", flag


@pytest.fixture
def prometheus(tmp_path: Path, served_app: tuple[str, Path]) -> Iterator[str]:
    """A Prometheus on a free loopback port scraping the application every second; its URL."""
    binary = _prometheus_binary()
    target, _ = served_app
    config = tmp_path / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: {SCRAPE_INTERVAL}s
              evaluation_interval: {SCRAPE_INTERVAL}s
            scrape_configs:
              - job_name: myservice
                metrics_path: /__metrics__
                static_configs:
                  - targets: ["{target}"]
            """
        )
    )
    url = f"http://{HOST}:{unused_port()}"
    with ServerProcess(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
        ],
        cwd=tmp_path,
        env=os.environ,
        stdout_path=tmp_path / "prometheus.log",
        name="Prometheus",
    ) as process:
        process.wait_until(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2), 60, 0.2)
        yield url


def _evaluate(prometheus: str, query: str) -> list[float]:
    """The values of the instant query ``query``: an empty list is Prometheus' "no data"."""
    answer = _get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    assert answer["status"] == "success", answer
    return [float(sample["value"][1]) for sample in answer["data"]["result"]]


def _scrapes_so_far(prometheus: str) -> int:
    counted = _evaluate(prometheus, 'count_over_time(up{job="myservice"}[5m])')
    return int(counted[0]) if counted else 0


def _heartbeat(target: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{target}/__heartbeat__", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.servers
def test_failed_runs_and_5xx_are_zero_until_a_run_fails(
    prometheus: str, served_app: tuple[str, Path]
) -> None:
    target, flag = served_app
    failed_runs = _query("Heartbeat runs that failed")
    share_of_5xx = _query("Share of requests answered 5xx")

    assert _heartbeat(target) == 200
    # rate() needs two samples of a series in its window.
    _wait_until(lambda: _scrapes_so_far(prometheus) >= 3, "three scrapes")
    assert _evaluate(prometheus, failed_runs) == [0.0]
    assert _evaluate(prometheus, share_of_5xx) == [0.0]

    flag.touch()
    assert _heartbeat(target) == 500
    start = _scrapes_so_far(prometheus)
    _wait_until(lambda: _scrapes_so_far(prometheus) >= start + 2, "two more scrapes")
    (value,) = _evaluate(prometheus, failed_runs)
    assert value > 0


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = _prometheus_binary("promtool")
    queries = list(_queries().values())
    assert len(queries) == 6
    rules = tmp_path / "dashboard.rules.yml"
    recorded = [{"record": f"dashboard:query{n}", "expr": query} for n, query in enumerate(queries)]
    rules.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": recorded}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout
