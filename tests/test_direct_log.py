"""The summary's direct route: the same line as through logging, and only where it is the same."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import types
import uuid
from collections.abc import Iterator
from typing import Callable

import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dockerflow_wsgi.logging
from dockerflow_wsgi import DockerflowMiddleware, direct_log
from dockerflow_wsgi.direct_log import fields_line, write_direct
from dockerflow_wsgi.logging import JsonLogFormatter, MozlogHandler, RequestIdLogFilter

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

# For the tests of the direct write itself: ``DOCKERFLOW_TEST_NO_DIRECT_LOG=1`` turns it off for
# the whole run (tests/conftest.py), to test everything else through plain logging.
needs_direct_write = pytest.mark.skipif(
    not direct_log.is_enabled(), reason="the direct write is off (DOCKERFLOW_TEST_NO_DIRECT_LOG=1)"
)

NAME = "request.summary"


class SubclassedHandler(logging.StreamHandler):
    pass


class SubclassedFormatter(JsonLogFormatter):
    pass


class DropNothing(logging.Filter):
    pass


def new_logger() -> logging.Logger:
    """A logger of its own, made in the test's body.

    pytest attaches its capture handler to every non-propagating logger that exists when a
    test (or a fixture) starts; a logger made afterwards has only the handlers the test gives
    it.
    """
    made = logging.getLogger(f"test.direct_log.{uuid.uuid4().hex}")
    made.propagate = False
    made.setLevel(logging.INFO)
    return made


@pytest.fixture
def summary_logger() -> Iterator[logging.Logger]:
    """``request.summary``, its handlers replaced by each test and restored afterwards."""
    summary = logging.getLogger(NAME)
    saved = summary.handlers[:], summary.level, summary.propagate
    summary.setLevel(logging.INFO)
    summary.propagate = False
    yield summary
    summary.handlers[:] = saved[0]
    summary.setLevel(saved[1])
    summary.propagate = saved[2]


def stream_handler(cls: type = logging.StreamHandler, formatter: type = JsonLogFormatter):
    handler = cls(io.StringIO())
    handler.setFormatter(formatter(logger_name="test"))
    return handler


def at_any_time(lines: str) -> str:
    """``lines`` with every Timestamp's value set to 0: logging takes its record's time from
    ``time.time()`` or, from Python 3.13, ``time.time_ns()``, which no one clock patch
    freezes for both routes alike. The rest of each line must be the same to the character.
    """
    return re.sub(r'^\{"Timestamp":\d+,', '{"Timestamp":0,', lines, flags=re.MULTILINE)


def logged_line(handler: logging.StreamHandler, fields: dict, name: str = NAME) -> str:
    """The line logging itself writes for a summary-shaped record."""
    record = logging.LogRecord(name, logging.INFO, "", 0, "", (), None)
    record.__dict__.update(fields)
    handler.handle(record)
    return handler.stream.getvalue()


@pytest.fixture(params=["orjson", "stdlib json"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Formatters made in the test encode with orjson or, as where it is not installed, with
    the stdlib's json (the direct write's own use of orjson included)."""
    if request.param == "orjson":
        pytest.importorskip("orjson")
    else:
        monkeypatch.setattr(dockerflow_wsgi.logging, "orjson", None)
        monkeypatch.setattr(direct_log, "orjson", None)
    return request.param


summary_values = st.text(st.characters(max_codepoint=0x10FFFF, exclude_categories=["Cs"]))


@needs_direct_write
# The encoder fixture patches modules once for every example: nothing to reset between them.
@settings(DETERMINISTIC, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    agent=summary_values,
    path=summary_values,
    uid=summary_values,
    code=st.integers(min_value=0, max_value=999),
    t=st.integers(min_value=0, max_value=10**9),
)
def test_the_direct_line_is_the_line_logging_writes(encoder, agent, path, uid, code, t):
    fields = {
        "agent": agent,
        "lang": "en",
        "method": "GET",
        "path": path,
        "code": code,
        "errno": 0,
        "t": t,
        "rid": "0123456789abcdef0123456789abcdef",
        "uid": uid,
    }
    through_logging = stream_handler()
    direct = stream_handler()
    logger = new_logger()
    logger.addHandler(direct)

    assert write_direct(logger, logging.INFO, dict(fields))
    expected = logged_line(through_logging, dict(fields), logger.name)

    assert at_any_time(direct.stream.getvalue()) == at_any_time(expected)


FIELDS = {"agent": "a", "path": "/", "code": 200, "rid": "r" * 32, "uid": ""}


