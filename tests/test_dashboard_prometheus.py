"""The dashboard's queries (docs/snippets/dashboard.promql) evaluated by a real Prometheus that
scrapes a served application's ``/__metrics__``: a bare middleware in one process, and the
example service under gunicorn with two workers adding up their metrics.

Prometheus is Debian's ``prometheus`` package (``.ci/run`` installs it); without it the test
skips, except under ``CI=true``, where it fails: a CI job must never pass by skipping.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, Callable, NoReturn

import pytest
from server_process import ServerProcess, unused_port

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "snippets" / "dashboard.promql"
EXAMPLE_APP = ROOT / "example_app"
GUNICORN = Path(sys.executable).parent / "gunicorn"
HOST = "127.0.0.1"
SCRAPE_INTERVAL = 1
WORKERS = 2

VERSION = {
    "source": "https://github.com/example/dockerflow-wsgi",
    "version": "1.2.3",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/42",
}

# Variables of the developer's or CI's environment that would change how the example runs.
_FOREIGN_VARIABLES = ("PORT", "WEB_CONCURRENCY", "DATABASE_URL", "REDIS_URL", "ALEMBIC_CONFIG")
_FOREIGN_PREFIXES = ("DOCKERFLOW_", "GUNICORN_", "PROMETHEUS_")

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


def _skip_or_fail(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so this test must run, not skip")
    pytest.skip(message)


def _prometheus_binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if found is None:
        _skip_or_fail(f"{name} is not installed (apt-get install prometheus)")
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


@contextlib.contextmanager
def _scraping(tmp_path: Path, target: str) -> Iterator[str]:
    """A Prometheus on a free loopback port scraping ``target`` every second; its URL."""
    binary = _prometheus_binary()
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


@pytest.fixture
def prometheus(tmp_path: Path, served_app: tuple[str, Path]) -> Iterator[str]:
    """A Prometheus scraping the application every second; its URL."""
    target, _ = served_app
    with _scraping(tmp_path, target) as url:
        yield url


@pytest.fixture
def served_example(tmp_path: Path) -> Iterator[str]:
    """The example service under gunicorn with two workers, as ``make run`` starts it, with
    metrics on and added up across the workers, a version.json and a fresh SQLite database;
    its ``host:port``."""
    if not GUNICORN.exists():
        _skip_or_fail(f"gunicorn is not installed in {GUNICORN.parent} (pip install gunicorn)")
    (tmp_path / "version").mkdir()
    (tmp_path / "version" / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    (tmp_path / "metrics").mkdir()
    port = unused_port()
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_VARIABLES and not name.startswith(_FOREIGN_PREFIXES)
    }
    environ.update(
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        DATABASE_URL=f"sqlite:///{tmp_path / 'example.sqlite3'}",
        DOCKERFLOW_METRICS="true",
        DOCKERFLOW_VERSION_PATH=str(tmp_path / "version"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    target = f"{HOST}:{port}"
    with ServerProcess(
        [GUNICORN, "--config", "gunicorn.conf.py", "app:app"],
        cwd=EXAMPLE_APP,
        env=environ,
        stdout_path=tmp_path / "example.log",
        stderr_path=tmp_path / "gunicorn.log",
        name="gunicorn",
    ) as process:
        process.wait_until(
            lambda: (
                _status(target, "/__lbheartbeat__") == 200
                and process.errors().count("Booting worker with pid") >= WORKERS
            ),
            interval=0.1,
        )
        yield target


@pytest.fixture
def example_prometheus(tmp_path: Path, served_example: str) -> Iterator[str]:
    """A Prometheus scraping the example service every second; its URL."""
    with _scraping(tmp_path, served_example) as url:
        yield url


def _series(prometheus: str, query: str) -> list[tuple[dict[str, str], float]]:
    """The labels and value of each series the instant query ``query`` returns."""
    answer = _get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    assert answer["status"] == "success", answer
    return [(sample["metric"], float(sample["value"][1])) for sample in answer["data"]["result"]]


def _evaluate(prometheus: str, query: str) -> list[float]:
    """The values of the instant query ``query``: an empty list is Prometheus' "no data"."""
    return [value for _, value in _series(prometheus, query)]


