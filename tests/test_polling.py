"""The ETA-aware poll schedule: its shape, what it learns, and what it costs per job."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from legnext_async import LegnextClient, PollPolicy, Task
from legnext_async._engine import StatusObserved, WatchRequested
from legnext_async._models import TaskType
from legnext_async._polling import (
    CALLBACK_GRACE,
    DEFAULT_DURATIONS,
    FIRST_READ_SHARE,
    DurationModel,
    PollState,
    ScheduleWait,
    ServerHint,
    StopAtDeadline,
    next_delay,
)
from legnext_async.emulator import Emulator

from .conftest import API_KEY, FAST_RETRY, MASK, fast_poll, job_server
from .fakes import FakeClock

EPOCH = 1_800_000_000.0  # the service's clock at "client time 0" in these tests


def stamp(seconds: float) -> str:
    """An RFC 3339 timestamp ``seconds`` after EPOCH."""
    return datetime.fromtimestamp(EPOCH + seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def task(
    status: str,
    *,
    started: float | None = None,
    ended: float | None = None,
    task_type: str = "inpaint",
) -> Task:
    """A task as the service would report it."""
    meta: dict[str, Any] = {"created_at": stamp(0)}
    if started is not None:
        meta["started_at"] = stamp(started)
    if ended is not None:
        meta["ended_at"] = stamp(ended)
    return Task.from_json({"job_id": "j", "task_type": task_type, "status": status, "meta": meta})


POLICY = PollPolicy()
LOW, HIGH = DEFAULT_DURATIONS[TaskType.INPAINT]


def delay(
    state: PollState,
    snapshot: Task | None,
    now: float,
    *,
    policy: PollPolicy = POLICY,
    durations: DurationModel | None = None,
    offset: float | None = EPOCH,
) -> float:
    """The schedule's next gap for ``snapshot`` seen at client time ``now``."""
    return next_delay(policy, durations or DurationModel(), state, snapshot, now, offset)


def test_no_status_yet_reads_at_once() -> None:
    """A handle for a job made elsewhere reads its status straight away."""
    assert delay(PollState(task_type=None), None, 0.0) == 0.0


def test_first_read_waits_a_share_of_the_shortest_run() -> None:
    """After submission the first read comes at 0.8 × the task type's shortest typical run."""
    state = PollState(task_type=TaskType.INPAINT, submitted_at=0.0)
    assert delay(state, task("pending"), 0.0) == pytest.approx(FIRST_READ_SHARE * LOW)


def test_explicit_first_delay_wins() -> None:
    """``first_delay`` overrides the share."""
    state = PollState(task_type=TaskType.INPAINT, submitted_at=0.0)
    assert delay(state, task("pending"), 0.0, policy=PollPolicy(first_delay=5.0)) == 5.0


def test_queued_jobs_are_read_rarely() -> None:
    """A job still queued after the first read is read every queued_interval."""
    state = PollState(task_type=TaskType.INPAINT, submitted_at=0.0, last_read_at=72.0)
    assert delay(state, task("pending"), 72.0) == POLICY.queued_interval
    assert delay(state, task("staged"), 72.0) == POLICY.queued_interval


def test_queued_reads_never_skip_a_short_job() -> None:
    """For a short task type the queued gap is capped at half its shortest run."""
    state = PollState(task_type=TaskType.REMOVE_BACKGROUND, submitted_at=0.0, last_read_at=8.0)
    low = DEFAULT_DURATIONS[TaskType.REMOVE_BACKGROUND][0]
    assert delay(state, task("pending", task_type="remove_background"), 8.0) == low / 2


def test_running_job_sleeps_until_its_window_opens() -> None:
    """A job running for 40 s of a 90–120 s window is next read when 90 s have passed."""
    state = PollState(task_type=TaskType.INPAINT, last_read_at=41.0)
    patient = PollPolicy(max_interval=60.0)
    assert delay(state, task("processing", started=1.0), 41.0, policy=patient) == pytest.approx(
        LOW - 40.0
    )
    # max_interval still bounds the gap, in case the job is faster than predicted.
    assert delay(state, task("processing", started=1.0), 41.0) == POLICY.max_interval