def lines_of(*handlers: logging.StreamHandler) -> list[int]:
    """How many lines each handler got."""
    return [handler.stream.getvalue().count("\n") for handler in handlers]


@needs_direct_write
def test_a_plain_stream_handler_with_the_json_formatter_is_written_directly():
    logger = new_logger()
    handler = stream_handler()
    logger.addHandler(handler)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    assert lines_of(handler) == [1]


@needs_direct_write
def test_the_mozlog_handler_is_written_directly_and_gets_the_same_line():
    logger = new_logger()
    handler = MozlogHandler(io.StringIO(), name="test")
    logger.addHandler(handler)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    through_logging = stream_handler()
    expected = logged_line(through_logging, dict(FIELDS), logger.name)
    assert at_any_time(handler.stream.getvalue()) == at_any_time(expected)


@needs_direct_write
def test_the_handlers_own_terminator_ends_the_line():
    logger = new_logger()
    handler = stream_handler()
    handler.terminator = "\r\n"
    logger.addHandler(handler)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    assert handler.stream.getvalue().endswith("}\r\n")


class NoFlush:
    """A stream with write() and nothing else, which StreamHandler accepts."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, text: str) -> None:
        self.written.append(text)


@needs_direct_write
def test_a_stream_without_flush_is_written_as_logging_writes_it():
    logger = new_logger()
    stream = NoFlush()
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(JsonLogFormatter(logger_name="test"))
    logger.addHandler(handler)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    assert len(stream.written) == 1 and stream.written[0].endswith("}\n")


class FailingFlush(io.StringIO):
    def flush(self) -> None:
        raise AttributeError("flush broke inside")


@needs_direct_write
def test_an_attribute_error_raised_by_flush_itself_is_the_handlers_to_report(monkeypatch, capsys):
    monkeypatch.setattr(logging, "raiseExceptions", True)
    logger = new_logger()
    handler = logging.StreamHandler(FailingFlush())
    handler.setFormatter(JsonLogFormatter(logger_name="test"))
    logger.addHandler(handler)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    reported = capsys.readouterr().err
    assert "--- Logging error ---" in reported
    assert "flush broke inside" in reported
    # Logging flushes every handler at exit: this one's stream is not to be flushed again.
    logger.removeHandler(handler)
    handler.stream = io.StringIO()


@needs_direct_write
def test_the_request_id_filter_does_not_prevent_the_direct_route():
    logger = new_logger()
    handler = stream_handler()
    handler.addFilter(RequestIdLogFilter())
    logger.addHandler(handler)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    assert lines_of(handler) == [1]


@needs_direct_write
def test_handlers_up_the_hierarchy_are_found_while_records_propagate():
    logger = new_logger()
    child = logging.getLogger(f"{logger.name}.child")
    own, at_parent = stream_handler(), stream_handler()
    child.addHandler(own)
    logger.addHandler(at_parent)

    assert write_direct(child, logging.INFO, dict(FIELDS))
    assert lines_of(own, at_parent) == [1, 1]


@needs_direct_write
def test_a_handler_above_the_records_level_is_left_out():
    logger = new_logger()
    quiet, loud = stream_handler(), stream_handler()
    quiet.setLevel(logging.ERROR)
    logger.addHandler(quiet)
    logger.addHandler(loud)

    assert write_direct(logger, logging.INFO, dict(FIELDS))
    assert lines_of(quiet, loud) == [0, 1]


@pytest.mark.parametrize(
    "configure",
    [
        pytest.param(lambda logger: None, id="no-handler-at-all"),
        pytest.param(
            lambda logger: logger.addHandler(stream_handler(SubclassedHandler)),
            id="handler-subclass",
        ),
        pytest.param(
            lambda logger: logger.addHandler(stream_handler(formatter=SubclassedFormatter)),
            id="formatter-subclass",
        ),
        pytest.param(
            lambda logger: logger.addHandler(logging.StreamHandler(io.StringIO())),
            id="default-formatter",
        ),
        pytest.param(
            lambda logger: logger.addHandler(logging.NullHandler()), id="another-handler-class"
        ),
        pytest.param(lambda logger: logger.addFilter(DropNothing()), id="filter-on-the-logger"),
        pytest.param(
            lambda logger: (
                logger.addHandler(handler := stream_handler()),
                handler.addFilter(DropNothing()),
            ),
            id="other-filter-on-the-handler",
        ),
    ],
)
def test_anything_else_goes_through_logging(configure):
    logger = new_logger()
    configure(logger)

    assert not write_direct(logger, logging.INFO, dict(FIELDS))
    assert nothing_written_by(logger)


def nothing_written_by(*loggers: logging.Logger) -> bool:
    """Whether no handler of ``loggers`` got anything (the caller then logs a record)."""
    streams = [getattr(handler, "stream", None) for one in loggers for handler in one.handlers]
    return all(not stream.getvalue() for stream in streams if isinstance(stream, io.StringIO))


def test_another_handler_further_up_sends_the_record_through_logging():
    parent = new_logger()
    child = logging.getLogger(f"{parent.name}.child")
    child.addHandler(stream_handler())
    parent.addHandler(logging.NullHandler())

    assert not write_direct(child, logging.INFO, dict(FIELDS))
    assert nothing_written_by(child, parent)


def test_a_custom_record_factory_goes_through_logging(monkeypatch):
    logger = new_logger()
    logger.addHandler(stream_handler())
    factory = logging.getLogRecordFactory()

    def traced(*args, **kwargs):
        record = factory(*args, **kwargs)
        record.trace_id = "abc"
        return record

    logging.setLogRecordFactory(traced)
    try:
        assert not write_direct(logger, logging.INFO, dict(FIELDS))
    finally:
        logging.setLogRecordFactory(factory)
    assert nothing_written_by(logger)


def summary_of_one_request(summary_logger, handler) -> dict:
    summary_logger.handlers[:] = [handler]
    app = webtest.TestApp(DockerflowMiddleware(hello_app))
    app.get("/some/path?q=1", headers={"User-Agent": "probe/1.0", "X-Request-ID": "abc-123"})
    line = handler.stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    return json.loads(line)


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_the_middleware_writes_the_same_summary_either_way(summary_logger):
    direct = summary_of_one_request(summary_logger, stream_handler())
    through_logging = summary_of_one_request(summary_logger, stream_handler(SubclassedHandler))

    for summary in (direct, through_logging):
        del summary["Timestamp"], summary["Fields"]["t"]
    assert direct == through_logging
    assert direct["Fields"]["rid"] == "abc-123"
    assert direct["Fields"]["path"] == "/some/path"


@needs_direct_write
def test_a_failing_stream_is_reported_by_the_handler_and_the_request_goes_on(
    summary_logger, monkeypatch, capsys
):
    monkeypatch.setattr(logging, "raiseExceptions", True)
    handler = stream_handler()
    handler.stream.close()  # writing now raises ValueError
    summary_logger.handlers[:] = [handler]
    # The direct route's failure, not logging's.
    monkeypatch.setattr(summary_logger, "handle", lambda record: pytest.fail("handled"))
    app = webtest.TestApp(DockerflowMiddleware(hello_app))

    response = app.get("/")

    assert response.body == b"hello"
    reported = capsys.readouterr().err
    assert "--- Logging error ---" in reported
    assert "ValueError" in reported


@needs_direct_write
def test_a_formatter_failure_falls_back_to_the_formatters_own_format(summary_logger, monkeypatch):
    handler = stream_handler()

    def broken(*args, **kwargs):
        raise RuntimeError("fields_line failed")

    monkeypatch.setattr(direct_log, "fields_line", broken)
    summary = summary_of_one_request(summary_logger, handler)

    assert summary["Type"] == NAME
    assert summary["Fields"]["rid"] == "abc-123"


def test_a_line_for_another_logger_level_or_process_gets_its_own_envelope():
    # The envelope of a formatter's last line is kept: a line of another logger, of another
    # level or from a forked process must not reuse it.
    formatter = JsonLogFormatter(logger_name="test")
    fields = {"rid": "r" * 32}
    layouts = [
        (NAME, logging.INFO, 100),
        (NAME, logging.ERROR, 100),
        (NAME, logging.ERROR, 101),
        ("other", logging.ERROR, 101),
        (NAME, logging.INFO, 100),
        (NAME, logging.INFO, None),
    ]
    lines = [
        json.loads(fields_line(formatter, name, level, 1, process, dict(fields), ""))
        for name, level, process in layouts
    ]
    assert [(line["Type"], line["Severity"], line["Pid"]) for line in lines] == [
        (NAME, 6, 100),
        (NAME, 3, 100),
        (NAME, 3, 101),
        ("other", 3, 101),
        (NAME, 6, 100),
        (NAME, 6, None),
    ]
    assert {json.dumps(line["Fields"]) for line in lines} == {json.dumps(fields)}


def test_each_formatter_writes_its_own_logger_name():
    first = JsonLogFormatter(logger_name="first")
    second = JsonLogFormatter(logger_name="second")

    def logger_of(formatter: JsonLogFormatter) -> str:
        return json.loads(fields_line(formatter, NAME, logging.INFO, 1, 100, {}, ""))["Logger"]

    assert [logger_of(one) for one in (first, second, first)] == ["first", "second", "first"]
    assert logger_of(first.renamed("twin")) == "twin"
    assert logger_of(first) == "first"


@needs_direct_write
def test_the_direct_line_is_stamped_with_the_time_it_is_written_in_nanoseconds():
    handler = stream_handler()
    logger = new_logger()
    logger.addHandler(handler)
    before = time.time_ns()
    assert write_direct(logger, logging.INFO, {"rid": "r" * 32})
    after = time.time_ns()
    assert before <= json.loads(handler.stream.getvalue())["Timestamp"] <= after


def test_a_disabled_summary_logger_makes_no_record_at_all(summary_logger, monkeypatch):
    summary_logger.handlers[:] = [stream_handler()]
    app = webtest.TestApp(DockerflowMiddleware(hello_app))
    app.get("/")  # the logger's level is now in its cache
    made = []
    factory = logging.getLogRecordFactory()

    def counting_factory(*args, **kwargs):
        made.append(args[0])
        return factory(*args, **kwargs)

    monkeypatch.setattr(summary_logger, "disabled", True)
    logging.setLogRecordFactory(counting_factory)
    try:
        app.get("/")
    finally:
        logging.setLogRecordFactory(factory)

    assert made == []
    assert summary_logger.handlers[0].stream.getvalue().count("\n") == 1


def test_the_private_parts_of_logging_it_reads_are_there_on_this_python():
    # Were they gone, every summary would silently take the slower way through logging.
    assert direct_log.AVAILABLE


@pytest.fixture
def direct_write() -> Iterator[Callable[[bool], None]]:
    """``direct_write(on)`` turns the direct write on or off; it is put back afterwards."""
    was_on = direct_log.is_enabled()
    yield direct_log.set_enabled
    direct_log.set_enabled(was_on)


def summary_line(summary_logger: logging.Logger) -> str:
    """The summary line of one request, the parts that change between requests (its time and
    duration) set to 0."""
    handler = stream_handler()
    summary_of_one_request(summary_logger, handler)
    return re.sub(r',"t":\d+,', ',"t":0,', at_any_time(handler.stream.getvalue()))


def test_with_the_direct_write_off_the_summary_is_a_record_through_logger_handle(
    summary_logger, monkeypatch, direct_write
):
    handled: list[logging.LogRecord] = []
    handle = summary_logger.handle

    def seen_handle(record: logging.LogRecord) -> None:
        handled.append(record)
        handle(record)

    monkeypatch.setattr(summary_logger, "handle", seen_handle)
    direct_write(True)
    line_on = summary_line(summary_logger)
    assert handled == []

    direct_write(False)
    line_off = summary_line(summary_logger)

    assert [type(record) for record in handled] == [logging.LogRecord]
    assert handled[0].rid == "abc-123"
    assert line_off == line_on


def test_with_the_direct_write_off_the_summary_asks_is_enabled_for(
    summary_logger, monkeypatch, direct_write
):
    summary_logger.handlers[:] = [stream_handler()]
    app = webtest.TestApp(DockerflowMiddleware(hello_app))
    asked: list[int] = []
    is_enabled_for = summary_logger.isEnabledFor

    def counted(level: int) -> bool:
        asked.append(level)
        return is_enabled_for(level)

    monkeypatch.setattr(summary_logger, "isEnabledFor", counted)
    direct_write(True)
    app.get("/")  # the logger's level is now in its cache
    asked.clear()
    app.get("/")
    assert asked == []

    direct_write(False)
    app.get("/")
    assert asked == [logging.INFO]


class WithoutPrivateParts:
    """The logging module as direct_log would see it on a Python without its private parts."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(logging, name)


def test_with_the_direct_write_off_no_private_part_of_logging_is_read(
    summary_logger, monkeypatch, direct_write
):
    direct_write(False)
    monkeypatch.setattr(direct_log, "logging", WithoutPrivateParts())

    assert '"rid":"abc-123"' in summary_line(summary_logger)
    assert direct_log.level_cache(types.SimpleNamespace()) == {}  # type: ignore[arg-type]
