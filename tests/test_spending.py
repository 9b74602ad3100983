"""The spending limit: ``LegnextClient(max_points=N)`` never lets its jobs take more than N.

Jobs run on the emulator, whose prices are its own (see ``test_prices_agree.py``): a
diffusion costs 80 points in fast mode, 160 in turbo; a subtle upscale 120. A prompt
without a mode flag is priced by the client as turbo until the service has answered one.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from legnext_async import (
    BatchProgress,
    ImageResult,
    InvalidRequestError,
    LegnextClient,
    PointTotals,
    SpendingLimitError,
    SubmissionOutcomeUnknownError,
    Task,
    TaskFailedError,
    TaskHandle,
    ValidationError,
)
from legnext_async._catalog import DIFFUSION
from legnext_async._spending import Ledger
from legnext_async.emulator import Emulator, Fault

from .conftest import API_KEY, FAST_RETRY, fast_poll, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

FAST = "a lighthouse at dusk --fast"
UNNAMED = "a lighthouse at dusk"


@contextlib.asynccontextmanager
async def limited(
    base_url: str, max_points: int, **options: object
) -> AsyncIterator[LegnextClient]:
    """A client for ``base_url`` whose jobs may take at most ``max_points``."""
    async with LegnextClient(
        api_key=API_KEY,
        base_url=base_url,
        poll=fast_poll(),
        retry=FAST_RETRY,
        max_points=max_points,
        **options,  # type: ignore[arg-type]
    ) as client:
        yield client


def posts(emulator: Emulator, endpoint: str = "diffusion") -> int:
    """How many job-creating POSTs to ``endpoint`` the emulator received."""
    return sum(
        1 for r in emulator.requests if r.method == "POST" and r.path == f"/api/v1/{endpoint}"
    )


def created(emulator: Emulator) -> int:
    """How many jobs the emulator created (a POST answered 429 creates none)."""
    return len(emulator.jobs)


def committed(client: LegnextClient) -> tuple[int, int]:
    """The client's points ``(committed, spent)``."""
    points = client.points
    assert points is not None
    return points.committed, points.spent


# --- refusing -------------------------------------------------------------------------------


async def test_a_job_past_the_limit_is_refused_before_it_is_sent(emulator: Emulator) -> None:
    """A submission whose cost would pass the limit raises, and no POST reaches the service."""
    async with limited(emulator.base_url, 100) as client:
        await client.diffusion(FAST)
        with pytest.raises(SpendingLimitError) as info:
            await client.diffusion(FAST)
    error = info.value
    assert (error.endpoint, error.limit, error.committed, error.cost) == ("diffusion", 100, 80, 80)
    assert "expected cost of 80 points" in str(error)
    assert "80 points committed past the limit of 100" in str(error)
    assert posts(emulator) == 1


async def test_a_refused_job_does_not_wait_for_a_job_slot(emulator: Emulator) -> None:
    """With every job slot taken, a job past the limit is refused at once, not queued."""
    async with limited(emulator.base_url, 100, max_active_jobs=1) as client:
        first = await client.diffusion(FAST)
        with pytest.raises(SpendingLimitError):
            await client.diffusion(FAST)
        assert not first.done  # the slot is still taken: the refusal did not wait for it
        await first


async def test_concurrent_submissions_never_pass_the_limit_together(emulator: Emulator) -> None:
    """Of twenty jobs of 80 points submitted at once under 800, ten are sent, ten refused."""
    async with limited(emulator.base_url, 800) as client:
        outcomes = await asyncio.gather(
            *(client.diffusion(FAST) for _ in range(20)), return_exceptions=True
        )
        assert committed(client)[0] == 800
    sent = [o for o in outcomes if isinstance(o, TaskHandle)]
    refused = [o for o in outcomes if isinstance(o, SpendingLimitError)]
    assert (len(sent), len(refused)) == (10, 10)
    assert created(emulator) == 10


