"""The labels of the request metrics stay bounded whatever clients send: the method (the nine
usual ones, else ``other``), the status (100 to 599, else ``other``) and the route (from the
application's table, ``""`` when none matched); the children kept at hand stay bounded too.
``dockerflow_build_info`` is one series, 1, in one process as across workers;
``dockerflow_requests_in_progress`` counts the requests started and not yet finished.

The metrics are the process's own (``process_metrics()``), in prometheus_client's default
registry, shared with every other test: each test reads differences, or series it alone makes.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dockerflow_wsgi import metrics as metrics_module
from dockerflow_wsgi.metrics import Metrics, process_metrics

REPO = Path(__file__).resolve().parent.parent

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT")
CODES = frozenset(str(code) for code in range(100, 600))
OTHER_STATUSES = st.one_of(st.integers(max_value=99), st.integers(min_value=600))


def count(method: str, code: str, route: str = "") -> float:
    value = REGISTRY.get_sample_value(
        "dockerflow_requests_total", {"method": method, "code": code, "route": route}
    )
    return value or 0.0


def timed(method: str, route: str = "") -> float:
    value = REGISTRY.get_sample_value(
        "dockerflow_request_duration_seconds_count", {"method": method, "route": route}
    )
    return value or 0.0


def series(family_name: str) -> set[tuple[tuple[str, str], ...]]:
    """The label sets of a family's series in the registry (a histogram's buckets as one)."""
    return {
        tuple(sorted((name, value) for name, value in found.labels.items() if name != "le"))
        for family in REGISTRY.collect()
        if family.name == family_name
        for found in family.samples
    }


@pytest.mark.parametrize("method", METHODS)
def test_each_usual_method_has_a_label_of_its_own(method):
    before, timed_before = count(method, "200"), timed(method)
    process_metrics().observe_request(method, 200, "", 0.01, False)
    assert (count(method, "200"), timed(method)) == (before + 1, timed_before + 1)


@given(st.text(max_size=20).filter(lambda method: method not in METHODS))
def test_any_other_method_counts_as_other(method):
    before, timed_before = count("other", "200"), timed("other")
    process_metrics().observe_request(method, 200, "", 0.01, False)
    assert (count("other", "200"), timed("other")) == (before + 1, timed_before + 1)
    assert {dict(labels)["method"] for labels in series("dockerflow_requests")} <= {
        *METHODS,
        "other",
    }


@given(st.integers(min_value=100, max_value=599))
def test_a_status_from_100_to_599_is_its_decimal_text(code):
    before = count("GET", str(code))
    process_metrics().observe_request("GET", code, "", 0.01, False)
    assert count("GET", str(code)) == before + 1


@given(OTHER_STATUSES)
def test_any_other_status_counts_as_other(code):
    before = count("GET", "other")
    process_metrics().observe_request("GET", code, "", 0.01, False)
    assert count("GET", "other") == before + 1
    assert {dict(labels)["code"] for labels in series("dockerflow_requests")} <= {
        *CODES,
        "other",
    }


def test_a_request_that_failed_before_any_status_counts_as_500():
    before = count("POST", "500")
    process_metrics().observe_request("POST", 0, "", 0.01, True)
    assert count("POST", "500") == before + 1


def test_the_route_labels_the_count_and_the_duration():
    route = "/labels/users/<int:user_id>"
    process_metrics().observe_request("DELETE", 204, route, 0.01, False)
    process_metrics().observe_request("DELETE", 204, route, 0.01, False)
    assert count("DELETE", "204", route) == 2
    assert timed("DELETE", route) == 2
    assert (("method", "DELETE"), ("route", route)) in series("dockerflow_request_duration_seconds")


@given(st.text(max_size=20).filter(lambda method: method not in METHODS), OTHER_STATUSES)
def test_an_unknown_method_or_status_is_never_kept(method, code):
    metrics = process_metrics()
    kept = len(metrics._children)
    metrics.observe_request(method, 200, "", 0.01, False)
    metrics.observe_request("GET", code, "", 0.01, False)
    assert len(metrics._children) == kept


@pytest.fixture
def capped_at_8(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A cap of 8 kept children, and the routes the test counted, whose series it removes."""
    monkeypatch.setattr(metrics_module, "_CHILDREN_CAP", 8)
    routes: list[str] = []
    yield routes
    metrics = process_metrics()
    metrics._children.clear()
    for route in routes:
        metrics.requests.remove("GET", "200", route)
        metrics.request_duration.remove("GET", route)


def test_the_children_kept_are_capped_whatever_routes_callers_pass(capped_at_8):
    metrics = process_metrics()
    for index in range(20):
        route = f"/capped/{index}"
        capped_at_8.append(route)
        metrics.observe_request("GET", 200, route, 0.01, False)
        assert len(metrics._children) <= 8
    # Emptying the shortcuts loses no count: prometheus_client keeps the children.
    metrics.observe_request("GET", 200, "/capped/0", 0.01, False)
    assert count("GET", "200", "/capped/0") == 2


