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


def test_bad_options_are_rejected() -> None:
    """Nonsensical options raise ValueError at construction."""
    import pytest

    for options in (
        {"time_scale": 0},
        {"concurrency_limit": 0},
        {"over_limit": "drop"},
        {"error_shape": "xml"},
        {"callback_duplicates": 0},
        {"failure_rate": 2.0},
        {"durations": {"diffusion": (10.0, 5.0)}},
        {"api_key": ""},
        {"file_size": -1},
    ):
        with pytest.raises(ValueError):  # noqa: PT011
            emulator.Emulator(**options)


async def test_app_runs_under_a_foreign_runner() -> None:
    """``emu.app`` served by the caller's own AppRunner works, with URLs from the Host."""
    import aiohttp
    from aiohttp import web

    emu = emulator.Emulator(api_key="k", time_scale=0.001)
    runner = web.AppRunner(emu.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(headers={"x-api-key": "k"}) as session:
            async with session.post(f"{base}/api/v1/diffusion", json={"text": "x"}) as response:
                job_id = (await response.json())["job_id"]
            emu.advance(3600)
            async with session.get(f"{base}/api/v1/job/{job_id}") as response:
                output = (await response.json())["output"]
        assert output["image_url"].startswith(f"{base}/files/")
    finally:
        await runner.cleanup()


def test_seeded_jobs_are_marked() -> None:
    """Jobs made by seed_job say so in ``emu.jobs``."""
    emu = emulator.Emulator(api_key="k")
    job_id = emu.seed_job("upscale")
    (info,) = emu.jobs
    assert (info.job_id, info.seeded, info.status) == (job_id, True, "completed")
