"""TaskHandle: awaiting, failures, refresh, updates, caching, and one poller per job."""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from legnext_async import (
    ClientClosedError,
    LegnextClient,
    TaskFailedError,
    TaskStatus,
    TaskTimeoutError,
)
from legnext_async.emulator import Emulator

from .conftest import API_KEY, FAST_RETRY, MASK, fast_poll
from .fakes import FakeClock
from .hostile import job, recording

if TYPE_CHECKING:
    from legnext_async import ImageResult, TaskHandle


def session_of(client: LegnextClient) -> object:
    """The aiohttp session the client holds right now (None before first use and after close)."""
    return client._session


async def settle() -> None:
    """Let the loop run the callbacks of tasks that just ended."""
    for _ in range(5):
        await asyncio.sleep(0)


def reads(emulator: Emulator, job_id: str) -> int:
    """How many status reads of ``job_id`` the emulator answered."""
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path.endswith(job_id))


async def inpaint(client: LegnextClient, emulator: Emulator) -> TaskHandle[ImageResult]:
    """Submit an inpaint of a fresh completed parent."""
    return await client.inpaint(emulator.seed_job("diffusion"), 0, mask=MASK, remix_prompt="a tree")


async def test_failed_job_raises_task_failed_error(
    client: LegnextClient, emulator: Emulator
) -> None:
    """A job that ends ``failed`` raises TaskFailedError with its id, code and message."""
    emulator.fail_next(code=10042, message="the moderation model refused the prompt")
    handle = await inpaint(client, emulator)
    with pytest.raises(TaskFailedError) as caught:
        await handle
    error = caught.value
    assert error.job_id == handle.job_id
    assert error.code == 10042
    assert error.message == "the moderation model refused the prompt"
    assert handle.job_id in str(error)
    assert "10042" in str(error)
    assert error.task.status is TaskStatus.FAILED


async def test_failure_is_cached(client: LegnextClient, emulator: Emulator) -> None:
    """Awaiting a failed handle again raises the same error without a request."""
    emulator.fail_next()
    handle = await inpaint(client, emulator)
    with pytest.raises(TaskFailedError) as first:
        await handle
    before = len(emulator.requests)
    with pytest.raises(TaskFailedError) as second:
        await handle
    assert second.value is first.value
    assert len(emulator.requests) == before


