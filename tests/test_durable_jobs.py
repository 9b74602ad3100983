"""Durable jobs: submissions recorded before they are sent, idempotency keys, resume, forget."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from legnext_async import (
    IdempotencyConflictError,
    ImageResult,
    JobRecord,
    LegnextClient,
    LegnextError,
    MemoryJobStore,
    NotFoundError,
    RecordState,
    SpendingLimitError,
    SQLiteJobStore,
    StoreError,
    SubmissionOutcomeUnknownError,
    ValidationError,
)
from legnext_async._catalog import ROUTES
from legnext_async.emulator import Fault
from legnext_async.emulator._options import DEFAULT_RETENTION

from .catalog_values import Parents, base_values
from .conftest import API_KEY, FAST_RETRY, MASK, fast_poll, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from legnext_async import JobStore, TaskHandle
    from legnext_async._catalog import Route
    from legnext_async.emulator import Emulator


def posts(emulator: Emulator) -> list[Any]:
    """The job-creating requests the emulator received."""
    return [r for r in emulator.requests if r.method == "POST"]


def created(emulator: Emulator) -> list[Any]:
    """The job-creating requests that made a job (429s and refusals did not)."""
    return [r for r in posts(emulator) if r.job_id is not None]


@contextlib.asynccontextmanager
async def stored_client(
    emulator: Emulator, store: JobStore | str, **options: Any
) -> AsyncIterator[LegnextClient]:
    """A test-speed client for ``emulator`` with ``store``."""
    async with LegnextClient(
        api_key=API_KEY,
        base_url=emulator.base_url,
        poll=fast_poll(),
        retry=FAST_RETRY,
        store=store,
        **options,
    ) as client:
        yield client


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The path of a fresh SQLite store."""
    return str(tmp_path / "jobs.db")


async def inpaint(
    client: LegnextClient, parent: str, key: str | None, prompt: str = "a tree"
) -> TaskHandle[ImageResult]:
    """An inpaint of image 0 of ``parent`` under ``key``."""
    return await client.inpaint(parent, 0, mask=MASK, remix_prompt=prompt, key=key)


# --- recorded before sending ------------------------------------------------------------


async def test_the_record_is_durable_before_the_post_arrives(db: str) -> None:
    """When the service receives the POST, the store's file already holds the submission."""
    seen: list[tuple[str, str]] = []

    async def create(request: web.Request) -> web.Response:
        # Another connection to the file, as a process started after a crash would open.
        with contextlib.closing(sqlite3.connect(db)) as raw:
            seen.extend(raw.execute("SELECT key, state FROM jobs").fetchall())
        return web.json_response({"job_id": "job-1", "task_type": "inpaint", "status": "pending"})

    app = web.Application()
    app.router.add_post("/api/v1/inpaint", create)
    async with (
        serving(app) as base_url,
        LegnextClient(api_key=API_KEY, base_url=base_url, store=db) as client,
    ):
        handle = await client.inpaint("parent-1", 0, mask=MASK, key="night-1")
    assert seen == [("night-1", "submitting")]
    async with SQLiteJobStore(db) as store:
        stored = await store.get("night-1")
    assert stored is not None
    assert (stored.job_id, stored.state) == (handle.job_id, RecordState.PENDING)


