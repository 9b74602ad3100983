"""The job engine: a job's phases, the events that move it, and what follows from them.

Every test runs on a :class:`FakeClock` against a scripted service on 127.0.0.1: time moves
only when the test moves it, so schedules, deadlines, back-off and slots are checked
exactly, with no sleep and no bound that depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from aiohttp import web

from legnext_async import (
    ImageResult,
    InvalidRequestError,
    LegnextClient,
    NotFoundError,
    PollPolicy,
    RetryPolicy,
    SubmissionOutcomeUnknownError,
    Task,
    TaskHandle,
    TaskTimeoutError,
)
from legnext_async._engine import CallbackReceived, Job, Phase
from legnext_async._results import result_for

from .conftest import API_KEY, MASK
from .fakes import FakeClock
from .hostile import job, recording

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Gaps of 1 to 30 s, no jitter (exact times), a 10-minute deadline.
POLICY = PollPolicy(jitter=0.0, timeout=600.0)
#: Retries that back off by whole seconds.
RETRY = RetryPolicy(attempts=3, timeout=60.0, initial_wait=1.0, max_wait=1.0)
PARENT = "parent-1"
PACKAGE = Path(__file__).resolve().parent.parent / "legnext_async"


@attrs.define
class Service:
    """A scripted Legnext: each POST makes the next job (answered ``pending``); each job's
    reads answer ``states[job_id]``: a status, or an HTTP error status. The clock stamps
    the request log."""

    clock: FakeClock
    states: dict[str, str | int] = attrs.field(factory=dict)
    post_status: int = 200
    created: list[str] = attrs.field(factory=list)
    reads: list[tuple[str, float]] = attrs.field(factory=list)

    async def answer(self, request: web.Request) -> web.Response:
        """Answer one request as scripted."""
        if request.method == "POST":
            if self.post_status != 200:
                body = {"code": self.post_status, "message": "scripted"}
                return web.json_response(body, status=self.post_status)
            job_id = f"job-{len(self.created) + 1}"
            self.created.append(job_id)
            self.states.setdefault(job_id, "pending")
            return web.json_response(job(job_id, "pending", task_type="inpaint"))
        job_id = request.path.rsplit("/", 1)[-1]
        self.reads.append((job_id, self.clock.now()))
        state = self.states.get(job_id, "processing")
        if isinstance(state, int):
            return web.json_response({"code": state, "message": "scripted"}, status=state)
        return web.json_response(job(job_id, state, task_type="inpaint"))

    def read_times(self, job_id: str) -> list[float]:
        """When ``job_id`` was read, on the clock."""
        return [at for read, at in self.reads if read == job_id]


@attrs.frozen
class Rig:
    """A client on a fake clock, and the service it talks to."""

    client: LegnextClient
    clock: FakeClock
    service: Service

    async def submit(self) -> TaskHandle[ImageResult]:
        """Submit one inpaint (a real POST; the clock does not move)."""
        return await self.client.inpaint(PARENT, 0, mask=MASK, remix_prompt="a tree")

    def gets(self) -> int:
        """Status reads so far."""
        return len(self.service.reads)


@contextlib.asynccontextmanager
async def rigged(**options: Any) -> AsyncIterator[Rig]:
    """A :class:`Rig`: a client (``options`` passed on) on a fresh fake clock."""
    clock = FakeClock()
    service = Service(clock)
    async with (
        recording(service.answer) as server,
        LegnextClient(
            api_key=API_KEY, base_url=server.base_url, poll=POLICY, retry=RETRY, **options
        ) as client,
    ):
        client._engine.use_clock(clock)
        yield Rig(client, clock, service)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A rig with no limit of active jobs."""
    async with rigged() as made:
        yield made


def job_of(handle: TaskHandle[Any]) -> Job:
    """The engine's job behind ``handle``."""
    return handle._job


def phase(job: Job) -> Phase:
    """The job's phase now."""
    return job.phase


def task(job_id: str, status: str) -> Task:
    """A snapshot of ``job_id`` in ``status``, as the service would send it."""
    return Task.from_json(job(job_id, status, task_type="inpaint"))


# --- phases and schedule --------------------------------------------------------------------


