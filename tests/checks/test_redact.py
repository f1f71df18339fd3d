"""Passwords in connection URLs are masked before they reach a message, a response or a log."""

from __future__ import annotations

from typing import Optional

import pytest

from dockerflow_wsgi.redact import MASK, mask_url, scrub


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # PostgreSQL
        (
            "postgresql://app:s3cr3t@db.internal:5432/app",
            "postgresql://app:***@db.internal:5432/app",
        ),
        ("postgresql+psycopg://app:s3cr3t@db/app", "postgresql+psycopg://app:***@db/app"),
        ("postgresql://app@db.internal:5432/app", "postgresql://app@db.internal:5432/app"),
        ("postgresql://db.internal:5432/app", "postgresql://db.internal:5432/app"),
        # MySQL / MariaDB
        (
            "mysql+pymysql://root:s3cr3t@127.0.0.1:3306/test",
            "mysql+pymysql://root:***@127.0.0.1:3306/test",
        ),
        ("mysql+pymysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/test"),
        # Redis: a password without a user, and with one
        ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://default:s3cr3t@cache:6379/0", "redis://default:***@cache:6379/0"),
        ("rediss://:s3cr3t@cache:6380/1", "rediss://:***@cache:6380/1"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://cache/0", "redis://cache/0"),
        # Awkward passwords
        ("postgresql://app:s3:cr:3t@db/app", "postgresql://app:***@db/app"),
        ("postgresql://app:s3/cr/3t@db/app", "postgresql://app:***@db/app"),
        ("postgresql://app:s3cr%40t@db/app", "postgresql://app:***@db/app"),
        ("redis://:s3%2Fcr%3At@cache:6379/0", "redis://:***@cache:6379/0"),
        # URLs inside text
        (
            'could not connect to "postgresql://app:s3cr3t@db/app": connection refused',
            'could not connect to "postgresql://app:***@db/app": connection refused',
        ),
        (
            "primary postgresql://a:one@db1/app, replica postgresql://b:two@db2/app",
            "primary postgresql://a:***@db1/app, replica postgresql://b:***@db2/app",
        ),
        # Nothing to mask
        ("", ""),
        ("connection refused", "connection refused"),
        ("Error 111 connecting to 127.0.0.1:6379.", "Error 111 connecting to 127.0.0.1:6379."),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        # URL passwords are masked with no secret given.
        (
            "cannot reach redis://:s3cr3t@cache:6379/0",
            (),
            "cannot reach redis://:***@cache:6379/0",
        ),
        # A secret is masked wherever it appears, not only inside a URL.
        (
            'password authentication failed: "s3cr3t-pw" rejected',
            ("s3cr3t-pw",),
            'password authentication failed: "***" rejected',
        ),
        # The percent-encoded secret of a URL is also masked in its decoded form.
        ("driver said: p@ss:w/rd is wrong", ("p%40ss%3Aw%2Frd",), "driver said: *** is wrong"),
        ("driver said: p%40ss is wrong", ("p%40ss",), "driver said: *** is wrong"),
        # Several secrets; missing or empty ones change nothing.
        ("one two three", ("one", None, "three"), "*** two ***"),
        ("one two three", (None,), "one two three"),
        ("one two three", ("",), "one two three"),
        # Text without URLs or secrets is left exactly as it is.
        (
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
            (),
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
        ),
        ("Timeout reading from socket", ("s3cr3t",), "Timeout reading from socket"),
        ("", ("s3cr3t",), ""),
    ],
)
def test_scrub(text: str, secrets: tuple[Optional[str], ...], expected: str) -> None:
    assert scrub(text, *secrets) == expected


def test_scrub_masks_both_forms_of_a_percent_encoded_password() -> None:
    text = "postgresql://app:s3cr%40t@db/app failed for app:s3cr@t and s3cr%40t"

    scrubbed = scrub(text, "s3cr%40t")

    assert "s3cr" not in scrubbed
    assert scrubbed.count(MASK) == 3


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql+pg8000://app:pa ss@db/app", "pa ss"),
        ("nosuchdb://app:my secret@db/app", "my secret"),
        ("http://:pa ss@cache:6379/0", "pa ss"),
    ],
)
def test_passwords_with_spaces_are_masked(url, password):
    assert password not in mask_url(url)