async def test_a_limit_of_zero_refuses_every_job(emulator: Emulator) -> None:
    """``max_points=0`` sends nothing that costs points."""
    async with limited(emulator.base_url, 0) as client:
        with pytest.raises(SpendingLimitError):
            await client.describe("https://example.com/a.png")
    assert posts(emulator, "describe") == 0


# --- what a job costs ----------------------------------------------------------------------


async def test_a_prompt_naming_no_mode_is_priced_as_turbo(emulator: Emulator) -> None:
    """With nothing learned, a prompt without ``--fast`` is expected to cost the turbo 160."""
    async with limited(emulator.base_url, 150) as client:
        with pytest.raises(SpendingLimitError) as info:
            await client.diffusion(UNNAMED)
    assert info.value.cost == 160
    assert "turbo price" in str(info.value)


async def test_the_frozen_points_of_an_answer_price_the_next_jobs(emulator: Emulator) -> None:
    """Once one job of a kind is answered, its frozen points are the next ones' cost."""
    async with limited(emulator.base_url, 240) as client:
        await client.diffusion(UNNAMED)  # expected 160, frozen 80
        assert committed(client) == (80, 0)
        await client.diffusion(UNNAMED)  # expected 80 now
        await client.diffusion(UNNAMED)
        with pytest.raises(SpendingLimitError) as info:
            await client.diffusion(UNNAMED)
    assert (info.value.committed, info.value.cost) == (240, 80)
    assert "frozen by the service" in str(info.value)
    assert posts(emulator) == 3


