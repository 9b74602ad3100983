"""Sphinx configuration for the legnext_async documentation.

Pages are MyST Markdown; the API reference comes from the docstrings (Google style) through
autodoc and napoleon. The build runs with ``-W -n`` and without network, so there is no
intersphinx: references to other projects' types are listed in ``nitpick_ignore_regex``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sphinx.pycode import ModuleAnalyzer
from sphinx.util.inspect import safe_getattr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from legnext_async import __version__  # noqa: E402  (needs the path above)

if TYPE_CHECKING:
    from sphinx.application import Sphinx

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
    ("py:class", r"aiohttp\.((client|web_app)\.)?(ClientSession|Application)"),
    ("py:class", r"(os\.)?PathLike|(pathlib\.)?Path"),
    ("py:class", r"collections\.abc\.(Collection|Iterable|Mapping|Sequence)"),
    ("py:class", r"datetime(\.datetime)?"),
    ("py:class", r"random\.Random"),
    ("py:class", r"(legnext_async\.(_\w+|sync)\.)?R(_co)?"),
    # The private protocol a result's client is typed as, so results need not import the
    # client; the docstrings say a LegnextClient.
    ("py:class", r"(legnext_async\._results\.)?FollowUpClient"),
]

# --- HTML -----------------------------------------------------------------------------

html_theme = "furo"
html_title = f"legnext_async {release}"
html_static_path = ["_static"]

# --- where public classes are defined ---------------------------------------------------
# Public classes claim the package as their ``__module__`` (see ``legnext_async/__init__``).
# Autodoc reads a class's source (member order) and viewcode links it through
# ``__module__``, so both are pointed at the private module that defines it. Autodoc looks
# up ``#:`` comments on class attributes through the plain ``__module__``, so public classes
# document their attributes in an ``Attributes:`` section of the docstring instead.


#: The packages whose public classes claim the package as their ``__module__``.
PUBLIC_PACKAGES = ("legnext_async", "legnext_async.emulator", "legnext_async.redis")


@functools.cache
def _defining_module(package: str, qualname: str) -> str | None:
    """The private module of ``package`` whose source defines ``qualname``, if any."""
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        name = f"{package}.{module.name}"
        if module.name.startswith("_") and qualname in ModuleAnalyzer.for_module(name).find_tags():
            return name
    return None


def _class_attribute(cls: type, name: str, *default: Any) -> Any:
    """Autodoc's getattr for classes: ``__module__`` is where the class is defined."""
    value = safe_getattr(cls, name, *default)
    if name == "__module__" and value in PUBLIC_PACKAGES:
        return _defining_module(value, cls.__qualname__) or value
    return value


def _viewcode_module(app: Sphinx, modname: str, fullname: str) -> str | None:
    if modname in PUBLIC_PACKAGES:
        return _defining_module(modname, fullname)
    return None


def setup(app: Sphinx) -> None:
    app.add_autodoc_attrgetter(type, _class_attribute)
    app.connect("viewcode-follow-imported", _viewcode_module)