async def test_a_record_follows_the_job_to_its_end(emulator: Emulator, db: str) -> None:
    """Status changes, the final task and its points are written as the job goes."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        result = await (await inpaint(client, parent, "k1"))
    async with SQLiteJobStore(db) as store:
        stored = await store.get("k1")
    assert stored is not None
    assert stored.state is RecordState.COMPLETED
    assert stored.job_id == result.job_id
    assert stored.task is not None
    assert stored.task.output.image_urls == result.task.output.image_urls
    assert stored.points_frozen == stored.points_consumed == emulator.job(result.job_id).consume
    assert stored.request["remixPrompt"] == "a tree"


async def test_submissions_without_a_key_are_recorded_too(emulator: Emulator) -> None:
    """With a store, every submission is recorded (under a key the client makes up)."""
    parent = emulator.seed_job("diffusion")
    store = MemoryJobStore()
    async with stored_client(emulator, store) as client:
        handle = await inpaint(client, parent, None)
    (stored,) = await store.records()
    assert stored.key.startswith("auto-")
    assert stored.job_id == handle.job_id


class LookupCountingStore(MemoryJobStore):
    """A memory store that counts the keys looked up with ``get``."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []

    async def get(self, key: str) -> JobRecord | None:
        self.lookups.append(key)
        return await super().get(key)


async def test_a_made_up_key_is_not_looked_up(emulator: Emulator) -> None:
    """A submission without a key claims a fresh one without reading the store first."""
    parent = emulator.seed_job("diffusion")
    store = LookupCountingStore()
    async with stored_client(emulator, store) as client:
        await inpaint(client, parent, None)
        await inpaint(client, parent, "given")
    assert store.lookups == ["given"]
    assert len(await store.records()) == 2


# --- idempotency keys -------------------------------------------------------------------


async def test_a_recorded_key_sends_nothing(emulator: Emulator, db: str) -> None:
    """The second call with a key returns the first one's job; one POST in all."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        first = await inpaint(client, parent, "k1")
    async with stored_client(emulator, db) as again:
        second = await inpaint(again, parent, "k1")
    assert second.job_id == first.job_id
    assert len(posts(emulator)) == 1


async def test_a_finished_record_resolves_without_a_request(emulator: Emulator, db: str) -> None:
    """A key whose job was seen finished returns a handle that resolves from the record."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        done = await (await inpaint(client, parent, "k1"))
    requests_before = len(emulator.requests)
    async with stored_client(emulator, db) as again:
        handle = await inpaint(again, parent, "k1")
        assert handle.done
        result = await handle
    assert isinstance(result, ImageResult)
    assert result.image_urls == done.image_urls
    assert len(emulator.requests) == requests_before


async def test_concurrent_calls_with_one_key_send_once(emulator: Emulator, db: str) -> None:
    """Ten calls at once with one key make one job, and all get its handle."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        handles = await asyncio.gather(*(inpaint(client, parent, "same") for _ in range(10)))
    assert len({h.job_id for h in handles}) == 1
    assert len(posts(emulator)) == 1


async def test_two_clients_on_one_file_send_each_key_once(emulator: Emulator, db: str) -> None:
    """Two clients sharing a store file, racing over the same keys: one POST per key."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as one, stored_client(emulator, db) as two:
        # Six keys: within the account's six jobs, so neither client meets a 429 while
        # the other holds every job (then it can only back off, and may give up).
        calls = [inpaint(c, parent, f"k{i}", prompt=f"k{i}") for i in range(6) for c in (one, two)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    # A key claimed by the other client while its POST is in flight is an unknown outcome
    # for this one (it cannot tell the other is alive); every key made exactly one job.
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, SubmissionOutcomeUnknownError) for e in errors), [
        type(e).__name__ for e in errors
    ]
    assert sorted(r.body["remixPrompt"] for r in created(emulator)) == [f"k{i}" for i in range(6)]


async def test_the_same_key_with_other_arguments_is_refused(emulator: Emulator, db: str) -> None:
    """A key recorded for one request, reused for another, raises naming the key."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        await inpaint(client, parent, "k1", prompt="a tree")
        with pytest.raises(IdempotencyConflictError, match="'k1'") as caught:
            await inpaint(client, parent, "k1", prompt="a house")
    assert caught.value.key == "k1"
    assert len(posts(emulator)) == 1


async def test_follow_ups_take_keys(emulator: Emulator, db: str) -> None:
    """A follow-up on a result with a recorded key sends nothing the second time."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        grid = await (await inpaint(client, parent, "grid"))
        first = await grid.upscale(0, key="up-0")
        second = await grid.upscale(0, key="up-0")
    assert first.job_id == second.job_id
    assert [r.path for r in posts(emulator)] == ["/api/v1/inpaint", "/api/v1/upscale"]


