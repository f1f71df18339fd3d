"""No output of the library holds a secret, whoever put it in the text and whatever formats it.

A random password goes into a user check's message and into the text of an exception another
check raises, in a URL or a query parameter. It must not appear in the heartbeat's body, nor in
any log record the library writes, formatted by the mozlog formatter or by a plain one.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from asgi_scope import http_scope
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_asgi import call
from test_asgi import hello as asgi_hello
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture(scope="module")
def log_output() -> Iterator[io.StringIO]:
    """Everything the library logs, through the mozlog formatter and through a plain one."""
    stream = io.StringIO()
    handlers = [logging.StreamHandler(stream), logging.StreamHandler(stream)]
    handlers[0].setFormatter(JsonLogFormatter())
    handlers[1].setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("dockerflow_wsgi")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        logger.addHandler(handler)
    yield stream
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(previous)


# With a sign that no timestamp, process id, file name or source line of a traceback holds, so
# that finding the password in the output can only mean it leaked.
SIGNS = frozenset("!$%*+;<>?^|~")
PASSWORD = st.text(
    alphabet=st.characters(
        min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":/&#'\"{}()[]"
    ),
    min_size=8,
    max_size=32,
).filter(lambda password: set(password) & SIGNS and "://" not in password)

FORMS = [
    "postgresql://app:{password}@db.internal:5432/app",
    "redis://:{password}@cache.internal:6379/0",
    "mysql+pymysql://root@db.internal/test?charset=utf8&passwd={password}",
    "https://api.example.com/v1/items?api_key={password}&page=2",
    "host=db.internal password={password} user=app",
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(password=PASSWORD, form=st.sampled_from(FORMS), words=st.text(max_size=40))
def test_a_secret_in_a_check_reaches_no_output(log_output, password, form, words):
    text = f"{words} cannot reach {form.format(password=password)}"
    # Nor either side of an '@' in it.
    halves = password.split("@")
    parts = [password, *(half for half in halves if len(half) >= 6 and set(half) & SIGNS)]
    # The words around the password may not happen to hold it.
    around = f"{words} cannot reach {form.format(password='')} Heartbeat ConnectionError"
    assume(not any(part in around for part in parts))

    def says_it() -> list[checks.CheckMessage]:
        return [checks.Error(text, id="acme.E1")]

    def raises_it() -> list[checks.CheckMessage]:
        raise ConnectionError(text)

    log_output.seek(0)
    log_output.truncate()
    app = TestApp(DockerflowMiddleware(hello, checks=[("says", says_it), ("raises", raises_it)]))

    response = app.get("/__heartbeat__", status=500)

    outputs = response.text + log_output.getvalue()
    assert "Traceback" in log_output.getvalue()
    assert not [part for part in parts if part in outputs]


# As a client sends them: a name percent-encoded or with a bracket part, in the query string;
# and a whole query string in the path, its '?' sent as %3F (which the server decodes).
SENT_QUERY = "pass%77ord=s3cr3t-1&user[password]=s3cr3t-2&password%5B%5D=s3cr3t-3&page=2"
DECODED_PATH = "/login?user[pass%77ord]=s3cr3t-4&page=2"
SENT_SECRETS = ("s3cr3t-1", "s3cr3t-2", "s3cr3t-3", "s3cr3t-4")


def test_secrets_a_client_sends_are_masked_in_the_wsgi_summary(
    make_environ, call_wsgi, summary_records
):
    middleware = DockerflowMiddleware(hello, log_querystring=True)

    call_wsgi(middleware, make_environ(DECODED_PATH, QUERY_STRING=SENT_QUERY))

    [record] = summary_records
    assert record.path == "/login?user[pass%77ord]=***"
    assert record.querystring == ("pass%77ord=***&user[password]=***&password%5B%5D=***&page=2")


def test_secrets_a_client_sends_are_masked_in_the_asgi_summary(summary_records):
    middleware = DockerflowASGIMiddleware(asgi_hello, log_querystring=True)

    call(middleware, http_scope(DECODED_PATH, query_string=SENT_QUERY.encode()))

    [record] = summary_records
    assert not [secret for secret in SENT_SECRETS if secret in f"{record.__dict__}"]
    assert record.path == "/login?user[pass%77ord]=***"
