"""Asserting on the request summary in a Flask service's own tests (pytest)."""

import logging

from flask import Flask

from dockerflow_wsgi.flask import Dockerflow

app = Flask(__name__)
Dockerflow(app)


@app.get("/orders")
def orders():
    return {"orders": []}


def test_the_orders_request_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="request.summary")
    client = app.test_client()

    # The summary is written when the response is closed, as a server closes it: use the
    # response as a context manager (or call response.close()).
    with client.get("/orders", headers={"X-Request-ID": "test-orders-1"}) as response:
        assert response.status_code == 200

    [summary] = [record for record in caplog.records if record.name == "request.summary"]
    assert (summary.path, summary.code, summary.rid) == ("/orders", 200, "test-orders-1")
