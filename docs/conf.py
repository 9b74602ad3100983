"""Sphinx configuration for the legnext_async documentation.

Pages are MyST Markdown; the API reference comes from the docstrings (Google style) through
autodoc and napoleon. The build runs with ``-W -n`` and without network, so there is no
intersphinx: references to other projects' types are listed in ``nitpick_ignore_regex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from legnext_async import __version__  # noqa: E402  (needs the path above)

project = "legnext_async"
author = "legnext_async developers"
copyright = "legnext_async developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_scripts", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# --- MyST -----------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- autodoc and napoleon -------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = False
autodoc_default_options: dict[str, bool | str] = {}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False

# --- cross-references -----------------------------------------------------------------

nitpicky = True
# No intersphinx (the build has no network), so types from the standard library and
# aiohttp that appear in signatures are not linked; nor are the type variables of generics.
nitpick_ignore_regex: list[tuple[str, str]] = [
    ("py:class", r"aiohttp\.(client|web_app)\.(ClientSession|Application)"),
    ("py:class", r"collections\.abc\.(Collection|Iterable|Mapping|Sequence)"),
    ("py:class", r"datetime(\.datetime)?"),
    ("py:class", r"random\.Random"),
    ("py:class", r"(legnext_async\._\w+\.)?R(_co)?"),
]

# --- HTML -----------------------------------------------------------------------------

html_theme = "furo"
html_title = f"legnext_async {release}"
html_static_path = ["_static"]
