"""The harness every server test starts its server with (``tests/server_process.py``)."""

from __future__ import annotations

import ast
import os
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from server_process import HOST, ServerProcess, unused_port

TESTS = Path(__file__).resolve().parent

# Ignores SIGTERM and forks a child that does too, then writes the child's pid: a server whose
# worker outlives it unless the whole session is killed.
STUBBORN = textwrap.dedent(
    """\
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        time.sleep(600)
    else:
        print(f"worker {child}", flush=True)
        time.sleep(600)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a killed orphan may stay a zombie until something reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def python(tmp_path: Path, *arguments: str) -> ServerProcess:
    return ServerProcess(
        [sys.executable, *arguments],
        cwd=tmp_path,
        env=os.environ,
        stdout_path=tmp_path / "stdout.log",
        stderr_path=tmp_path / "stderr.log",
    )


@pytest.mark.servers
def test_started_ready_read_and_stopped(tmp_path: Path) -> None:
    port = unused_port()
    url = f"http://{HOST}:{port}/"
    (tmp_path / "hello.txt").write_text("hello", encoding="utf-8")
    with python(tmp_path, "-u", "-m", "http.server", "--bind", HOST, str(port)) as server:
        server.wait_until(lambda: urllib.request.urlopen(url, timeout=1).status == 200)
        with urllib.request.urlopen(url + "hello.txt", timeout=5) as answer:
            assert answer.read() == b"hello"
        server.wait_for_output("GET /hello.txt")
        assert server.running()
    assert not server.running()
    assert server.returncode == -15 and not server.killed


@pytest.mark.servers
def test_a_server_that_exits_while_starting_fails_at_once(tmp_path: Path) -> None:
    server = python(tmp_path, "-c", "import sys; sys.stderr.write('no config'); sys.exit(3)")
    with server, pytest.raises(AssertionError, match="exited with 3 while starting:\nno config"):
        server.wait_until(lambda: False, timeout=60)


@pytest.mark.servers
def test_a_server_deaf_to_sigterm_is_killed_with_its_workers(tmp_path: Path) -> None:
    server = python(tmp_path, "-c", STUBBORN).start()
    try:
        worker = int(server.wait_for_output(r"worker (\d+)").group(1))
        assert server.stop(timeout=1) is None
        assert server.killed
        deadline = time.monotonic() + 5  # SIGKILL is delivered, not waited for
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(worker)
    finally:
        server.kill()


def test_a_test_without_the_servers_marker_cannot_start_one(tmp_path: Path) -> None:
    server = python(tmp_path, "-c", "pass")
    with pytest.raises(pytest.fail.Exception, match="without the `servers` marker"):
        server.start()
    assert server.process is None


def test_ports_are_never_handed_out_twice() -> None:
    assert len({unused_port() for _ in range(50)}) == 50


def test_no_test_starts_a_process_it_does_not_wait_for_but_through_the_harness() -> None:
    """``subprocess.run`` waits for its process; a ``Popen`` outlives the call, as a server
    does, and only the harness may make one, so that the marker check sees every server."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == "server_process.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = node.func if isinstance(node, ast.Call) else None
            name = getattr(called, "attr", None) or getattr(called, "id", None)
            if name == "Popen":
                found.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert found == []