@pytest.mark.parametrize("route", [pytest.param(r, id=r.name) for r in ROUTES])
async def test_every_endpoint_takes_a_key(route: Route, emu: Emulator) -> None:
    """Each job-creating method passes ``key=`` on: called twice with one key, it sends once."""
    values = base_values(route, Parents.seed(emu).for_route(route))
    async with LegnextClient(
        api_key=API_KEY, base_url=emu.base_url, store=MemoryJobStore()
    ) as client:
        method = getattr(client, route.name)
        first = await method(**values, key="one")
        second = await method(**values, key="one")
    assert first.job_id == second.job_id
    assert len(created(emu)) == 1


async def test_a_key_needs_a_store(client: LegnextClient, emulator: Emulator) -> None:
    """``key=`` without a store raises ValidationError naming ``key``; nothing is sent."""
    parent = emulator.seed_job("diffusion")
    with pytest.raises(ValidationError, match=r"key.*job store"):
        await inpaint(client, parent, "k1")
    assert posts(emulator) == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("x" * 257, id="too-long"),
        pytest.param("a\nb", id="control"),
        pytest.param(42, id="not-text"),
    ],
)
async def test_bad_keys_name_the_field(emulator: Emulator, key: Any) -> None:
    """A key that is not 1-256 printable characters is refused before anything is sent."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, MemoryJobStore()) as client:
        with pytest.raises(ValidationError, match="key"):
            await inpaint(client, parent, key)
    assert posts(emulator) == []


# --- unknown outcomes ---------------------------------------------------------------------


async def test_an_unknown_outcome_is_recorded_and_raised_every_time(
    emulator: Emulator, db: str
) -> None:
    """A lost answer is recorded; the key raises SubmissionOutcomeUnknownError (with the key)
    on every later call, and sends nothing, until it is forgotten."""
    parent = emulator.seed_job("diffusion")
    emulator.add_fault(Fault.answer_lost("POST /api/v1/inpaint"))
    async with stored_client(emulator, db) as client:
        with pytest.raises(SubmissionOutcomeUnknownError) as first:
            await inpaint(client, parent, "k1")
        assert first.value.key == "k1"
    for _ in range(2):
        async with stored_client(emulator, db) as again:
            with pytest.raises(SubmissionOutcomeUnknownError, match="forget") as later:
                await inpaint(again, parent, "k1")
            assert later.value.key == "k1"
    assert len(posts(emulator)) == 1
    async with SQLiteJobStore(db) as store:
        stored = await store.get("k1")
    assert stored is not None
    assert stored.state is RecordState.UNKNOWN


async def test_forget_settles_a_key_and_is_recorded(emulator: Emulator, db: str) -> None:
    """After ``forget``, the key sends a new request; the old record said ``forgotten``."""
    parent = emulator.seed_job("diffusion")
    emulator.add_fault(Fault.answer_lost("POST /api/v1/inpaint"))
    async with stored_client(emulator, db) as client:
        with pytest.raises(SubmissionOutcomeUnknownError):
            await inpaint(client, parent, "k1")
        settled = await client.forget("k1")
        assert settled is not None
        assert settled.state is RecordState.UNKNOWN
        store = client.store
        assert store is not None
        forgotten = await store.get("k1")
        assert forgotten is not None
        assert forgotten.state is RecordState.FORGOTTEN
        handle = await inpaint(client, parent, "k1")
    assert len(posts(emulator)) == 2
    assert handle.job_id == posts(emulator)[1].job_id


async def test_a_refused_submission_frees_its_key(emulator: Emulator, db: str) -> None:
    """A POST the service refused made no job: the key is free, and a retry sends again."""
    parent = emulator.seed_job("diffusion")
    emulator.add_fault(Fault.http_status("POST /api/v1/inpaint", 400, message="bad"))
    async with stored_client(emulator, db) as client:
        with pytest.raises(LegnextError):
            await inpaint(client, parent, "k1")
        handle = await inpaint(client, parent, "k1")  # at once: no unknown outcome
        store = client.store
        assert store is not None
        stored = await store.get("k1")
    assert handle.job_id
    assert stored is not None
    assert stored.job_id == handle.job_id
    assert len(posts(emulator)) == 2


async def test_a_submission_cancelled_while_waiting_for_the_budget_gives_its_key_back() -> None:
    """Cancelled while its POST waited for a place among the client's requests, a keyed
    submission sent nothing: its key is free, not an unknown outcome."""
    reading = asyncio.Event()
    release = asyncio.Event()
    created: list[str] = []

    async def job(request: web.Request) -> web.Response:
        reading.set()
        await release.wait()
        return web.json_response({"job_id": "job-1", "task_type": "diffusion", "status": "pending"})

    async def create(request: web.Request) -> web.Response:
        created.append("job-2")
        return web.json_response({"job_id": "job-2", "task_type": "diffusion", "status": "pending"})

    app = web.Application()
    app.router.add_get("/api/v1/job/{job_id}", job)
    app.router.add_post("/api/v1/diffusion", create)
    store = MemoryJobStore()
    async with (
        serving(app) as base_url,
        LegnextClient(
            api_key=API_KEY, base_url=base_url, store=store, max_concurrent_requests=1
        ) as client,
    ):
        read = asyncio.ensure_future(client.get_task("job-1"))  # holds the one place
        await reading.wait()
        submitting = asyncio.ensure_future(client.diffusion("a cat", key="k"))
        while not client._budget._waiters:  # noqa: ASYNC110 - no event marks the wait
            await asyncio.sleep(0)
        submitting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submitting
        release.set()
        await read
    assert created == []
    assert await store.get("k") is None


async def test_writes_queued_when_the_loop_ends_are_written(emulator: Emulator, db: str) -> None:
    """A client never closed, in an ``asyncio.run`` that ends: what its jobs reported last
    (here, the job's end) is in the store all the same."""
    parent = emulator.seed_job("diffusion")

    async def program() -> str:
        client = LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), store=db
        )
        result = await (await inpaint(client, parent, "k1"))
        return result.job_id  # the client is left open: asyncio.run's end closes it

    job_id = await asyncio.to_thread(asyncio.run, program())
    async with SQLiteJobStore(db) as store:
        stored = await store.get("k1")
    assert stored is not None
    assert (stored.job_id, stored.state) == (job_id, RecordState.COMPLETED)


