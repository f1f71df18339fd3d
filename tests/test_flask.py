"""The Flask shim: wrapping app.wsgi_app once, g.request_id and the Flask-Login user id."""

from __future__ import annotations

import json
import logging
import re

import pytest
import webtest
from flask import Flask, abort, g, jsonify, request
from flask.ctx import _AppCtxGlobals
from flask_login import LoginManager, UserMixin, login_user

from dockerflow_wsgi import DockerflowMiddleware, checks, signals
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.logging import JsonLogFormatter

NEW_ID = re.compile(r"[0-9a-f]{32}")


def make_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index():
        return "hello"

    @app.get("/request-id")
    def request_id():
        return jsonify(
            attribute=g.request_id,
            get=g.get("request_id"),
            contained="request_id" in g,
            environ=request.environ["dockerflow.request_id"],
        )

    return app


def init_directly(app: Flask, **options) -> Dockerflow:
    return Dockerflow(app, **options)


def init_later(app: Flask, **options) -> Dockerflow:
    dockerflow = Dockerflow(**options)
    dockerflow.init_app(app)
    return dockerflow


INITS = [pytest.param(init_directly, id="Dockerflow(app)"), pytest.param(init_later, id="init_app")]


@pytest.mark.parametrize("init", INITS)
def test_the_shim_wraps_wsgi_app_in_the_middleware(init):
    app = make_app()
    original = app.wsgi_app

    dockerflow = init(app)

    assert isinstance(app.wsgi_app, DockerflowMiddleware)
    assert app.wsgi_app is dockerflow.middleware
    # Under the shim's one layer, which copies the id into a g made before the request.
    assert app.wsgi_app.app.wsgi_app == original
    response = webtest.TestApp(app).get("/__lbheartbeat__")
    assert response.status_int == 200
    assert response.headers["Content-Type"] == "application/json"
    assert webtest.TestApp(app).get("/").text == "hello"


@pytest.mark.parametrize("init", INITS)
def test_an_app_already_wrapped_by_hand_is_not_wrapped_again(init, summary_records):
    app = make_app()
    by_hand = DockerflowMiddleware(app.wsgi_app)
    app.wsgi_app = by_hand

    dockerflow = init(app)

    assert app.wsgi_app is by_hand
    assert dockerflow.middleware is by_hand
    response = webtest.TestApp(app).get("/")
    assert len(response.headers.getall("X-Request-ID")) == 1
    assert len(summary_records) == 1


@pytest.mark.parametrize("same_extension", [True, False])
def test_init_app_twice_wraps_once(same_extension, summary_records):
    app = make_app()
    first = Dockerflow(app)
    middleware = app.wsgi_app

    (first if same_extension else Dockerflow()).init_app(app)

    assert app.wsgi_app is middleware
    assert not isinstance(middleware.app, DockerflowMiddleware)
    response = webtest.TestApp(app).get("/request-id")
    assert len(response.headers.getall("X-Request-ID")) == 1
    assert response.json["attribute"] == response.headers["X-Request-ID"]
    assert len(summary_records) == 1


@pytest.mark.parametrize("init", INITS)
def test_options_are_passed_to_the_middleware(init, summary_records):
    app = make_app()
    checks.register(lambda: [checks.Error("down", id="t.E1")], name="down")

    init(
        app,
        request_id_header="X-Trace-ID",
        heartbeat_failed_status_code=503,
        log_querystring=True,
    )
    client = webtest.TestApp(app)

    assert client.get("/__heartbeat__", status="*").status_int == 503
    response = client.get("/request-id?q=1", headers={"X-Trace-ID": "trace-7"})
    assert response.json["attribute"] == "trace-7"
    assert response.headers["X-Trace-ID"] == "trace-7"
    assert summary_records[-1].querystring == "q=1"


