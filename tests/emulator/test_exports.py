"""The public namespace of ``legnext_async.emulator``."""

from __future__ import annotations

from legnext_async import emulator


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted and names exactly the public attributes."""
    public = {name for name in vars(emulator) if not name.startswith("_")}
    assert emulator.__all__ == sorted(emulator.__all__)
    assert set(emulator.__all__) == public


def test_app_exists_without_starting() -> None:
    """``Emulator(...).app`` and ``make_app()`` build an application without a loop."""
    assert emulator.Emulator().app.router is not None
    assert emulator.make_app(api_key="k").router is not None


def test_emulator_does_not_import_the_client() -> None:
    """The emulator imports nothing from the client's private modules."""
    import ast
    from pathlib import Path

    for path in Path(emulator.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in (None, "_version"), (path.name, node.module)
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("legnext_async._"), path.name
