"""Every reference in the docs resolves (Sphinx's nitpicky mode, as ``make docs`` builds), and
Python's names resolve offline, through the small inventory kept in docs/."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
# Debian's python3.11-doc; PYTHON_OBJECTS_INV may name another copy of Python's inventory.
PYTHON_INVENTORY = Path(
    os.environ.get("PYTHON_OBJECTS_INV", "/usr/share/doc/python3.11/html/objects.inv")
)


NITPICKY = ("-n", "-W", "--keep-going", "-q")


def _inventory_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("python_inventory", DOCS / "python_inventory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_build_with_every_reference_resolved(tmp_path: Path) -> None:
    # The dummy builder resolves every reference as the HTML one does, without writing pages.
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", *NITPICKY, "-b", "dummy", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "reference target not found" not in done.stderr


def test_the_python_inventory_links_to_docs_python_org() -> None:
    script = _inventory_script()
    entries = script.entries_of(script.TARGET.read_bytes())
    names = {line.split(" ", 1)[0] for line in entries}
    assert names == script.NAMES
    for line in entries:
        _, role, _, uri, _ = line.split(" ", 4)
        assert role.startswith("py:"), line
        # Relative to https://docs.python.org/3/, as conf.py's intersphinx_mapping says.
        assert uri.startswith("library/") and "#" in uri, line
    namespace: dict[str, object] = {}
    exec((DOCS / "conf.py").read_text(encoding="utf-8"), namespace)
    mapping = namespace["intersphinx_mapping"]
    assert mapping["python"] == ("https://docs.python.org/3", "python-objects.inv")  # type: ignore[index]


@pytest.mark.skipif(not PYTHON_INVENTORY.is_file(), reason="Python's objects.inv is not here")
def test_the_python_inventory_is_pythons_own_entries() -> None:
    script = _inventory_script()
    made = script.selected(PYTHON_INVENTORY.read_bytes())
    assert script.entries_of(made) == script.entries_of(script.TARGET.read_bytes())
    assert zlib.decompress(made.split(b"\n", 4)[4])  # a valid compressed body
