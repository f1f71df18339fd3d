"""``find_middleware``: the Dockerflow adapter of an application, whatever wraps it, in any
protocol (the WSGI cases are in ``test_cli.py``'s ``test_find_middleware``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sanic import Sanic
from starlette.applications import Starlette
from starlette.middleware import Middleware

from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.discovery import find_middleware, readable_attribute
from dockerflow_wsgi.middleware import find_middleware as reexported
from dockerflow_wsgi.sanic import Dockerflow


async def plain(scope: Any, receive: Any, send: Any) -> None:
    pass


def test_the_wsgi_adapter_keeps_it_importable() -> None:
    assert reexported is find_middleware


def test_a_raw_asgi_middleware_is_found_behind_a_wrapper() -> None:
    middleware = DockerflowASGIMiddleware(plain)

    class Outer:
        app = middleware

    assert find_middleware(Outer()) is middleware


def test_fastapi_before_its_first_call_gets_one_built_from_add_middlewares_options() -> None:
    app = FastAPI()
    app.add_middleware(DockerflowASGIMiddleware, check_timeout=3, heartbeat_groups={"a": ["b"]})

    found = find_middleware(app)

    assert isinstance(found, DockerflowASGIMiddleware)
    assert found.core.config.check_timeout == 3
    assert found.core.config.sources["check_timeout"] == "keyword"
    assert found.core.config.heartbeat_groups == {"a": ("b",)}


def test_starlette_once_built_gives_the_middleware_of_its_stack() -> None:
    app = Starlette(middleware=[Middleware(DockerflowASGIMiddleware, check_timeout=2)])
    app.middleware_stack = app.build_middleware_stack()

    found = find_middleware(app)

    assert found is app.middleware_stack.app  # behind Starlette's ServerErrorMiddleware
    assert found is not None and found.core.config.check_timeout == 2


def test_invalid_options_of_an_unbuilt_middleware_are_refused() -> None:
    app = FastAPI()
    app.add_middleware(DockerflowASGIMiddleware, check_timeout="soon")

    with pytest.raises(ValueError, match="check_timeout"):
        find_middleware(app)


def test_a_starlette_app_without_dockerflow_has_none() -> None:
    class Other:
        def __init__(self, app: Any, check_timeout: float) -> None:
            self.app = app

    app = FastAPI()
    app.add_middleware(Other, check_timeout=1)

    assert find_middleware(app) is None


def test_a_sanic_app_gives_its_integration() -> None:
    app = Sanic("discovery", configure_logging=False)
    dockerflow = Dockerflow(app, check_timeout=4)

    assert find_middleware(app) is dockerflow


def test_an_attribute_that_raises_reads_as_none() -> None:
    class Hostile:
        @property
        def app(self) -> Any:
            raise RuntimeError("no")

    assert readable_attribute(Hostile(), "app") is None
    assert find_middleware(Hostile()) is None
