"""Programs that use one LegnextClient from one event loop after another.

``test_event_loops.py`` runs each in a subprocess with ``-W error``, where any warning or
leak (an unclosed session, connector or socket, an error of a closed loop) shows on
stderr. Usage: ``python -W error -m tests.loop_programs PROGRAM TIME_SCALE``; the client
takes its base URL and key from the environment. Each program prints its findings as JSON.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from typing import TYPE_CHECKING

from legnext_async import ImageResult, LegnextClient, PollPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from legnext_async import TaskHandle


def two_runs(client: LegnextClient) -> object:
    """Two ``asyncio.run()`` calls each run a job; the client is never closed."""

    async def run_one() -> str:
        result = await (await client.diffusion("a lighthouse"))
        return result.job_id

    return [asyncio.run(run_one()), asyncio.run(run_one())]


def handle_across_runs(client: LegnextClient) -> object:
    """A job submitted in one loop is awaited in the next; a third loop closes the client."""
    handle = asyncio.run(client.diffusion("a lighthouse"))
    result = asyncio.run(handle.wait())
    asyncio.run(client.aclose())
    return [handle.job_id, result.job_id]


def limit_across_runs(client: LegnextClient) -> object:
    """The first loop learns the account's job limit from a 429 and ends while the jobs it
    made still hold their slots (polled, unawaited); the next loops wait for them and
    submit as many jobs again, within the limit learned."""

    async def submit(count: int) -> list[TaskHandle[ImageResult]]:
        return list(await asyncio.gather(*(client.diffusion(f"take {n}") for n in range(count))))

    async def wait(handles: list[TaskHandle[ImageResult]]) -> list[str]:
        return [result.job_id for result in await asyncio.gather(*handles)]

    first = asyncio.run(submit(7))
    done = asyncio.run(wait(first))
    again = asyncio.run(wait(asyncio.run(submit(7))))
    return [len(set(done)), len(set(again))]


def updates_cut_across_runs(client: LegnextClient) -> object:
    """``updates()`` is cancelled mid-wait in one loop; in the next it follows the job to its
    end, and the job's slot (the only one) then lets another job through."""
    limited = LegnextClient(max_active_jobs=1, poll=client.poll)

    async def first() -> TaskHandle[ImageResult]:
        handle = await limited.diffusion("a lighthouse")
        seen = asyncio.Event()

        async def follow() -> None:
            async for _ in handle.updates():
                seen.set()

        following = asyncio.create_task(follow())
        await seen.wait()
        for _ in range(3):  # let it go on to wait for the next change
            await asyncio.sleep(0)
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        return handle

    async def second(handle: TaskHandle[ImageResult]) -> list[str]:
        async for _ in handle.updates():  # waits for changes again, in this loop
            pass
        result = await handle
        other = await asyncio.wait_for(limited.diffusion("a tree"), 30)
        await limited.aclose()
        return [result.task.status.value, other.job_id and "created"]

    return asyncio.run(second(asyncio.run(first())))


PROGRAMS: dict[str, Callable[[LegnextClient], object]] = {
    "updates_cut_across_runs": updates_cut_across_runs,
    "two_runs": two_runs,
    "handle_across_runs": handle_across_runs,
    "limit_across_runs": limit_across_runs,
}


def main(name: str, time_scale: float) -> None:
    """Run one program with a fresh client, then collect everything it left behind."""
    findings = PROGRAMS[name](LegnextClient(poll=PollPolicy(time_scale=time_scale)))
    gc.collect()  # now, while warnings still reach stderr, not at interpreter exit
    print(json.dumps(findings))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