async def test_a_submitted_job_goes_through_its_phases(rig: Rig) -> None:
    """A submission is pending, then running, then completed, as its reads say; the slot it
    held is given back at the end."""
    handle = await rig.submit()
    job = job_of(handle)
    assert phase(job) is Phase.PENDING
    assert rig.client._slots.active == 1
    waiter = asyncio.ensure_future(handle.wait())
    rig.service.states[job.job_id] = "processing"
    await rig.clock.advance(72.0)  # the first read: 0.8 × an inpaint's shortest 90 s
    assert phase(job) is Phase.RUNNING
    rig.service.states[job.job_id] = "completed"
    result = await rig.clock.run(waiter)
    assert phase(job) is Phase.COMPLETED
    assert result.task is job.task
    assert rig.client._slots.active == 0


async def test_the_first_read_of_a_submission_waits_for_the_schedule(rig: Rig) -> None:
    """The submission's answer stands for the first read: none comes before 0.8 × 90 s."""
    handle = await rig.submit()
    waiter = asyncio.ensure_future(handle.wait())
    await rig.clock.advance(71.9)
    assert rig.gets() == 0
    await rig.clock.advance(0.1)
    assert rig.service.read_times(handle.job_id) == [10_072.0]
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)


async def test_a_job_made_elsewhere_is_read_at_once_then_within_the_bounds(rig: Rig) -> None:
    """A ``client.task`` handle reads when awaited, then every gap lies within the policy."""
    handle = rig.client.task("elsewhere")
    waiter = asyncio.ensure_future(handle.wait())
    await rig.clock.advance(300.0)
    times = rig.service.read_times("elsewhere")
    assert times[0] == 10_000.0
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps
    assert all(POLICY.min_interval <= gap <= POLICY.max_interval for gap in gaps)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)


# --- deadlines ------------------------------------------------------------------------------


async def test_a_deadline_gives_up_and_frees_an_occupied_slot(rig: Rig) -> None:
    """At the deadline the wait raises TaskTimeoutError, the job is given up, and the slot
    it occupied while watched is free; awaiting again resumes with a fresh deadline."""
    handle = rig.client.task("slow")
    waiter = asyncio.ensure_future(handle.wait())
    await rig.clock.settle()
    assert rig.client._slots.active == 1
    await rig.clock.advance(599.0)
    assert not waiter.done()
    await rig.clock.advance(1.0)
    with pytest.raises(TaskTimeoutError) as caught:
        await waiter
    assert caught.value.job_id == "slow"
    job = job_of(handle)
    assert phase(job) is Phase.GIVEN_UP
    assert rig.client._slots.active == 0
    assert not rig.client._engine.polling
    assert rig.service.read_times("slow")[-1] == 10_600.0  # the last read, at the deadline
    resumed = asyncio.ensure_future(handle.wait())
    await rig.clock.settle()
    assert phase(job) is Phase.RUNNING
    assert rig.client._slots.active == 1
    rig.service.states["slow"] = "completed"
    assert isinstance(await rig.clock.run(resumed), ImageResult)
    assert rig.client._slots.active == 0


async def test_a_deadline_keeps_the_slot_of_a_submitted_job(rig: Rig) -> None:
    """A job this client submitted still runs when its wait gives up: it keeps its slot."""
    handle = await rig.submit()
    with pytest.raises(TaskTimeoutError):
        await rig.clock.run(handle.wait())
    assert phase(job_of(handle)) is Phase.GIVEN_UP
    assert rig.client._slots.active == 1


async def test_failed_reads_back_off_within_the_bounds_until_the_deadline(rig: Rig) -> None:
    """Reads answered 503 are retried by the poll's back-off, each gap within the policy,
    and the wait ends at its deadline with TaskTimeoutError, never with the 503."""
    rig.service.states["flaky"] = 503
    with pytest.raises(TaskTimeoutError):
        await rig.clock.run(rig.client.task("flaky").wait())
    times = rig.service.read_times("flaky")
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) >= 600 / POLICY.max_interval
    assert all(POLICY.min_interval <= gap <= POLICY.max_interval for gap in gaps)
    assert times[-1] == 10_600.0


