"""Batches: job slots (fixed and learned from 429), the request budget, and as_completed."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from legnext_async import (
    BatchProgress,
    ImageResult,
    LegnextClient,
    LegnextError,
    TaskFailedError,
    ValidationError,
)
from legnext_async._budget import RequestBudget
from legnext_async.emulator import Emulator, Fault

from .conftest import API_KEY, FAST_RETRY, MASK, SCALE, fast_poll, job_server
from .fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from legnext_async import TaskHandle


def statuses(emulator: Emulator, method: str = "POST") -> list[int | None]:
    """The HTTP statuses the emulator answered to requests of ``method``."""
    return [r.status for r in emulator.requests if r.method == method]


def max_running(emulator: Emulator) -> int:
    """The most jobs the emulator ever had created and not ended at once (virtual clock)."""
    events: list[tuple[float, int]] = []
    for job in emulator.jobs:
        if job.seeded:
            continue
        events.append((job.created_at, 1))
        events.append((job.ended_at if job.ended_at is not None else float("inf"), -1))
    running = peak = 0
    for _, step in sorted(events):
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture
async def limited() -> AsyncIterator[Emulator]:
    """An emulator whose account runs 3 jobs at once and refuses more with 429."""
    async with Emulator(
        api_key=API_KEY, time_scale=SCALE, seed=99, concurrency_limit=3, over_limit="reject"
    ) as emu:
        yield emu


def make_client(emulator: Emulator, **options: Any) -> LegnextClient:
    """A test-speed client for ``emulator``."""
    return LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=FAST_RETRY, **options
    )


async def submit_and_wait(client: LegnextClient, parent: str, prompt: str) -> ImageResult:
    """Submit one inpaint and await its result."""
    return await (await client.inpaint(parent, 0, mask=MASK, remix_prompt=prompt))


async def test_fixed_limit_never_exceeds_the_account(limited: Emulator) -> None:
    """With max_active_jobs at the account's limit, 9 jobs run with no 429 at all."""
    parent = limited.seed_job("diffusion")
    async with make_client(limited, max_active_jobs=3) as client:
        results = await asyncio.gather(
            *(submit_and_wait(client, parent, f"p{i}") for i in range(9))
        )
    assert len({r.job_id for r in results}) == 9
    assert statuses(limited) == [200] * 9
    assert max_running(limited) <= 3


async def test_limit_is_learned_from_a_429(limited: Emulator) -> None:
    """With no limit given, a 429 teaches the client the account's limit; no job is doubled."""
    parent = limited.seed_job("diffusion")
    async with make_client(limited) as client:
        results = await asyncio.gather(
            *(submit_and_wait(client, parent, f"p{i}") for i in range(12))
        )
        assert client._slots.proven == 3  # the account's limit, seen to hold
        assert client._slots.limit in (3, 4)  # 4 while a probe is under way
        discoveries = client._slots.discoveries
    prompts = sorted(
        r.body["remixPrompt"]
        for r in limited.requests
        if r.status == 200 and r.method == "POST" and isinstance(r.body, dict)
    )
    assert prompts == sorted(f"p{i}" for i in range(12))  # each submitted exactly once
    assert len({r.job_id for r in results}) == 12
    refused = statuses(limited).count(429)
    assert 1 <= refused <= discoveries + 3  # at most the submissions already in flight
    assert max_running(limited) <= 3


async def test_gathered_submissions_do_not_deadlock(limited: Emulator) -> None:
    """Submitting more jobs than slots before awaiting any still finishes every job."""
    parent = limited.seed_job("diffusion")
    async with make_client(limited, max_active_jobs=2) as client:
        handles = await asyncio.gather(
            *(client.inpaint(parent, 0, mask=MASK, remix_prompt=f"p{i}") for i in range(6))
        )
        results = await asyncio.gather(*handles)
    assert len(results) == 6
    assert statuses(limited) == [200] * 6


async def test_waiting_submissions_go_first_come_first_served(emulator: Emulator) -> None:
    """Submissions waiting for a slot are sent in the order they were made."""
    parent = emulator.seed_job("diffusion")
    async with make_client(emulator, max_active_jobs=1) as client:
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(submit_and_wait(client, parent, f"p{i}")))
            await asyncio.sleep(0)  # each queues before the next is made
        await asyncio.gather(*tasks)
    order = [
        r.body["remixPrompt"]
        for r in emulator.requests
        if r.method == "POST" and isinstance(r.body, dict)
    ]
    assert order == [f"p{i}" for i in range(5)]