async def test_a_submission_cancelled_before_sending_frees_its_key(
    emulator: Emulator, db: str
) -> None:
    """Cancelled while waiting for a job slot, a submission leaves no record behind."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db, max_active_jobs=1) as client:
        first = await inpaint(client, parent, "first")  # holds the one slot while held
        waiting = asyncio.ensure_future(inpaint(client, parent, "second"))
        while client._slots.waiting == 0:  # noqa: ASYNC110 - no event marks a wait for a slot
            await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        store = client.store
        assert store is not None
        assert await store.get("second") is None
        assert not first.done
    assert len(posts(emulator)) == 1


# --- resume -------------------------------------------------------------------------------


async def test_resume_waits_for_the_jobs_a_closed_client_left(emulator: Emulator, db: str) -> None:
    """Jobs submitted and never awaited are picked up by a new client and finish there."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        submitted = [await inpaint(client, parent, f"k{i}") for i in range(3)]
    async with stored_client(emulator, db) as later:
        handles = await later.resume()
        assert sorted(h.job_id for h in handles) == sorted(h.job_id for h in submitted)
        results = await asyncio.gather(*handles)
        store = later.store
        assert store is not None
        await later._stored().flush()
        assert await store.records(RecordState.PENDING, RecordState.RUNNING) == []
    assert all(isinstance(r, ImageResult) for r in results)
    assert len(posts(emulator)) == 3


