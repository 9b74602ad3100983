"""A worker leaves its RedisCoordinator group at once, whatever the coordinator was doing."""

from __future__ import annotations

import asyncio

import pytest

from legnext_async._budget import Pace
from legnext_async._coordination import Member, account_of
from legnext_async._polling import DurationModel
from legnext_async.redis import RedisCoordinator

from .conftest import API_KEY

#: Far more than leaving takes: reaching it means leaving hangs.
LEAVE_BOUND = 10.0


@pytest.mark.parametrize("turns", range(6))
async def test_leaving_just_as_the_coordinator_wakes_ends_it(redis_url: str, turns: int) -> None:
    """Left ``turns`` loop turns after a new submission woke the idle coordinator, the
    worker ends (a cancellation that meets a wake-up is not lost)."""
    coordinator = RedisCoordinator(redis_url)
    worker = coordinator.join(
        Member(
            account=account_of(API_KEY),
            max_active_jobs=None,
            durations=DurationModel(),
            pace=Pace(),
        )
    )
    slots = worker.slots
    # A first submission: the coordinator registers, grants it, and goes back to waiting.
    first = slots.enqueue()
    await slots.wait_granted(first)
    slots.release(first)
    assert coordinator._worker is not None
    running = list(coordinator._worker._tasks)
    slots.enqueue()  # wakes it
    for _ in range(turns):
        await asyncio.sleep(0)  # one turn of the loop: the interleaving under test
    leaving = asyncio.ensure_future(worker.leave())
    done, _ = await asyncio.wait({leaving}, timeout=LEAVE_BOUND)
    for task in running:  # only if leaving hung: end what it could not
        task.cancel()
    await asyncio.wait({leaving, *running})
    assert done == {leaving}, "the worker did not leave"
