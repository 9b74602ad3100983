"""The client-wide poll scheduler: a few read tasks for any number of waiting handles."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from legnext_async import ClientClosedError, LegnextClient, PollPolicy
from legnext_async._scheduler import STALE_MIN

from .conftest import API_KEY, job_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

HANDLES = 400
MAX_REQUESTS = 4
#: Every read of a never-ending job comes about 2 real ms apart (min_interval 1 s x 0.002);
#: the deadline (200 real seconds) never falls within a test, however busy the machine.
POLICY = PollPolicy(
    time_scale=0.002, min_interval=1.0, max_interval=1.0, jitter=0.0, timeout=100_000.0
)


@pytest.fixture
async def endless() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A server whose jobs all run forever; it counts reads per job and reads in flight."""
    stats: dict[str, Any] = {"reads": {}, "in_flight": 0, "peak": 0}

    async def job(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        stats["reads"][job_id] = stats["reads"].get(job_id, 0) + 1
        stats["in_flight"] += 1
        stats["peak"] = max(stats["peak"], stats["in_flight"])
        await asyncio.sleep(0.002)
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


def poll_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("legnext-poll"))


async def until(condition: Callable[[], bool]) -> None:
    """Wait (10 s at most) for ``condition``, checking every 5 ms."""
    async with asyncio.timeout(10.0):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_many_waiting_handles_share_a_few_read_tasks(
    endless: tuple[str, dict[str, Any]],
) -> None:
    """400 awaited handles are read in turn by at most max_concurrent_requests tasks."""
    base_url, stats = endless
    async with LegnextClient(
        api_key=API_KEY, base_url=base_url, poll=POLICY, max_concurrent_requests=MAX_REQUESTS
    ) as client:
        handles = [client.task(f"job{i}") for i in range(HANDLES)]
        waiting = asyncio.gather(*handles)
        most = 0

        def every_job_read_twice() -> bool:
            nonlocal most
            most = max(most, poll_tasks())
            return len(stats["reads"]) == HANDLES and min(stats["reads"].values()) >= 2

        await until(every_job_read_twice)
        assert len(client._polling) == HANDLES
        assert 1 <= most <= MAX_REQUESTS
        assert stats["peak"] <= MAX_REQUESTS
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Every run ended with its last waiter; their heap entries were swept.
        assert len(client._polling) == 0
        assert len(client._polling._due) <= STALE_MIN
        await until(lambda: poll_tasks() == 0)
        reads = sum(stats["reads"].values())
        await asyncio.sleep(0.05)  # many poll gaps
        assert sum(stats["reads"].values()) == reads


async def test_closing_wakes_every_waiter(endless: tuple[str, dict[str, Any]]) -> None:
    """``aclose()`` with hundreds of handles waiting, reading or queued ends every wait."""
    base_url, stats = endless
    client = LegnextClient(
        api_key=API_KEY, base_url=base_url, poll=POLICY, max_concurrent_requests=MAX_REQUESTS
    )
    waiters = [asyncio.ensure_future(client.task(f"job{i}")) for i in range(HANDLES)]
    await until(lambda: len(stats["reads"]) >= MAX_REQUESTS)
    await client.aclose()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(outcome, ClientClosedError) for outcome in outcomes)
    assert len(client._polling) == 0
    assert poll_tasks() == 0
