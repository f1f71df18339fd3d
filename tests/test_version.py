"""version.json: loading it, and serving it at /__version__."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest
import webtest
from asgi_scope import http_scope
from test_asgi import call
from test_asgi import hello as asgi_hello

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter
from dockerflow_wsgi.version import MAX_VERSION_FILE_SIZE, VersionFileError, load_version_json

VERSION = {
    "source": "https://github.com/mozilla-services/example",
    "version": "v1.2.3",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "build": "https://ci.example.com/builds/42",
}


def write_version(directory, content):
    path = directory / "version.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the application"]


@pytest.fixture
def errors(caplog):
    """ERROR records of the dockerflow_wsgi logger made during the test."""
    caplog.set_level(logging.INFO, logger="dockerflow_wsgi")

    def error_records():
        return [
            record
            for record in caplog.records
            if record.name == "dockerflow_wsgi" and record.levelno >= logging.ERROR
        ]

    return error_records


def client_for(**options):
    return webtest.TestApp(DockerflowMiddleware(app, **options))


def assert_json_answer(response):
    assert response.content_type == "application/json"
    # DESIGN.md: no-cache "or stricter".
    cache_control = response.headers["Cache-Control"]
    assert "no-cache" in cache_control or "no-store" in cache_control
    assert "<html" not in response.text.lower()
    assert "Traceback" not in response.text


# load_version_json


def test_missing_file_is_none(tmp_path):
    assert load_version_json(str(tmp_path)) is None


def test_missing_directory_is_none(tmp_path):
    assert load_version_json(str(tmp_path / "not-there")) is None


@pytest.mark.parametrize(
    "content",
    [VERSION, {}, {"version": "1", "extra": {"nested": [1, 2]}}, {"name": "caf\u00e9"}],
)
def test_valid_object_is_returned(tmp_path, content):
    write_version(tmp_path, json.dumps(content))

    assert load_version_json(str(tmp_path)) == content


def test_utf8_with_a_byte_order_mark_is_read(tmp_path):
    write_version(tmp_path, b"\xef\xbb\xbf" + json.dumps(VERSION).encode())

    assert load_version_json(str(tmp_path)) == VERSION


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param("{not json}", "not valid JSON", id="invalid JSON"),
        pytest.param('{"version": "v1.2', "not valid JSON", id="truncated"),
        pytest.param("", "not valid JSON", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", "not valid JSON", id="not utf-8"),
        pytest.param('{"version": NaN}', "not valid JSON", id="NaN is not JSON"),
        pytest.param('{"version": Infinity}', "not valid JSON", id="Infinity is not JSON"),
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, "version.json", id="nested too deep"),
        pytest.param('["v1.2.3"]', "JSON object", id="a list"),
        pytest.param('"v1.2.3"', "JSON object", id="a string"),
        pytest.param("null", "JSON object", id="null"),
        pytest.param("42", "JSON object", id="a number"),
    ],
)
def test_file_that_cannot_be_served_raises(tmp_path, content, reason):
    write_version(tmp_path, content)

    with pytest.raises(VersionFileError) as raised:
        load_version_json(str(tmp_path))

    assert "version.json" in str(raised.value)
    assert reason in str(raised.value)


def test_unreadable_file_raises(tmp_path):
    # Tests may run as root, where chmod 000 does not stop reading: a directory does.
    (tmp_path / "version.json").mkdir()

    with pytest.raises(VersionFileError, match=r"version\.json is not a regular file") as raised:
        load_version_json(str(tmp_path))

    assert "a directory" in str(raised.value)


def test_version_file_error_is_an_exception():
    assert issubclass(VersionFileError, Exception)


def test_file_is_read_on_every_call(tmp_path):
    write_version(tmp_path, json.dumps({"version": "1"}))
    assert load_version_json(str(tmp_path)) == {"version": "1"}

    write_version(tmp_path, json.dumps({"version": "2"}))
    assert load_version_json(str(tmp_path)) == {"version": "2"}


# /__version__


def test_serves_the_file(tmp_path):
    write_version(tmp_path, json.dumps(VERSION))

    response = client_for(version_path=tmp_path).get("/__version__")

    assert response.status_int == 200
    assert response.json == VERSION
    assert_json_answer(response)


def test_missing_file_is_404(tmp_path, errors):
    response = client_for(version_path=tmp_path).get("/__version__", status=404)

    assert response.json == {"error": "version.json not found"}
    assert_json_answer(response)
    assert errors() == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"version": "v1.2', id="corrupt"),
        pytest.param('["v1.2.3"]', id="not an object"),
        pytest.param("", id="empty"),
        pytest.param('{"version": NaN}', id="NaN"),
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, id="nested too deep"),
    ],
)
def test_file_that_cannot_be_served_is_500_with_one_error_log(tmp_path, errors, content):
    write_version(tmp_path, content)

    response = client_for(version_path=tmp_path).get("/__version__", status=500)

    assert_json_answer(response)
    assert isinstance(response.json["error"], str)
    assert "version.json" in response.json["error"]
    assert len(errors()) == 1


def test_unreadable_file_is_500_with_one_error_log(tmp_path, errors):
    (tmp_path / "version.json").mkdir()

    response = client_for(version_path=tmp_path).get("/__version__", status=500)

    assert_json_answer(response)
    assert "error" in response.json
    assert len(errors()) == 1


def test_default_version_path_is_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKERFLOW_VERSION_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path, json.dumps(VERSION))

    assert client_for().get("/__version__").json == VERSION


def test_version_path_from_the_environment(tmp_path, monkeypatch):
    write_version(tmp_path, json.dumps(VERSION))
    monkeypatch.setenv("DOCKERFLOW_VERSION_PATH", str(tmp_path))

    assert client_for().get("/__version__").json == VERSION


def test_version_path_keyword_beats_the_environment(tmp_path, monkeypatch):
    from_env = tmp_path / "env"
    from_keyword = tmp_path / "keyword"
    from_env.mkdir()
    from_keyword.mkdir()
    write_version(from_env, json.dumps({"version": "env"}))
    write_version(from_keyword, json.dumps({"version": "keyword"}))
    monkeypatch.setenv("DOCKERFLOW_VERSION_PATH", str(from_env))

    assert client_for(version_path=from_keyword).get("/__version__").json == {"version": "keyword"}


def test_file_replaced_between_requests_is_served_fresh(tmp_path):
    client = client_for(version_path=tmp_path)
    write_version(tmp_path, json.dumps({"version": "v1"}))
    assert client.get("/__version__").json == {"version": "v1"}

    write_version(tmp_path, json.dumps({"version": "v2"}))
    assert client.get("/__version__").json == {"version": "v2"}


def test_file_appearing_after_a_404_is_served(tmp_path):
    client = client_for(version_path=tmp_path)
    client.get("/__version__", status=404)

    write_version(tmp_path, json.dumps(VERSION))

    assert client.get("/__version__").json == VERSION


def test_head_has_the_headers_of_get_and_no_body(tmp_path):
    write_version(tmp_path, json.dumps(VERSION))
    client = client_for(version_path=tmp_path)
    request_id = {"X-Request-ID": "same-id"}

    get = client.get("/__version__", headers=request_id)
    head = client.head("/__version__", headers=request_id)

    assert head.status_int == 200
    assert head.body == b""
    assert sorted(head.headerlist) == sorted(get.headerlist)


def test_head_of_a_missing_file_is_404_without_body(tmp_path):
    response = client_for(version_path=tmp_path).head("/__version__", status=404)

    assert response.body == b""
    assert response.content_type == "application/json"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(tmp_path, method):
    write_version(tmp_path, json.dumps(VERSION))

    response = client_for(version_path=tmp_path).request("/__version__", method=method, status=405)

    assert response.headers["Allow"] == "GET, HEAD"
    assert response.content_type == "application/json"


def test_the_application_is_not_called(tmp_path):
    calls = []

    def recording_app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return app(environ, start_response)

    write_version(tmp_path, json.dumps(VERSION))
    client = webtest.TestApp(DockerflowMiddleware(recording_app, version_path=tmp_path))

    client.get("/__version__")
    client.get("/__version__/")
    client.get("/__version__//", status=200)

    assert calls == ["/__version__//"]


# version_callback


def test_callback_dict_is_served(tmp_path):
    seen = []

    def callback(version_path):
        seen.append(version_path)
        return {"version": "from callback"}

    response = client_for(version_path=tmp_path, version_callback=callback).get("/__version__")

    assert response.json == {"version": "from callback"}
    assert_json_answer(response)
    assert seen == [str(tmp_path)]


def test_callback_replaces_the_file(tmp_path):
    write_version(tmp_path, json.dumps(VERSION))

    response = client_for(
        version_path=tmp_path, version_callback=lambda path: {"version": "callback"}
    ).get("/__version__")

    assert response.json == {"version": "callback"}


def test_callback_none_is_404(tmp_path, errors):
    response = client_for(version_path=tmp_path, version_callback=lambda path: None).get(
        "/__version__", status=404
    )

    assert response.json == {"error": "version.json not found"}
    assert errors() == []


@pytest.mark.parametrize(
    "result",
    [["v1"], "v1.2.3", 42, ("source", "version")],
    ids=lambda result: type(result).__name__,
)
def test_callback_non_dict_is_500_with_one_error_log(tmp_path, errors, result):
    response = client_for(version_path=tmp_path, version_callback=lambda path: result).get(
        "/__version__", status=500
    )

    assert_json_answer(response)
    assert isinstance(response.json["error"], str)
    assert len(errors()) == 1


def test_callback_raising_is_500_with_one_error_log(tmp_path, errors):
    def callback(version_path):
        raise RuntimeError("the build server is down")

    response = client_for(version_path=tmp_path, version_callback=callback).get(
        "/__version__", status=500
    )

    assert_json_answer(response)
    assert isinstance(response.json["error"], str)
    [record] = errors()
    assert "RuntimeError: the build server is down" in record.getMessage()
    assert "Traceback" in record.traceback and "RuntimeError" in record.traceback


def test_callback_raising_version_file_error_is_500(tmp_path, errors):
    def callback(version_path):
        raise VersionFileError("version.json is on fire")

    response = client_for(version_path=tmp_path, version_callback=callback).get(
        "/__version__", status=500
    )

    assert_json_answer(response)
    assert "error" in response.json
    assert len(errors()) == 1


# -- limits: only a small regular file is read ------------------------------------------------


def test_a_file_of_exactly_the_limit_is_read(tmp_path):
    padding = MAX_VERSION_FILE_SIZE - len(b'{"version":"1","pad":""}')
    write_version(tmp_path, '{"version":"1","pad":"' + "x" * padding + '"}')
    assert load_version_json(str(tmp_path))["version"] == "1"


@pytest.mark.parametrize("size", [MAX_VERSION_FILE_SIZE + 1, 50 * 1024 * 1024])
def test_a_larger_file_is_refused_before_it_is_read(tmp_path, size):
    path = tmp_path / "version.json"
    with path.open("wb") as handle:
        handle.truncate(size)  # sparse: the test costs no disk, a read would cost the memory

    with pytest.raises(VersionFileError, match=r"version\.json is larger than 1024 KiB"):
        load_version_json(str(tmp_path))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        pytest.param(lambda path: os.mkfifo(path), "a FIFO", id="fifo"),
        pytest.param(lambda path: path.symlink_to("/dev/zero"), "a character device", id="zero"),
        pytest.param(lambda path: path.symlink_to("/dev/null"), "a character device", id="null"),
        pytest.param(lambda path: path.mkdir(), "a directory", id="directory"),
    ],
)
def test_anything_but_a_regular_file_is_refused_without_blocking(tmp_path, make, kind):
    make(tmp_path / "version.json")
    outcome = {}

    def load():
        try:
            load_version_json(str(tmp_path))
        except VersionFileError as exc:
            outcome["error"] = str(exc)

    # On a thread, so that a FIFO that blocks fails the test instead of hanging it.
    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading version.json blocked"
    assert outcome["error"] == f"version.json is not a regular file ({kind})"


@pytest.mark.parametrize("special", ["fifo", "zero", "huge"])
def test_the_endpoint_answers_a_special_file_with_a_json_500_and_one_error(
    tmp_path, errors, special
):
    path = tmp_path / "version.json"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "zero":
        path.symlink_to("/dev/zero")
    else:
        with path.open("wb") as handle:
            handle.truncate(50 * 1024 * 1024)

    response = client_for(version_path=tmp_path).get("/__version__", status=500)

    assert_json_answer(response)
    assert response.json["error"].startswith("version.json is ")
    assert len(errors()) == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_callback_value_json_cannot_carry_is_a_500_never_a_bare_nan(tmp_path, errors, value):
    response = client_for(
        version_path=tmp_path, version_callback=lambda path: {"version": value}
    ).get("/__version__", status=500)

    assert_json_answer(response)
    assert response.json == {"error": "version information is not valid JSON"}
    assert len(errors()) == 1


# -- a callback raising what would end a process -----------------------------------------------


class Fatal(BaseException):
    """A BaseException of the application's own: neither an Exception nor a standard one."""