# --- slots ----------------------------------------------------------------------------------


async def test_a_404_loses_the_job_and_frees_its_slot() -> None:
    """A job the service answers 404 for is lost: its slot goes to the waiting submission."""
    async with rigged(max_active_jobs=1) as rig:
        first = await rig.submit()  # never awaited
        rig.service.states[first.job_id] = 404
        second = asyncio.ensure_future(rig.submit())
        await rig.clock.settle()
        assert not second.done()  # it waits for the only slot
        await rig.clock.advance(72.0)  # the waiting submission has the first job polled
        assert phase(job_of(first)) is Phase.LOST
        async with asyncio.timeout(10):  # a guard: the POST is real I/O, the slot is free
            handle = await second
        assert handle.job_id == "job-2"
        assert rig.client._slots.active == 1
        with pytest.raises(NotFoundError):
            await rig.clock.run(first.wait())  # awaited again: read again, lost again
        assert rig.client._slots.active == 1


async def test_cancelling_the_last_waiter_keeps_polling_while_a_submission_waits() -> None:
    """With a submission waiting for its slot, a job goes on being polled after its last
    waiter is cancelled, so that the slot frees when the job ends."""
    async with rigged(max_active_jobs=1) as rig:
        first = await rig.submit()
        rig.service.states[first.job_id] = "processing"
        waiter = asyncio.ensure_future(first.wait())
        second = asyncio.ensure_future(rig.submit())
        await rig.clock.advance(72.0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        reads = rig.gets()
        await rig.clock.advance(60.0)
        assert rig.gets() > reads  # still polled: the submission needs the slot
        assert not second.done()
        rig.service.states[first.job_id] = "completed"
        await rig.clock.advance(30.0)
        assert phase(job_of(first)) is Phase.COMPLETED
        async with asyncio.timeout(10):  # a guard: the POST is real I/O, the slot is free
            assert (await second).job_id == "job-2"


async def test_cancelling_the_last_waiter_stops_polling_and_keeps_the_slot(rig: Rig) -> None:
    """With no submission waiting, the last waiter's cancellation stops the polling; the job
    still runs, so it keeps its slot."""
    handle = await rig.submit()
    waiter = asyncio.ensure_future(handle.wait())
    await rig.clock.advance(72.0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    reads = rig.gets()
    await rig.clock.advance(3600.0)
    assert rig.gets() == reads
    assert rig.client._slots.active == 1
    assert job_of(handle).watch is None


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(400, InvalidRequestError, id="refused"),
        pytest.param(500, SubmissionOutcomeUnknownError, id="outcome-unknown"),
    ],
)
async def test_a_failed_submission_frees_its_slot(status: int, error: type[Exception]) -> None:
    """A submission that makes no handle, refused or of unknown outcome, gives its slot
    back, and the next one goes at once."""
    async with rigged(max_active_jobs=1) as rig:
        rig.service.post_status = status
        with pytest.raises(error):
            await rig.submit()
        assert rig.client._slots.active == 0
        rig.service.post_status = 200
        assert (await rig.submit()).job_id == "job-1"


def test_a_slot_is_given_back_in_one_place() -> None:
    """Outside the slots themselves, only ``JobEngine.free_slot`` gives a job slot back."""
    calls = {
        path.name: len(re.findall(r"\.release\(", path.read_text()))
        for path in PACKAGE.glob("*.py")
        if path.name != "_budget.py"
    }
    assert {name: count for name, count in calls.items() if count} == {"_engine.py": 1}
    engine = (PACKAGE / "_engine.py").read_text()
    free_slot = engine[engine.index("def free_slot") :]
    assert ".release(" in free_slot[: free_slot.index("\n    def ", 1)]


# --- events from outside: refresh, callbacks, records ---------------------------------------


async def test_a_refresh_that_sees_the_finish_ends_the_wait(rig: Rig) -> None:
    """A finish seen by ``refresh()`` wakes the waiters at once: no poll read is needed."""
    handle = rig.client.task("done-soon")
    waiter = asyncio.ensure_future(handle.wait())
    await asyncio.sleep(0)  # joined; its first read is due but the clock has not moved
    rig.service.states["done-soon"] = "completed"
    await handle.refresh()
    await rig.clock.settle()
    assert waiter.done()
    result = await waiter
    assert result.job_id == "done-soon"
    assert rig.gets() == 1  # the refresh
    assert rig.client._slots.active == 0


