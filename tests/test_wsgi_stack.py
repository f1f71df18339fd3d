"""The whole stack under WSGI validators, and properties that hold for any client input."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any, Callable
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from flask import Flask, g, jsonify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.middleware.lint import LintMiddleware

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.logging import JsonLogFormatter
from dockerflow_wsgi.pep3333 import wsgi_text_as_utf8
from dockerflow_wsgi.redact import mask_secrets
from dockerflow_wsgi.summary import MAX_CLIENT_FIELD_LENGTH, TRUNCATION_MARKER

DOCKERFLOW_PATHS = ["/__lbheartbeat__", "/__heartbeat__", "/__version__"]
PATHS = [*DOCKERFLOW_PATHS, "/__error__", "/", "/stream"]
NEW_ID = re.compile(r"[0-9a-f]{32}")
OPTIONS: dict[str, Any] = {
    "version_callback": lambda path: {"version": "1.0.0", "commit": "abc123"},
    "checks": [
        ("fine", lambda: []),
        ("slow", lambda: [checks.Warning("slow ping", id="t.W1")]),
    ],
}

# werkzeug's linter does not know that a HEAD response keeps GET's Content-Length.
HEAD_CONTENT_LENGTH = "Content-Length and the number of bytes sent to the client do not match."


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    head = environ["REQUEST_METHOD"] == "HEAD"
    if environ["PATH_INFO"] == "/stream":
        return _stream(start_response, head)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [] if head else [b"hello"]


def _stream(start_response: Callable[..., Any], head: bool) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])
    if not head:
        yield b"chunk one, "
        yield b"chunk two"


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.route("/", methods=["GET", "HEAD", "POST"])
    def index():
        return jsonify(request_id=g.request_id)

    @app.route("/__error__", methods=["GET", "HEAD", "POST"])
    def error_path():
        return "the app's own /__error__"

    @app.route("/stream", methods=["GET", "HEAD", "POST"])
    def stream():
        return app.response_class(iter([b"chunk one, ", b"chunk two"]), mimetype="text/plain")

    return app


def bare_stack(checker: Callable[..., Any]) -> Any:
    return checker(DockerflowMiddleware(checker(bare_app), **OPTIONS))


def flask_stack(checker: Callable[..., Any]) -> Any:
    app = flask_app()
    app.wsgi_app = checker(app.wsgi_app)
    Dockerflow(app, **OPTIONS)
    return checker(app)


STACKS = [
    pytest.param(lambda: bare_stack(validator), id="bare-wsgiref-validate"),
    pytest.param(lambda: flask_stack(validator), id="flask-wsgiref-validate"),
    pytest.param(lambda: bare_stack(LintMiddleware), id="bare-werkzeug-lint"),
    pytest.param(lambda: flask_stack(LintMiddleware), id="flask-werkzeug-lint"),
]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("make_stack", STACKS)
def test_stack_passes_the_wsgi_validators(
    make_stack, path, method, make_environ, call_wsgi, summary_records
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call_wsgi(make_stack(), make_environ(path, method))

    complaints = [str(warning.message) for warning in caught]
    if method == "HEAD":
        complaints = [text for text in complaints if text != HEAD_CONTENT_LENGTH]
    assert complaints == []
    expected = 405 if path in DOCKERFLOW_PATHS and method == "POST" else 200
    assert result.code == expected
    assert len(result.header_values("X-Request-ID")) == 1
    if method == "HEAD":
        assert result.body == b""
    assert len(summary_records) == 1


# -- properties -------------------------------------------------------------------------------

LATIN_1 = st.characters(max_codepoint=0xFF)

# What a WSGI server puts in the environ: the header's bytes decoded as latin-1.
header_values = st.one_of(
    st.text(LATIN_1),
    st.text().map(lambda text: text.encode("utf-8").decode("latin-1")),
    st.binary().map(lambda raw: raw.decode("latin-1")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=140),
)
optional_header = st.none() | header_values
paths = st.sampled_from(PATHS) | st.text(LATIN_1).map(lambda text: "/" + text) | st.text(LATIN_1)
methods = st.sampled_from(
    ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
) | st.text(LATIN_1, max_size=20)

MIDDLEWARE = DockerflowMiddleware(bare_app, log_querystring=True, **OPTIONS)
FORMATTER = JsonLogFormatter(logger_name="test")


def acceptable_request_id(value: str) -> bool:
    """DESIGN.md: 1-128 characters of printable ASCII without whitespace."""
    return 1 <= len(value) <= 128 and all("!" <= char <= "~" for char in value)


def logged(value: str) -> str:
    if len(value) <= MAX_CLIENT_FIELD_LENGTH:
        return value
    return value[:MAX_CLIENT_FIELD_LENGTH] + TRUNCATION_MARKER


def build_environ(**values: Any) -> dict[str, Any]:
    environ = {key: value for key, value in values.items() if value is not None}
    environ.setdefault("SCRIPT_NAME", "")
    setup_testing_defaults(environ)
    return environ


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    request_id=optional_header,
    agent=optional_header,
    lang=optional_header,
    path=paths,
    query=st.text(LATIN_1),
    method=methods,
)
def test_any_request_gets_a_safe_answer_and_one_json_log_line(
    request_id, agent, lang, path, query, method, call_wsgi, summary_records
):
    summary_records.clear()
    environ = build_environ(
        HTTP_X_REQUEST_ID=request_id,
        HTTP_USER_AGENT=agent,
        HTTP_ACCEPT_LANGUAGE=lang,
        PATH_INFO=path,
        QUERY_STRING=query,
        REQUEST_METHOD=method,
    )

    result = call_wsgi(MIDDLEWARE, environ)

    if path in DOCKERFLOW_PATHS:
        assert result.code == (200 if method in ("GET", "HEAD") else 405)
    else:
        assert result.code == 200
    for name, value in result.headers:
        assert type(name) is str
        assert type(value) is str
        name.encode("latin-1")
        value.encode("latin-1")
        assert not {"\r", "\n"} & set(name + value)

    [echoed] = result.header_values("X-Request-ID")
    if request_id is not None and acceptable_request_id(request_id):
        assert echoed == request_id
    else:
        assert NEW_ID.fullmatch(echoed)

    [record] = summary_records
    line = FORMATTER.format(record)
    assert len(line.splitlines()) == 1
    fields = json.loads(line)["Fields"]
    assert not [value for value in fields.values() if isinstance(value, dict)]
    assert fields["rid"] == echoed
    assert fields["agent"] == logged(agent or "")
    assert fields["lang"] == logged(lang or "")
    # The request's UTF-8 text, secrets masked (both pinned by their own tests); a path is
    # masked only where it could hold a URL's credentials.
    text_path = wsgi_text_as_utf8(path)
    assert fields["path"] == logged(mask_secrets(text_path) if "@" in text_path else text_path)
    assert fields["querystring"] == logged(mask_secrets(wsgi_text_as_utf8(query)))
    assert fields["code"] == result.code
