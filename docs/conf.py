"""Sphinx configuration for the dockerflow-wsgi documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "dockerflow-wsgi"
author = "dockerflow-wsgi contributors"
copyright = "2026, dockerflow-wsgi contributors"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping = {}
# _generated/ holds files that pages include (make bench writes the results table there):
# they are not pages of their own.
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"
nitpicky = False