async def test_handles_for_existing_jobs_count_only_when_awaited(emulator: Emulator) -> None:
    """A ``client.task`` handle takes a slot while awaited, and none before."""
    parent = emulator.seed_job("diffusion")
    async with make_client(emulator) as other:
        elsewhere = await other.inpaint(parent, 0, mask=MASK, remix_prompt="made elsewhere")
    async with make_client(emulator, max_active_jobs=1) as client:
        idle = client.task(elsewhere.job_id)  # not awaited: holds nothing
        assert idle.job_id == elsewhere.job_id
        first = await client.inpaint(parent, 0, mask=MASK, remix_prompt="first")
        await first
        watcher = asyncio.create_task(client.task(elsewhere.job_id).wait())
        await asyncio.sleep(0)
        assert client._slots.active == 1  # the awaited handle occupies the only slot
        second = await client.inpaint(parent, 0, mask=MASK, remix_prompt="second")
        assert watcher.done()  # the slot freed only when that job was seen finished
        await second
    created = {job.job_id: job for job in emulator.jobs}
    ended_elsewhere = created[elsewhere.job_id].ended_at
    assert ended_elsewhere is not None
    assert created[second.job_id].created_at >= ended_elsewhere


async def test_a_dropped_handle_frees_its_slot() -> None:
    """A submitted handle dropped before its job ends gives its slot back when collected."""
    # Inpaints of 1,000 virtual seconds (5 real): the dropped job surely outlives the test.
    async with Emulator(
        api_key=API_KEY, time_scale=SCALE, seed=5, durations={"inpaint": (1000.0, 1000.0)}
    ) as emulator:
        parent = emulator.seed_job("diffusion")
        async with make_client(emulator, max_active_jobs=1) as client:
            first = await client.inpaint(parent, 0, mask=MASK, remix_prompt="dropped")
            first_id = first.job_id
            assert client._slots.active == 1
            del first
            gc.collect()
            assert client._slots.active == 0
            assert not client._engine.holders
            async with asyncio.timeout(2.0):  # no wait for the dropped job to end
                second = await client.inpaint(parent, 0, mask=MASK, remix_prompt="next")
            assert client._slots.active == 1
            assert second.job_id != first_id
            assert emulator.job(first_id).status in ("pending", "processing")


