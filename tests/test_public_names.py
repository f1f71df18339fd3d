"""The public modules' ``__all__`` lists and the reference docs name the same things.

A name in ``__all__`` that no page documents is a promise nobody wrote down; a documented name
missing from ``__all__`` is left out of ``from module import *`` and of Sphinx's view of the
module. Both directions are checked for every module a user imports from.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotted_names import resolve

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The modules the docs tell users to import from. The others' ``__all__`` lists what the
#: package's own modules take from them, not a public surface.
PUBLIC_MODULES = [
    "dockerflow_wsgi",
    "dockerflow_wsgi.asgi",
    "dockerflow_wsgi.checks",
    "dockerflow_wsgi.checks.amqp",
    "dockerflow_wsgi.checks.disk",
    "dockerflow_wsgi.checks.http",
    "dockerflow_wsgi.django",
    "dockerflow_wsgi.django.checks",
    "dockerflow_wsgi.flask",
    "dockerflow_wsgi.health",
    "dockerflow_wsgi.logging",
    "dockerflow_wsgi.propagation",
    "dockerflow_wsgi.sanic",
    "dockerflow_wsgi.signals",
]

_DIRECTIVE = re.compile(r"^\.\. (auto\w+|py:\w+|currentmodule):: (\S+?)(?:\(|$)")
# A py: directive's further signatures, one per line, indented under it.
_CONTINUATION = re.compile(r"^ {5,}(\w[\w.]*)")


def documented_names() -> Iterator[tuple[str, str]]:
    """Each (directive, dotted name) the docs' pages document, modules of ``automodule``
    included, names under a ``currentmodule`` qualified with it."""
    for page in sorted(DOCS.glob("*.rst")):
        module = None
        directive = None
        for line in page.read_text(encoding="utf-8").splitlines():
            match = _DIRECTIVE.match(line)
            continuation = _CONTINUATION.match(line) if directive else None
            if match is not None:
                directive, name = match.groups()
                if directive == "currentmodule":
                    module, directive = name, None
                    continue
            elif continuation is not None and directive.startswith("py:"):
                name = continuation.group(1)
            else:
                directive = None
                continue
            yield directive, name if "." in name or module is None else f"{module}.{name}"


@pytest.fixture(scope="module")
def documented() -> list[tuple[str, str]]:
    for extra in ("flask", "django", "sanic"):
        pytest.importorskip(extra)
    return list(documented_names())


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_is_documented(
    module_name: str, documented: list[tuple[str, str]]
) -> None:
    module = importlib.import_module(module_name)
    if ("automodule", module_name) in documented and _documents_members(module_name):
        # Sphinx documents exactly the module's __all__ there.
        return
    objects = [resolve(name) for directive, name in documented if directive != "automodule"]
    undocumented = [
        name for name in module.__all__ if not any(getattr(module, name) is o for o in objects)
    ]
    assert undocumented == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_documented_name_is_in_all(
    module_name: str, documented: list[tuple[str, str]]
) -> None:
    module = importlib.import_module(module_name)
    # A py:type names an alias for reading a signature, not something to import.
    names = {
        name.rpartition(".")[2]
        for directive, name in documented
        if directive not in ("automodule", "py:type") and name.rpartition(".")[0] == module_name
    }
    assert sorted(names - set(module.__all__)) == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_is_documented(
    module_name: str, documented: list[tuple[str, str]]
) -> None:
    assert any(name == module_name or name.startswith(module_name + ".") for _, name in documented)


def _documents_members(module_name: str) -> bool:
    """Whether the ``automodule`` of ``module_name`` has ``:members:`` under it."""
    for page in DOCS.glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        found = re.search(
            rf"^\.\. automodule:: {re.escape(module_name)}\n((?:   .*\n)*)", text, re.M
        )
        if found is not None and ":members:" in found.group(1):
            return True
    return False
