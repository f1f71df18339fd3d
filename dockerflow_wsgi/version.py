"""Loading ``version.json``, the build's identity card (source, version, commit, build)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from typing import Any

__all__ = ["VersionFileError", "load_version_json"]

VERSION_FILENAME = "version.json"

#: The largest ``version.json`` served: a real one is a few hundred bytes.
MAX_VERSION_FILE_SIZE = 1024 * 1024

# Non-blocking, so that opening a FIFO returns at once instead of waiting for a writer.
# A terminal device must not become the process's controlling terminal either.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class VersionFileError(Exception):
    """``version.json`` exists but cannot be served: unreadable, not JSON, or not an object."""


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON: /__version__ would send them on.
    raise ValueError(f"{name} is not a JSON value")


def load_version_json(version_path: str) -> Mapping[str, Any] | None:
    """Read ``version.json`` from the directory ``version_path``.

    Returns ``None`` when there is no such file (the endpoint answers 404). The file is read
    on every call: it is tiny, ``/__version__`` is not a hot path, and a deployment that
    replaces the file is then served correctly without a restart.

    Only a regular file of at most :data:`MAX_VERSION_FILE_SIZE` bytes is read. The file is
    opened without blocking and inspected before anything is read, so a FIFO (which would
    block the thread forever), a device such as ``/dev/zero`` (which never ends) or a huge
    file costs one ``open`` and one ``fstat``.

    :raises VersionFileError: when the file is there but is not a readable JSON object.
    """
    path = os.path.join(version_path, VERSION_FILENAME)
    try:
        raw = _read_small_regular_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VersionFileError(f"{VERSION_FILENAME} could not be read: {exc.strerror}") from exc
    try:
        content = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise VersionFileError(f"{VERSION_FILENAME} is not valid JSON: {exc}") from exc
    if not isinstance(content, dict):
        raise VersionFileError(
            f"{VERSION_FILENAME} must hold a JSON object, found {type(content).__name__}"
        )
    return content


def _read_small_regular_file(path: str) -> bytes:
    descriptor = os.open(path, _OPEN_FLAGS)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise VersionFileError(
                f"{VERSION_FILENAME} is not a regular file ({_kind(status.st_mode)})"
            )
        if status.st_size > MAX_VERSION_FILE_SIZE:
            raise VersionFileError(_too_large(status.st_size))
        # The file may grow between fstat and read: never read more than the limit allows.
        chunks = []
        size = 0
        while size <= MAX_VERSION_FILE_SIZE:
            chunk = os.read(descriptor, MAX_VERSION_FILE_SIZE + 1 - size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        raise VersionFileError(_too_large(size))
    finally:
        os.close(descriptor)


def _too_large(size: int) -> str:
    return (
        f"{VERSION_FILENAME} is larger than {MAX_VERSION_FILE_SIZE // 1024} KiB "
        f"({size} bytes or more)"
    )


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"