def test_reads_are_dense_inside_the_window() -> None:
    """Inside the window reads come every 2 × target_lag."""
    state = PollState(task_type=TaskType.INPAINT, last_read_at=100.0)
    assert delay(state, task("processing", started=0.0), 100.0) == 2 * POLICY.target_lag
    lag = PollPolicy(target_lag=0.75)
    assert delay(state, task("processing", started=0.0), 100.0, policy=lag) == 1.5


def test_overdue_jobs_back_off() -> None:
    """Past the window the gap grows with how overdue the job is, up to max_interval."""
    state = PollState(task_type=TaskType.INPAINT)
    gaps = [delay(state, task("processing", started=0.0), HIGH + over) for over in (10, 60, 600)]
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] == POLICY.max_interval


def test_unknown_clock_uses_the_earliest_possible_start() -> None:
    """Without the service's clock, the start is taken as the last time it was seen queued."""
    state = PollState(task_type=TaskType.INPAINT, last_queued_at=10.0, first_running_at=70.0)
    gap = delay(state, task("processing", started=999.0), 70.0, offset=None)
    assert gap == pytest.approx(LOW - 60.0)


def test_unknown_status_with_a_start_is_scheduled_as_running() -> None:
    """An undocumented status (``retry``) of a started job follows the running schedule."""
    state = PollState(task_type=TaskType.INPAINT, last_read_at=70.0)
    assert delay(state, task("retry", started=0.0), 70.0) == pytest.approx(LOW - 70.0)


def test_server_hint_is_honoured() -> None:
    """A Retry-After hint on a status answer pushes the next read back."""
    state = PollState(task_type=TaskType.INPAINT, last_read_at=100.0, hint=130.0)
    assert delay(state, task("processing", started=0.0), 100.0) == 30.0


def test_gaps_respect_min_and_max_interval() -> None:
    """Every gap after the first read lies within min_interval..max_interval."""
    policy = PollPolicy(min_interval=2.0, max_interval=10.0, target_lag=0.1)
    state = PollState(task_type=TaskType.INPAINT, last_read_at=0.0)
    for now in range(0, 400, 7):
        gap = delay(state, task("processing", started=0.0), float(now), policy=policy)
        assert 2.0 <= gap <= 10.0


def test_learned_window_replaces_the_default() -> None:
    """After three finished jobs the window is their run-time range, a second wider each side."""
    model = DurationModel()
    assert model.window(TaskType.INPAINT) == (LOW, HIGH)
    for run in (100.0, 104.0):
        model.observe(task("completed", started=0.0, ended=run))
    assert model.window(TaskType.INPAINT) == (LOW, HIGH)  # two samples are not enough
    model.observe(task("completed", started=0.0, ended=102.0))
    assert model.window(TaskType.INPAINT) == (99.0, 105.0)
    assert model.samples(TaskType.INPAINT) == 3


def test_failed_jobs_teach_nothing() -> None:
    """Run times are learned only from completed jobs."""
    model = DurationModel()
    for _ in range(5):
        model.observe(task("failed", started=0.0, ended=3.0))
    assert model.samples(TaskType.INPAINT) == 0


class FixedSchedule:
    """A PollSchedule with fixed answers, for the strategies' arithmetic."""

    def __init__(self, gap: float, *, jitter: float, pace: float = 1.0, left: float = 1e9) -> None:
        self.gap = gap
        self.jitter = jitter
        self._pace = pace
        self._left = left

    def delay_for(self, task: Task) -> float:
        return self.gap

    def error_delay(self, exc: BaseException) -> float:
        return 1.0

    def pace(self) -> float:
        return self._pace

    def remaining(self) -> float:
        return self._left

    def bounds(self) -> tuple[float, float]:
        return POLICY.min_interval, POLICY.max_interval


def after_read(schedule: FixedSchedule) -> tenacity.RetryCallState:
    """A retry state holding one successful read, with ``schedule`` as its retry object."""
    state = tenacity.RetryCallState(schedule, None, (), {})  # type: ignore[arg-type]
    state.set_result(task("processing", started=0.0))
    return state


