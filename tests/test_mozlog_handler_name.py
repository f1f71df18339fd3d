"""A ``MozlogHandler(name=...)`` given another formatter keeps its name as ``Logger``.

The ``dockerflow`` package's handler names every line it writes, whatever mozlog formatter it
was given afterwards (``setFormatter`` or a dictConfig ``formatter``); services configured that
way keep their ``Logger`` field when they move here.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
import webtest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter, MozlogHandler


def logged_line(handler: logging.Handler) -> dict:
    handler.handle(logging.LogRecord("some.module", logging.INFO, "", 0, "hello", (), None))
    [line] = handler.stream.getvalue().splitlines()
    return json.loads(line)


@pytest.mark.parametrize(
    "formatter",
    [JsonLogFormatter(), JsonLogFormatter(logger_name="the-formatters-name")],
    ids=["default", "named"],
)
def test_set_formatter_keeps_the_handlers_name(formatter):
    handler = MozlogHandler(io.StringIO(), name="myservice")

    handler.setFormatter(formatter)

    assert logged_line(handler)["Logger"] == "myservice"


def test_a_formatter_shared_by_two_handlers_names_each_line_after_its_handler():
    shared = JsonLogFormatter(logger_name="shared")
    first = MozlogHandler(io.StringIO(), name="first")
    second = MozlogHandler(io.StringIO(), name="second")
    first.setFormatter(shared)
    second.setFormatter(shared)

    assert (logged_line(first)["Logger"], logged_line(second)["Logger"]) == ("first", "second")
    # The formatter given is not changed: a plain handler using it still writes its own name.
    assert shared.logger_name == "shared"


def test_a_dict_config_formatter_keeps_the_handlers_name():
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": "dockerflow_wsgi.logging.JsonLogFormatter"}},
            "handlers": {
                "mozlog": {
                    "class": "dockerflow_wsgi.logging.MozlogHandler",
                    "name": "from-dict-config",
                    "formatter": "json",
                    "stream": stream,
                }
            },
            "loggers": {"test_mozlog_handler_name": {"handlers": ["mozlog"], "level": "INFO"}},
        }
    )
    logger = logging.getLogger("test_mozlog_handler_name")
    try:
        logger.info("configured")
    finally:
        logger.handlers.clear()

    assert json.loads(stream.getvalue())["Logger"] == "from-dict-config"


def test_the_summary_written_directly_carries_the_handlers_name_too():
    stream = io.StringIO()
    handler = MozlogHandler(stream, name="myservice")
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("request.summary")
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    try:
        webtest.TestApp(DockerflowMiddleware(app)).get("/")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["Logger"] == "myservice"


def test_another_kind_of_formatter_is_used_as_given():
    handler = MozlogHandler(io.StringIO(), name="myservice")
    plain = logging.Formatter("%(name)s: %(message)s")

    handler.setFormatter(plain)

    assert handler.formatter is plain
    handler.handle(logging.LogRecord("some.module", logging.INFO, "", 0, "hello", (), None))
    assert handler.stream.getvalue() == "some.module: hello\n"


def test_the_dockerflow_package_names_its_lines_after_the_handler_too():
    """The behaviour kept, seen in the package it comes from."""
    upstream = pytest.importorskip("dockerflow.logging")
    handler = upstream.MozlogHandler(io.StringIO(), name="myservice")

    handler.setFormatter(upstream.MozlogFormatter(logger_name="the-formatters-name"))

    assert logged_line(handler)["Logger"] == "myservice"