async def test_finished_handle_returns_cached_result(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Awaiting a completed handle again returns the same result and sends nothing."""
    handle = await inpaint(client, emulator)
    result = await handle
    before = len(emulator.requests)
    assert await handle is result
    assert await handle.wait() is result
    assert len(emulator.requests) == before
    assert handle.done


async def test_refresh_reads_once(client: LegnextClient, emulator: Emulator) -> None:
    """``refresh()`` makes exactly one status read and returns the Task."""
    handle = await inpaint(client, emulator)
    task = await handle.refresh()
    assert task.job_id == handle.job_id
    assert task.status in (TaskStatus.PENDING, TaskStatus.PROCESSING)
    assert reads(emulator, handle.job_id) == 1
    assert handle.last_task == task


async def test_updates_yield_each_change_then_stop(
    client: LegnextClient, emulator: Emulator
) -> None:
    """``updates()`` yields a snapshot per status change, ending with ``completed``."""
    handle = await inpaint(client, emulator)
    statuses = [snapshot.status async for snapshot in handle.updates()]
    assert statuses[0] is TaskStatus.PENDING
    assert statuses[-1] is TaskStatus.COMPLETED
    assert TaskStatus.PROCESSING in statuses
    assert len(statuses) == len(set(statuses))  # no repeats without a change
    assert (await handle).job_id == handle.job_id


async def test_updates_end_after_failure(client: LegnextClient, emulator: Emulator) -> None:
    """``updates()`` ends with the ``failed`` snapshot instead of raising."""
    emulator.fail_next()
    handle = await inpaint(client, emulator)
    statuses = [snapshot.status async for snapshot in handle.updates()]
    assert statuses[-1] is TaskStatus.FAILED


async def test_many_awaiters_share_one_poller() -> None:
    """Fifty coroutines awaiting one handle cause no more reads than one would: one per
    answer the job's life takes."""
    answers = ["pending", "processing", "processing", "completed"]

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(job("job-1", answers.pop(0)))

    async with (
        recording(answer) as server,
        LegnextClient(api_key=API_KEY, base_url=server.base_url) as client,
    ):
        clock = FakeClock()
        client._engine.use_clock(clock)
        handle = client.task("job-1")
        waiters = [asyncio.ensure_future(handle.wait()) for _ in range(50)]
        await clock.settle()
        assert len(client._engine.polling) == 1
        results = await clock.run(asyncio.gather(*waiters))
    assert all(result is results[0] for result in results)
    assert len(server.requests) == 4


async def test_cancelling_one_awaiter_leaves_the_others(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Cancelling one await does not disturb another await of the same handle."""
    handle = await inpaint(client, emulator)
    doomed = asyncio.create_task(handle.wait())
    survivor = asyncio.create_task(handle.wait())
    await asyncio.sleep(0)  # both join the handle's watch
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    result = await survivor
    assert len(result.image_urls) == 4


async def test_last_awaiter_cancelled_stops_the_poller() -> None:
    """When the only awaiter is cancelled, no further status reads happen; the job keeps its
    slot, since it still runs."""
    async with (
        Emulator(api_key=API_KEY, seed=8) as emulator,
        LegnextClient(api_key=API_KEY, base_url=emulator.base_url) as client,
    ):
        clock = FakeClock(also=emulator.advance)  # the jobs age as the client's time passes
        client._engine.use_clock(clock)
        handle = await inpaint(client, emulator)
        waiter = asyncio.ensure_future(handle.wait())
        await clock.advance(72.0)  # the first read: 0.8 × an inpaint's shortest 90 s
        assert reads(emulator, handle.job_id) == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await clock.advance(3600.0)  # longer than the whole job
        assert reads(emulator, handle.job_id) == 1
        assert not client._engine.polling
        assert client._slots.active == 1
        # The job ran on at the service: awaiting again resumes and finishes.
        assert len((await clock.run(handle)).image_urls) == 4
        assert client._slots.active == 0


async def test_closing_the_client_stops_pollers_and_wakes_awaiters(emulator: Emulator) -> None:
    """``aclose()`` stops every poller; their awaiters get ClientClosedError."""
    client = LegnextClient(api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll())
    handles = [await inpaint(client, emulator) for _ in range(3)]
    waiters = [asyncio.create_task(h.wait()) for h in handles]
    await asyncio.sleep(0)  # each joins its handle's watch
    await client.aclose()
    for waiter in waiters:
        with pytest.raises(ClientClosedError):
            await waiter
    assert not client._engine.polling
    assert client.closed


async def test_use_after_close_is_a_clear_error(emulator: Emulator) -> None:
    """Submitting, reading or awaiting after ``aclose()`` raises ClientClosedError."""
    client = LegnextClient(api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll())
    handle = await inpaint(client, emulator)
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(ClientClosedError):
        await client.get_task(handle.job_id)
    with pytest.raises(ClientClosedError):
        await inpaint(client, emulator)
    with pytest.raises(ClientClosedError):
        await handle
    with pytest.raises(ClientClosedError):
        client.task(handle.job_id)


async def test_deadline_raises_timeout_with_job_id(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Past the policy's deadline, the wait raises TaskTimeoutError carrying the job id."""
    handle = await inpaint(client, emulator)
    with pytest.raises(TaskTimeoutError) as caught:
        await handle.wait(poll=fast_poll(timeout=5.0))
    assert caught.value.job_id == handle.job_id
    assert isinstance(caught.value, TimeoutError)
    assert handle.job_id in str(caught.value)
    # The job is not lost: resuming from its id gets the result.
    assert len((await client.task(handle.job_id)).image_urls) == 4  # type: ignore[attr-defined]


async def test_asyncio_timeout_around_an_await(client: LegnextClient, emulator: Emulator) -> None:
    """``asyncio.timeout()`` cancels the wait cleanly and leaves no poller running."""
    handle = await inpaint(client, emulator)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await handle
    await settle()
    assert not client._engine.polling


async def test_task_handle_sends_nothing_until_awaited(
    client: LegnextClient, emulator: Emulator
) -> None:
    """``client.task(job_id)`` makes no request until awaited, then gives the result."""
    parent = emulator.seed_job("diffusion")
    handle = client.task(parent)
    assert handle.job_id == parent
    assert emulator.requests == []
    result = await handle
    assert result.task.status is TaskStatus.COMPLETED
    assert len(emulator.requests) == 1


async def test_get_task_reads_a_typed_task(client: LegnextClient, emulator: Emulator) -> None:
    """``get_task`` returns a frozen Task for the id."""
    parent = emulator.seed_job("diffusion")
    task = await client.get_task(parent)
    assert task.job_id == parent
    assert task.status is TaskStatus.COMPLETED
    assert task.output.available_actions.reroll


async def test_borrowed_session_is_not_closed(emulator: Emulator) -> None:
    """A session passed in stays open after the client closes."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, session=session, retry=FAST_RETRY
        ) as client:
            await client.get_task(emulator.seed_job("diffusion"))
        assert not session.closed


async def test_client_made_outside_a_loop_opens_its_session_inside() -> None:
    """A client constructed before any loop runs opens its session when first used."""
    client = LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9/api")
    assert session_of(client) is None
    async with client:
        assert session_of(client) is not None
    assert session_of(client) is None


async def test_nothing_left_behind(emulator: Emulator) -> None:
    """After a full run and close, no poller task remains and collection warns of nothing."""
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=FAST_RETRY
    ) as client:
        handles = [await inpaint(client, emulator) for _ in range(3)]
        await asyncio.gather(*handles)
    del client, handles
    gc.collect()  # ResourceWarnings would be errors here (pytest -W error)
    leftovers = [t for t in asyncio.all_tasks() if t.get_name().startswith("legnext-poll")]
    assert leftovers == []


async def test_awaiting_again_right_after_a_timeout_resumes(
    client: LegnextClient, emulator: Emulator
) -> None:
    """An await straight after a cancelled one (no loop step between) starts a fresh poller."""
    handle = await inpaint(client, emulator)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await handle
    result = await handle  # the old poller is still being cancelled at this point
    assert len(result.image_urls) == 4
    await settle()
    assert not client._engine.polling


async def test_unchanged_reads_keep_the_snapshot(client: LegnextClient, emulator: Emulator) -> None:
    """A read that brings nothing new keeps the snapshot already held; a finish is learned once."""
    handle = client.task(emulator.seed_job("diffusion"))
    first = await handle.refresh()
    assert client._durations.samples(first.task_type) == 1
    second = await handle.refresh()
    assert second is first
    assert client._durations.samples(first.task_type) == 1
    # The very same bytes are not even decoded: the read hands back the snapshot held.
    again, _ = await client._read_task_once(handle.job_id, known=first)
    assert again is first
    fresh, _ = await client._read_task_once(handle.job_id)
    assert fresh is not first
    assert fresh == first


async def test_updates_raise_what_ends_the_wait(client: LegnextClient, emulator: Emulator) -> None:
    """``updates()`` past the policy's deadline raises TaskTimeoutError after the snapshots."""
    handle = await inpaint(client, emulator)
    seen: list[TaskStatus] = []

    async def follow() -> None:
        async for snapshot in handle.updates(poll=fast_poll(timeout=5.0)):
            seen.append(snapshot.status)

    with pytest.raises(TaskTimeoutError):
        await follow()
    assert seen[0] is TaskStatus.PENDING  # the submission's snapshot
    assert TaskStatus.COMPLETED not in seen  # an inpaint outlasts 5 s
    assert not client._engine.polling


async def test_an_await_cancelled_before_its_first_read_sends_nothing(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Cancelled while its watch is still being set up, an await costs no request."""
    clock = FakeClock()
    client._engine.use_clock(clock)
    handle = client.task(emulator.seed_job("diffusion"))
    waiter = asyncio.create_task(handle.wait())
    await asyncio.sleep(0)  # the waiter joined; its watch is queued for set-up
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await clock.advance(3600.0)
    assert emulator.requests == []
    assert not client._engine.polling
