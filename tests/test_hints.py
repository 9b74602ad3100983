"""Server hints are bounded: no Retry-After, estimated_time or run of 429s stretches the wait
between two reads past ``max_interval``, nor makes a retry loop sleep past its policy.

Decisions are checked on a job's watch with a clock that stands still; the end-to-end test
reads from a real server and checks the next read time the engine decided, without sleeping.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

import pytest
import tenacity
from aiohttp import web

from legnext_async import (
    APIConnectionError,
    LegnextClient,
    MalformedResponseError,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    ServerError,
    Task,
)
from legnext_async._engine import ReadFailed, StatusObserved, Watch, WatchRequested
from legnext_async._polling import ScheduleWait, ServerHint
from legnext_async._retry import parse_retry_after

from .conftest import API_KEY, FAST_RETRY
from .fakes import FakeClock
from .hostile import job, recording

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: The time at which the clock of the decision tests stands (real seconds).
NOW = 5_000.0
#: A date as far ahead as HTTP dates go.
YEAR_9999 = "Fri, 31 Dec 9999 23:59:59 GMT"
#: Bounds small enough that any unbounded hint or pace shows.
POLICY = PollPolicy(min_interval=2.0, max_interval=10.0, queued_interval=5.0)
#: The same without jitter, for exact gaps.
EXACT = PollPolicy(min_interval=2.0, max_interval=10.0, queued_interval=5.0, jitter=0.0)
QUEUED = Task.from_json({"job_id": "job-1", "task_type": "inpaint", "status": "pending"})

ABSURD_HINTS = [
    pytest.param(ServerHint("999999"), id="retry-after-999999"),
    pytest.param(ServerHint("inf"), id="retry-after-inf"),
    pytest.param(ServerHint("Infinity"), id="retry-after-Infinity"),
    pytest.param(ServerHint("1e308"), id="retry-after-1e308"),
    pytest.param(ServerHint("nan"), id="retry-after-nan"),
    pytest.param(ServerHint("-5"), id="retry-after-negative"),
    pytest.param(ServerHint(YEAR_9999), id="retry-after-year-9999"),
    pytest.param(ServerHint(None, math.inf), id="eta-Infinity"),
    pytest.param(ServerHint(None, 1e308), id="eta-1e308"),
    pytest.param(ServerHint(None, math.nan), id="eta-NaN"),
    pytest.param(ServerHint(None, -1), id="eta-negative"),
    pytest.param(ServerHint(None, "999999"), id="eta-string"),
    pytest.param(ServerHint("1e308", 1e308), id="both-huge"),
]
PACES = [
    pytest.param(1.0, id="pace-1"),
    pytest.param(4.0, id="pace-4"),
    pytest.param(16.0, id="pace-16"),
    pytest.param(1e6, id="pace-1e6"),
]


def client() -> LegnextClient:
    """A client that never connects (the decision tests send nothing)."""
    return LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9/api")


def fixed_run(legnext: LegnextClient, policy: PollPolicy) -> Watch:
    """A watch of ``job-1`` whose clock stands still at :data:`NOW`."""
    legnext._engine.use_clock(FakeClock(NOW))
    job = legnext.task("job-1", poll=policy)._job
    job.on(WatchRequested(policy))
    assert job.watch is not None
    return job.watch


def gap_after_read(run: Watch, task: Task, hint: ServerHint) -> float:
    """Service seconds until the read the engine plans after the watch's read saw ``task``
    with ``hint``."""
    due = run.job.on(StatusObserved(task, hint, polled=True))
    assert due is not None
    return (due - NOW) / run.scale


def gap_after_error(run: Watch, error: Exception) -> float:
    """Service seconds until the read the engine plans after the watch's read failed with
    ``error``."""
    due = run.job.on(ReadFailed(error, polled=True))
    assert due is not None
    return (due - NOW) / run.scale


def within(policy: PollPolicy, gaps: list[float]) -> bool:
    """Whether every gap lies in the policy's bounds (give or take float rounding of the
    conversion between service and loop seconds)."""
    slack = 1e-9 * policy.max_interval
    return all(policy.min_interval - slack <= gap <= policy.max_interval + slack for gap in gaps)


def rate_limited(retry_after: float | None) -> RateLimitError:
    """A 429 on a status read, as the client raises it."""
    return RateLimitError(retry_after=retry_after, status=429, message="Too Many Requests")


# --- reading the hints ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("999999", 999999.0, id="huge"),
        pytest.param("1e308", 1e308, id="1e308"),
        pytest.param("inf", None, id="inf"),
        pytest.param("Infinity", None, id="Infinity"),
        pytest.param("-inf", None, id="minus-inf"),
        pytest.param("1e999", None, id="overflow"),
        pytest.param("NaN", None, id="nan"),
        pytest.param("-5", 0.0, id="negative"),
    ],
)
def test_retry_after_that_is_not_finite_is_no_hint(value: str, expected: float | None) -> None:
    """A ``Retry-After`` that is not a finite number counts as absent; huge ones are kept."""
    assert parse_retry_after(value) == expected


def test_retry_after_in_year_9999_is_a_finite_wait() -> None:
    """An HTTP date in year 9999 is a finite (huge) wait, for the policies to refuse."""
    wait = parse_retry_after(YEAR_9999)
    assert wait is not None
    assert 2e11 < wait < math.inf


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        pytest.param(ServerHint("30"), 130.0, id="retry-after"),
        pytest.param(ServerHint(None, 40), 140.0, id="eta"),
        pytest.param(ServerHint("inf", math.inf), None, id="both-infinite"),
        pytest.param(ServerHint(None, math.nan), None, id="eta-nan"),
        pytest.param(ServerHint(None, True), None, id="eta-bool"),
        pytest.param(ServerHint(None, "5"), None, id="eta-string"),
        pytest.param(ServerHint("nan", -3), None, id="both-junk"),
    ],
)
def test_server_hint_reads_only_finite_numbers(hint: ServerHint, expected: float | None) -> None:
    """A status answer's hint is a time only when it is a finite number of seconds."""
    assert hint.at(100.0, 1.0) == expected


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param(math.nan, id="nan"),
        pytest.param(-1.0, id="negative"),
        pytest.param(None, id="none"),
    ],
)
def test_retry_wait_ignores_junk_hints(retry_after: float | None) -> None:
    """A ``retry_after`` of NaN or below zero gives the backoff, never a NaN sleep."""
    policy = RetryPolicy(initial_wait=1.0, max_wait=1.0)
    wait = policy.wait_for(rate_limited(retry_after), 1)
    assert 0.0 <= wait <= 1.0


