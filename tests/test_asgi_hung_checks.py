"""``/__version__`` and ``/__metrics__`` under a real ASGI server (and Sanic's) whose check pool
is full.

DESIGN: "``/__lbheartbeat__``, ``/__version__`` and ``/__metrics__`` never wait on anything a
check holds." Forty checks that never return hold every thread of the check pool (32) and queue
eight more; the other Dockerflow answers must still come at once.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_apps.harness import BIN, SERVERS, Served, environment
from test_sanic import Server

pytestmark = pytest.mark.servers

#: More checks than the check pool has threads (32), so that some wait in its queue too.
HUNG_CHECKS = 40
VERSION = {"source": "https://example.com/hung", "version": "1.0", "commit": "abc", "build": ""}

APP = textwrap.dedent(
    f"""
    import functools
    import threading

    from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

    # Set by nothing: the checks hang until the server stops (daemon threads).
    never = threading.Event()


    def hung(number):
        never.wait()
        return []


    async def app(scope, receive, send):
        await send({{"type": "http.response.start", "status": 200, "headers": []}})
        await send({{"type": "http.response.body", "body": b"app"}})


    application = DockerflowASGIMiddleware(
        app,
        checks=[
            (f"hung_{{number}}", functools.partial(hung, number))
            for number in range({HUNG_CHECKS})
        ],
        check_timeout=0.5,
        metrics=True,
    )
    """
)


@pytest.fixture(params=SERVERS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    server = request.param
    if not (BIN / server).exists():
        pytest.skip(f"{server} is not installed in {BIN}")
    (tmp_path / "hung_app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    served = Served(
        server,
        "hung_app:application",
        tmp_path,
        environment(DOCKERFLOW_VERSION_PATH=str(tmp_path)),
        cwd=tmp_path,
    )
    served.start()
    try:
        yield served
    finally:
        served.kill()


def test_version_and_metrics_answer_while_hung_checks_fill_the_check_pool(
    served: Served,
) -> None:
    heartbeat = served.get("/__heartbeat__")
    assert heartbeat.status == 500
    assert set(heartbeat.json()["checks"].values()) == {"error"}

    version = served.get("/__version__")
    metrics = served.get("/__metrics__")

    assert (version.status, version.json()) == (200, VERSION)
    assert metrics.status == 200
    assert b"dockerflow_heartbeat_runs_total" in metrics.body


SANIC_APP = textwrap.dedent(
    f"""
    import functools
    import sys
    import threading

    from sanic import Sanic
    from sanic.response import text

    from dockerflow_wsgi.sanic import Dockerflow

    never = threading.Event()


    def hung(number):
        never.wait()
        return []


    app = Sanic("hung", configure_logging=False)
    Dockerflow(
        app,
        checks=[
            (f"hung_{{number}}", functools.partial(hung, number))
            for number in range({HUNG_CHECKS})
        ],
        check_timeout=0.5,
        metrics=True,
    )
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, motd=False)
    """
)


@pytest.fixture
def sanic_served(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "hung_sanic.py").write_text(SANIC_APP, encoding="utf-8")
    (tmp_path / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    server = Server(
        tmp_path,
        "hung",
        [str(tmp_path / "hung_sanic.py"), "{port}"],
        cwd=tmp_path,
        environment={"DOCKERFLOW_VERSION_PATH": str(tmp_path)},
    )
    server.start()
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


def test_sanic_answers_version_and_metrics_while_hung_checks_fill_the_check_pool(
    sanic_served: Server,
) -> None:
    heartbeat = sanic_served.get("/__heartbeat__")
    assert heartbeat.status_code == 500
    assert set(heartbeat.json()["checks"].values()) == {"error"}

    version = sanic_served.get("/__version__")
    metrics = sanic_served.get("/__metrics__")

    assert (version.status_code, version.json()) == (200, VERSION)
    assert metrics.status_code == 200
    assert "dockerflow_heartbeat_runs_total" in metrics.text
