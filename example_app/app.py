"""The example service: a Flask app with Dockerflow endpoints, request ids and mozlog logs.

Configured entirely from the environment:

* ``DATABASE_URL`` (default: ``example.sqlite3`` beside this module). On SQLite the app
  applies its migrations at startup (see :func:`database.upgrade_sqlite`); elsewhere they are
  a release step, and the heartbeat warns while any is missing.
* ``REDIS_URL`` (optional): adds the Redis check to the heartbeat.
* ``DOCKERFLOW_*``: the middleware's options (listed in the README).
* ``LOG_LEVEL`` (default ``INFO``).

Served from this directory as ``app:app`` (``make run``, the Docker image, uWSGI), or
imported from the repository's root as ``example_app.app``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Flask, g, jsonify, request
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException

from dockerflow_wsgi.flask import Dockerflow

if __package__:
    from .database import ALEMBIC_INI, database_url, is_sqlite, upgrade_sqlite
    from .logging_config import configure_logging
    from .models import Note
else:  # served as a top-level module from this directory
    from database import ALEMBIC_INI, database_url, is_sqlite, upgrade_sqlite
    from logging_config import configure_logging
    from models import Note

logger = logging.getLogger("example_app")

#: The longest note accepted, in characters.
MAX_NOTE_LENGTH = 1000
#: The most notes ``GET /notes`` returns, newest first.
NOTES_PAGE_SIZE = 100


class DeliberateError(Exception):
    """Raised by ``GET /boom``, to see how the stack reports an unhandled error."""


def create_app() -> Flask:
    configure_logging()
    url = database_url()
    if is_sqlite(url):
        upgrade_sqlite(url)
    sessions = sessionmaker(create_engine(url, pool_pre_ping=True))

    app = Flask(__name__)
    # Bodies are short JSON documents; anything larger is refused with 413.
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    # The database and migrations checks; REDIS_URL, when set, adds the Redis check.
    Dockerflow(app, db=url, alembic_config=ALEMBIC_INI)

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException) -> Any:
        # Also the 500 for an unhandled exception, which Flask has logged with its traceback.
        return jsonify(error=error.description), error.code

    @app.get("/")
    def index() -> Any:
        logger.info("Saying hello")
        return jsonify(message="hello from dockerflow-wsgi", request_id=g.request_id)

    @app.get("/notes")
    def list_notes() -> Any:
        with sessions() as session:
            notes = session.scalars(
                select(Note).order_by(Note.id.desc()).limit(NOTES_PAGE_SIZE)
            ).all()
            return jsonify(notes=[note.to_dict() for note in notes])

    @app.post("/notes")
    def create_note() -> Any:
        payload = request.get_json(silent=True)
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            return jsonify(error='expected a JSON object with a non-empty "text" string'), 400
        if len(text) > MAX_NOTE_LENGTH:
            return jsonify(error=f"text is longer than {MAX_NOTE_LENGTH} characters"), 400
        with sessions.begin() as session:
            note = Note(text=text)
            session.add(note)
            session.flush()
            created = note.to_dict()
        logger.info("Note created", extra={"note_id": created["id"]})
        return jsonify(created), 201

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            for number in range(1, 6):
                yield f"chunk {number}\n"
            # Still within the request: the middleware's request id is on this record too.
            logger.info("Stream finished")

        return app.response_class(chunks(), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> Any:
        raise DeliberateError("boom: an unhandled error, on purpose")

    return app


app = create_app()