def test_retry_wait_keeps_an_infinite_hint_for_the_policy_to_refuse() -> None:
    """An infinite ``retry_after`` stays infinite: longer than any ``max_retry_after``."""
    assert RetryPolicy().wait_for(rate_limited(math.inf), 1) == math.inf


# --- gaps between reads -------------------------------------------------------------------


@pytest.mark.parametrize("pace", PACES)
@pytest.mark.parametrize("hint", ABSURD_HINTS)
async def test_a_gap_after_a_read_stays_within_the_policy(hint: ServerHint, pace: float) -> None:
    """Whatever the answer's hint and the client's pace, the next read comes within
    ``min_interval..max_interval``."""
    async with client() as legnext:
        legnext._budget.pace.factor = pace
        gap = gap_after_read(fixed_run(legnext, POLICY), QUEUED, hint)
    assert POLICY.min_interval <= gap <= POLICY.max_interval


@pytest.mark.parametrize(
    ("hint", "pace", "expected"),
    [
        pytest.param(ServerHint(), 1.0, 5.0, id="no-hint"),
        pytest.param(ServerHint("8"), 1.0, 8.0, id="retry-after-within"),
        pytest.param(ServerHint(None, 7), 1.0, 7.0, id="eta-within"),
        pytest.param(ServerHint("999999"), 1.0, 10.0, id="retry-after-capped"),
        pytest.param(ServerHint(None, 1e308), 1.0, 10.0, id="eta-capped"),
        pytest.param(ServerHint("inf"), 1.0, 5.0, id="non-finite-ignored"),
        pytest.param(ServerHint(), 1.5, 7.5, id="pace-within"),
        pytest.param(ServerHint(), 4.0, 10.0, id="pace-capped"),
    ],
)
async def test_hints_and_pace_count_up_to_max_interval(
    hint: ServerHint, pace: float, expected: float
) -> None:
    """A hint or the pace lengthens the gap as asked, up to ``max_interval`` and no further."""
    async with client() as legnext:
        legnext._budget.pace.factor = pace
        assert gap_after_read(fixed_run(legnext, EXACT), QUEUED, hint) == expected


