"""The ``.. dockerflow-options::`` directive: the configuration page's options table, rendered
from :data:`dockerflow_wsgi.options.OPTIONS` when the docs are built, so that the page cannot
drift from the code (``tests/test_docs.py`` holds the same rendering against DESIGN.md).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

from dockerflow_wsgi.options import keyword_options


def option_table_rst() -> str:
    """The options a keyword sets, as a reStructuredText list-table: keyword, environment
    variable, default, meaning."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 22 30 18 30",
        "",
        "   * - keyword",
        "     - environment variable",
        "     - default",
        "     - meaning",
    ]
    for option in keyword_options():
        variable = f"``{option.variable}``" if option.variable else "\N{EN DASH}"
        lines += [
            f"   * - ``{option.name}``",
            f"     - {variable}",
            f"     - {option.shown_default()}",
            f"     - {option.doc}",
        ]
    return "\n".join(lines) + "\n"


class OptionTable(Directive):
    """Insert :func:`option_table_rst`, parsed as if it were written in the page."""

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        source = self.state_machine.get_source_and_line(self.lineno)[0]
        rows = StringList(option_table_rst().splitlines(), source=source)
        self.state.nested_parse(rows, self.content_offset, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("dockerflow-options", OptionTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
