"""The drain mark, as one process sees it: made, seen, expired, cancelled, ignored when it is not
a mark or not this container's, and a state folder that cannot be used. The answers while the
pod drains are rows of the conformance table; real servers are in ``test_drain_servers.py``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import webtest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi import drain as drain_module
from dockerflow_wsgi import state_dir as state_dir_module
from dockerflow_wsgi.cli import main
from dockerflow_wsgi.drain import MARK_NAME, cancel_mark, make_mark, watch_drain
from dockerflow_wsgi.metrics import process_metrics


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def served(state_dir: Path, **options: Any) -> webtest.TestApp:
    return webtest.TestApp(DockerflowMiddleware(hello, state_dir=state_dir, **options))


def probe(app: webtest.TestApp) -> int:
    return app.get("/__lbheartbeat__", expect_errors=True).status_int


def look(folder: Path) -> None:
    """Have this process look at ``folder`` now, as its thread does four times a second: a
    probe answers from the latest look."""
    watch = watch_drain(str(folder))
    assert watch is not None
    watch.check()


def write_mark(state_dir: Path, **mark: Any) -> None:
    state_dir.mkdir(exist_ok=True)
    (state_dir / MARK_NAME).write_text(json.dumps(mark), encoding="utf-8")


def drain_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "dockerflow_wsgi" and record.getMessage() in ("draining", "drain over")
    ]


def test_a_mark_drains_at_once_and_its_removal_ends_the_drain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "dockerflow_wsgi")
    app = served(tmp_path)
    assert probe(app) == 200
    make_mark(str(tmp_path), 10)
    look(tmp_path)
    assert probe(app) == 503
    assert app.get("/").text == "hello"
    assert cancel_mark(str(tmp_path)) is True
    look(tmp_path)
    assert probe(app) == 200
    assert cancel_mark(str(tmp_path)) is False
    assert drain_records(caplog) == ["draining", "drain over"]


def test_each_process_logs_draining_once_per_mark_however_many_probes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "dockerflow_wsgi")
    first, second = served(tmp_path), served(tmp_path, log_probes=False)
    make_mark(str(tmp_path), 10)
    for _ in range(5):
        look(tmp_path)
        assert probe(first) == probe(second) == 503
    make_mark(str(tmp_path), 10)  # made again while draining: still the same drain
    look(tmp_path)
    assert probe(first) == 503
    assert drain_records(caplog) == ["draining"]


def test_the_thread_sees_the_mark_without_any_request_and_the_probe_answers_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "dockerflow_wsgi")
    app = served(tmp_path)
    watch = watch_drain(str(tmp_path))
    assert watch is not None
    make_mark(str(tmp_path), 10)
    deadline = time.monotonic() + 1.0
    while not watch.draining and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watch.draining, "not seen within a second"
    assert drain_records(caplog) == ["draining"]
    assert probe(app) == 503


def test_an_expired_mark_drains_nothing(tmp_path: Path) -> None:
    app = served(tmp_path)
    write_mark(tmp_path, made=time.time() - 700, until=time.time() - 1, seconds=10)
    look(tmp_path)
    assert probe(app) == 200


def test_a_mark_expires_after_its_seconds_and_hold(tmp_path: Path) -> None:
    app = served(tmp_path)
    make_mark(str(tmp_path), 0.2, hold=0.3)
    look(tmp_path)
    assert probe(app) == 503
    time.sleep(0.6)
    # The same file, unchanged: the expiry it holds is what ends the drain.
    look(tmp_path)
    assert probe(app) == 200
    assert (tmp_path / MARK_NAME).exists()


def test_a_mark_left_by_an_earlier_start_of_the_container_drains_nothing(tmp_path: Path) -> None:
    app = served(tmp_path)
    write_mark(tmp_path, until=time.time() + 600, start="another-boot/1")
    look(tmp_path)
    assert probe(app) == 200
    write_mark(tmp_path, until=time.time() + 600, start=drain_module._container_start())
    look(tmp_path)
    assert probe(app) == 503


@pytest.mark.parametrize(
    "content", ["", "not json", "[1, 2]", '{"until": "soon"}', '{"until": true}', "{}"]
)
def test_a_file_that_is_no_mark_is_ignored_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    app = served(tmp_path)
    (tmp_path / MARK_NAME).write_text(content, encoding="utf-8")
    for _ in range(3):
        look(tmp_path)
        assert probe(app) == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "drain mark" in warnings[0].getMessage()


def test_the_drain_groups_answer_503_and_others_as_before(tmp_path: Path) -> None:
    app = served(
        tmp_path,
        checks=[],
        heartbeat_groups={"readiness": [], "startup": []},
        drain_groups="readiness,warmup",
    )
    make_mark(str(tmp_path), 10)
    look(tmp_path)
    assert app.get("/__heartbeat__/readiness", status=503).json == {"status": "draining"}
    assert app.get("/__heartbeat__/warmup", status=503).json == {"status": "draining"}
    assert app.get("/__heartbeat__/startup", status=200).json["status"] == "ok"
    assert app.get("/__heartbeat__", status=200).json["status"] == "ok"
    assert app.get("/__heartbeat__/other", status=404)
    cancel_mark(str(tmp_path))
    look(tmp_path)
    # A group that drains but has no checks configured is unknown the rest of the time.
    assert app.get("/__heartbeat__/warmup", status=404)


def test_no_drain_groups_leaves_only_the_load_balancers_probe(tmp_path: Path) -> None:
    app = served(tmp_path, checks=[], heartbeat_groups={"readiness": []}, drain_groups="")
    make_mark(str(tmp_path), 10)
    look(tmp_path)
    assert probe(app) == 503
    assert app.get("/__heartbeat__/readiness", status=200)


@pytest.mark.parametrize("bad", ["ready now", "a/b", "x" * 65])
def test_a_bad_drain_group_name_fails_at_construction(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="drain_groups"):
        DockerflowMiddleware(hello, state_dir=tmp_path, drain_groups=[bad])


@pytest.fixture
def only_this_tests_folders_drain(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The gauge is the process's: 1 while any folder a middleware of it uses drains (the
    conformance table's draining profiles' included). For the test, only its own count."""
    metrics = process_metrics()
    monkeypatch.setattr(metrics, "_draining_folders", set())
    yield
    monkeypatch.undo()
    metrics.set_draining("", False)  # the gauge as the process's own folders say again