async def test_a_job_the_service_no_longer_knows_frees_its_slot(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A slot-holding job whose reads answer 404 gives its slot up, so the submissions
    waiting for it go on; the failure of that unwatched poll is logged, not swallowed."""
    parent = emulator.seed_job("diffusion")
    async with make_client(emulator, max_active_jobs=1) as client:
        gone = await client.inpaint(parent, 0, mask=MASK, remix_prompt="gone")  # never awaited
        emulator.add_fault(Fault.http_status(f"GET /api/v1/job/{gone.job_id}", 404, times=None))
        with caplog.at_level("WARNING", logger="legnext_async"):
            async with asyncio.timeout(5.0):
                nxt = await client.inpaint(parent, 0, mask=MASK, remix_prompt="next")
        assert isinstance(await nxt, ImageResult)
    assert [r.getMessage() for r in caplog.records if gone.job_id in r.getMessage()]
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


async def test_as_completed_yields_every_outcome(emulator: Emulator) -> None:
    """as_completed yields results and errors alike, and reports progress after each."""
    parent = emulator.seed_job("diffusion")
    emulator.fail_next(1, code=777, message="upstream refused")
    progress: list[BatchProgress] = []
    async with make_client(emulator) as client:
        first = await client.inpaint(parent, 0, mask=MASK, remix_prompt="will fail")
        jobs: list[Any] = [
            first,
            client.inpaint(parent, 1, mask=MASK, remix_prompt="ok"),
            client.inpaint(parent, 9, mask=MASK),  # invalid: fails before sending
        ]
        outcomes = [item async for item in client.as_completed(jobs, on_progress=progress.append)]
    assert len(outcomes) == 3
    errors = [outcome for _, outcome in outcomes if isinstance(outcome, LegnextError)]
    results = [outcome for _, outcome in outcomes if isinstance(outcome, ImageResult)]
    assert len(results) == 1
    assert {type(e) for e in errors} == {TaskFailedError, ValidationError}
    failed_handle = next(h for h, o in outcomes if isinstance(o, TaskFailedError))
    assert failed_handle is first
    assert next(h for h, o in outcomes if isinstance(o, ValidationError)) is None
    assert progress[-1] == BatchProgress(total=3, finished=3, failed=2)
    assert [p.finished for p in progress] == [1, 2, 3]


async def test_leaving_as_completed_early_stops_waiting(emulator: Emulator) -> None:
    """Breaking out of as_completed leaves no poller or waiter running."""
    parent = emulator.seed_job("diffusion")
    async with make_client(emulator) as client:
        handles: list[TaskHandle[ImageResult]] = [
            await client.inpaint(parent, i % 4, mask=MASK) for i in range(4)
        ]
        batch = client.as_completed(handles)
        async for _handle, outcome in batch:
            assert isinstance(outcome, ImageResult)
            break
        await batch.aclose()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not client._engine.polling


async def test_as_completed_yields_in_finishing_order_and_each_once() -> None:
    """Outcomes come as jobs finish (a slow job last), every one of 2,000 exactly once."""
    reads: dict[str, int] = {}
    everyone_read: list[int] = []  # the slow job's reads when every other job had been read

    async def job(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        reads[job_id] = reads.get(job_id, 0) + 1
        if not everyone_read and len(reads) == 2001:
            everyone_read.append(reads.get("slow", 0))
        # The slow job ends two of its reads after every other job was answered "completed".
        slow = job_id == "slow" and (not everyone_read or reads[job_id] < everyone_read[0] + 2)
        body = {**COMPLETED, "job_id": job_id, "status": "processing" if slow else "completed"}
        return web.json_response(body)

    policy = fast_poll(min_interval=1.0, max_interval=1.0)
    async with (
        job_server(job) as base_url,
        LegnextClient(api_key=API_KEY, base_url=base_url, poll=policy) as client,
    ):
        ids = ["slow", *(f"job{i}" for i in range(2000))]
        handles = [client.task(job_id) for job_id in ids]
        seen = [h.job_id async for h, _ in client.as_completed(handles) if h is not None]
    assert seen[-1] == "slow"
    assert sorted(seen) == sorted(ids)


async def test_an_unexpected_error_ends_as_completed_and_stops_the_rest(
    emulator: Emulator,
) -> None:
    """A job awaitable raising something other than a LegnextError ends the iteration with
    it; the jobs still waiting stop being polled."""
    parent = emulator.seed_job("diffusion")

    async def broken() -> TaskHandle[ImageResult]:
        raise RuntimeError("not a Legnext error")

    async with make_client(emulator) as client:
        handle = await client.inpaint(parent, 0, mask=MASK)
        jobs: list[Any] = [handle, broken()]
        with pytest.raises(RuntimeError, match="not a Legnext error"):
            await anext(client.as_completed(jobs))
        await asyncio.sleep(0)
        assert not client._engine.polling


# --- the request budget ---------------------------------------------------------------

COMPLETED = {
    "job_id": "j",
    "task_type": "diffusion",
    "status": "completed",
    "output": {"image_urls": ["http://127.0.0.1/0.png"]},
}


@pytest.fixture
async def slow_server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A server that answers status reads after 50 ms and records in-flight counts and times."""
    stats: dict[str, Any] = {"in_flight": 0, "peak": 0, "starts": []}

    async def job(request: web.Request) -> web.Response:
        stats["in_flight"] += 1
        stats["peak"] = max(stats["peak"], stats["in_flight"])
        stats["starts"].append(time.monotonic())
        await asyncio.sleep(0.05)
        stats["in_flight"] -= 1
        return web.json_response({**COMPLETED, "job_id": request.match_info["job_id"]})

    async with job_server(job) as base_url:
        yield base_url, stats


async def test_concurrent_requests_are_capped(slow_server: tuple[str, dict[str, Any]]) -> None:
    """No more than max_concurrent_requests reads are in flight at once."""
    base_url, stats = slow_server
    async with LegnextClient(api_key=API_KEY, base_url=base_url, max_concurrent_requests=2) as c:
        tasks = await asyncio.gather(*(c.get_task(f"job{i}") for i in range(10)))
    assert [t.job_id for t in tasks] == [f"job{i}" for i in range(10)]
    assert stats["peak"] == 2


async def test_waiting_for_the_budget_never_times_a_request_out(
    slow_server: tuple[str, dict[str, Any]],
) -> None:
    """Reads queued behind the budget succeed even when the queue outlasts request_timeout."""
    base_url, _ = slow_server
    async with LegnextClient(
        api_key=API_KEY,
        base_url=base_url,
        max_concurrent_requests=1,
        request_timeout=0.2,
        retry=FAST_RETRY.__class__(attempts=1),
    ) as client:
        tasks = await asyncio.gather(*(client.get_task(f"job{i}") for i in range(8)))
    assert len(tasks) == 8  # 8 × 50 ms queued > 0.2 s, and no APITimeoutError


async def test_cancelled_waiters_lose_no_place_in_the_request_budget() -> None:
    """Requests cancelled in the budget's line, even as a place reaches them, lose no place."""
    from legnext_async._budget import RequestBudget

    budget = RequestBudget(1)
    entered: list[str] = []

    async def request(name: str) -> None:
        async with budget:
            entered.append(name)

    await budget.__aenter__()  # the only place, held
    tasks = {name: asyncio.create_task(request(name)) for name in "abcd"}
    await asyncio.sleep(0)  # one step: each of the four joins the line, in order
    tasks["a"].cancel()  # cancelled while waiting
    await budget.__aexit__(None, None, None)  # the place skips a and is handed to b
    tasks["b"].cancel()  # b holds it, but is cancelled before it runs: it must pass it on
    _, pending = await asyncio.wait(tasks.values(), timeout=10)  # a guard: a lost place hangs
    assert not pending
    assert entered == ["c", "d"]
    assert [tasks[name].cancelled() for name in "abcd"] == [True, True, False, False]
    # The place is free again: a new request takes it without waiting (its coroutine ends
    # at the first step).
    with pytest.raises(StopIteration):
        budget.__aenter__().send(None)


async def test_requests_per_second_spaces_requests() -> None:
    """With requests_per_second set, request starts are spaced by its inverse (on a fake
    clock: the spacing is the budget's decision, not the machine's speed)."""
    clock = FakeClock()
    budget = RequestBudget(10, per_second=20)
    budget.clock = clock
    starts: list[float] = []

    async def one() -> None:
        async with budget:
            starts.append(clock.now())

    await clock.run(asyncio.gather(*(one() for _ in range(6))))
    assert [round(at - starts[0], 9) for at in starts] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]


