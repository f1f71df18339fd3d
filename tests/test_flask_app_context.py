"""``g.request_id`` when an app context is already pushed around the requests.

pytest-flask, and many test suites, push an app (or test request) context for a whole test;
Flask then serves every request in it with that context's ``g`` instead of a new one.

Each response is read at once, as a test does: the id is current while a body is relayed, so a
response left half-read keeps it current until it is finished.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask, g, jsonify

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.flask import Dockerflow

NEW_ID = re.compile(r"[0-9a-f]{32}")


def make_app(wrapped_by_hand: bool = False) -> Flask:
    app = Flask(__name__)
    if wrapped_by_hand:
        app.wsgi_app = DockerflowMiddleware(app.wsgi_app)
    Dockerflow(app)

    @app.get("/request-id")
    def request_id():
        return jsonify(attribute=g.request_id, get=g.get("request_id"))

    return app


@pytest.mark.parametrize("wrapped_by_hand", [False, True], ids=["shim", "middleware+shim"])
@pytest.mark.parametrize(
    "push", [pytest.param(Flask.app_context, id="app_context"), Flask.test_request_context]
)
def test_each_request_sees_its_own_id_in_a_context_pushed_around_several(push, wrapped_by_hand):
    app = make_app(wrapped_by_hand)
    client = app.test_client()

    with push(app):
        first = client.get("/request-id", headers={"X-Request-ID": "first-request"}).json
        second = client.get("/request-id", headers={"X-Request-ID": "second-request"}).json
        generated = client.get("/request-id")
        new_id, generated_json = generated.headers["X-Request-ID"], generated.json

    assert first == {"attribute": "first-request", "get": "first-request"}
    assert second == {"attribute": "second-request", "get": "second-request"}
    assert NEW_ID.fullmatch(new_id)
    assert generated_json == {"attribute": new_id, "get": new_id}


def test_a_request_id_the_app_set_in_the_pushed_context_is_kept():
    app = make_app()
    client = app.test_client()

    with app.app_context():
        g.request_id = "chosen-by-the-app"
        first = client.get("/request-id", headers={"X-Request-ID": "first-request"}).json
        second = client.get("/request-id", headers={"X-Request-ID": "second-request"})
        seen = [first["attribute"], second.json["attribute"]]

    assert seen == ["chosen-by-the-app", "chosen-by-the-app"]
    # The header still carries the request's own id: only g is the app's.
    assert second.headers["X-Request-ID"] == "second-request"


def test_a_request_id_the_app_set_during_an_earlier_request_is_kept():
    app = make_app()

    @app.get("/choose")
    def choose():
        g.request_id = "chosen-during-a-request"
        return "chosen"

    client = app.test_client()
    with app.app_context():
        assert client.get("/choose", headers={"X-Request-ID": "first-request"}).text == "chosen"
        later = client.get("/request-id", headers={"X-Request-ID": "second-request"}).json

    assert later["attribute"] == "chosen-during-a-request"


def test_the_id_of_a_request_is_not_left_in_g_of_a_fresh_context():
    app = make_app()
    client = app.test_client()

    with app.app_context():
        assert client.get("/request-id", headers={"X-Request-ID": "first-request"}).json
    with app.app_context():
        assert "request_id" not in g


def test_a_context_of_another_app_is_left_alone():
    app = make_app()
    other = Flask("other")

    with other.app_context():
        g.request_id = "the-other-apps"
        seen = app.test_client().get("/request-id", headers={"X-Request-ID": "ours"}).json
        assert g.request_id == "the-other-apps"

    assert seen["attribute"] == "ours"


def test_the_shim_sets_up_once_when_initialised_twice():
    app = make_app()
    Dockerflow(app)

    with app.app_context():
        seen = app.test_client().get("/request-id", headers={"X-Request-ID": "ours"}).json

    assert seen["attribute"] == "ours"
    assert not hasattr(app.wsgi_app.app.wsgi_app, "dockerflow_flask_app")