def test_a_million_requests_with_random_paths_and_methods_add_only_other_and_no_route():
    """The issue's test: a client inventing methods, and paths that match no route (``""``),
    with any status an application may give, adds only series with ``method="other"`` and
    ``route=""``, one per status label at most."""
    draw = random.Random(22)
    methods = [
        "".join(draw.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", k=draw.randint(1, 12)))
        for _ in range(4096)
    ]
    methods = [method for method in methods if method not in METHODS]
    codes = [draw.randrange(1000) for _ in range(4096)]
    counted_before = series("dockerflow_requests")
    timed_before = series("dockerflow_request_duration_seconds")
    observe = process_metrics().observe_request

    for index in range(10**6):
        observe(methods[index % len(methods)], codes[index & 4095], "", 0.01, False)

    counted = series("dockerflow_requests") - counted_before
    assert {(labels["method"], labels["route"]) for labels in map(dict, counted)} <= {("other", "")}
    assert {dict(labels)["code"] for labels in counted} <= {*CODES, "other"}
    assert series("dockerflow_request_duration_seconds") - timed_before <= {
        (("method", "other"), ("route", ""))
    }


# -- dockerflow_build_info -----------------------------------------------------------------------


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """The process's metrics, without the build a test shows once it ends."""
    metrics = process_metrics()
    yield metrics
    metrics.build_info.clear()
    metrics._build = None


def build_series() -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(found.labels.items())): found.value
        for family in REGISTRY.collect()
        if family.name == "dockerflow_build_info"
        for found in family.samples
    }


@pytest.mark.parametrize(
    ("version", "labels"),
    [
        (
            {"version": "1.2.3", "commit": "abc123", "source": "https://x.test/r", "build": "u"},
            {"version": "1.2.3", "commit": "abc123", "source": "https://x.test/r"},
        ),
        ({"commit": "abc123"}, {"version": "", "commit": "abc123", "source": ""}),
        ({}, {"version": "", "commit": "", "source": ""}),
        (
            {"version": 7, "commit": None, "source": ["a"]},
            {"version": "7", "commit": "", "source": "['a']"},
        ),
    ],
    ids=["full", "partial", "empty", "not-strings"],
)
def test_the_build_is_one_series_at_1_labelled_from_version_json(metrics, version, labels):
    metrics.set_build_info(version)
    assert build_series() == {tuple(sorted(labels.items())): 1.0}


def test_another_build_replaces_the_last(metrics):
    metrics.set_build_info({"version": "1", "commit": "a", "source": "s"})
    metrics.set_build_info({"version": "1", "commit": "a", "source": "s"})
    metrics.set_build_info({"version": "2", "commit": "b", "source": "s"})
    assert build_series() == {(("commit", "b"), ("source", "s"), ("version", "2")): 1.0}


_WORKERS = """
import json, os, sys
from prometheus_client import multiprocess
from dockerflow_wsgi import metrics as metrics_module

version = {"version": "1.2.3", "commit": "abc123", "source": "https://x.test/r"}
preload = sys.argv[1] == "preload"
if preload:
    # Made and set before the fork, as a middleware imported under gunicorn --preload.
    metrics_module.process_metrics().set_build_info(version)
children = []
for index in range(2):
    pid = os.fork()
    if pid == 0:
        metrics = metrics_module.process_metrics()
        if not preload:
            metrics.set_build_info(version)
        # The first value a child writes gives it its own files, every series of the parent
        # in them at 0.
        metrics.observe_request("GET", 200, "", 0.01, False)
        # The first child's request ends, the second's is still in progress when it dies.
        metrics.request_started()
        if index == 0:
            metrics.request_finished()
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
scrape = metrics_module.process_metrics().exposition
scraped = scrape().body.decode()
multiprocess.mark_process_dead(children[1])
directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
left = sorted(name for name in os.listdir(directory) if name.endswith(f"_{children[1]}.db"))
print(json.dumps({"scraped": scraped, "after_death": scrape().body.decode(), "left": left}))
"""


def _run_workers(tmp_path: Path, mode: str) -> dict[str, Any]:
    """Run ``_WORKERS`` in a new interpreter: prometheus_client reads
    ``PROMETHEUS_MULTIPROC_DIR`` when it is imported."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKERFLOW_")},
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WORKERS), mode],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (found.labels, found.value)
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == name
    ]


@pytest.mark.parametrize("mode", ["preload", "per-worker"])
def test_across_workers_the_build_is_one_series_at_1(tmp_path, mode):
    scraped = _run_workers(tmp_path, mode)

    build = {"version": "1.2.3", "commit": "abc123", "source": "https://x.test/r"}
    assert _samples(scraped["scraped"], "dockerflow_build_info") == [(build, 1.0)]
    assert _samples(scraped["after_death"], "dockerflow_build_info") == [(build, 1.0)]
    # A dead worker leaves its counts, but not its build: no file piles up per worker.
    assert [name.split("_")[0] for name in scraped["left"]] == ["counter", "histogram"]


# -- dockerflow_requests_in_progress -------------------------------------------------------------


def in_progress() -> float:
    return REGISTRY.get_sample_value("dockerflow_requests_in_progress") or 0.0


def test_a_request_is_in_progress_from_its_start_to_its_finish():
    metrics = process_metrics()
    before = in_progress()

    metrics.request_started()
    metrics.request_started()
    assert in_progress() == before + 2
    metrics.request_finished()
    assert in_progress() == before + 1
    metrics.request_finished()
    assert in_progress() == before


def test_across_workers_the_requests_in_progress_are_the_live_workers_sum(tmp_path):
    scraped = _run_workers(tmp_path, "per-worker")

    assert _samples(scraped["scraped"], "dockerflow_requests_in_progress") == [({}, 1.0)]
    # The dead worker's request went with it.
    assert _samples(scraped["after_death"], "dockerflow_requests_in_progress") == [({}, 0.0)]
