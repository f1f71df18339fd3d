"""The Celery worker of ``tests/test_propagation.py``: the documented app, plus tasks that show
what a task's run sees.

Run with ``docs/snippets`` and ``tests`` on the path and, in the environment,
``CELERY_BROKER_URL`` and ``PROPAGATION_TEST_QUEUE`` (the queue of this test run, which the
worker consumes and the tasks publish to).
"""

from __future__ import annotations

import logging
import os

from propagation_celery import app, send_receipt

from dockerflow_wsgi.request_id import current_request_id_header

__all__ = ["app", "relay_receipt", "report_header", "send_receipt"]

app.conf.task_default_queue = os.environ["PROPAGATION_TEST_QUEUE"]
# No pidbox queues: a test run leaves nothing in the Redis database but its own queue.
app.conf.worker_enable_remote_control = False

logger = logging.getLogger("tests.tasks")


@app.task(name="tests.report_header")
def report_header(label: str) -> None:
    """Log the header name a call made by the task would pass the id on under."""
    logger.info("Reporting %s", label, extra={"header": current_request_id_header()})


@app.task(name="tests.relay_receipt")
def relay_receipt(order_id: str) -> None:
    """Publish ``send_receipt`` from the worker, as a task's follow-up work is."""
    send_receipt.delay(order_id)