def test_jitter_spreads_reads() -> None:
    """Jitter makes identical schedules produce different gaps (no lock-step polling)."""
    wait = ScheduleWait(random.Random(5))
    state = after_read(FixedSchedule(3.0, jitter=0.1))
    gaps = {wait(state) for _ in range(50)}
    assert len(gaps) > 40
    assert all(2.7 <= gap <= 3.3 for gap in gaps)


def test_pace_and_deadline_shape_the_gap() -> None:
    """The client's pace stretches a gap, and the deadline cuts it (and stops the loop)."""
    wait = ScheduleWait(random.Random())
    assert wait(after_read(FixedSchedule(3.0, jitter=0.0, pace=4.0))) == 12.0
    near_end = after_read(FixedSchedule(3.0, jitter=0.0, left=0.5))
    assert wait(near_end) == 0.5
    assert not StopAtDeadline()(near_end)
    assert StopAtDeadline()(after_read(FixedSchedule(3.0, jitter=0.0, left=0.0)))


def test_errors_use_the_error_gap() -> None:
    """After a failed read the gap comes from the schedule's error backoff."""
    state = tenacity.RetryCallState(FixedSchedule(3.0, jitter=0.0), None, (), {})  # type: ignore[arg-type]
    state.set_exception((OSError, OSError("reset"), None))
    assert ScheduleWait(random.Random())(state) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"min_interval": 5.0, "max_interval": 1.0}, "min_interval", id="min>max"),
        pytest.param({"first_delay": -1.0}, "first_delay", id="negative-first"),
        pytest.param({"timeout": 0.0}, "timeout", id="zero-timeout"),
        pytest.param({"jitter": 1.0}, "jitter", id="jitter-1"),
        pytest.param({"time_scale": 0.0}, "time_scale", id="zero-scale"),
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, Any], message: str) -> None:
    """PollPolicy refuses settings that cannot make a schedule."""
    with pytest.raises(ValueError, match=message):
        PollPolicy(**kwargs)


def test_default_deadlines_by_family() -> None:
    """Image jobs get 15 minutes, videos 30, unless timeout is set."""
    assert POLICY.timeout_for(TaskType.INPAINT) == 900.0
    assert POLICY.timeout_for(TaskType.VIDEO_DIFFUSION) == 1800.0
    assert PollPolicy(timeout=60.0).timeout_for(TaskType.VIDEO_DIFFUSION) == 60.0


async def test_learned_schedule_reads_an_inpaint_about_a_dozen_times() -> None:
    """Once inpaint run times are learned, a job costs about a dozen status reads."""
    async with (
        Emulator(api_key=API_KEY, seed=3, durations={"inpaint": (90.0, 120.0)}) as emu,
        LegnextClient(api_key=API_KEY, base_url=emu.base_url, retry=FAST_RETRY) as client,
    ):
        # The client's time and the emulator's jobs move together, and only in steps.
        clock = FakeClock(also=emu.advance)
        client._engine.use_clock(clock)
        parent = emu.seed_job("diffusion")

        async def run(n: int) -> list[str]:
            handles = [await client.inpaint(parent, i % 4, mask=MASK) for i in range(n)]
            await clock.run(asyncio.gather(*handles))
            return [h.job_id for h in handles]

        await run(6)  # learn
        assert client._durations.samples(TaskType.INPAINT) == 6
        measured = await run(6)
        reads = [
            sum(1 for r in emu.requests if r.method == "GET" and r.path.endswith(j))
            for j in measured
        ]
    # 1 read to see it running + about (30 s window ÷ 3 s) reads inside it.
    assert max(reads) <= 14
    assert sum(reads) / len(reads) <= 12.5


def test_fast_poll_fixture_is_on_the_test_scale() -> None:
    """The shared test policy only changes the time scale."""
    assert fast_poll().target_lag == POLICY.target_lag