async def test_jitter_never_takes_a_gap_below_min_interval() -> None:
    """A gap at ``min_interval`` is jittered only upwards."""
    policy = PollPolicy(min_interval=5.0, max_interval=10.0, queued_interval=5.0, jitter=0.5)
    async with client() as legnext:
        gaps = [gap_after_read(fixed_run(legnext, policy), QUEUED, ServerHint()) for _ in range(50)]
    assert min(gaps) >= 5.0
    assert max(gaps) > 5.0


@pytest.mark.parametrize("pace", PACES)
@pytest.mark.parametrize(
    "error",
    [
        pytest.param(rate_limited(999999.0), id="429-retry-after-999999"),
        pytest.param(rate_limited(1e308), id="429-retry-after-1e308"),
        pytest.param(rate_limited(math.inf), id="429-retry-after-inf"),
        pytest.param(rate_limited(math.nan), id="429-retry-after-nan"),
        pytest.param(rate_limited(-5.0), id="429-retry-after-negative"),
        pytest.param(rate_limited(None), id="429-backoff"),
        pytest.param(ServerError(status=503, message="down"), id="503"),
        pytest.param(
            APIConnectionError("reset", method="GET", path="/v1/job/job-1", sent=True),
            id="connection",
        ),
        pytest.param(
            MalformedResponseError("junk", method="GET", path="/v1/job/job-1", status=200),
            id="malformed",
        ),
    ],
)
async def test_a_gap_after_a_failed_read_stays_within_the_policy(
    error: Exception, pace: float
) -> None:
    """After a failed read the next comes within the policy's bounds, even on a fast clock
    where the retry policy's real-second backoff would be thousands of service seconds."""
    policy = PollPolicy(min_interval=2.0, max_interval=10.0, time_scale=0.001)
    async with client() as legnext:
        legnext._budget.pace.factor = pace
        run = fixed_run(legnext, policy)
        gaps = [gap_after_error(run, error) for _ in range(6)]  # the backoff grows per error
    assert within(policy, gaps), gaps


class FirstRead:
    """A schedule whose gap is the first read after a submission (beyond ``max_interval``)."""

    jitter = 0.1

    def __init__(self, gap: float, pace: float) -> None:
        self.gap = gap
        self._pace = pace

    def delay_for(self, task: Task) -> float:
        return self.gap

    def error_delay(self, exc: BaseException) -> float:
        return self.gap

    def pace(self) -> float:
        return self._pace

    def remaining(self) -> float:
        return 1e9

    def bounds(self) -> tuple[float, float]:
        return 1.0, 30.0


@pytest.mark.parametrize(
    ("planned", "pace", "low", "high"),
    [
        pytest.param(72.0, 1.0, 64.7, 72.0, id="first-read"),
        pytest.param(72.0, 16.0, 72.0, 72.0, id="first-read-paced"),
        pytest.param(0.0, 16.0, 0.0, 0.0, id="read-now"),
        pytest.param(0.5, 1.0, 0.5, 0.55, id="short-first-read"),
        pytest.param(0.5, 1e6, 30.0, 30.0, id="short-first-read-paced"),
    ],
)
def test_gaps_outside_the_bounds_only_move_towards_them(
    planned: float, pace: float, low: float, high: float
) -> None:
    """A gap the schedule set outside ``min_interval..max_interval`` is jittered and paced
    only towards that range, never further from it."""
    state = tenacity.RetryCallState(FirstRead(planned, pace), None, (), {})  # type: ignore[arg-type]
    state.set_result(QUEUED)
    wait = ScheduleWait(random.Random(3))
    gaps = [wait(state) for _ in range(50)]
    assert all(low <= gap <= high for gap in gaps)


