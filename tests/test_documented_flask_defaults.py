"""What the README and the docs say about the Flask shim's defaults is what the code does.

The shim keeps two habits of the ``dockerflow`` package that the explicit wrapping does not
have: ``version.json`` in the parent directory of ``app.root_path``, and options from
``app.config``. Each page that states a default is read here and held against the code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import webtest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.options import OPTIONS

flask = pytest.importorskip("flask")

from dockerflow_wsgi.flask import Dockerflow  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

WORKING_DIRECTORY = "working directory"
SHIM_DEFAULT = "parent directory of app.root_path"


def plain(text: str) -> str:
    """Prose without markup or line breaks, for matching a statement across lines."""
    return " ".join(text.replace("``", "").replace("`", "").split())


def readme_version_row() -> str:
    rows = [line for line in (REPO / "README.md").read_text("utf-8").splitlines()]
    (row,) = [line for line in rows if line.startswith("| `/__version__` |")]
    return plain(row)


def configuration_version_default() -> str:
    """The default in the configuration page's options table (and the middleware's docstring),
    both rendered from the option table."""
    (version_path,) = [option for option in OPTIONS if option.name == "version_path"]
    return plain(version_path.shown_default())


def make_app(root: Path) -> flask.Flask:
    app = flask.Flask("service", root_path=str(root / "service"))

    @app.get("/")
    def index() -> str:
        return "hello"

    return app


@pytest.mark.parametrize("statement", [readme_version_row, configuration_version_default])
def test_each_page_gives_both_version_path_defaults(statement) -> None:
    text = statement()
    assert WORKING_DIRECTORY in text
    assert f"Flask shim: the {SHIM_DEFAULT}" in text or f"Flask shim the {SHIM_DEFAULT}" in text


def test_the_version_path_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    shim = Dockerflow(make_app(tmp_path)).middleware
    explicit = DockerflowMiddleware(make_app(tmp_path).wsgi_app)

    assert shim is not None
    assert shim.config.version_path == str(tmp_path)  # the parent of app.root_path
    assert explicit.config.version_path == os.getcwd()


def test_the_quickstart_says_the_shim_reads_app_config_once() -> None:
    text = plain((DOCS / "quickstart.rst").read_text("utf-8"))
    assert "does not read app.config" not in text
    assert "app.config is read once, when Dockerflow(app) (or init_app) is called" in text
    assert f"looked for in the {SHIM_DEFAULT}" in text


def test_the_shim_reads_app_config_once_at_init_app(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    app.config["DOCKERFLOW_REQUEST_ID_HEADER_NAME"] = "X-Trace"
    Dockerflow(app)
    app.config["DOCKERFLOW_REQUEST_ID_HEADER_NAME"] = "X-Later"  # too late: not read again

    response = webtest.TestApp(app).get("/", headers={"X-Trace": "abc", "X-Later": "def"})

    assert response.headers["X-Trace"] == "abc"
    assert "X-Later" not in response.headers


def test_the_keyword_wins_over_app_config_and_app_config_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "3")
    app = make_app(tmp_path)
    app.config["DOCKERFLOW_CHECK_TIMEOUT"] = 2
    from_config = Dockerflow(app).middleware
    from_keyword = Dockerflow(make_app(tmp_path), check_timeout=1).middleware

    assert from_config is not None and from_keyword is not None
    assert from_config.config.check_timeout == 2
    assert from_keyword.config.check_timeout == 1