async def test_a_callback_resolves_the_waiters_like_a_read(rig: Rig) -> None:
    """A status received from outside (a callback) ends the wait as a read would, before
    any read was made, and frees the slot."""
    handle = rig.client.task("called-back")
    waiter = asyncio.ensure_future(handle.wait())
    await asyncio.sleep(0)
    job = job_of(handle)
    job.on(CallbackReceived(task("called-back", "completed")))
    await rig.clock.settle()
    assert waiter.done()
    result = await waiter
    assert result.task.job_id == "called-back"
    assert phase(job) is Phase.COMPLETED
    assert rig.gets() == 0
    assert rig.client._slots.active == 0
    assert not rig.client._engine.polling


async def test_a_running_callback_updates_the_snapshot_only(rig: Rig) -> None:
    """A callback that the job runs is news for followers, and the wait goes on."""
    handle = rig.client.task("called-back")
    waiter = asyncio.ensure_future(handle.wait())
    await asyncio.sleep(0)
    job = job_of(handle)
    job.on(CallbackReceived(task("called-back", "processing")))
    assert phase(job) is Phase.RUNNING
    assert handle.last_task is not None
    assert handle.last_task.status.value == "processing"
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)


async def test_a_callback_about_another_job_is_ignored(rig: Rig) -> None:
    """A callback naming another job changes nothing."""
    handle = rig.client.task("mine")
    job_of(handle).on(CallbackReceived(task("theirs", "completed")))
    assert handle.last_task is None
    assert phase(job_of(handle)) is Phase.PENDING


async def test_a_callback_settles_a_submission_whose_answer_was_lost(rig: Rig) -> None:
    """A job of unknown outcome learns its id and status from its callback."""
    job = rig.client._engine.restore(None)
    assert phase(job) is Phase.OUTCOME_UNKNOWN
    job.on(CallbackReceived(task("found-1", "completed")))
    assert job.job_id == "found-1"
    assert phase(job) is Phase.COMPLETED
    result = await TaskHandle(job, result_for, rig.client)
    assert result.job_id == "found-1"
    assert rig.gets() == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("pending", Phase.PENDING, id="pending"),
        pytest.param("processing", Phase.RUNNING, id="running"),
        pytest.param("failed", Phase.FAILED, id="failed"),
        pytest.param("completed", Phase.COMPLETED, id="completed"),
    ],
)
async def test_a_restored_record_is_in_the_phase_of_its_snapshot(
    rig: Rig, status: str, expected: Phase
) -> None:
    """A job restored from a record starts in the phase its last snapshot says, with no
    slot until it is watched."""
    job = rig.client._engine.restore("stored-1", task=task("stored-1", status))
    assert phase(job) is expected
    assert job.job_id == "stored-1"
    assert job.ticket is None


async def test_a_restored_running_job_is_read_at_once_when_awaited(rig: Rig) -> None:
    """The record's snapshot is old news: awaiting the restored job reads it at once, and
    the job holds a slot while watched."""
    job = rig.client._engine.restore(
        "stored-1", task=task("stored-1", "processing"), sent_at=time.time() - 100.0
    )
    handle = TaskHandle(job, result_for, rig.client)
    waiter = asyncio.ensure_future(handle.wait())
    await rig.clock.advance(0.0)
    assert rig.service.read_times("stored-1") == [10_000.0]
    assert rig.client._slots.active == 1
    rig.service.states["stored-1"] = "completed"
    await rig.clock.run(waiter)
    assert rig.client._slots.active == 0


async def test_a_restored_finished_job_answers_without_a_request(rig: Rig) -> None:
    """Awaiting a restored completed job gives its result straight from the record."""
    job = rig.client._engine.restore("stored-1", task=task("stored-1", "completed"))
    result = await TaskHandle(job, result_for, rig.client)
    assert result.job_id == "stored-1"
    assert rig.gets() == 0