@pytest.mark.usefixtures("only_this_tests_folders_drain")
def test_the_metric_says_whether_the_pod_drains(tmp_path: Path) -> None:
    app = served(tmp_path, metrics=True)

    def gauge() -> str:
        lines = app.get("/__metrics__").text.splitlines()
        return next(line for line in lines if line.startswith("dockerflow_draining "))

    assert gauge() == "dockerflow_draining 0.0"
    make_mark(str(tmp_path), 10)
    look(tmp_path)
    assert gauge() == "dockerflow_draining 1.0"
    cancel_mark(str(tmp_path))
    look(tmp_path)
    assert gauge() == "dockerflow_draining 0.0"


# -- a folder that cannot be used ---------------------------------------------------------------


def only_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(autouse=True)
def forget_prepared_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's folders are new to the process, as in a service that starts."""
    monkeypatch.setattr(state_dir_module, "_prepared", {})


def test_an_absent_folder_is_made_for_this_user_alone(tmp_path: Path) -> None:
    folder = tmp_path / "absent" / "state"
    served(folder)
    assert folder.is_dir()
    assert folder.stat().st_mode & 0o077 == 0


def test_a_folder_that_cannot_be_made_leaves_the_service_serving_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    folder = tmp_path / "file" / "state"
    first, second = served(folder), served(folder, metrics=True)
    for app in (first, second):
        assert probe(app) == 200
        assert app.get("/").text == "hello"
    (warning,) = only_warnings(caplog)
    assert str(folder) in warning
    assert "DOCKERFLOW_STATE_DIR" in warning


def test_a_default_folder_another_user_owns_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if not hasattr(os, "getuid") or os.getuid() != 0:
        pytest.skip("needs root, to give a folder to another user")
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    folder = Path(state_dir_module.default_state_dir())
    folder.mkdir(mode=0o700)
    make_mark(str(folder), 10)
    os.chown(folder, 65534, 65534)
    app = webtest.TestApp(DockerflowMiddleware(hello))
    assert probe(app) == 200
    (warning,) = only_warnings(caplog)
    assert "another user owns it" in warning


def test_a_default_folder_others_may_write_to_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    folder = Path(state_dir_module.default_state_dir())
    folder.mkdir()
    folder.chmod(0o777)
    make_mark(str(folder), 10)
    assert probe(webtest.TestApp(DockerflowMiddleware(hello))) == 200
    (warning,) = only_warnings(caplog)
    assert "other users may write to it" in warning


def test_a_folder_given_explicitly_is_used_whatever_its_mode(tmp_path: Path) -> None:
    """An emptyDir volume is writable by all: the operator chose it."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    app = served(folder)
    make_mark(str(folder), 10)
    look(folder)
    assert probe(app) == 503


# -- the command ---------------------------------------------------------------------------------


def test_the_command_makes_the_mark_waits_and_cancels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = served(tmp_path)
    started = time.monotonic()
    assert main(["drain", "--seconds", "0.3", "--state-dir", str(tmp_path)]) == 0
    assert time.monotonic() - started >= 0.3
    assert "draining" in capsys.readouterr().out
    mark = json.loads((tmp_path / MARK_NAME).read_text(encoding="utf-8"))
    assert 600 < mark["until"] - mark["made"] < 601
    look(tmp_path)
    assert probe(app) == 503
    assert main(["drain", "--cancel", "--state-dir", str(tmp_path)]) == 0
    look(tmp_path)
    assert probe(app) == 200
    assert main(["drain", "--cancel", "--state-dir", str(tmp_path)]) == 0
    assert "no drain mark" in capsys.readouterr().out


def test_the_command_reads_its_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKERFLOW_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKERFLOW_DRAIN_SECONDS", "0")
    monkeypatch.setenv("DOCKERFLOW_DRAIN_HOLD", "30")
    assert main(["drain"]) == 0
    mark = json.loads((tmp_path / MARK_NAME).read_text(encoding="utf-8"))
    assert (mark["seconds"], round(mark["until"] - mark["made"])) == (0, 30)


@pytest.mark.parametrize(
    ("arguments", "environment"),
    [
        (["--seconds", "-1"], {}),
        (["--seconds", "soon"], {}),
        (["--seconds", "nan"], {}),
        (["--seconds", "inf"], {}),
        ([], {"DOCKERFLOW_DRAIN_SECONDS": "-5"}),
        ([], {"DOCKERFLOW_DRAIN_HOLD": "forever"}),
    ],
)
def test_a_bad_number_is_a_usage_error_and_makes_no_mark(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    environment: dict[str, str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert main(["drain", "--state-dir", str(tmp_path), *arguments]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert "seconds" in error.lower() or "DOCKERFLOW_DRAIN" in error
    assert not (tmp_path / MARK_NAME).exists()


def test_a_folder_the_command_cannot_write_is_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert main(["drain", "--seconds", "0", "--state-dir", str(tmp_path / "file" / "x")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dockerflow-wsgi: error: cannot write the drain mark")
    assert "Traceback" not in error
