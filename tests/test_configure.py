"""``dockerflow_wsgi.logging.configure()``: the one call that makes a pasted snippet log.

Each run is a fresh interpreter, as a service starts: logging's state is process-wide.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from dockerflow_wsgi.logging import MozlogHandler, configure

# A service as a quickstart shows it: a library logger made at import, before configure().
SERVICE = """
import logging
import sys
from wsgiref.util import setup_testing_defaults

early = logging.getLogger("some.library")

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import configure

{configure}

def app(environ, start_response):
    logging.getLogger("myapp.views").info("in the view")
    logging.getLogger("myapp.views").debug("a detail")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

environ = {{}}
setup_testing_defaults(environ)
environ["HTTP_X_REQUEST_ID"] = "the-request"
body = DockerflowMiddleware(app)(environ, lambda status, headers, exc_info=None: None)
b"".join(body)
body.close()
early.info("from a logger made before configure")
early.warning("a warning")
print("stderr is not stdout", file=sys.stderr)
"""


def run_service(configure_call: str) -> list[dict]:
    environ = {
        name: value for name, value in os.environ.items() if not name.startswith("DOCKERFLOW_")
    }
    result = subprocess.run(
        [sys.executable, "-c", SERVICE.format(configure=textwrap.dedent(configure_call))],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    return [json.loads(line) for line in lines]


def messages(records: list[dict]) -> list[str]:
    return [record["Fields"]["msg"] for record in records if "msg" in record["Fields"]]


def test_one_call_writes_the_summary_and_every_logger_as_mozlog_on_stdout():
    records = run_service('configure(name="myapp", level="INFO")')

    summaries = [record for record in records if record["Type"] == "request.summary"]
    assert len(summaries) == 1
    assert summaries[0]["Fields"]["rid"] == "the-request"
    assert summaries[0]["Fields"]["code"] == 200
    assert {record["Logger"] for record in records} == {"myapp"}
    assert messages(records) == [
        "in the view",
        "from a logger made before configure",
        "a warning",
    ]
    view = next(record for record in records if record["Type"] == "myapp.views")
    assert view["Fields"]["rid"] == "the-request"


def test_calling_it_twice_writes_each_line_once():
    records = run_service(
        """
        configure(name="first")
        configure(name="myapp")
        """
    )

    assert [record["Type"] for record in records].count("request.summary") == 1
    assert {record["Logger"] for record in records} == {"myapp"}


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("DEBUG", ["in the view", "a detail", "from a logger made before configure", "a warning"]),
        ("warning", ["a warning"]),
        (logging.WARNING, ["a warning"]),
    ],
)
def test_the_level_is_honoured_and_summaries_are_written_whatever_it_is(level, expected):
    records = run_service(f"configure(name='myapp', level={level!r})")

    assert messages(records) == expected
    assert [record["Type"] for record in records].count("request.summary") == 1


def test_a_level_the_app_set_on_the_summary_logger_is_kept():
    records = run_service(
        """
        logging.getLogger("request.summary").setLevel(logging.WARNING)
        configure(name="myapp")
        """
    )

    assert "request.summary" not in [record["Type"] for record in records]


# -- in this process: what configure() does to the root logger ----------------------------------


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level (and the summary logger's) put back afterwards."""
    root = logging.getLogger()
    summary = logging.getLogger("request.summary")
    handlers, level, summary_level = root.handlers[:], root.level, summary.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        summary.setLevel(summary_level)


def test_it_replaces_its_own_handler_and_leaves_the_others(root_logger):
    other = logging.StreamHandler(sys.stderr)
    root_logger.addHandler(other)
    earlier = MozlogHandler(name="from-dict-config")
    root_logger.addHandler(earlier)

    first = configure(name="myapp")
    second = configure(name="myapp", level="DEBUG")

    mozlog = [handler for handler in root_logger.handlers if isinstance(handler, MozlogHandler)]
    assert mozlog == [second]
    assert first is not second
    assert other in root_logger.handlers
    assert root_logger.level == logging.DEBUG
    assert second.logger_name == "myapp"


@pytest.mark.parametrize("level", ["LOUD", -1.5, None])
def test_a_bad_level_is_a_clear_error_that_changes_nothing(root_logger, level):
    configure(name="myapp", level="WARNING")
    before = root_logger.handlers[:]

    with pytest.raises((ValueError, TypeError), match="is not a logging level"):
        configure(name="other", level=level)

    assert root_logger.handlers == before
    assert root_logger.level == logging.WARNING


def test_the_defaults_are_designs(root_logger):
    handler = configure()

    assert handler.logger_name == "myapp"
    assert root_logger.level == logging.INFO