async def test_estimated_time_field_is_honoured() -> None:
    """A status answer's ``estimated_time`` (seconds left) sets the next read."""
    policy = PollPolicy(time_scale=0.5)
    async with LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9/api") as client:
        clock = FakeClock(500.0)
        client._engine.use_clock(clock)
        job = client.task("job-1", poll=policy)._job
        job.on(WatchRequested(policy))
        snapshot = Task.from_json(
            {"job_id": "job-1", "task_type": "inpaint", "status": "processing"}
        )
        job.on(StatusObserved(snapshot, ServerHint("3", 42), polled=True))
        assert job.schedule is not None
        # Later than Retry-After's 3 real seconds (6 service seconds at this scale).
        assert job.schedule.hint == 500.0 / 0.5 + 42.0


async def test_learning_can_be_turned_off(emulator: Emulator) -> None:
    """With ``learn=False`` finished jobs teach the client nothing."""
    mask = MASK
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(learn=False), retry=FAST_RETRY
    ) as client:
        parent = emulator.seed_job("diffusion")
        handles = [await client.inpaint(parent, i, mask=mask) for i in range(4)]
        for handle in handles:
            await handle
        assert client._durations.samples(TaskType.INPAINT) == 0


async def test_status_answer_hints_reach_the_schedule() -> None:
    """``estimated_time`` and ``Retry-After`` on a real status answer hold the next read back."""
    from aiohttp import web

    clock = FakeClock()
    reads: list[float] = []

    async def job(request: web.Request) -> web.Response:
        reads.append(clock.now())
        body = {
            "job_id": request.match_info["job_id"],
            "task_type": "remove_background",  # typical run 15-20 s: alone, a 15 s gap
            "status": "processing" if len(reads) == 1 else "completed",
            "output": {"image_url": "https://cdn.example/x.png"},
            "estimated_time": 25,  # within max_interval (30 s), so honoured in full
        }
        return web.json_response(body, headers={"Retry-After": "0"})

    policy = PollPolicy(jitter=0.0)
    async with (
        job_server(job) as base_url,
        LegnextClient(api_key=API_KEY, base_url=base_url, poll=policy) as client,
    ):
        client._engine.use_clock(clock)
        await clock.run(client.task("job-1"))
    assert reads == [10_000.0, 10_025.0]  # the hint's 25 s, not the schedule's 15 s


# --- the safety net of a job whose callback is expected -------------------------------------


def test_with_a_callback_expected_the_first_read_waits_past_the_window() -> None:
    """The first read comes once the job should have ended and its callback come."""
    state = PollState(task_type=TaskType.INPAINT, submitted_at=0.0, expects_callback=True)
    assert delay(state, task("pending"), 0.0) == pytest.approx((1 + CALLBACK_GRACE) * HIGH)


def test_with_a_callback_expected_later_reads_are_sparse() -> None:
    """After the first read, a job still unfinished is read at most every max_interval."""
    state = PollState(
        task_type=TaskType.INPAINT, submitted_at=0.0, last_read_at=150.0, expects_callback=True
    )
    running = task("processing", started=1.0)
    assert delay(state, running, 150.0) >= POLICY.max_interval
    plain = PollState(task_type=TaskType.INPAINT, submitted_at=0.0, last_read_at=150.0)
    assert delay(plain, running, 150.0) < POLICY.max_interval


@given(
    now=st.floats(0, 2_000),
    started=st.none() | st.floats(0, 1_000),
    last_read=st.none() | st.floats(0, 2_000),
    status=st.sampled_from(["pending", "staged", "processing", "retry"]),
)
def test_the_safety_net_never_reads_sooner_than_polling_alone(
    now: float, started: float | None, last_read: float | None, status: str
) -> None:
    """Whatever the job's state, a gap with a callback expected is at least the gap polling
    alone would take: lost callbacks never cost more reads."""
    snapshot = task(status, started=started if status == "processing" else None)
    alone = PollState(task_type=TaskType.INPAINT, submitted_at=0.0, last_read_at=last_read)
    netted = attrs.evolve(alone, expects_callback=True)
    assert delay(netted, snapshot, now) >= delay(alone, snapshot, now)
