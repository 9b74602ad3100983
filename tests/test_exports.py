"""The public namespace is flat, sorted, and exactly what ``__all__`` says."""

from __future__ import annotations

import types

import legnext_async


def test_all_is_sorted() -> None:
    """``__all__`` is kept in sorted order, so a diff shows what was added."""
    assert legnext_async.__all__ == sorted(legnext_async.__all__)


def test_all_matches_public_names() -> None:
    """Every public name the package defines is in ``__all__``, and nothing else is."""
    public = {
        name
        for name, value in vars(legnext_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public | {"__version__"} == set(legnext_async.__all__)


def test_exported_objects_live_in_private_modules_but_claim_the_package() -> None:
    """Each exported class comes from an implementation module under the package."""
    for name in legnext_async.__all__:
        value = getattr(legnext_async, name)
        module = getattr(value, "__module__", "legnext_async")
        assert module.startswith("legnext_async"), name


def test_version_is_a_string() -> None:
    """``__version__`` is the installed version string."""
    assert isinstance(legnext_async.__version__, str)
    assert legnext_async.__version__.count(".") >= 2
