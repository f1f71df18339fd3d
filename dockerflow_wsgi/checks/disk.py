"""The disk space check: is there room left on a volume this pod writes to?

Free space is what an unprivileged process can use (:func:`shutil.disk_usage`, ``statvfs``'s
``f_bavail`` on POSIX, as ``df`` shows it), not what root could: the service runs out of room
while root's reserve is still there.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Optional, Union

from .. import health
from ..redact import mask_secrets
from .messages import CheckMessage, Error, Warning

__all__ = ["check_disk_space"]

Threshold = Union[int, str]

_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _parse(name: str, value: object) -> tuple[str, float]:
    """``("bytes", n)`` or ``("percent", p)`` for a threshold, or a ValueError naming it."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return "bytes", value
    if isinstance(value, str):
        match = _PERCENT.fullmatch(value.strip())
        if match is not None and float(match.group(1)) <= 100:
            return "percent", float(match.group(1))
    raise ValueError(
        f"{name} must be a number of bytes (an int, 0 or more) or a percentage of the volume "
        f'from "0%" to "100%", got {value!r}'
    )


def _check_arguments(
    path: Union[str, os.PathLike[str]],
    *,
    error_below: Threshold,
    warning_below: Optional[Threshold] = None,
) -> None:
    """Raise :class:`ValueError` for thresholds that cannot work, before the check is run."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or a path, got {path!r}")
    error_kind, error_value = _parse("error_below", error_below)
    if warning_below is not None:
        warning_kind, warning_value = _parse("warning_below", warning_below)
        if warning_kind == error_kind and warning_value < error_value:
            raise ValueError(
                f"warning_below ({warning_below!r}) is below error_below ({error_below!r}): "
                "the warning would never be seen"
            )


def _bytes(kind: str, value: float, total: int) -> float:
    return value if kind == "bytes" else total * value / 100


def human(size: float) -> str:
    """``1.2 GiB``, ``512 bytes``: a size in binary units, one decimal."""
    unit = 0
    # Rounded as shown: 1023.97 KiB is shown as 1.0 MiB, never as 1024.0 KiB.
    while round(size, 1 if unit else 0) >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    return f"{size:.0f} bytes" if unit == 0 else f"{size:.1f} {_UNITS[unit]}"


def check_disk_space(
    path: Union[str, os.PathLike[str]],
    *,
    error_below: Threshold,
    warning_below: Optional[Threshold] = None,
) -> list[CheckMessage]:
    """The free space of the volume holding ``path``, against two thresholds.

    E201 when less than ``error_below`` is free, W201 when less than ``warning_below`` (a
    volume filling up is worth a look before it stops the service), E202 when the volume
    cannot be read (the path is missing, or not allowed). Each threshold is a number of bytes
    (an ``int``) or a percentage of the volume's size (``"5%"``). The message gives the free
    space in binary units: ``1.2 GiB free of 50.0 GiB at /data``. Registered with
    :func:`~dockerflow_wsgi.checks.register_partial`, bad thresholds stop the registration
    with a :class:`ValueError`.

    .. code-block:: python

        checks.register_partial(
            check_disk_space, "/data", error_below="5%", warning_below="10%", name="disk_space"
        )

    Put it in the readiness group (``heartbeat_groups``) for a volume of the pod's own: a
    full scratch disk is this pod's problem alone.
    """
    _check_arguments(path, error_below=error_below, warning_below=warning_below)
    where = mask_secrets(os.fspath(path))
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return [
            Error(
                f"Cannot read the free space at {where}: {reason}",
                id=health.ERROR_DISK_UNREADABLE,
            )
        ]
    total, free = usage.total, usage.free
    text = f"{human(free)} free of {human(total)} at {where}"
    error_limit = _bytes(*_parse("error_below", error_below), total)
    if free < error_limit:
        return [
            Error(
                f"{text}, below {_shown(error_below, error_limit)}",
                hint="free some space or grow the volume",
                id=health.ERROR_DISK_SPACE_LOW,
            )
        ]
    if warning_below is not None:
        warning_limit = _bytes(*_parse("warning_below", warning_below), total)
        if free < warning_limit:
            return [
                Warning(
                    f"{text}, below {_shown(warning_below, warning_limit)}",
                    hint="free some space or grow the volume",
                    id=health.WARNING_DISK_SPACE_LOW,
                )
            ]
    return []


def _shown(threshold: Threshold, limit: float) -> str:
    """A threshold as the message shows it: ``5% (2.5 GiB)`` or ``100.0 MiB``."""
    if isinstance(threshold, str):
        return f"{threshold.strip()} ({human(limit)})"
    return human(limit)


check_disk_space.check_arguments = _check_arguments  # type: ignore[attr-defined]
