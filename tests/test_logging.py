"""mozlog JSON lines from JsonLogFormatter, and the request id filter."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import logging
import logging.config
import os
import socket
import sys
import time

import pytest
import webtest
from hypothesis import given, settings
from hypothesis import strategies as st

import dockerflow_wsgi
from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import (
    JsonLogFormatter,
    MozlogFormatter,
    MozlogHandler,
    RequestIdLogFilter,
    process_stdout,
)
from dockerflow_wsgi.request_id import request_id_var

# Same examples on every run, no example database written next to the project.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

ENVELOPE_KEYS = {
    "Timestamp",
    "Type",
    "Logger",
    "Hostname",
    "EnvVersion",
    "Severity",
    "Pid",
    "Fields",
}

# Written out by hand on purpose: the formatter derives its list from a LogRecord, and this
# test must notice if that derivation ever misses one.
STANDARD_RECORD_ATTRIBUTES = {
    "name",
    "msg",
    "args",
    "levelname",
    "levelno",
    "pathname",
    "filename",
    "module",
    "exc_info",
    "exc_text",
    "stack_info",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
    "taskName",
    "message",
    "asctime",
}

# Keys ``extra=`` may not use, whatever the Python version.
RESERVED_EXTRA_KEYS = STANDARD_RECORD_ATTRIBUTES | set(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
)


def reject_constant(name):
    raise AssertionError(f"{name} is not JSON")


def parse_line(output: str) -> dict:
    """Parse one formatted record strictly: one line, RFC 8259 JSON (no NaN), an object."""
    assert isinstance(output, str)
    assert output.splitlines() == [output]
    assert "\n" not in output
    assert "\r" not in output
    data = json.loads(output, parse_constant=reject_constant)
    assert isinstance(data, dict)
    return data


def assert_flat(fields: dict) -> None:
    """mozlog forbids nested objects in Fields: values are scalars or lists of scalars."""
    for key, value in fields.items():
        assert isinstance(key, str)
        assert not isinstance(value, dict), key
        if isinstance(value, list):
            assert all(not isinstance(item, (dict, list)) for item in value), key


def make_record(
    msg="hello",
    *args,
    level=logging.INFO,
    name="test.logger",
    exc_info=None,
    extra=None,
):
    """A record as ``logging.getLogger(name).log(level, msg, *args, ...)`` would make it."""
    return logging.Logger(name).makeRecord(
        name, level, __file__, 42, msg, args, exc_info, func="make_record", extra=extra
    )


@pytest.fixture
def formatter():
    return JsonLogFormatter(logger_name="test-app")


@pytest.fixture
def fmt(formatter):
    """Format a record made from the arguments and return the parsed line."""

    def format_record(*args, **kwargs):
        return parse_line(formatter.format(make_record(*args, **kwargs)))

    return format_record


def raised(exception):
    try:
        raise exception
    except BaseException:
        return sys.exc_info()


class Unrepresentable:
    def __repr__(self):
        raise RuntimeError("no repr for you")

    def __str__(self):
        raise RuntimeError("no str either")


class Thing:
    def __repr__(self):
        return "<Thing 7>"


# Envelope


def test_golden_record(formatter):
    record = make_record("user %s logged in", "alice", level=logging.WARNING, extra={"uid": 7})
    record.created = 1_700_000_000.5

    assert parse_line(formatter.format(record)) == {
        "Timestamp": 1_700_000_000_500_000_000,
        "Type": "test.logger",
        "Logger": "test-app",
        "Hostname": socket.gethostname(),
        "EnvVersion": "2.0",
        "Severity": 4,
        "Pid": os.getpid(),
        "Fields": {"uid": 7, "msg": "user alice logged in"},
    }


def test_envelope_value_types(fmt):
    line = fmt()

    assert set(line) == ENVELOPE_KEYS
    assert type(line["Timestamp"]) is int
    assert type(line["Severity"]) is int
    assert type(line["Pid"]) is int
    assert type(line["EnvVersion"]) is str
    assert type(line["Fields"]) is dict


def test_timestamp_is_nanoseconds_since_the_epoch(fmt):
    # Bounds a second wide: this pins the unit (ns, not s, ms or us), not the clock.
    before = time.time_ns()
    line = fmt()
    after = time.time_ns()

    assert before - 1_000_000_000 <= line["Timestamp"] <= after + 1_000_000_000


@pytest.mark.parametrize("name", ["request.summary", "dockerflow_wsgi", "myapp.views", "root"])
def test_type_is_the_name_of_the_logger(fmt, name):
    assert fmt(name=name)["Type"] == name


def test_logger_defaults_to_dockerflow():
    line = parse_line(JsonLogFormatter().format(make_record()))

    assert line["Logger"] == "Dockerflow"


def test_constructor_takes_the_logging_formatter_arguments_positionally():
    formatter = JsonLogFormatter("%(message)s", "%Y", "%", "positional-app")

    assert parse_line(formatter.format(make_record()))["Logger"] == "positional-app"


@pytest.mark.parametrize(
    ("fmt_string", "style"),
    [("%(asctime)s %(levelname)s %(message)s", "%"), ("{asctime} {message}", "{")],
)
def test_format_string_does_not_change_the_shape(fmt_string, style):
    formatter = JsonLogFormatter(fmt=fmt_string, style=style, logger_name="app")

    line = parse_line(formatter.format(make_record()))

    assert set(line) == ENVELOPE_KEYS
    assert line["Fields"] == {"msg": "hello"}


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (60, 2),
        (45, 3),
        (35, 4),
        (25, 6),
        (15, 7),
        (5, 7),
        (logging.NOTSET, 7),
    ],
)
def test_severity_is_the_syslog_level(fmt, level, severity):
    assert fmt(level=level)["Severity"] == severity


def test_mozlog_formatter_is_the_same_class():
    assert MozlogFormatter is JsonLogFormatter
    assert dockerflow_wsgi.MozlogFormatter is JsonLogFormatter
    assert dockerflow_wsgi.JsonLogFormatter is JsonLogFormatter
    assert issubclass(JsonLogFormatter, logging.Formatter)


# Fields


def test_extras_land_in_fields(fmt):
    extra = {
        "user": "alice",
        "count": 3,
        "ratio": 0.25,
        "ok": True,
        "nothing": None,
        "tags": ["a", "b"],
    }

    assert fmt(extra=extra)["Fields"] == {**extra, "msg": "hello"}


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("%s", ("",), id="formats to empty"),
    ],
)
def test_msg_is_left_out_when_the_message_is_empty(fmt, msg, args):
    assert fmt(msg, *args, extra={"user": "alice"})["Fields"] == {"user": "alice"}


@pytest.mark.parametrize(
    ("msg", "args", "message"),
    [
        ("plain", (), "plain"),
        ("%s has %d items", ("alice", 3), "alice has 3 items"),
        ("%(user)s has %(count)d items", ({"user": "bob", "count": 2},), "bob has 2 items"),
        ("100% sure", (), "100% sure"),
        ("%r", (Thing(),), "<Thing 7>"),
        (ValueError("not a string"), (), "not a string"),
        (0, (), "0"),
    ],
)
def test_msg_is_the_formatted_message(fmt, msg, args, message):
    assert fmt(msg, *args)["Fields"]["msg"] == message


def test_standard_record_attributes_never_appear_in_fields(fmt):
    fields = fmt("user %s", "alice", extra={"user": "alice"})["Fields"]

    assert fields == {"user": "alice", "msg": "user alice"}
    assert not (set(fields) - {"msg"}) & STANDARD_RECORD_ATTRIBUTES


def test_private_attributes_are_left_out(formatter):
    record = make_record(extra={"user": "alice"})
    record._internal = "not for the log"

    assert parse_line(formatter.format(record))["Fields"] == {"user": "alice", "msg": "hello"}


def test_dict_message_is_merged_into_fields(fmt):
    line = fmt({"event": "login", "user": "alice", "attempts": 2}, extra={"source": "sso"})

    assert line["Fields"] == {"event": "login", "user": "alice", "attempts": 2, "source": "sso"}


def test_dict_message_nested_dict_is_written_as_json_text(fmt):
    fields = fmt({"event": "login", "context": {"ip": "192.0.2.1", "port": 443}})["Fields"]

    assert_flat(fields)
    assert json.loads(fields["context"]) == {"ip": "192.0.2.1", "port": 443}


def test_dict_message_is_not_modified(formatter):
    message = {"event": "crash"}

    formatter.format(make_record(message, exc_info=raised(ValueError("boom"))))

    assert message == {"event": "crash"}


# Exceptions


def test_exception_gives_error_and_traceback(fmt):
    fields = fmt("it failed", exc_info=raised(ValueError("boom")))["Fields"]

    assert fields["msg"] == "it failed"
    assert fields["error"] == "ValueError('boom')"
    assert fields["traceback"].startswith("Traceback (most recent call last):")
    assert "raise exception" in fields["traceback"]
    assert fields["traceback"].rstrip().endswith("ValueError: boom")


def test_exception_through_logger_exception():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter(logger_name="test-app"))
    logger = logging.Logger("test.exception")
    logger.addHandler(handler)

    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup of %s failed", "missing")

    line = parse_line(stream.getvalue().rstrip("\n"))
    assert line["Severity"] == 3
    assert line["Fields"]["msg"] == "lookup of missing failed"
    assert line["Fields"]["error"] == "KeyError('missing')"
    assert "KeyError: 'missing'" in line["Fields"]["traceback"]


def test_exception_whose_repr_and_str_raise(fmt):
    class Broken(Exception):
        def __repr__(self):
            raise RuntimeError("no repr")

        def __str__(self):
            raise RuntimeError("no str")

    fields = fmt("it failed", exc_info=raised(Broken()))["Fields"]

    assert fields["msg"] == "it failed"
    assert isinstance(fields["error"], str)
    assert "Broken" in fields["traceback"]


def test_no_error_without_exc_info(fmt):
    fields = fmt("all good")["Fields"]

    assert "error" not in fields
    assert "traceback" not in fields


# Values JSON cannot hold


@pytest.mark.parametrize(
    "value",
    [
        Thing(),
        datetime.datetime(2024, 1, 2, 3, 4, 5),
        decimal.Decimal("1.50"),
        b"\x00bytes",
        frozenset({"only"}),
        object,
        1 + 2j,
    ],
    ids=lambda value: type(value).__name__,
)
def test_value_json_cannot_encode_is_written_as_its_repr(fmt, value):
    assert fmt(extra={"value": value})["Fields"]["value"] == repr(value)


def test_value_whose_repr_raises(fmt):
    fields = fmt(extra={"bad": Unrepresentable(), "good": 1})["Fields"]

    assert isinstance(fields["bad"], str)
    assert fields["good"] == 1
    assert fields["msg"] == "hello"


@pytest.mark.parametrize(
    ("value", "text"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")],
)
def test_non_finite_float_is_written_as_text(fmt, value, text):
    assert fmt(extra={"value": value})["Fields"]["value"] == text


def test_non_finite_float_leaves_the_other_fields_as_they_are(fmt):
    fields = fmt(extra={"ratio": float("nan"), "count": 1.5, "tags": ["a", "b"], "n": 2})["Fields"]

    assert fields == {"ratio": "nan", "count": 1.5, "tags": ["a", "b"], "n": 2, "msg": "hello"}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"a": 1, "b": [1, 2], "c": {"d": None}}, id="nested dict"),
        pytest.param({}, id="empty dict"),
        pytest.param([{"a": 1}, {"b": 2}], id="list of dicts"),
        pytest.param(({"a": 1},), id="tuple of dicts"),
        pytest.param([[1, 2], [3]], id="list of lists"),
    ],
)
def test_container_that_could_nest_an_object_is_written_as_json_text(fmt, value):
    fields = fmt(extra={"value": value})["Fields"]

    assert_flat(fields)
    assert isinstance(fields["value"], str)
    assert json.loads(fields["value"]) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"when": datetime.date(2024, 1, 2)}, id="dict with a date"),
        pytest.param({"ratio": float("nan")}, id="dict with nan"),
        pytest.param({(1, 2): "tuple key"}, id="dict with a tuple key"),
        pytest.param({"bad": Unrepresentable()}, id="dict with an unrepresentable value"),
        pytest.param([Thing(), {"a": 1}], id="list with an object"),
    ],
)
def test_container_with_awkward_contents_is_still_flat_text(fmt, value):
    fields = fmt(extra={"value": value})["Fields"]

    assert_flat(fields)
    assert isinstance(fields["value"], str)


def test_self_referencing_list(fmt):
    loop = []
    loop.append(loop)

    fields = fmt(extra={"loop": loop})["Fields"]

    assert isinstance(fields["loop"], str)


# Formatting never raises


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        pytest.param("%d items", ("abc",), id="wrong type"),
        pytest.param("%s and %s", ("one",), id="too few args"),
        pytest.param("no placeholder", ("extra",), id="too many args"),
        pytest.param("%(user)s", ("not a mapping",), id="mapping key without a mapping"),
        pytest.param("%s", (Unrepresentable(),), id="arg whose str raises"),
        pytest.param(Unrepresentable(), (), id="message whose str raises"),
    ],
)
def test_message_that_cannot_be_formatted_still_gives_one_json_line(formatter, msg, args):
    record = make_record(msg, *args, level=logging.WARNING, extra={"user": "alice"})

    line = parse_line(formatter.format(record))

    assert set(line) == ENVELOPE_KEYS
    assert line["Type"] == "test.logger"
    assert line["Logger"] == "test-app"
    assert line["Severity"] == 4
    assert_flat(line["Fields"])
    assert isinstance(line["Fields"]["error"], str)


def test_message_that_cannot_be_formatted_keeps_its_template(fmt):
    fields = fmt("%d items", "abc")["Fields"]

    assert "%d items" in fields["msg"]


@pytest.mark.parametrize(
    "msg",
    ["two\nlines", "carriage\rreturn", "crlf\r\nline", "\n", "line\u2028separator", "next\x85line"],
)
def test_every_record_is_exactly_one_line(formatter, msg):
    record = make_record(msg, extra={"note": msg, "notes": [msg, msg]})

    line = parse_line(formatter.format(record))

    assert line["Fields"]["msg"] == msg
    assert line["Fields"]["note"] == msg


def test_record_with_a_traceback_is_one_line(formatter):
    line = formatter.format(make_record("failed\nbadly", exc_info=raised(ValueError("a\nb"))))

    assert "\n" in parse_line(line)["Fields"]["traceback"]


# Any input


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=10)
    | st.dates()
    | st.builds(Thing)
    | st.builds(Unrepresentable)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
        | st.dictionaries(st.integers(), children, max_size=2)
    ),
    max_leaves=12,
)
EXTRA_KEYS = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda key: key not in RESERVED_EXTRA_KEYS
)


@DETERMINISTIC
@given(
    msg=st.text(),
    extra=st.dictionaries(EXTRA_KEYS, VALUES, max_size=5),
    level=st.integers(min_value=0, max_value=100),
)
def test_any_message_and_extras_give_one_flat_json_line(msg, extra, level):
    formatter = JsonLogFormatter(logger_name="prop")

    line = parse_line(formatter.format(make_record(msg, level=level, extra=extra)))

    assert set(line) == ENVELOPE_KEYS
    assert line["Severity"] in {2, 3, 4, 6, 7}
    assert_flat(line["Fields"])
    assert set(extra) <= set(line["Fields"])
    assert line["Fields"].get("msg", "") == msg


@DETERMINISTIC
@given(msg=st.text(), args=st.lists(VALUES, max_size=3))
def test_any_message_and_args_never_raise(msg, args):
    formatter = JsonLogFormatter(logger_name="prop")

    line = parse_line(formatter.format(make_record(msg, *args)))

    assert_flat(line["Fields"])


@DETERMINISTIC
@given(message=st.dictionaries(st.text(max_size=10), VALUES, max_size=5))
def test_any_dict_message_gives_one_flat_json_line(message):
    formatter = JsonLogFormatter(logger_name="prop")

    line = parse_line(formatter.format(make_record(message)))

    assert_flat(line["Fields"])
    assert set(message) <= set(line["Fields"])


# RequestIdLogFilter


@pytest.fixture
def request_id():
    """Pretend a request with id ``rid-123`` is being handled."""
    token = request_id_var.set("rid-123")
    yield "rid-123"
    request_id_var.reset(token)


def test_filter_adds_the_request_id_during_a_request(request_id):
    record = make_record()

    assert RequestIdLogFilter().filter(record) is True
    assert record.rid == "rid-123"


def test_filter_adds_nothing_outside_a_request():
    record = make_record()

    assert RequestIdLogFilter().filter(record) is True
    assert not hasattr(record, "rid")


@pytest.mark.parametrize("explicit", ["summary-id", "", None])
def test_filter_never_overrides_an_explicit_rid(request_id, explicit):
    record = make_record(extra={"rid": explicit})

    assert RequestIdLogFilter().filter(record) is True
    assert record.rid == explicit


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.ERROR, 1])
def test_filter_never_drops_a_record(request_id, level):
    assert RequestIdLogFilter().filter(make_record(level=level)) is True


def test_rid_lands_in_fields(request_id, formatter):
    record = make_record()
    RequestIdLogFilter().filter(record)

    assert parse_line(formatter.format(record))["Fields"] == {"rid": "rid-123", "msg": "hello"}


def test_filter_gives_app_records_the_id_of_their_request():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter(logger_name="test-app"))
    handler.addFilter(RequestIdLogFilter())
    logger = logging.Logger("test.app")
    logger.addHandler(handler)

    def app(environ, start_response):
        logger.info("handling %s", environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = webtest.TestApp(DockerflowMiddleware(app))
    client.get("/a", headers={"X-Request-ID": "client-id-1"})
    client.get("/b")
    logger.info("after the requests")

    first, second, after = (parse_line(line) for line in stream.getvalue().splitlines())
    assert first["Fields"] == {"rid": "client-id-1", "msg": "handling /a"}
    assert len(second["Fields"]["rid"]) == 32
    assert second["Fields"]["rid"] != "client-id-1"
    assert after["Fields"] == {"msg": "after the requests"}


# logging.config.dictConfig


@pytest.fixture
def dict_config():
    """Apply a dictConfig for one test logger, and put that logger back as it was after."""
    name = "tests.test_logging.dictconfig"
    logger = logging.getLogger(name)
    saved = (logger.handlers[:], logger.filters[:], logger.level, logger.propagate)
    stream = io.StringIO()

    def configure(formatter, filters=None):
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"mozlog": formatter},
                "filters": filters or {},
                "handlers": {
                    "capture": {
                        "class": "logging.StreamHandler",
                        "stream": stream,
                        "formatter": "mozlog",
                        "filters": list(filters or {}),
                    }
                },
                "loggers": {name: {"handlers": ["capture"], "level": "DEBUG", "propagate": False}},
            }
        )
        return logger, stream

    yield configure
    for handler in logger.handlers:
        handler.close()
    logger.handlers[:], logger.filters[:] = saved[0], saved[1]
    logger.setLevel(saved[2])
    logger.propagate = saved[3]


@pytest.mark.parametrize(
    "factory",
    ["dockerflow_wsgi.logging.JsonLogFormatter", "dockerflow_wsgi.logging.MozlogFormatter"],
)
def test_dict_config_factory_with_logger_name(dict_config, factory):
    logger, stream = dict_config({"()": factory, "logger_name": "configured-app"})

    logger.warning("disk %s%% full", 93, extra={"disk": "/data"})

    line = parse_line(stream.getvalue().rstrip("\n"))
    assert line["Logger"] == "configured-app"
    assert line["Type"] == "tests.test_logging.dictconfig"
    assert line["Severity"] == 4
    assert line["Fields"] == {"disk": "/data", "msg": "disk 93% full"}


def test_dict_config_class_with_format(dict_config):
    logger, stream = dict_config(
        {"class": "dockerflow_wsgi.logging.JsonLogFormatter", "format": "%(message)s"}
    )

    logger.info("started")

    line = parse_line(stream.getvalue().rstrip("\n"))
    assert line["Logger"] == "Dockerflow"
    assert line["Fields"] == {"msg": "started"}


def test_dict_config_request_id_filter(dict_config, request_id):
    logger, stream = dict_config(
        {"()": "dockerflow_wsgi.logging.JsonLogFormatter", "logger_name": "configured-app"},
        filters={"request_id": {"()": "dockerflow_wsgi.logging.RequestIdLogFilter"}},
    )

    logger.info("inside")
    logger.info("summary", extra={"rid": "explicit"})

    inside, summary = (parse_line(line) for line in stream.getvalue().splitlines())
    assert inside["Fields"] == {"rid": request_id, "msg": "inside"}
    assert summary["Fields"] == {"rid": "explicit", "msg": "summary"}


# -- the names a ported service imports ----------------------------------------------------------


def test_request_id_context_is_the_context_variable_of_the_request_id():
    from dockerflow_wsgi.logging import request_id_context

    seen = []

    def app(environ, start_response):
        seen.append(request_id_context.get())
        start_response("200 OK", [])
        return [b""]

    webtest.TestApp(DockerflowMiddleware(app)).get("/", headers={"X-Request-ID": "ported-1"})

    assert request_id_context is request_id_var
    assert seen == ["ported-1"]


def test_the_mozlog_handler_writes_one_line_per_record_with_the_rid():
    stream = io.StringIO()
    handler = MozlogHandler(stream, name="myservice")
    logger = logging.getLogger("test_logging.mozlog_handler")
    logger.addHandler(handler)
    logger.propagate = False
    token = request_id_var.set("rid-in-a-request")
    try:
        logger.warning("one %s", "line")
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)

    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["Logger"], record["Severity"]) == ("myservice", 4)
    assert record["Fields"] == {"msg": "one line", "rid": "rid-in-a-request"}


def test_the_mozlog_handler_writes_to_stdout_by_default(capsys):
    handler = MozlogHandler()
    handler.handle(logging.LogRecord("x", logging.INFO, "", 0, "to stdout", (), None))

    assert json.loads(capsys.readouterr().out)["Fields"]["msg"] == "to stdout"


def test_the_mozlog_handler_is_configured_by_dict_config_in_one_line(capsys):
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "cfg"}
            },
            "loggers": {"test_logging.dict_config": {"handlers": ["mozlog"], "level": "INFO"}},
        }
    )
    logger = logging.getLogger("test_logging.dict_config")
    try:
        logger.info("configured")
    finally:
        logger.handlers.clear()

    assert json.loads(capsys.readouterr().out)["Logger"] == "cfg"


def test_process_stdout_is_descriptor_1_where_sys_stdout_is_not(monkeypatch):
    monkeypatch.setattr(sys, "stdout", sys.__stderr__)  # as uWSGI's Python plugin has it

    stream = process_stdout()

    try:
        assert stream.fileno() == 1
    finally:
        stream.close()  # the descriptor stays open: closefd=False