#: A secret the exception's text carries: it may reach no response and no log line.
CALLBACK_SECRET = "Cb-Pa55w0rd-91"
LEAKY_TEXT = f"cannot reach postgresql://app:{CALLBACK_SECRET}@db.internal/app"
FATAL = [SystemExit(3), SystemExit(LEAKY_TEXT), KeyboardInterrupt(LEAKY_TEXT), GeneratorExit()]
FATAL.append(Fatal(LEAKY_TEXT))


def raising(exception: BaseException):
    def callback(version_path):
        raise exception

    return callback


@pytest.mark.parametrize("raised", FATAL, ids=lambda raised: f"{raised!r}"[:20])
def test_a_callback_raising_any_base_exception_is_a_json_500_with_one_masked_error(
    tmp_path, errors, raised
):
    client = client_for(version_path=tmp_path, version_callback=raising(raised))

    try:
        response = client.get("/__version__", status="*")
    except BaseException as exc:
        pytest.fail(f"{exc!r} reached the server: a uWSGI worker dies of it")
    follow_up = client.get("/__lbheartbeat__", status=200)

    assert response.status_code == 500
    assert_json_answer(response)
    assert response.json == {"error": f"version callback failed: {type(raised).__name__}"}
    [record] = errors()
    logged = JsonLogFormatter().format(record)
    assert type(raised).__name__ in record.getMessage()
    assert "Traceback" in record.traceback
    assert CALLBACK_SECRET not in logged + response.text + follow_up.text


@pytest.mark.parametrize("raised", FATAL, ids=lambda raised: f"{raised!r}"[:20])
def test_under_asgi_a_callback_raising_any_base_exception_is_a_json_500(tmp_path, errors, raised):
    middleware = DockerflowASGIMiddleware(
        asgi_hello, version_path=tmp_path, version_callback=raising(raised)
    )

    seen = call(middleware, http_scope("/__version__"))

    assert seen.raised is None
    assert (seen.status, seen.json()) == (
        500,
        {"error": f"version callback failed: {type(raised).__name__}"},
    )
    [record] = errors()
    assert CALLBACK_SECRET not in JsonLogFormatter().format(record)


class ExplodingRepr:
    """A value JSON can only write with its repr(), which raises."""

    def __repr__(self) -> str:
        raise Fatal(LEAKY_TEXT)


@pytest.mark.parametrize(
    "version",
    [{"version": ExplodingRepr()}, {"version": {"nested": ExplodingRepr()}}],
    ids=["value", "nested"],
)
def test_a_callback_value_that_cannot_even_be_shown_is_a_json_500(tmp_path, errors, version):
    client = client_for(version_path=tmp_path, version_callback=lambda path: version)

    try:
        response = client.get("/__version__", status="*")
    except BaseException as exc:
        pytest.fail(f"{exc!r} reached the server")

    assert response.status_code == 500
    assert response.json == {"error": "version information is not valid JSON"}
    [record] = errors()
    assert CALLBACK_SECRET not in JsonLogFormatter().format(record)


def test_a_callback_raising_version_file_error_has_its_text_masked(tmp_path, errors):
    client = client_for(
        version_path=tmp_path, version_callback=raising(VersionFileError(LEAKY_TEXT))
    )

    response = client.get("/__version__", status=500)

    assert response.json == {"error": "cannot reach postgresql://app:***@db.internal/app"}
    [record] = errors()
    assert CALLBACK_SECRET not in JsonLogFormatter().format(record)