async def test_resumed_handles_know_the_recorded_status_before_any_read(
    emulator: Emulator, db: str
) -> None:
    """A resumed handle reports the record's last snapshot without reading the status."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        submitted = await inpaint(client, parent, "k")
    before = len(emulator.requests)
    async with stored_client(emulator, db) as later:
        [resumed] = await later.resume()
        last = resumed.last_task
        assert last is not None
        assert last.job_id == submitted.job_id
        assert last.status.value == "pending"
        assert resumed.task_type is not None
        assert resumed.task_type.value == "inpaint"
        assert not resumed.done
        assert "status='pending'" in repr(resumed)
        assert len(emulator.requests) == before


async def test_reading_a_resumed_snapshot_writes_nothing(emulator: Emulator, db: str) -> None:
    """Looking at a resumed handle's recorded snapshot does not rewrite its record."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        await inpaint(client, parent, "k")
    store = SQLiteJobStore(db)
    async with store:
        recorded = await store.get("k")
    async with stored_client(emulator, db) as later:
        [resumed] = await later.resume()
        assert resumed.last_task is not None
        await later._stored().flush()
        again = await later._stored().store.get("k")
    assert recorded is not None
    assert again == recorded


@pytest.mark.parametrize("enabled", [pytest.param(True, id="on"), pytest.param(False, id="off")])
async def test_resume_leaves_the_garbage_collector_as_it_was(
    emulator: Emulator, db: str, enabled: bool
) -> None:
    """``resume`` pauses the cyclic garbage collector only while it builds the handles."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        await inpaint(client, parent, "k")
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        async with stored_client(emulator, db) as later:
            assert len(await later.resume()) == 1
            assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()


async def test_resume_leaves_out_unknown_outcomes(emulator: Emulator, db: str) -> None:
    """A submission with no job id has no handle to resume; the store lists it."""
    parent = emulator.seed_job("diffusion")
    emulator.add_fault(Fault.answer_lost("POST /api/v1/inpaint"))
    async with stored_client(emulator, db) as client:
        with pytest.raises(SubmissionOutcomeUnknownError):
            await inpaint(client, parent, "lost")
        kept = await inpaint(client, parent, "kept")
    async with stored_client(emulator, db) as later:
        assert [h.job_id for h in await later.resume()] == [kept.job_id]
        store = later.store
        assert store is not None
        assert [r.key for r in await store.records(RecordState.UNKNOWN)] == ["lost"]


async def test_a_job_past_its_retention_is_recorded_lost_and_not_resumed_again(
    emulator: Emulator, db: str
) -> None:
    """A stored job the service no longer knows (404: past its retention window) raises
    NotFoundError once, is recorded ``lost`` with its points still counted, and is left
    out of later resumes; its key still sends nothing."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        gone = await inpaint(client, parent, "gone")
    emulator.advance(DEFAULT_RETENTION + 60)
    async with stored_client(emulator, db) as later:
        [resumed] = await later.resume()
        with pytest.raises(NotFoundError):
            await resumed
        [record] = await later.records(RecordState.LOST)
        assert (record.key, record.job_id) == ("gone", gone.job_id)
        assert record.points_frozen
        store = later.store
        assert store is not None
        assert (await store.totals()).committed == record.points_frozen
    async with stored_client(emulator, db) as again:
        assert await again.resume() == []
        same = await inpaint(again, parent, "gone")
        assert same.job_id == gone.job_id
    assert len(posts(emulator)) == 1


PENDING_BODY = b'{"job_id": "job-1", "task_type": "inpaint", "status": "pending"}'