def _by_route(prometheus: str, query: str) -> dict[str, float]:
    """The value of each route's series, failing if a route has two. Prometheus stores a label
    whose value is ``""`` as no label at all: that route's series has none."""
    series = _series(prometheus, query)
    values = {labels.get("route", ""): value for labels, value in series}
    assert len(values) == len(series), series
    return values


def _scrapes_so_far(prometheus: str) -> int:
    counted = _evaluate(prometheus, 'count_over_time(up{job="myservice"}[5m])')
    return int(counted[0]) if counted else 0


def _wait_for_scrapes(prometheus: str, count: int) -> None:
    """Wait until Prometheus has scraped ``count`` more times."""
    start = _scrapes_so_far(prometheus)
    _wait_until(lambda: _scrapes_so_far(prometheus) >= start + count, f"{count} more scrapes")


def _status(target: str, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{target}{path}", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code)


@pytest.mark.servers
def test_failed_runs_and_5xx_are_zero_until_a_run_fails(
    prometheus: str, served_app: tuple[str, Path]
) -> None:
    target, flag = served_app
    failed_runs = _query("Heartbeat runs that failed")
    share_of_5xx = _query("Share of requests answered 5xx:")

    assert _status(target, "/__heartbeat__") == 200
    # rate() needs two samples of a series in its window.
    _wait_until(lambda: _scrapes_so_far(prometheus) >= 3, "three scrapes")
    assert _evaluate(prometheus, failed_runs) == [0.0]
    assert _evaluate(prometheus, share_of_5xx) == [0.0]

    flag.touch()
    assert _status(target, "/__heartbeat__") == 500
    _wait_for_scrapes(prometheus, 2)
    (value,) = _evaluate(prometheus, failed_runs)
    assert value > 0


# The example's paths, what each answers and its route (Flask's url_rule.rule; "" for none).
_EXAMPLE_REQUESTS = {"/": (200, "/"), "/boom": (500, "/boom"), "/no/such/page": (404, "")}
_EXAMPLE_ROUTES = {route for _, route in _EXAMPLE_REQUESTS.values()}


@pytest.mark.servers
def test_per_route_latency_and_5xx_share_of_the_example_under_gunicorn(
    example_prometheus: str, served_example: str
) -> None:
    prometheus, target = example_prometheus, served_example
    p95_by_route = _query("95th percentile of the request duration by route")
    share_of_5xx_by_route = _query("Share of requests answered 5xx, by route")

    # Every route's series exists from a first request on, and is scraped twice before the
    # requests the queries measure: rate() sees no increase in a series whose first sample
    # already counts them.
    for path, (code, _) in _EXAMPLE_REQUESTS.items():
        assert _status(target, path) == code, path
    _wait_for_scrapes(prometheus, 2)
    for _ in range(10):
        for path, (code, _) in _EXAMPLE_REQUESTS.items():
            assert _status(target, path) == code, path
    _wait_for_scrapes(prometheus, 2)

    # Whichever worker answered, each request was counted once.
    counted = _by_route(prometheus, "sum by (route) (dockerflow_requests_total)")
    assert (counted["/"], counted["/boom"]) == (11, 11), counted

    # One series per route (_by_route fails on two). Only the example's routes are measured:
    # the Dockerflow paths asked (the fixture's probes, Prometheus' scrapes) are not.
    latency = _by_route(prometheus, p95_by_route)
    assert {route for route in latency if not route.startswith("/__")} == _EXAMPLE_ROUTES
    assert all(0 < latency[route] < 10 for route in _EXAMPLE_ROUTES), latency

    shares = _by_route(prometheus, share_of_5xx_by_route)
    assert {route: shares[route] for route in _EXAMPLE_ROUTES} == {"/": 0, "/boom": 1, "": 0}

    (build,) = _series(prometheus, "dockerflow_build_info")
    labels, value = build
    assert value == 1
    assert {key: labels[key] for key in ("version", "commit", "source")} == {
        key: VERSION[key] for key in ("version", "commit", "source")
    }


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = _prometheus_binary("promtool")
    queries = list(_queries().values())
    assert len(queries) == 8
    rules = tmp_path / "dashboard.rules.yml"
    recorded = [{"record": f"dashboard:query{n}", "expr": query} for n, query in enumerate(queries)]
    rules.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": recorded}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout
