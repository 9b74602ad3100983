"""The client-wide poll scheduler: a few read tasks for any number of waiting handles.

Time is a :class:`FakeClock`: reads happen when the test moves it, so every count is exact.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from legnext_async import ClientClosedError, LegnextClient, PollPolicy
from legnext_async._scheduler import STALE_MIN

from .conftest import API_KEY, job_server
from .fakes import READ_TASK_PREFIX, FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

HANDLES = 400
MAX_REQUESTS = 4
#: Every read of a never-ending job comes 1 s after the last; the deadline never comes.
POLICY = PollPolicy(min_interval=1.0, max_interval=1.0, jitter=0.0, timeout=100_000.0)


def poll_tasks() -> int:
    """Read tasks of poll schedulers, running now."""
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith(READ_TASK_PREFIX))


@pytest.fixture
async def endless() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A server whose jobs all run forever; it counts reads per job, reads in flight and the
    client's read tasks. Reads wait on ``stats["hold"]`` when it is set (``stats["full"]``
    is set once :data:`MAX_REQUESTS` of them wait)."""
    stats: dict[str, Any] = {
        "reads": {},
        "in_flight": 0,
        "peak": 0,
        "tasks": 0,
        "hold": None,
        "full": asyncio.Event(),
    }

    async def job(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        stats["reads"][job_id] = stats["reads"].get(job_id, 0) + 1
        stats["in_flight"] += 1
        stats["peak"] = max(stats["peak"], stats["in_flight"])
        stats["tasks"] = max(stats["tasks"], poll_tasks())
        try:
            hold: asyncio.Event | None = stats["hold"]
            if hold is None:
                await asyncio.sleep(0.002)  # a service that takes a moment to answer
            else:
                if stats["in_flight"] == MAX_REQUESTS:
                    stats["full"].set()
                await hold.wait()
        finally:
            stats["in_flight"] -= 1
        body = {
            "job_id": job_id,
            "task_type": "diffusion",
            "status": "processing",
            "meta": {"started_at": "2026-01-01T00:00:00Z"},
        }
        return web.json_response(body)

    async with job_server(job) as base_url:
        yield base_url, stats
        if stats["hold"] is not None:
            stats["hold"].set()  # held answers end, so the server can stop


async def test_many_waiting_handles_share_a_few_read_tasks(
    endless: tuple[str, dict[str, Any]],
) -> None:
    """400 awaited handles are read in turn by at most max_concurrent_requests tasks."""
    base_url, stats = endless
    async with LegnextClient(
        api_key=API_KEY, base_url=base_url, poll=POLICY, max_concurrent_requests=MAX_REQUESTS
    ) as client:
        clock = FakeClock()
        client._engine.use_clock(clock)
        handles = [client.task(f"job{i}") for i in range(HANDLES)]
        waiting = asyncio.gather(*handles)
        await clock.advance(0)  # every first read is due at once
        assert len(stats["reads"]) == HANDLES
        assert set(stats["reads"].values()) == {1}
        await clock.advance(1.0)  # min_interval = max_interval: each is read once more
        assert set(stats["reads"].values()) == {2}
        assert len(client._engine.polling) == HANDLES
        assert 1 <= stats["tasks"] <= MAX_REQUESTS
        assert stats["peak"] <= MAX_REQUESTS
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Every watch ended with its last waiter; their heap entries were swept.
        assert len(client._engine.polling) == 0
        assert len(client._engine.polling._due) <= STALE_MIN
        await clock.advance(3600.0)
        assert poll_tasks() == 0
        assert set(stats["reads"].values()) == {2}


async def test_closing_wakes_every_waiter(endless: tuple[str, dict[str, Any]]) -> None:
    """``aclose()`` with hundreds of handles waiting, reading or queued ends every wait."""
    base_url, stats = endless
    stats["hold"] = asyncio.Event()  # reads in flight stay in flight until closing
    client = LegnextClient(
        api_key=API_KEY, base_url=base_url, poll=POLICY, max_concurrent_requests=MAX_REQUESTS
    )
    clock = FakeClock()
    client._engine.use_clock(clock)
    waiters = [asyncio.ensure_future(client.task(f"job{i}").wait()) for i in range(HANDLES)]
    advancing = asyncio.ensure_future(clock.advance(0))
    await stats["full"].wait()
    await client.aclose()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(outcome, ClientClosedError) for outcome in outcomes)
    await advancing  # the reads it waits for were cancelled
    assert len(client._engine.polling) == 0
    assert poll_tasks() == 0
