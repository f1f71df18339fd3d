"""Celery tasks published during a request carry its id; the worker logs it as ``rid``.

The module that makes the Celery application, imported by the web servers (which publish the
tasks) and by the worker (``celery -A propagation_celery worker``), which runs them.
"""

import logging
import logging.config

from celery import Celery
from celery.signals import setup_logging

from dockerflow_wsgi.propagation import install_celery_request_id

app = Celery("myservice")  # the broker's URL from CELERY_BROKER_URL
install_celery_request_id()

logger = logging.getLogger("myservice.tasks")


@setup_logging.connect
def mozlog_on_stdout(**kwargs):
    """The worker's logging, instead of Celery's: mozlog JSON lines, each with its ``rid``."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "myservice"}
            },
            "root": {"handlers": ["mozlog"], "level": "INFO"},
        }
    )


@app.task
def send_receipt(order_id: str) -> None:
    # Published by a view (send_receipt.delay(order.id)), this record has the view's rid.
    logger.info("Sending the receipt of order %s", order_id)