# --- the retry loops ----------------------------------------------------------------------


def answer_429(retry_after: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An answer of 429 with ``Retry-After: retry_after`` to every request."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": 429, "message": "slow down"}, status=429, headers={"Retry-After": retry_after}
        )

    return answer


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param("999999", id="999999"),
        pytest.param("1e308", id="1e308"),
        pytest.param(YEAR_9999, id="year-9999"),
    ],
)
async def test_a_read_stops_retrying_at_once_on_a_huge_retry_after(retry_after: str) -> None:
    """A one-off read refuses to wait for a ``Retry-After`` beyond ``max_retry_after``."""
    policy = RetryPolicy(attempts=5, timeout=1e9, max_retry_after=10.0)
    async with (
        recording(answer_429(retry_after)) as server,
        LegnextClient(api_key=API_KEY, base_url=server.base_url, retry=policy) as legnext,
    ):
        with pytest.raises(RateLimitError) as info:
            await legnext.get_task("job-1")
    assert info.value.retry_after is not None
    assert info.value.retry_after > policy.max_retry_after
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param("inf", id="inf"),
        pytest.param("nan", id="nan"),
        pytest.param("1e999", id="1e999"),
    ],
)
async def test_a_read_backs_off_on_a_retry_after_that_is_no_number(retry_after: str) -> None:
    """A ``Retry-After`` that is not a finite number is no hint: the read backs off as usual."""
    async with (
        recording(answer_429(retry_after)) as server,
        LegnextClient(api_key=API_KEY, base_url=server.base_url, retry=FAST_RETRY) as legnext,
    ):
        with pytest.raises(RateLimitError) as info:
            await legnext.get_task("job-1")
    assert info.value.retry_after is None
    assert len(server.requests) == FAST_RETRY.attempts


async def test_a_submission_stops_at_once_on_a_huge_retry_after() -> None:
    """A job-creating POST answered 429 with ``Retry-After: 1e308`` is not waited for."""
    async with (
        recording(answer_429("1e308")) as server,
        LegnextClient(api_key=API_KEY, base_url=server.base_url, retry=FAST_RETRY) as legnext,
    ):
        with pytest.raises(RateLimitError) as info:
            await legnext.diffusion("a lighthouse")
    assert info.value.retry_after == 1e308
    assert len(server.requests) == 1


# --- end to end -----------------------------------------------------------------------------


async def test_a_polled_jobs_next_read_stays_within_bounds_whatever_the_server_says() -> None:
    """Against a server answering 429s and absurd hints, every next read the run plans comes
    within ``min_interval..max_interval`` of the (fixed) now."""
    year_9999 = {"Retry-After": YEAR_9999}
    script: list[tuple[int, dict[str, str], dict[str, Any]]] = [
        (429, {"Retry-After": "999999"}, {"message": "slow down"}),
        (429, {"Retry-After": "inf"}, {"message": "slow down"}),
        (200, {"Retry-After": "1e308"}, job("job-1", "processing", estimated_time=math.inf)),
        (200, year_9999, job("job-1", "processing", estimated_time=1e308)),
        (200, {"Retry-After": "nan"}, job("job-1", "processing", estimated_time=999999)),
    ]

    async def answer(request: web.Request) -> web.Response:
        status, headers, body = script.pop(0)
        # json.dumps writes inf as the literal Infinity, which Python's json reads back.
        return web.json_response(body, status=status, headers=headers)

    policy = PollPolicy(time_scale=1.0)
    async with (
        recording(answer) as server,
        LegnextClient(api_key=API_KEY, base_url=server.base_url, retry=FAST_RETRY) as legnext,
    ):
        run = fixed_run(legnext, policy)
        gaps = []
        while script:
            due = await run.poll()
            assert due is not None
            gaps.append(due - NOW)
    assert len(server.requests) == 5
    assert within(policy, gaps), gaps
