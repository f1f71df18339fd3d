"""A Flask service ported from the dockerflow package (before: see the migration guide)."""

import logging
import os

from flask import Flask

from dockerflow_wsgi import checks
from dockerflow_wsgi.flask import Dockerflow
from dockerflow_wsgi.signals import heartbeat_failed

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite://")
app.config["DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"] = 503  # read from app.config, as before


def read_version(version_path):
    """Was ``@dockerflow.version_callback``; now the version_callback option."""
    return {
        "source": "https://github.com/acme/myservice",
        "version": "1.4.2",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "build": "",
    }


dockerflow = Dockerflow(
    app,
    db=app.config["SQLALCHEMY_DATABASE_URI"],  # was db=<Flask-SQLAlchemy object>
    silenced_checks=["acme.health.W001"],
    version_callback=read_version,
)


def bucket_usage():
    return 0.95  # a stand-in for asking the storage service


@checks.register  # was @dockerflow.check
def storage():
    if bucket_usage() > 0.9:
        return [checks.Warning("bucket is nearly full", id="acme.health.W001")]
    return []


@heartbeat_failed.connect_via(app)  # the Flask app is the sender, as a Flask user expects
def count_failure(sender, level, **extra):
    logging.getLogger("myservice").error("Heartbeat failed at level %s", level)