@pytest.mark.parametrize("init", INITS)
def test_g_request_id_is_the_request_id(init):
    app = make_app()
    init(app)
    client = webtest.TestApp(app)

    sent = client.get("/request-id", headers={"X-Request-ID": "from-the-client"})
    generated = client.get("/request-id")

    assert sent.json == {
        "attribute": "from-the-client",
        "get": "from-the-client",
        "contained": True,
        "environ": "from-the-client",
    }
    new_id = generated.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(new_id)
    assert generated.json == {
        "attribute": new_id,
        "get": new_id,
        "contained": True,
        "environ": new_id,
    }


def test_g_has_no_request_id_outside_a_request():
    app = make_app()
    Dockerflow(app)
    webtest.TestApp(app).get("/request-id")

    with app.app_context():
        assert g.get("request_id") is None
        assert g.get("request_id", "fallback") == "fallback"
        assert "request_id" not in g
        with pytest.raises(AttributeError):
            g.request_id  # noqa: B018


@pytest.mark.parametrize("where", ["before_request", "view"])
def test_a_request_id_set_by_the_app_wins(where):
    app = Flask(__name__)
    Dockerflow(app)

    if where == "before_request":

        @app.before_request
        def set_request_id():
            g.request_id = "chosen-by-the-app"

    @app.get("/")
    def index():
        if where == "view":
            g.request_id = "chosen-by-the-app"
        return jsonify(attribute=g.request_id, get=g.get("request_id"))

    response = webtest.TestApp(app).get("/", headers={"X-Request-ID": "from-the-client"})

    assert response.json == {"attribute": "chosen-by-the-app", "get": "chosen-by-the-app"}


def test_a_custom_globals_class_keeps_working():
    class CustomGlobals(_AppCtxGlobals):
        def greeting(self) -> str:
            return "hello from the custom globals"

    app = Flask(__name__)
    app.app_ctx_globals_class = CustomGlobals
    Dockerflow(app)

    @app.get("/")
    def index():
        return jsonify(
            custom=isinstance(g._get_current_object(), CustomGlobals),
            greeting=g.greeting(),
            request_id=g.request_id,
        )

    response = webtest.TestApp(app).get("/", headers={"X-Request-ID": "rid-9"})

    assert response.json == {
        "custom": True,
        "greeting": "hello from the custom globals",
        "request_id": "rid-9",
    }


def test_a_globals_class_with_its_own_construction_and_setattr_is_honoured():
    class RecordingGlobals(_AppCtxGlobals):
        def __init__(self) -> None:
            self.__dict__["built_with"] = "its own __init__"
            self.__dict__["set_names"] = []

        def __setattr__(self, name: str, value: object) -> None:
            self.set_names.append(name)
            super().__setattr__(name, value)

    app = Flask(__name__)
    app.app_ctx_globals_class = RecordingGlobals
    Dockerflow(app)

    @app.get("/")
    def index():
        return jsonify(built_with=g.built_with, set_names=g.set_names, request_id=g.request_id)

    response = webtest.TestApp(app).get("/", headers={"X-Request-ID": "rid-10"})

    assert response.json == {
        "built_with": "its own __init__",
        "set_names": ["request_id"],
        "request_id": "rid-10",
    }


# -- Flask-Login ------------------------------------------------------------------------------


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def add_login(app: Flask) -> None:
    """Flask-Login with a session login route and an ``Authorization: user <id>`` loader."""
    app.secret_key = "testing"
    manager = LoginManager(app)

    @manager.user_loader
    def load_user(user_id):
        return User(user_id)

    @manager.request_loader
    def load_user_from_header(req):
        scheme, _, user_id = req.headers.get("Authorization", "").partition(" ")
        return User(user_id) if scheme == "user" and user_id else None

    @app.post("/login/<user_id>")
    def login(user_id):
        login_user(User(user_id))
        return "logged in"


@pytest.mark.parametrize("login_first", [True, False], ids=["login-then-shim", "shim-then-login"])
def test_summary_uid_is_the_flask_login_user(login_first, summary_records):
    app = make_app()
    if login_first:
        add_login(app)
        Dockerflow(app)
    else:
        Dockerflow(app)
        add_login(app)
    client = webtest.TestApp(app)

    client.get("/", headers={"Authorization": "user 7"})
    client.get("/")
    client.post("/login/42")
    client.get("/")

    assert [record.uid for record in summary_records] == ["7", "", "42", "42"]


