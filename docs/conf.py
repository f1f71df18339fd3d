"""Sphinx configuration for the dockerflow-wsgi documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
# option_table.py, the extension beside this file.
sys.path.insert(0, os.path.abspath("."))

project = "dockerflow-wsgi"
author = "dockerflow-wsgi contributors"
copyright = "2026, dockerflow-wsgi contributors"
release = "0.1.0"

# option_table renders the configuration page's options table from dockerflow_wsgi.options.
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "option_table"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Python's names link to docs.python.org through a small inventory kept here, made by
# python_inventory.py from Python's own: the build fetches nothing (it may have no network).
intersphinx_mapping = {"python": ("https://docs.python.org/3", "python-objects.inv")}
# Type aliases stay named in signatures, linked to their entries in api.rst.
autodoc_type_aliases = {
    "WSGIApp": "dockerflow_wsgi.wsgi.WSGIApp",
    "ASGIApp": "dockerflow_wsgi.asgi.ASGIApp",
    "VersionCallback": "dockerflow_wsgi.config.VersionCallback",
    "DockerflowMiddleware": "dockerflow_wsgi.DockerflowMiddleware",
}
# _generated/ holds files that pages include (make bench writes the results table there):
# they are not pages of their own.
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"
# Every reference must resolve (make docs also passes -n), except to these.
nitpicky = True
nitpick_ignore_regex = [
    # Frameworks' and clients' classes: their inventories cannot be fetched at build time, so
    # they stay plain text. Bare names are those the modules import only for type checking.
    ("py:.*", r"(flask|sanic|django|sqlalchemy|alembic|httpx|requests|urllib3)\..*"),
    ("py:class", r"Flask|Sanic|HttpRequest|HttpResponse|Retry"),
    # A TypeVar: "the decorated function's own type", which has no page to link to.
    ("py:class", r"dockerflow_wsgi\.checks\.registry\._F"),
]
