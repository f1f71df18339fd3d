"""The URL check: does a service this one depends on answer over HTTP? (the standard library)

A sidecar on ``localhost``, an internal API: one ``GET``, bounded in time, whose status is
compared with what is expected. Redirects are not followed (a ``302`` to a login page is an
answer, and following it would check another service), the body is not read, and the
connection is closed before the check returns.
"""

from __future__ import annotations

import base64
import http.client
import time
from collections.abc import Container
from typing import Optional
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from .. import health
from ..redact import SECRET_PARAMETERS, mask_secrets
from .messages import CheckMessage, Error
from .time_limit import service_wait

__all__ = ["check_url"]

_USER_AGENT = "dockerflow-wsgi health check"


def _check_arguments(
    url: str, *, timeout: Optional[float] = None, expect: Container[int] = range(200, 400)
) -> None:
    """Raise :class:`ValueError` for a URL or option that cannot work, before the check runs."""
    if not isinstance(url, str):
        raise ValueError(f"url must be a str, got {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"url {mask_secrets(url)} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"url must be an http:// or https:// URL with a host, got {mask_secrets(url)}"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise ValueError(f"timeout must be a number of seconds above zero, got {timeout!r}")
    try:
        200 in expect  # noqa: B015 - raises for something that holds no status codes
    except TypeError:
        raise ValueError(
            f"expect must hold the status codes that pass, such as range(200, 300) or "
            f"{{200, 204}}, got {expect!r}"
        ) from None


def url_secrets(url: str) -> list[str]:
    """The password of ``url`` and the values of its secret query parameters, as sent and
    decoded, for masking wherever they appear (an exception's text, the URL itself)."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name.split("[", 1)[0].lower() in SECRET_PARAMETERS and value:
            found.append(value)
    return found


def _request_target(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _expected(expect: Container[int]) -> str:
    if isinstance(expect, range) and expect.step == 1 and len(expect) > 0:
        return f"{expect.start}-{expect.stop - 1}"
    try:
        return ", ".join(str(code) for code in sorted(expect))  # type: ignore[call-overload]
    except TypeError:
        return repr(expect)


def check_url(
    url: str, *, timeout: Optional[float] = None, expect: Container[int] = range(200, 400)
) -> list[CheckMessage]:
    """``GET`` ``url`` once, without following redirects, and compare the status with
    ``expect``.

    E210 when there is no answer (refused, timed out, a TLS or protocol error), E211 when the
    status is not in ``expect`` (the message gives it). A redirect is an answer: ``302`` passes
    the default ``expect`` of 200-399 and fails ``expect=range(200, 300)``. ``timeout`` is how
    many seconds to wait for the answer in all; by default four fifths of the check's time
    limit (``check_timeouts`` or ``check_timeout``: 4 seconds of the default 5), so the check
    says which URL did not answer before the heartbeat gives up on it (E102). A
    ``user:password@`` in the URL is sent as Basic authentication. The URL's password and the
    values of its secret query parameters (``token=``...) are masked in every message. The
    request goes straight to the host, not through a proxy of the environment.

    .. code-block:: python

        checks.register_partial(check_url, "http://localhost:8001/health", name="sidecar")
    """
    _check_arguments(url, timeout=timeout, expect=expect)
    secrets = url_secrets(url)
    where = mask_secrets(url, *secrets)
    parts = urlsplit(url)
    wait = service_wait(timeout)
    deadline = time.monotonic() + wait
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = factory(parts.hostname or "", parts.port, timeout=wait)
    headers = {"User-Agent": _USER_AGENT, "Connection": "close"}
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    try:
        connection.connect()
        connection.sock.settimeout(_left(deadline))
        connection.request("GET", _request_target(parts), headers=headers)
        connection.sock.settimeout(_left(deadline))
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError) or reason == "timed out":
            reason = f"no answer within {wait:g} seconds"
        return [
            Error(
                # The URL ends at a space: a secret parameter's value masked in free text runs
                # to the next one, which would take a ':' after the URL with it.
                f"Could not get {where} ({mask_secrets(reason, *secrets)})",
                id=health.ERROR_CANNOT_CONNECT_URL,
            )
        ]
    finally:
        connection.close()
    if status not in expect:
        return [
            Error(
                f"{where} answered {status}, expected {_expected(expect)}",
                id=health.ERROR_URL_UNEXPECTED_STATUS,
            )
        ]
    return []


def _left(deadline: float) -> float:
    """The seconds left until ``deadline``; a timeout once there are none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


check_url.check_arguments = _check_arguments  # type: ignore[attr-defined]
