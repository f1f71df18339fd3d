"""Loading ``version.json``, the build's identity card (source, version, commit, build)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["VersionFileError", "load_version_json"]

VERSION_FILENAME = "version.json"


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

    :raises VersionFileError: when the file is there but is not a readable JSON object.
    """
    path = os.path.join(version_path, VERSION_FILENAME)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
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
