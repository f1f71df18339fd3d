"""The services of ``test_drain_servers.py``, one per protocol, as the real servers import them.

Every process that imports this module logs mozlog JSON to stdout and says ``started`` (with
its ``Pid``): the test knows each serving process from that line, and then expects one
``draining`` record from each. Every app answers ``/`` with the id of the process serving it.
``DOCKERFLOW_STATE_DIR`` comes from the environment, as in a deployment.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pid_apps import pid_asgi, pid_wsgi

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import MozlogHandler

logging.basicConfig(handlers=[MozlogHandler(name="drain-test")], level=logging.INFO, force=True)
logging.getLogger("drain-test").info("started")


wsgi = DockerflowMiddleware(pid_wsgi)


asgi = DockerflowASGIMiddleware(pid_asgi)


def sanic_app() -> Any:
    """The Sanic service (``sanic drain_apps:sanic_app --factory``)."""
    from sanic import Sanic, response

    from dockerflow_wsgi.sanic import Dockerflow

    app = Sanic("drain_test", configure_logging=False)

    @app.get("/")
    async def index(request: Any) -> Any:
        return response.text(str(os.getpid()))

    Dockerflow(app)
    return app
