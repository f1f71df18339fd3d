"""Django's ``cache`` and ``storage`` checks on the test project: ``DOCKERFLOW_CHECKS`` names
them, and they run against Django's real backends: the local-memory cache, Redis through
Django's own backend (the real server, stopped and started again), ``FileSystemStorage`` in a
folder of the test's.

Collected only in a process set up for the test project: ``tests/test_django.py`` runs it. By
hand::

    DJANGO_SETTINGS_MODULE=project.settings PYTHONPATH=tests/django_project:tests \\
        python -m pytest tests/test_django_cache_storage.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from django.test import override_settings
from services import (
    REDIS,
    ServerControl,
    established_connections,
    redis_url,  # noqa: F401 - a fixture, re-exported for pytest
    silent_port,  # noqa: F401 - a fixture, re-exported for pytest
    unused_port,
)

from dockerflow_wsgi.django import get_wsgi_application
from dockerflow_wsgi.django.checks import check_cache, check_storage

__test__ = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"

E230 = "dockerflow.health.E230"
E231 = "dockerflow.health.E231"
PASSWORD = "hunter2-cache-pw"
CHECK_TIMEOUT = 1
# Generous: the check must answer within its timeout, with room for a slow machine.
SLACK = 2.0

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "checks"}
DUMMY = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}


def redis_cache(location: str, **options: Any) -> dict[str, Any]:
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": location,
        "OPTIONS": options,
    }


@pytest.fixture(scope="module")
def client() -> webtest.TestApp:
    """One application for the module: its check threads serve heartbeat after heartbeat."""
    return webtest.TestApp(get_wsgi_application())


@pytest.fixture
def storage_folder(tmp_path: Path) -> Iterator[Path]:
    """The default storage: a ``FileSystemStorage`` in a folder of the test's own."""
    folder = tmp_path / "media"
    folder.mkdir()
    storages = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folder)},
        }
    }
    with override_settings(STORAGES=storages, DOCKERFLOW_CHECKS=["cache", "storage"]):
        yield folder


def heartbeat(client: webtest.TestApp, path: str = "/__heartbeat__") -> Any:
    return client.get(path, status="*")


def ours(response: Any) -> dict[str, str]:
    """The statuses of the cache and storage checks, without Django's system checks'."""
    return {name: response.json["checks"][name] for name in ("cache", "storage")}


def messages(response: Any, check: str) -> dict[str, str]:
    return response.json["details"].get(check, {}).get("messages", {})


# -- cache -------------------------------------------------------------------------------------


def test_both_run_in_the_heartbeat_under_their_names(client, storage_folder):
    with override_settings(CACHES={"default": LOCMEM, "nothing": DUMMY}):
        response = heartbeat(client)

    assert response.status_int == 200, response.text
    assert ours(response) == {"cache": "ok", "storage": "ok"}
    assert list(storage_folder.iterdir()) == []


def test_the_short_names_work_in_a_heartbeat_group(storage_folder):
    application = get_wsgi_application(heartbeat_groups={"readiness": ["cache", "storage"]})

    response = heartbeat(webtest.TestApp(application), "/__heartbeat__/readiness")

    assert response.json == {
        "status": "ok",
        "checks": {"cache": "ok", "storage": "ok"},
        "details": {},
    }


def test_redis_through_djangos_backend(client, storage_folder, redis_url):  # noqa: F811
    with override_settings(CACHES={"default": LOCMEM, "sessions": redis_cache(redis_url)}):
        before = established_connections(REDIS.port)
        for _ in range(3):
            assert heartbeat(client).json["checks"]["cache"] == "ok"
        # Each run's connection is closed when it ends: none is held between heartbeats.
        assert established_connections(REDIS.port) == before


def test_a_redis_cache_that_is_not_there_is_e230_naming_the_alias(client, storage_folder):
    url = f"redis://:{PASSWORD}@127.0.0.1:{unused_port()}/0"
    with override_settings(CACHES={"default": LOCMEM, "sessions": redis_cache(url)}):
        response = heartbeat(client)

    assert response.status_int == 500
    assert ours(response) == {"cache": "error", "storage": "ok"}
    (text,) = messages(response, "cache").values()
    assert list(messages(response, "cache")) == [E230]
    assert text.startswith("Cache 'sessions' (RedisCache) failed to set a key: ConnectionError")
    assert PASSWORD not in response.text


def test_a_password_in_the_options_is_masked_too(client, storage_folder):
    cache = redis_cache(f"redis://127.0.0.1:{unused_port()}/0", password=PASSWORD)
    with override_settings(CACHES={"default": cache}):
        response = heartbeat(client)

    assert list(messages(response, "cache")) == [E230]
    assert PASSWORD not in response.text


def test_each_failing_alias_is_named(storage_folder):
    caches = {
        "default": LOCMEM,
        "one": redis_cache(f"redis://127.0.0.1:{unused_port()}/0"),
        "two": redis_cache(f"redis://127.0.0.1:{unused_port()}/0"),
    }
    with override_settings(CACHES=caches):
        found = check_cache()

    assert [(message.id, message.msg.split(" (")[0]) for message in found] == [
        (E230, "Cache 'one'"),
        (E230, "Cache 'two'"),
    ]


def test_a_redis_that_never_answers_is_e230_within_the_check_timeout(
    silent_port: int,  # noqa: F811 - the fixture
) -> None:
    caches = {"default": redis_cache(f"redis://127.0.0.1:{silent_port}/0")}
    with override_settings(CACHES=caches, DOCKERFLOW_CHECK_TIMEOUT=CHECK_TIMEOUT):
        started = time.monotonic()
        (message,) = check_cache()

    assert time.monotonic() - started < CHECK_TIMEOUT + SLACK
    assert message.id == E230
    assert "Cache 'default' (RedisCache) failed to set a key: TimeoutError" in message.msg


def test_redis_stopped_then_started(client, storage_folder, redis_url):  # noqa: F811
    control = ServerControl()
    try:
        with override_settings(CACHES={"default": redis_cache(redis_url)}):
            assert heartbeat(client).json["checks"]["cache"] == "ok"

            control.stop(REDIS)
            response = heartbeat(client)
            assert list(messages(response, "cache")) == [E230]

            control.start(REDIS)
            assert heartbeat(client).json["checks"]["cache"] == "ok"
    finally:
        control.restore()


# -- storage ---------------------------------------------------------------------------------


def test_an_unusable_storage_is_e231(client, storage_folder):
    (storage_folder / "file").write_text("not a folder")
    storages = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            # Root may write anywhere: a folder below a file cannot be made, even by root.
            "OPTIONS": {"location": str(storage_folder / "file" / "media")},
        }
    }
    with override_settings(STORAGES=storages):
        response = heartbeat(client)

    assert response.status_int == 500
    assert ours(response) == {"cache": "ok", "storage": "error"}
    (text,) = messages(response, "storage").values()
    assert list(messages(response, "storage")) == [E231]
    assert text.startswith("Storage FileSystemStorage failed to save a file: NotADirectoryError")


def test_the_file_is_deleted_when_reading_it_back_fails(storage_folder, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    def unreadable(self: Any, name: str, mode: str = "rb") -> Any:
        raise OSError("read failed")

    monkeypatch.setattr(FileSystemStorage, "_open", unreadable)

    (message,) = check_storage()

    assert message.id == E231
    assert (
        message.msg
        == "Storage FileSystemStorage failed to read the file back: OSError: read failed"
    )
    assert list(storage_folder.iterdir()) == []