def test_the_client_spaces_its_requests_with_its_budget() -> None:
    """``requests_per_second`` reaches the budget every request goes through."""
    client = LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9", requests_per_second=20)
    assert client._budget.per_second == 20


async def test_a_429_on_a_status_read_slows_every_poll(emulator: Emulator) -> None:
    """A 429 on a status read stretches the client-wide poll pace; successes ease it back."""
    emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 429, retry_after=0, times=2))
    parent = emulator.seed_job("diffusion")
    async with make_client(emulator) as client:
        pace = client._budget.pace
        handle = await client.inpaint(parent, 0, mask=MASK)
        await handle
        assert pace.throttles == 2
        assert pace.factor > 1.0  # still slower than before the 429s
        for _ in range(500):
            pace.succeeded()
        assert pace.factor == 1.0


async def test_waiting_count_follows_the_queue() -> None:
    """JobSlots counts waiting submissions through grants, cancellations and 429s."""
    from legnext_async._budget import JobSlots

    slots = JobSlots(limit=1)
    first = await slots.acquire()
    waiters = [asyncio.create_task(slots.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert slots.waiting == 3
    waiters[0].cancel()
    await asyncio.gather(waiters[0], return_exceptions=True)
    assert slots.waiting == 2
    assert slots.mark_sent(first)
    slots.mark_running(first)
    slots.release(first)  # the next in line is granted
    second = await waiters[1]
    assert slots.waiting == 1
    assert slots.mark_sent(second)
    slots.occupy()  # a job made elsewhere runs, so a 429 can teach a limit
    assert slots.refused(second)  # back in the queue, in front of the last waiter
    assert slots.waiting == 2
    waiters[2].cancel()
    await asyncio.gather(waiters[2], return_exceptions=True)
    assert slots.waiting == 1
