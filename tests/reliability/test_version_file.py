"""``version.json`` deleted, truncated, corrupted or replaced while gunicorn serves the example.

The file is read at every request, so each change is answered at once, as DESIGN.md says:
``404`` when it is missing, ``500`` with a JSON ``error`` and one ERROR log record when it
cannot be served, the new contents when it was replaced; the rest of the service never
notices. Every case of the file's contents is pinned in process by ``tests/test_version.py``;
here it is the running service, and changes made while requests are in flight.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import VERSION, Answer, Client, Gunicorn, log_problems, parse_lines, tally

pytestmark = pytest.mark.servers

NEW_VERSION = {**VERSION, "version": "1.2.4", "commit": "89abcdef" * 5}
VERSION_BYTES = json.dumps(VERSION).encode()


def replace_atomically(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_name(".version.json.tmp")
    temporary.write_text(json.dumps(content), encoding="utf-8")
    os.replace(temporary, path)


def make_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


# (change made to version.json, status, body or the start of its error)
CHANGES: dict[str, tuple[Callable[[Path], Any], int, Any]] = {
    "deleted": (Path.unlink, 404, {"error": "version.json not found"}),
    "truncated": (
        lambda path: path.write_bytes(VERSION_BYTES[: len(VERSION_BYTES) // 2]),
        500,
        "version.json is not valid JSON: ",
    ),
    "emptied": (lambda path: path.write_bytes(b""), 500, "version.json is not valid JSON: "),
    "not an object": (
        lambda path: path.write_bytes(b"[1, 2]"),
        500,
        "version.json must hold a JSON object, found list",
    ),
    "not UTF-8": (
        lambda path: path.write_bytes(b'{"version": "\xff\xfe"}'),
        500,
        "version.json is not valid JSON: ",
    ),
    "a directory": (make_directory, 500, "version.json is not a regular file (a directory)"),
    "replaced": (lambda path: replace_atomically(path, NEW_VERSION), 200, NEW_VERSION),
}


@pytest.fixture(scope="module")
def server(serve: Any) -> Gunicorn:
    return serve("version-file", threads=4)


@pytest.fixture
def version_json(server: Gunicorn) -> Iterator[Path]:
    """The served ``version.json``, holding ``VERSION`` again after the test."""
    path = server.workdir / "version" / "version.json"
    yield path
    if path.is_dir():
        shutil.rmtree(path)
    replace_atomically(path, VERSION)


def get_version(client: Client, request_id: str) -> Answer:
    return client.request("GET", "/__version__", {"X-Request-ID": request_id})


def error_records(server: Gunicorn, request_id: str) -> list[dict[str, Any]]:
    return [
        record
        for record in parse_lines(server.stdout_lines())[0]
        if record["Type"] == "dockerflow_wsgi" and record["Fields"].get("rid") == request_id
    ]


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_is_served_at_once(server: Gunicorn, version_json: Path, change: str) -> None:
    make_change, status, expected = CHANGES[change]
    slug = change.replace(" ", "-")
    client = Client(server.port)
    assert get_version(client, f"before-{slug}").json() == VERSION

    make_change(version_json)
    tally("faults injected")
    request_id = f"changed-{slug}"
    answer = get_version(client, request_id)

    assert answer.status == status
    assert answer.header("Content-Type") == "application/json"
    if isinstance(expected, dict):
        assert answer.json() == expected
    else:
        assert set(answer.json()) == {"error"}
        assert answer.json()["error"].startswith(expected)
    [summary] = server.wait_for_summary(request_id)
    assert summary["Fields"]["code"] == status
    errors = error_records(server, request_id)
    if status == 500:
        [record] = errors
        assert record["Severity"] == 3
        assert record["Fields"]["msg"] == f"Cannot serve /__version__: {answer.json()['error']}"
    else:
        assert errors == []
    # Nothing else noticed.
    assert client.request("GET", "/__lbheartbeat__").status == 200
    assert client.request("GET", "/").status == 200
    client.close()
    tally("faults recovered")


def read_while(server: Gunicorn, change: Callable[[], None], readers: int = 4) -> list[Answer]:
    """``readers`` clients read ``/__version__`` 100 times each while ``change`` runs."""
    done = threading.Event()
    answers: list[Answer] = []
    lock = threading.Lock()

    def read(number: int) -> None:
        client = Client(server.port)
        for sequence in range(100):
            answer = get_version(client, f"read-{number}-{sequence}")
            with lock:
                answers.append(answer)
        client.close()

    def keep_changing() -> None:
        while not done.is_set():
            change()

    changer = threading.Thread(target=keep_changing)
    changer.start()
    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    changer.join(10)
    return answers


def test_atomic_replacement_under_reads_always_serves_a_whole_version(
    server: Gunicorn, version_json: Path
) -> None:
    def swap() -> None:
        replace_atomically(version_json, NEW_VERSION)
        replace_atomically(version_json, VERSION)

    answers = read_while(server, swap)
    tally("faults injected")
    assert len(answers) == 400
    assert {answer.status for answer in answers} == {200}
    served = {json.dumps(answer.json(), sort_keys=True) for answer in answers}
    assert served <= {json.dumps(VERSION, sort_keys=True), json.dumps(NEW_VERSION, sort_keys=True)}
    tally("faults recovered")


def test_rewriting_in_place_under_reads_serves_a_version_or_a_json_error(
    server: Gunicorn, version_json: Path
) -> None:
    """Writing the file in place (truncate, then write) lets a reader see it half written:
    that read is a 500 with a JSON error, never a crash, a traceback page or a partial body."""

    def rewrite() -> None:
        with version_json.open("wb") as handle:
            handle.write(VERSION_BYTES[:10])
            handle.flush()
            handle.write(VERSION_BYTES[10:])

    answers = read_while(server, rewrite)
    assert len(answers) == 400
    for answer in answers:
        assert answer.header("Content-Type") == "application/json"
        if answer.status == 200:
            assert answer.json() == VERSION
        else:
            assert answer.status == 500
            assert answer.json()["error"].startswith("version.json is not valid JSON: ")
    tally("faults injected")
    tally("faults recovered")


def test_the_log_stays_mozlog(server: Gunicorn) -> None:
    assert server.stop() == 0
    assert log_problems(server.stdout_lines()) == []
