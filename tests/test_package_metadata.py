"""What a newcomer meets before the first request: the package's metadata and install lines.

The package is not on PyPI, so ``pip install dockerflow-wsgi`` fails: the README and the docs
install from a checkout or from the wheel ``make dist`` builds, and say the same thing in
each place. The metadata (what ``pip show`` and an index page display) names every framework
the library serves, with classifiers an index accepts.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

# The stacks DESIGN.md says the metadata names.
FRAMEWORKS = ["WSGI", "ASGI", "Flask", "Django", "FastAPI", "Starlette", "Sanic"]

# Pages that show how to install; each must show the README's lines.
INSTALL_PAGES = ["index", "quickstart"]


def metadata() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "setup.cfg", encoding="utf-8")
    return parser["metadata"]


def listed(value: str) -> list[str]:
    """A setup.cfg list: one item per line, or comma-separated on one line."""
    return [item.strip() for item in re.split(r"[\n,]", value) if item.strip()]


def readme_install_lines() -> list[str]:
    """The commands of the README's ``## Install`` code block, without their comments."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Install\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    assert block is not None, "the README's Install section has no sh block"
    return commands(block.group(1))


def commands(block: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def page_install_lines(page: str) -> list[str]:
    """The install commands of ``page``: its ``sh`` blocks' lines that use pip or make dist."""
    content = (DOCS / f"{page}.rst").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"\.\. code-block:: sh\n\n((?:    .*\n|\n)+)", content):
        found += [line for line in commands(block) if line.startswith(("pip ", "make dist"))]
    return found


def test_the_description_and_keywords_name_every_framework() -> None:
    description = metadata()["description"]
    keywords = {keyword.lower() for keyword in listed(metadata()["keywords"])}
    for framework in FRAMEWORKS:
        assert framework in description, framework
        assert framework.lower() in keywords, framework


def test_the_classifiers_are_valid_and_name_the_frameworks() -> None:
    trove = pytest.importorskip("trove_classifiers", reason="a test dependency: .[test]")
    classifiers = listed(metadata()["classifiers"])
    assert [name for name in classifiers if name not in trove.classifiers] == []
    # Starlette and Sanic have no classifier of their own; ASGI has none under Topic.
    for framework in ("Flask", "Django", "FastAPI", "Pyramid", "AsyncIO"):
        assert f"Framework :: {framework}" in classifiers


def test_the_readme_installs_from_a_checkout_and_from_the_built_wheel() -> None:
    lines = readme_install_lines()
    version = metadata()["version"]
    wheel = f"dist/dockerflow_wsgi-{version}-py3-none-any.whl"
    assert lines == [
        "pip install '/path/to/dockerflow-wsgi[flask]'",
        "pip install -e '.[flask]'",
        "make dist",
        f"pip install '{wheel}[flask]'",
    ]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^dist:", makefile, re.M), "the README runs make dist"
    # Keep the two commands a newcomer runs first at the top.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    assert commands(first_block.group(1)) == ["make run", "make test"]


@pytest.mark.parametrize("page", INSTALL_PAGES)
def test_the_docs_show_the_readmes_install_lines(page: str) -> None:
    assert page_install_lines(page) == readme_install_lines()


# Every page and snippet a user copies from.
COPIED_FROM = [
    REPO / "README.md",
    *sorted(DOCS.glob("*.rst")),
    *sorted(path for path in (DOCS / "snippets").iterdir() if path.is_file()),
]


@pytest.mark.parametrize("path", COPIED_FROM, ids=lambda path: path.name)
def test_no_page_installs_the_unpublished_package_by_name(path: Path) -> None:
    by_name = re.findall(r"pip install[^\n`]*?[\s']dockerflow-wsgi\b", path.read_text("utf-8"))
    assert by_name == []