def once_lost_app(misses: int) -> web.Application:
    """A service whose inpaint makes ``job-1`` and whose first ``misses`` reads of it
    answer 404; later reads give the very bytes the submission's answer gave."""
    reads = 0

    async def create(request: web.Request) -> web.Response:
        return web.Response(body=PENDING_BODY, content_type="application/json")

    async def read(request: web.Request) -> web.Response:
        nonlocal reads
        reads += 1
        if reads <= misses:
            return web.json_response({"code": 404, "message": "job not found"}, status=404)
        return web.Response(body=PENDING_BODY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/inpaint", create)
    app.router.add_get("/api/v1/job/{job_id}", read)
    return app


async def test_a_job_found_again_after_a_404_is_no_longer_recorded_lost(db: str) -> None:
    """A 404 in passing records the job lost; the next read that finds it, with the very
    bytes seen before, records it pending again, and a later resume() picks it up."""
    async with serving(once_lost_app(misses=1)) as base_url:
        async with LegnextClient(
            api_key=API_KEY, base_url=base_url, store=db, poll=fast_poll(), retry=FAST_RETRY
        ) as client:
            handle = await client.inpaint("parent-1", 0, mask=MASK, key="k1")
            with pytest.raises(NotFoundError):
                await handle.refresh()
            assert [r.key for r in await client.records(RecordState.LOST)] == ["k1"]
            await handle.refresh()
            assert [r.key for r in await client.records(RecordState.PENDING)] == ["k1"]
        async with LegnextClient(api_key=API_KEY, base_url=base_url, store=db) as later:
            assert [h.job_id for h in await later.resume()] == ["job-1"]


async def test_a_lost_records_key_used_again_stays_lost_until_a_read_answers(db: str) -> None:
    """Using the key of a lost record again gives its handle without sending anything, and
    the record stays lost while no read has found the job (the service out of reach)."""
    async with (
        serving(once_lost_app(misses=1)) as base_url,
        LegnextClient(
            api_key=API_KEY, base_url=base_url, store=db, poll=fast_poll(), retry=FAST_RETRY
        ) as client,
    ):
        handle = await client.inpaint("parent-1", 0, mask=MASK, key="k1")
        with pytest.raises(NotFoundError):
            await handle.refresh()
    async with LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9/api", store=db) as away:
        again = await away.inpaint("parent-1", 0, mask=MASK, key="k1")
        assert again.job_id == "job-1"
        last = again.last_task  # the recorded snapshot, taken in: news of nothing
        assert last is not None
        assert last.status.value == "pending"
        assert [r.key for r in await away.records(RecordState.LOST)] == ["k1"]
    async with SQLiteJobStore(db) as store:
        record = await store.get("k1")
    assert record is not None
    assert record.state is RecordState.LOST


async def test_resume_needs_a_store(client: LegnextClient) -> None:
    """``resume`` and ``forget`` on a client without a store say how to get one."""
    with pytest.raises(LegnextError, match="store="):
        await client.resume()
    with pytest.raises(LegnextError, match="store="):
        await client.forget("k")


async def test_learned_run_times_carry_over(emulator: Emulator, db: str) -> None:
    """A client of the same store starts with the run times an earlier one learned."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        for i in range(3):
            await (await inpaint(client, parent, f"k{i}"))
        learned = client._durations.to_json()
    assert learned
    async with stored_client(emulator, db) as later:
        await later.resume()
        assert later._durations.to_json() == learned


async def test_the_spending_limit_counts_the_stores_jobs(emulator: Emulator, db: str) -> None:
    """Points taken by jobs of the store, in an earlier run, count against ``max_points``."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        done = await (await inpaint(client, parent, "k0"))
    spent = done.task.meta.usage.consume
    assert spent > 0
    async with stored_client(emulator, db, max_points=2 * spent - 1) as later:
        with pytest.raises(SpendingLimitError) as refused:
            await inpaint(later, parent, "k1")
        assert refused.value.committed == spent
        points = later.points
        assert points is not None
        assert points.spent == spent
    assert len(created(emulator)) == 1


# --- downloads ----------------------------------------------------------------------------


async def test_downloaded_files_are_recorded(emulator: Emulator, db: str, tmp_path: Path) -> None:
    """The paths a result's download saved are in the job's record."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        result = await (await inpaint(client, parent, "k1"))
        paths = await result.download(tmp_path / "out")
    async with SQLiteJobStore(db) as store:
        stored = await store.get("k1")
    assert stored is not None
    assert stored.files == tuple(str(p) for p in paths)
    assert stored.state is RecordState.COMPLETED


async def test_a_stored_job_downloads_without_a_status_read(
    emulator: Emulator, db: str, tmp_path: Path
) -> None:
    """``client.download(job_id)`` of a job the store saw completed reads no status."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        result = await (await inpaint(client, parent, "k1"))
    before = len(emulator.requests)
    async with stored_client(emulator, db) as later:
        paths = await later.download(result.job_id, tmp_path)
        store = later.store
        assert store is not None
        stored = await store.get("k1")
    assert [r.path for r in emulator.requests[before:]] == [f"/files/{p.name}" for p in paths]
    assert stored is not None
    assert stored.files == tuple(str(p) for p in paths)


# --- a store that fails ---------------------------------------------------------------------


class BrokenStore(MemoryJobStore):
    """A store of the user's whose claims or updates fail (a full disk, a lost server)."""

    def __init__(self, *, claims: bool = False, puts: bool = False) -> None:
        super().__init__()
        self.fail_claims, self.fail_puts = claims, puts

    async def claim(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        if self.fail_claims:
            raise OSError(28, "No space left on device")
        return await super().claim(records)

    async def put(self, records: Sequence[JobRecord]) -> None:
        if self.fail_puts:
            raise RuntimeError("connection to the store lost")
        await super().put(records)


async def test_a_claim_that_fails_sends_nothing(emulator: Emulator) -> None:
    """When the store cannot record a submission, it is not sent: StoreError says why."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, BrokenStore(claims=True)) as client:
        with pytest.raises(StoreError, match="No space left") as caught:
            await inpaint(client, parent, "k1")
    assert isinstance(caught.value.__cause__, OSError)
    assert posts(emulator) == []


async def test_an_update_that_fails_still_returns_the_paid_job(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A job made but not recorded (the store failed after the claim) is handed back, and
    the failure is logged with the job and the key."""
    parent = emulator.seed_job("diffusion")
    store = BrokenStore(puts=True)
    async with stored_client(emulator, store) as client:
        handle = await inpaint(client, parent, "k1")
        result = await handle
    assert result.job_id == handle.job_id
    logged = caplog.text
    assert "connection to the store lost" in logged
    assert f"job {handle.job_id} of key 'k1' is not recorded" in logged


async def test_the_clients_records_show_what_its_jobs_reported_last(
    emulator: Emulator, db: str
) -> None:
    """Right after a handle resolves, ``client.records()`` shows the job finished (the
    store's own reads may lag by one grouped write)."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, db) as client:
        result = await (await inpaint(client, parent, "k1"))
        (record,) = await client.records()
        assert (record.job_id, record.state) == (result.job_id, RecordState.COMPLETED)


async def test_an_unknown_outcome_is_in_the_store_when_it_is_raised(emulator: Emulator) -> None:
    """By the time SubmissionOutcomeUnknownError reaches the caller, the store says so."""
    parent = emulator.seed_job("diffusion")
    emulator.add_fault(Fault.answer_lost("POST /api/v1/inpaint"))
    store = MemoryJobStore()
    async with stored_client(emulator, store) as client:
        with pytest.raises(SubmissionOutcomeUnknownError):
            await inpaint(client, parent, "k1")
        stored = await store.get("k1")
    assert stored is not None
    assert stored.state is RecordState.UNKNOWN