async def test_submissions_wait_for_guessed_prices_rather_than_be_refused(
    emulator: Emulator,
) -> None:
    """Ten jobs guessed at 160 fit under 800 once the first answer says they cost 80."""
    async with limited(emulator.base_url, 800) as client:
        outcomes = await asyncio.gather(
            *(client.diffusion(UNNAMED) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(o, TaskHandle) for o in outcomes), outcomes
        assert committed(client)[0] == 800
    assert created(emulator) == 10


@pytest.mark.parametrize(
    ("video_type", "cost"),
    [pytest.param(None, 480, id="480p-default"), pytest.param(1, 1536, id="720p")],
)
async def test_a_video_is_priced_by_its_resolution(
    emulator: Emulator, video_type: int | None, cost: int
) -> None:
    """A video's expected cost follows ``video_type``: 480 points at 480p, 1536 at 720p."""
    async with limited(emulator.base_url, cost - 1) as client:
        with pytest.raises(SpendingLimitError) as info:
            await client.video_diffusion(
                "https://example.com/a.png a wave --fast", video_type=video_type
            )
    assert info.value.cost == cost


# --- settling ------------------------------------------------------------------------------


async def test_a_completed_job_spends_what_it_consumed(emulator: Emulator) -> None:
    """A finished job's consumed points are both committed and spent."""
    async with limited(emulator.base_url, 1000) as client:
        handle = await client.diffusion(FAST)
        assert committed(client) == (80, 0)
        await handle
        assert committed(client) == (80, 80)


async def test_a_failed_job_releases_its_points(emulator: Emulator) -> None:
    """A job that fails consumes nothing, and its points are free for the next job."""
    emulator.fail_next()
    async with limited(emulator.base_url, 80) as client:
        handle = await client.diffusion(FAST)
        with pytest.raises(TaskFailedError):
            await handle
        assert committed(client) == (0, 0)
        await (await client.diffusion(FAST))
        assert committed(client) == (80, 80)


async def test_a_job_refused_by_the_service_releases_its_points(emulator: Emulator) -> None:
    """A submission the service refuses (HTTP 400) made no job: its reservation is released."""
    emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", 400))
    async with limited(emulator.base_url, 80) as client:
        with pytest.raises(InvalidRequestError):
            await client.diffusion(FAST)
        assert committed(client) == (0, 0)
        await client.diffusion(FAST)
    assert posts(emulator) == 2


async def test_a_job_whose_outcome_is_unknown_keeps_its_points(emulator: Emulator) -> None:
    """A POST whose answer was lost may have been charged: its points stay committed."""
    emulator.add_fault(Fault.answer_lost("POST /api/v1/diffusion"))
    async with limited(emulator.base_url, 100) as client:
        with pytest.raises(SubmissionOutcomeUnknownError):
            await client.diffusion(FAST)
        assert committed(client) == (80, 0)
        with pytest.raises(SpendingLimitError):
            await client.diffusion(FAST)
    assert posts(emulator) == 1


async def test_a_job_cancelled_while_waiting_for_a_slot_releases_its_points(
    emulator: Emulator,
) -> None:
    """A submission cancelled before it was sent gives its reservation back."""
    async with limited(emulator.base_url, 1000, max_active_jobs=1) as client:
        first = await client.diffusion(FAST)
        second = asyncio.create_task(client.diffusion(FAST))
        await asyncio.sleep(0)  # it reserves, then waits for the slot the first job holds
        assert committed(client) == (160, 0)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert committed(client) == (80, 0)
        await first
    assert posts(emulator) == 1


@contextlib.asynccontextmanager
async def silent_service(received: asyncio.Event) -> AsyncIterator[str]:
    """A service that takes a job POST and answers it only when the test is over; yields
    its ``base_url``."""
    over = asyncio.Event()

    async def answer_late(request: web.Request) -> web.Response:
        received.set()
        await over.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/api/v1/diffusion", answer_late)
    async with serving(app) as base_url:
        try:
            yield base_url
        finally:
            over.set()  # before the server's cleanup, which waits for the handler


async def test_a_job_cancelled_while_its_post_is_on_its_way_keeps_its_points() -> None:
    """A submission cancelled after its POST left may have made a job: its points stay."""
    received = asyncio.Event()
    async with silent_service(received) as base_url, limited(base_url, 100) as client:
        submission = asyncio.create_task(client.diffusion(FAST))
        await received.wait()
        submission.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submission
        assert committed(client) == (80, 0)
        with pytest.raises(SpendingLimitError):
            await client.diffusion(FAST)


@contextlib.asynccontextmanager
async def service_freezing(frozen: object) -> AsyncIterator[str]:
    """A service whose job POST answers a pending task with ``meta.usage.frozen`` =
    ``frozen``; yields its ``base_url``."""

    async def create(request: web.Request) -> web.Response:
        task = {
            "job_id": "5dd94ec3-7282-4f04-9445-59e850ef1822",
            "task_type": "diffusion",
            "status": "pending",
            "meta": {"usage": {"type": "point", "frozen": frozen, "consume": 0}},
        }
        return web.json_response(task)

    app = web.Application()
    app.router.add_post("/api/v1/diffusion", create)
    async with serving(app) as base_url:
        yield base_url


@pytest.mark.parametrize(
    "frozen",
    [
        pytest.param(-1000, id="negative"),
        pytest.param(0, id="zero"),
        pytest.param("lots", id="not-a-number"),
        pytest.param(None, id="null"),
    ],
)
async def test_an_answer_without_a_usable_price_keeps_the_reservation(frozen: object) -> None:
    """A frozen price that is not a positive number neither frees points nor is learned."""
    async with service_freezing(frozen) as base_url, limited(base_url, 200) as client:
        await client.diffusion(FAST)
        assert committed(client) == (80, 0)
        await client.diffusion(FAST)
        with pytest.raises(SpendingLimitError) as info:
            await client.diffusion(FAST)
    assert (info.value.committed, info.value.cost) == (160, 80)


# --- follow-ups and batches ----------------------------------------------------------------


async def test_a_follow_up_past_the_limit_is_refused_before_it_is_sent(
    emulator: Emulator,
) -> None:
    """``result.upscale()`` is counted like any submission: past the limit, nothing is sent."""
    async with limited(emulator.base_url, 300) as client:
        result = await (await client.diffusion(FAST))
        assert isinstance(result, ImageResult)
        with pytest.raises(SpendingLimitError) as info:
            await result.upscale(0)  # no mode in the request: 2 x 120
    assert (info.value.endpoint, info.value.cost) == ("upscale", 240)
    assert posts(emulator, "upscale") == 0


async def test_a_follow_up_is_counted(emulator: Emulator) -> None:
    """A follow-up's points join the client's totals: frozen, then spent."""
    async with limited(emulator.base_url, 400) as client:
        result = await (await client.diffusion(FAST))
        assert isinstance(result, ImageResult)
        upscale = await result.upscale(0)
        assert committed(client) == (200, 80)
        await upscale
        assert committed(client) == (200, 200)


async def test_batch_progress_shows_points_committed_and_spent(emulator: Emulator) -> None:
    """Each BatchProgress carries the client's points at that moment."""
    progress: list[BatchProgress] = []
    async with limited(emulator.base_url, 1000) as client:
        jobs = [client.diffusion(FAST) for _ in range(3)]
        async for _ in client.as_completed(jobs, on_progress=progress.append):
            pass
    assert progress[-1] == BatchProgress(
        total=3, finished=3, failed=0, points=PointTotals(limit=1000, committed=240, spent=240)
    )
    assert [p.points_spent for p in progress] == [80, 160, 240]
    assert progress[-1].points_committed == 240


async def test_without_a_limit_nothing_is_counted(client: LegnextClient) -> None:
    """A client with no ``max_points`` has no totals, and its batch progress shows none."""
    progress: list[BatchProgress] = []
    async for _ in client.as_completed([client.diffusion(FAST)], on_progress=progress.append):
        pass
    assert client.points is None
    assert progress[-1].points is None
    assert progress[-1].points_spent is None


# --- a job store's earlier jobs --------------------------------------------------------------


async def test_carried_points_count_against_the_limit() -> None:
    """Points carried in (a job store's) leave only the rest of the limit for new jobs."""
    ledger = Ledger(500)
    ledger.carry(400, 300)
    body = DIFFUSION.body({"text": FAST, "callback": None})
    await ledger.admit(DIFFUSION, body)  # 80 fits: 480
    with pytest.raises(SpendingLimitError) as info:
        await ledger.admit(DIFFUSION, body)
    assert (info.value.committed, info.value.cost) == (480, 80)
    assert ledger.totals == PointTotals(limit=500, committed=480, spent=300)


def test_a_followed_job_settles_when_seen_finished() -> None:
    """A carried job handed to ``follow`` moves from committed to spent when it completes."""
    ledger = Ledger(500)
    ledger.carry(80, 0)
    ledger.follow("5dd94ec3-7282-4f04-9445-59e850ef1822", 80)
    finished = Task.from_json(
        {
            "job_id": "5dd94ec3-7282-4f04-9445-59e850ef1822",
            "task_type": "diffusion",
            "status": "completed",
            "meta": {"usage": {"type": "point", "frozen": 80, "consume": 80}},
        }
    )
    ledger.observe(finished.job_id, finished)
    assert ledger.totals == PointTotals(limit=500, committed=80, spent=80)


def test_carry_refuses_spent_beyond_committed() -> None:
    """Spent points are part of the committed ones: more spent than committed is a bug."""
    with pytest.raises(ValueError, match="cannot carry"):
        Ledger(500).carry(100, 200)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(-1, "at least 0", id="negative"),
        pytest.param(1.5, "integer", id="float"),
        pytest.param(True, "integer", id="bool"),
        pytest.param("100", "integer", id="str"),
    ],
)
def test_max_points_must_be_a_whole_number_of_at_least_zero(value: object, message: str) -> None:
    """A ``max_points`` that is not an int of at least 0 raises ValidationError naming it."""
    with pytest.raises(ValidationError, match=message) as info:
        LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9/api", max_points=value)  # type: ignore[arg-type]
    assert info.value.field == "max_points"