def test_summary_uid_is_empty_when_flask_login_is_not_configured(summary_records):
    app = make_app()
    Dockerflow(app)

    webtest.TestApp(app).get("/", headers={"Authorization": "user 7"})

    [record] = summary_records
    assert record.uid == ""


def test_a_failing_user_loader_does_not_fail_the_request(summary_records):
    app = make_app()
    Dockerflow(app)
    app.secret_key = "testing"
    manager = LoginManager(app)

    @manager.request_loader
    def broken_loader(req):
        raise RuntimeError("user database down")

    response = webtest.TestApp(app).get("/", headers={"Authorization": "user 7"})

    assert response.text == "hello"
    [record] = summary_records
    assert record.uid == ""
    assert record.code == 200


def test_the_shim_answers_the_dockerflow_paths_without_running_flask(summary_records):
    app = make_app()
    Dockerflow(app)
    ran = []
    app.before_request(lambda: ran.append(request.path))

    response = webtest.TestApp(app).get("/__heartbeat__")

    assert json.loads(response.body) == {"status": "ok", "checks": {}, "details": {}}
    assert ran == []


def test_g_request_id_is_a_real_attribute_of_g():
    app = Flask(__name__)
    Dockerflow(app)

    @app.get("/dict-api")
    def dict_api():
        listed = "request_id" in list(g)
        kept = g.setdefault("request_id", "other")
        popped = g.pop("request_id")
        return jsonify(listed=listed, kept=kept, popped=popped, gone="request_id" not in g)

    response = webtest.TestApp(app).get("/dict-api", headers={"X-Request-ID": "abc"})
    assert response.json == {"listed": True, "kept": "abc", "popped": "abc", "gone": True}


def test_a_middleware_wrapped_under_another_middleware_is_not_wrapped_again(summary_records):
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = make_app()
    inner = DockerflowMiddleware(app.wsgi_app, log_querystring=True)
    app.wsgi_app = ProxyFix(inner)
    dockerflow = Dockerflow(app)

    assert dockerflow.middleware is inner
    assert isinstance(app.wsgi_app, ProxyFix)
    webtest.TestApp(app).get("/request-id?x=1")
    [record] = summary_records
    assert record.querystring == "x=1"


# -- a view's exception stays an error ----------------------------------------------------------


def failing_app(**config) -> Flask:
    app = make_app()
    app.config.update(config)

    @app.get("/fails")
    def fails():
        raise LookupError("the view failed")

    @app.get("/missing")
    def missing():
        abort(404)

    return app


@pytest.mark.parametrize("handler", [False, True], ids=["flask's page", "own 500 handler"])
def test_a_view_exception_answered_by_flask_is_an_error_summary(handler, summary_records, caplog):
    app = failing_app()
    if handler:
        app.register_error_handler(500, lambda error: ("our own page", 500))
    Dockerflow(app)
    client = webtest.TestApp(app)

    response = client.get("/fails", status=500)

    assert ("our own page" in response.text) is handler
    [record] = summary_records
    assert record.levelno == logging.ERROR
    assert (record.code, record.errno) == (500, 500)
    assert isinstance(record.exc_info[1], LookupError)
    line = json.loads(JsonLogFormatter().format(record))
    assert line["Severity"] == 3
    assert line["Fields"]["error"] == "LookupError('the view failed')"
    assert "in fails" in line["Fields"]["traceback"]


def test_an_http_error_is_no_exception_of_the_view(summary_records):
    app = failing_app()
    Dockerflow(app)

    webtest.TestApp(app).get("/missing", status=404)

    [record] = summary_records
    assert record.levelno == logging.INFO
    assert (record.code, record.errno) == (404, 404)


