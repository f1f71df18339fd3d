"""Write ``python-objects.inv``: the entries of Python's own Sphinx inventory that these docs
link to, so that intersphinx resolves them to docs.python.org without fetching anything.

    python docs/python_inventory.py PYTHON_OBJECTS_INV

``PYTHON_OBJECTS_INV`` is the ``objects.inv`` of Python's documentation: the one published at
https://docs.python.org/3/objects.inv, or Debian's copy (package ``python3.11-doc``:
``/usr/share/doc/python3.11/html/objects.inv``). Its entries are copied as they are, URIs
included (relative to https://docs.python.org/3/, as ``conf.py``'s ``intersphinx_mapping``
says). When a page or a docstring links to a Python name missing here, the nitpicky build
(``make docs``) fails on it: add the name to ``NAMES`` and run this again.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

#: The Python objects the docs link to, and a few that docstrings commonly do.
NAMES = frozenset(
    {
        "asyncio",
        "collections.abc.Awaitable",
        "collections.abc.Callable",
        "collections.abc.Container",
        "collections.abc.Iterable",
        "collections.abc.Mapping",
        "concurrent.futures.ThreadPoolExecutor",
        "contextvars",
        "contextvars.ContextVar",
        "logging.Filter",
        "logging.Formatter",
        "logging.Handler",
        "logging.LogRecord",
        "logging.Logger",
        "logging.StreamHandler",
        "logging.config.dictConfig",
        "logging.getLogger",
        "os.PathLike",
        "os.environ",
        "traceback.format_exception",
        "uuid.uuid4",
    }
)

HEADER_LINES = 4
TARGET = Path(__file__).with_name("python-objects.inv")


def entries_of(inventory: bytes) -> list[str]:
    """The entry lines of a version 2 inventory: ``name domain:role priority uri dispname``."""
    header = inventory.split(b"\n", HEADER_LINES)
    if header[0] != b"# Sphinx inventory version 2":
        raise ValueError(f"not a version 2 Sphinx inventory: {header[0]!r}")
    return zlib.decompress(header[HEADER_LINES]).decode("utf-8").splitlines()


def selected(inventory: bytes, names: frozenset[str] = NAMES) -> bytes:
    """``inventory`` with only the entries of ``names``, its header kept."""
    header = inventory.split(b"\n", HEADER_LINES)[:HEADER_LINES]
    kept = sorted(line for line in entries_of(inventory) if line.split(" ", 1)[0] in names)
    missing = names - {line.split(" ", 1)[0] for line in kept}
    if missing:
        raise ValueError(f"not in Python's inventory: {', '.join(sorted(missing))}")
    body = "".join(f"{line}\n" for line in kept).encode("utf-8")
    return b"\n".join(header) + b"\n" + zlib.compress(body, 9)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    TARGET.write_bytes(selected(Path(argv[0]).read_bytes()))
    print(f"wrote {TARGET.name}: {len(NAMES)} names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
