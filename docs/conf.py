"""Sphinx configuration of the trace_forecast documentation site.

Build (warnings are errors): ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(the test suite runs the same build, ``tests/test_docs_site.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import trace_forecast  # noqa: E402

project = "trace_forecast"
author = "trace_forecast developers"
copyright = "2026, trace_forecast developers"  # noqa: A001
release = version = trace_forecast.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # numpydoc-style docstrings
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# benchmarks*_notes.md are fragments: the report appends each to its profile's page.
exclude_patterns = ["_build", "pretraining/*.csv", "README.md", "benchmarks_notes.md", "benchmarks_standard_notes.md",
                    "benchmarks_backbone_notes.md", "benchmarks_probabilistic_notes.md"]

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc "Parameters" sections say it, once
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autosummary_generate = False
# Links from the Markdown pages to files of the repository (scripts, results) are not pages
# of the site; they are written as code spans instead (checked by the build).
suppress_warnings: list[str] = []

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"trace_forecast {release}"
html_theme_options = {"description": "TRACE fine-tuning of time-series foundation models for sktime and Darts"}
