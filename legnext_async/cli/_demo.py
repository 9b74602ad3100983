"""``legnext demo``: a diffusion, then an inpaint, against the built-in emulator."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from legnext_async._client import LegnextClient
from legnext_async._models import Mask, Polygon
from legnext_async._polling import PollPolicy

if TYPE_CHECKING:
    from legnext_async._handle import TaskHandle
    from legnext_async._results import ImageResult

__all__ = ["DEMO_TIME_SCALE", "demo"]

#: The demo runs the emulator 50× faster than the real service: an inpaint takes ~2 s.
DEMO_TIME_SCALE = 0.02


async def _follow(handle: TaskHandle[ImageResult], label: str, out: TextIO) -> ImageResult:
    """Await ``handle``, redrawing one progress line as its status changes."""
    start = time.monotonic()
    interactive = out.isatty()
    status = ""

    def draw(final: bool = False) -> None:
        line = f"{label} {handle.job_id}: {status:<10} {time.monotonic() - start:5.1f} s"
        if interactive:
            out.write("\r" + line + ("\n" if final else ""))
        else:
            out.write(line + "\n")
        out.flush()

    async for snapshot in handle.updates():
        status = snapshot.status.value
        draw(final=snapshot.is_finished)
    return await handle


async def demo(out: TextIO = sys.stdout) -> int:
    """A diffusion, then an inpaint of a polygon of its first image, against the emulator."""
    from legnext_async.emulator import Emulator  # noqa: PLC0415 (only the demo needs the server side)

    async with (
        Emulator(time_scale=DEMO_TIME_SCALE, seed=7) as emulator,
        LegnextClient(
            api_key="demo-key",
            base_url=emulator.base_url,
            poll=PollPolicy(time_scale=DEMO_TIME_SCALE),
        ) as client,
    ):
        out.write(f"Legnext emulator at {emulator.base_url} (jobs run 50x faster)\n")
        grid = await _follow(
            await client.diffusion("a lighthouse on a cliff at dusk --v 7 --ar 1:1"),
            "diffusion",
            out,
        )
        mask = Mask(
            areas=[
                Polygon(width=1024, height=1024, points=[288, 288, 408, 288, 408, 408, 288, 408])
            ]
        )
        result = await _follow(
            await client.inpaint(grid.job_id, 0, mask=mask, remix_prompt="a red hot-air balloon"),
            "inpaint",
            out,
        )
        out.write("\nimage URLs:\n")
        for url in result.image_urls:
            out.write(f"  {url}\n")
        actions = result.available_actions
        out.write("available actions:\n")
        for name in ("upscale", "variation", "inpaint", "outpaint", "pan", "remix", "edit"):
            out.write(f"  {name:<10} images {list(actions.images_for(name))}\n")
        out.write(f"  {'reroll':<10} {actions.reroll}\n")
    return 0
