"""The OpenTelemetry page's examples, each run as pasted in a process of its own (a process sets
its tracer provider once), against the real SDK and instrumentations: the summary's ids are the
request span's, and a heartbeat run is a root span with a child per check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SNIPPETS = REPO / "docs" / "snippets"
DJANGO_PROJECT = REPO / "tests" / "django_project"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def run(code: str, *pythonpath: Path, **variables: str) -> list[dict[str, Any]]:
    """Run ``code`` with the snippets importable; every JSON object it printed (mozlog lines,
    and the console exporter's spans, which take several lines each)."""
    env = {
        "PATH": "/usr/bin:/bin",
        # Nothing written beside the docs' examples.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": ":".join(map(str, [SNIPPETS, *pythonpath])),
        **variables,
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return _objects(result.stdout)


def _objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found, position = [], 0
    while True:
        start = text.find("{", position)
        if start < 0:
            return found
        value, position = decoder.raw_decode(text, start)
        found.append(value)


def summaries(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line["Fields"] for line in objects if line.get("Type") == "request.summary"]


def console_spans(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [span for span in objects if "context" in span and "kind" in span]


def ids(span: dict[str, Any]) -> tuple[str, str]:
    """A console-exported span's ids, as the summary writes them (without ``0x``)."""
    return span["context"]["trace_id"][2:], span["context"]["span_id"][2:]


def assert_request_span_matches(summary: dict[str, Any], span: dict[str, Any]) -> None:
    assert (summary["trace_id"], summary["span_id"]) == ids(span)
    assert span["attributes"]["dockerflow.request_id"] == summary["rid"]
    # The caller's trace, continued.
    assert summary["trace_id"] == TRACEPARENT.split("-")[1]


def test_flask_with_a_console_exporter() -> None:
    objects = run(
        "import otel_flask\n"
        "client = otel_flask.app.test_client()\n"
        f"client.get('/', headers={{'traceparent': '{TRACEPARENT}'}}).close()\n"
        "client.get('/__heartbeat__').close()\n"
    )
    spans = console_spans(objects)
    page, heartbeat = summaries(objects)
    (request_span,) = [span for span in spans if span["kind"] == "SpanKind.SERVER"]
    assert_request_span_matches(page, request_span)
    # The Flask shim answers the heartbeat before Flask runs: no request span is its parent.
    (run_span,) = [span for span in spans if span["name"] == "dockerflow.heartbeat"]
    (check_span,) = [span for span in spans if span["name"] == "dockerflow.check"]
    assert run_span["parent_id"] is None
    assert check_span["parent_id"] == run_span["context"]["span_id"]
    assert check_span["attributes"] == {
        "dockerflow.check.name": "queue_reachable",
        "dockerflow.check.level": "ok",
        "dockerflow.check.timed_out": False,
    }
    assert heartbeat["path"] == "/__heartbeat__"


def test_fastapi_with_an_in_memory_exporter() -> None:
    objects = run(
        "import json\n"
        "from starlette.testclient import TestClient\n"
        "import otel_fastapi\n"
        f"TestClient(otel_fastapi.app).get('/', headers={{'traceparent': '{TRACEPARENT}'}})\n"
        "for span in otel_fastapi.spans.get_finished_spans():\n"
        "    print(span.to_json(indent=None))\n"
    )
    (summary,) = summaries(objects)
    (request_span,) = [span for span in console_spans(objects) if span["kind"] == "SpanKind.SERVER"]
    assert_request_span_matches(summary, request_span)


def test_django_with_a_console_exporter(tmp_path: Path) -> None:
    objects = run(
        "import webtest\n"
        "import otel_django_wsgi\n"
        "webtest.TestApp(otel_django_wsgi.application).get(\n"
        f"    '/', headers={{'traceparent': '{TRACEPARENT}'}}\n"
        ")\n",
        DJANGO_PROJECT,
        PROJECT_DATABASE=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    (summary,) = summaries(objects)
    (request_span,) = [span for span in console_spans(objects) if span["kind"] == "SpanKind.SERVER"]
    assert_request_span_matches(summary, request_span)


def test_any_wsgi_app_with_the_wsgi_middleware_around() -> None:
    objects = run(
        "import webtest\n"
        "import otel_wsgi\n"
        "app = webtest.TestApp(otel_wsgi.application)\n"
        f"app.get('/', headers={{'traceparent': '{TRACEPARENT}'}})\n"
        "app.get('/__heartbeat__')\n"
    )
    spans = console_spans(objects)
    page, heartbeat = summaries(objects)
    request_span, probe_span = [span for span in spans if span["kind"] == "SpanKind.SERVER"]
    assert_request_span_matches(page, request_span)
    (run_span,) = [span for span in spans if span["name"] == "dockerflow.heartbeat"]
    # A run on demand is the probe's child.
    assert run_span["parent_id"] == probe_span["context"]["span_id"]
    assert (heartbeat["trace_id"], heartbeat["span_id"]) == ids(probe_span)
