"""Sphinx configuration of the basisdb API reference (``make docs``).

Run as ``sphinx -c docs/api docs docs/_build/html`` (``make docs``): the configuration and the
reference pages live in ``docs/api/``, the source folder is ``docs/`` so that the Markdown guides
(``docs/*.md``, parsed by MyST) are pages of the same site, unchanged, with their links and
pictures.  The reference is generated from the docstrings (autodoc; napoleon reads the
Google-style ``Args:`` and ``Fields:`` blocks, the rest is reStructuredText prose).  Built with
``-W --keep-going``: every warning fails the build.  Nothing here reads the network
(no intersphinx), the clock (no dates in the pages) or the build machine's paths, so two builds
of the same tree give the same pages.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the checkout's basisdb, also without an editable install

# the adapters and the dataset module are imported by autodoc: keep them on one CPU thread
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import basisdb  # noqa: E402

project = "basisdb"
author = "the basisdb developers"
copyright = "the basisdb developers"  # no year: the pages do not depend on the build date
release = basisdb.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_click",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "api/index"
exclude_patterns = ["_build", "api/_templates"]
templates_path = ["_templates"]

# autodoc: members in source order, signatures with the default values as written in the source
# (never a repr such as <object at 0x...>, which would change from build to build)
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True, "show-inheritance": True}
autosummary_generate = False  # summary tables only; the entries are written by hand in the pages

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# the dataclasses list their fields under "Fields:" (name: shape, dtype, meaning), rendered like "Args:"
napoleon_custom_sections = [("Fields", "params_style")]

# MyST: the guides use GitHub-style anchors (BENCHMARKS.md#scaling-issue-4) and $...$ math
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

html_theme = "alabaster"
html_title = f"basisdb {release}"
html_static_path: list[str] = []
html_additional_pages = {"index": "redirect.html"}  # _build/html/index.html -> api/index.html
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
