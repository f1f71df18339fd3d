"""What a dead worker leaves in ``PROMETHEUS_MULTIPROC_DIR``, as docs/observability.rst says:
two files, whose number each scrape reads (``benchmarks/multiproc_scrape.py`` measures it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_each_dead_worker_leaves_its_counter_and_histogram_files() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "multiproc_scrape.py"),
            "0",
            "3",
            "--scrapes",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]

    # A real worker's files once it is marked dead, as gunicorn's child_exit does.
    assert {tuple(row["dead_worker_files"]) for row in rows} == {("counter", "histogram")}
    # The live worker's four (its requests in progress and whether it drains are live gauges),
    # and two per dead worker, each read by the scrape.
    assert [(row["dead_workers"], row["files"]) for row in rows] == [(0, 4), (3, 10)]


def test_the_documented_figures_count_two_files_per_dead_worker() -> None:
    page = (ROOT / "docs" / "observability.rst").read_text(encoding="utf-8")
    rows = re.findall(r"^([\d,]+) +([\d,]+) +[\d.]+ m?s ", page, re.M)
    assert len(rows) >= 4
    for dead, files in rows:
        assert int(files.replace(",", "")) == 4 + 2 * int(dead.replace(",", ""))
