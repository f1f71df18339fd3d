"""Finding the object a documented dotted name stands for, for the tests that hold the docs
against the code."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(dotted: str) -> Any:
    """The object named ``package.module.attribute``, importing as much as is a module."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[end:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(dotted)