def test_with_propagated_exceptions_the_summary_is_an_error_once(summary_records):
    app = failing_app(TESTING=True)
    Dockerflow(app)

    with pytest.raises(LookupError):
        webtest.TestApp(app).get("/fails")

    [record] = summary_records
    assert record.levelno == logging.ERROR


# -- options from app.config ---------------------------------------------------------------------


def test_options_come_from_app_config(summary_records):
    app = make_app()
    app.config.update(
        DOCKERFLOW_REQUEST_ID_HEADER_NAME="X-Trace",
        DOCKERFLOW_SUMMARY_LOG_QUERYSTRING=True,
        DOCKERFLOW_CHECK_TIMEOUT=1.5,
    )
    dockerflow = Dockerflow(app)

    response = webtest.TestApp(app).get("/?q=1", headers={"X-Trace": "from-config"})

    assert response.headers["X-Trace"] == "from-config"
    assert dockerflow.middleware.config.check_timeout == 1.5
    [record] = summary_records
    assert record.querystring == "q=1"


def test_the_keyword_beats_app_config_which_beats_the_environment(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "9")
    monkeypatch.setenv("DOCKERFLOW_HEARTBEAT_CACHE_TTL", "8")
    app = make_app()
    app.config.update(DOCKERFLOW_CHECK_TIMEOUT="2", DOCKERFLOW_HEARTBEAT_CACHE_TTL="3")

    config = Dockerflow(app, check_timeout=1).middleware.config

    assert (config.check_timeout, config.heartbeat_cache_ttl) == (1.0, 3.0)


def test_a_bad_value_in_app_config_fails_at_init_naming_the_key():
    app = make_app()
    app.config["DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"] = 404

    with pytest.raises(
        ValueError, match=r"app\.config\['DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE'\]"
    ):
        Dockerflow(app)


def test_an_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="no option 'check_timeuot'"):
        Dockerflow(make_app(), check_timeuot=3)


def test_version_json_is_looked_for_beside_the_apps_package_by_default(tmp_path, monkeypatch):
    package = tmp_path / "service"
    package.mkdir()
    (tmp_path / "version.json").write_text(json.dumps({"version": "from-the-parent"}))
    monkeypatch.chdir(package)  # anywhere but the parent
    app = Flask("service", root_path=str(package))
    Dockerflow(app)

    assert webtest.TestApp(app).get("/__version__").json == {"version": "from-the-parent"}


# -- signals, with the app as sender -------------------------------------------------------------


def test_the_signals_are_sent_with_the_flask_app_as_sender():
    app = make_app()
    Dockerflow(app, checks=[("db", lambda: [checks.Error("down")])])
    other = make_app()
    Dockerflow(other, checks=[])
    heard = []

    @signals.heartbeat_failed.connect_via(app)
    def failed(sender, level, **extra):
        heard.append(("failed", sender, level))

    @signals.heartbeat_passed.connect_via(other)
    def passed(sender, level, **extra):
        heard.append(("passed", sender, level))

    webtest.TestApp(app).get("/__heartbeat__", status=500)
    webtest.TestApp(other).get("/__heartbeat__")

    assert heard == [("failed", app, checks.ERROR), ("passed", other, 0)]


# -- test clients --------------------------------------------------------------------------------


def test_an_unclosed_test_client_response_leaves_no_request_id_in_the_next_g():
    app = make_app()
    Dockerflow(app)

    response = app.test_client().get("/request-id")  # never closed
    assert NEW_ID.fullmatch(response.json["attribute"])

    with app.app_context():
        assert "request_id" not in g


def test_the_summary_of_a_test_client_request_is_written_when_the_response_closes(
    summary_records,
):
    app = make_app()
    Dockerflow(app)
    client = app.test_client()

    with client.get("/", headers={"X-Request-ID": "closed-by-with"}):
        assert summary_records == []
    response = client.get("/", headers={"X-Request-ID": "closed-by-hand"})
    response.close()

    assert [record.rid for record in summary_records] == ["closed-by-with", "closed-by-hand"]
