"""Retries: reads are retried through transient faults; a paid POST is never sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import socket
import time
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import pytest
import tenacity

from legnext_async import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InsufficientCreditsError,
    InvalidRequestError,
    LegnextClient,
    MalformedResponseError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionOutcomeUnknownError,
    TaskStatus,
    TaskTimeoutError,
    TransportError,
)
from legnext_async._retry import (
    is_retryable_read,
    may_resend_submission,
    parse_retry_after,
    retry_call,
)
from legnext_async.emulator import Emulator, Fault

from .conftest import API_KEY, FAST_RETRY, MASK, SCALE, fast_poll
from .fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from legnext_async import APIStatusError, ImageResult, TaskHandle
    from legnext_async.emulator import FaultKind, RequestRecord

E = TypeVar("E", bound=BaseException)

SAMPLES = Path(__file__).resolve().parent / "wire_samples"
JOB_ROUTE = "GET /api/v1/job/*"
#: Client request timeout where a latency fault must outlast it (real seconds).
SHORT_TIMEOUT = 0.3
#: A backoff so long that a retry only happens soon if ``Retry-After`` replaced it.
SLOW_BACKOFF = RetryPolicy(attempts=3, timeout=30.0, initial_wait=3600.0, max_wait=3600.0)


def sample(name: str) -> bytes:
    """A wire sample's bytes (copied from the reference)."""
    return (SAMPLES / name).read_bytes()


@contextlib.contextmanager
def raises(kind: type[E]) -> Iterator[pytest.ExceptionInfo[E]]:
    """``pytest.raises``, then a check that the error's text never shows the API key."""
    with pytest.raises(kind) as info:
        yield info
    error: BaseException | None = info.value
    while error is not None:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        error = error.__cause__ or error.__context__


def gets(emulator: Emulator) -> list[RequestRecord]:
    """The status reads the emulator answered (or dropped)."""
    return [r for r in emulator.requests if r.method == "GET" and r.path.startswith("/api/v1/job")]


def posts(emulator: Emulator) -> list[RequestRecord]:
    """The job-creating POSTs the emulator received."""
    return [r for r in emulator.requests if r.method == "POST"]


def created(emulator: Emulator) -> list[str]:
    """Ids of the jobs that submissions created (seeded parents left out)."""
    return [job.job_id for job in emulator.jobs if not job.seeded]


async def posts_settled(emulator: Emulator, count: int) -> list[RequestRecord]:
    """The POSTs, once ``count`` are recorded (a held answer is recorded when it ends)."""
    for _ in range(250):
        if len(posts(emulator)) >= count:
            break
        await asyncio.sleep(0.02)
    return posts(emulator)


@pytest.fixture
async def reader(emulator: Emulator) -> AsyncIterator[LegnextClient]:
    """A client with test-speed retries and a short request timeout."""
    async with LegnextClient(
        api_key=API_KEY,
        base_url=emulator.base_url,
        poll=fast_poll(),
        retry=FAST_RETRY,
        request_timeout=SHORT_TIMEOUT,
    ) as client:
        yield client


async def submit(
    client: LegnextClient, emulator: Emulator, endpoint: str
) -> TaskHandle[ImageResult]:
    """Submit one paid job: an inpaint of a seeded grid, or a diffusion."""
    if endpoint == "inpaint":
        return await client.inpaint(emulator.seed_job(), 0, mask=MASK, remix_prompt="a tree")
    return await client.diffusion("a lighthouse at dusk --v 7")


# --- parse_retry_after and the backoff -----------------------------------------------------

NOW = 1_900_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("7", 7.0, id="seconds"),
        pytest.param(" 3 ", 3.0, id="padded"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-5", 0.0, id="negative-is-zero"),
        pytest.param(formatdate(NOW + 30, usegmt=True), 30.0, id="http-date"),
        pytest.param(formatdate(NOW - 30, usegmt=True), 0.0, id="http-date-past-is-zero"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("nan", None, id="nan"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """``Retry-After`` is read as delta-seconds or an HTTP date, never below zero."""
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize("retry_number", [1, 2, 3, 4, 5, 8, 20])
def test_backoff_is_full_jitter_below_the_ceiling(retry_number: int) -> None:
    """Retry n waits uniformly in ``0 .. min(max_wait, initial_wait·2^(n-1))``."""
    policy = RetryPolicy(initial_wait=0.5, max_wait=6.0)
    ceiling = min(6.0, 0.5 * 2 ** (retry_number - 1))
    rng = random.Random(retry_number)
    waits = [policy.backoff(retry_number, rng) for _ in range(2000)]
    assert all(0.0 <= wait <= ceiling for wait in waits)
    assert min(waits) < 0.05 * ceiling  # full jitter reaches down to zero
    assert max(waits) > 0.95 * ceiling  # and up to the ceiling


# --- the one retry engine: which failures, and when it stops ------------------------------

CONNECT_REFUSED = APIConnectionError("refused", method="POST", path="/v1/x", sent=False)
CONNECTION_LOST = APIConnectionError("lost", method="POST", path="/v1/x", sent=True)


@pytest.mark.parametrize(
    ("error", "read", "submission"),
    [
        pytest.param(RateLimitError(status=429, message="busy"), True, True, id="429"),
        pytest.param(CONNECT_REFUSED, True, True, id="connect-refused"),
        pytest.param(CONNECTION_LOST, True, False, id="connection-lost"),
        pytest.param(
            APITimeoutError("slow", method="POST", path="/v1/x"), True, False, id="timeout"
        ),
        pytest.param(ServerError(status=503, message="down"), True, False, id="503"),
        pytest.param(
            MalformedResponseError("junk", method="POST", path="/v1/x", status=200),
            True,
            False,
            id="malformed",
        ),
        pytest.param(
            SubmissionOutcomeUnknownError(endpoint="x", payload={}, sent_at=0.0, reason="lost"),
            False,
            False,
            id="outcome-unknown",
        ),
        pytest.param(InvalidRequestError(status=400, message="no"), False, False, id="400"),
    ],
)
def test_what_is_tried_again(error: Exception, read: bool, submission: bool) -> None:
    """A read is tried again after any transient failure; a job-creating POST only when it
    provably made no job (refused before sending, or 429)."""
    assert is_retryable_read(error) is read
    assert may_resend_submission(error) is submission


class Flaky:
    """A call that raises ``error`` every time, noting the clock time of each try."""

    def __init__(self, clock: FakeClock, error: Exception) -> None:
        self.clock = clock
        self.error = error
        self.tries: list[float] = []

    async def __call__(self) -> None:
        self.tries.append(self.clock.now() - 10_000.0)
        raise self.error


BOTH_PREDICATES = [
    pytest.param(is_retryable_read, id="read"),
    pytest.param(may_resend_submission, id="submission"),
]


@pytest.mark.parametrize("retry_if", BOTH_PREDICATES)
@pytest.mark.parametrize(
    ("policy", "retry_after", "tries"),
    [
        pytest.param(RetryPolicy(attempts=3), 0.0, [0.0, 0.0, 0.0], id="attempts"),
        pytest.param(
            RetryPolicy(attempts=100, timeout=10.0), 3.0, [0.0, 3.0, 6.0, 9.0], id="total-time"
        ),
        pytest.param(RetryPolicy(max_retry_after=120.0), 121.0, [0.0], id="retry-after-too-long"),
        pytest.param(
            RetryPolicy(attempts=2, timeout=1000.0, max_retry_after=120.0),
            120.0,
            [0.0, 120.0],
            id="retry-after-ok",
        ),
    ],
)
async def test_reads_and_submissions_stop_by_the_same_rule(
    retry_if: Callable[[BaseException], bool],
    policy: RetryPolicy,
    retry_after: float,
    tries: list[float],
) -> None:
    """Out of attempts, out of time, or asked by Retry-After to wait past max_retry_after:
    the retry engine stops alike for reads and submissions, raising the last error."""
    clock = FakeClock()
    error = RateLimitError(retry_after=retry_after, status=429, message="busy")
    call = Flaky(clock, error)
    with pytest.raises(RateLimitError) as caught:
        await clock.run(retry_call(policy, call, retry_if=retry_if, clock=clock))
    assert caught.value is error
    assert call.tries == tries


async def test_the_backoff_grows_and_stays_below_its_ceiling() -> None:
    """Without Retry-After, retry n waits below ``min(max_wait, initial_wait × 2^(n-1))``."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=6, timeout=1000.0, initial_wait=1.0, max_wait=4.0)
    call = Flaky(clock, ServerError(status=503, message="down"))
    with pytest.raises(ServerError):
        await clock.run(retry_call(policy, call, retry_if=is_retryable_read, clock=clock))
    waits = [later - earlier for earlier, later in itertools.pairwise(call.tries)]
    assert len(waits) == 5
    assert all(0.0 <= wait <= min(4.0, 2.0**n) for n, wait in enumerate(waits))


async def test_a_refused_submission_is_not_tried_again() -> None:
    """A definite refusal of a POST (400) is raised after one try."""
    clock = FakeClock()
    call = Flaky(clock, InvalidRequestError(status=400, message="no"))
    with pytest.raises(InvalidRequestError):
        await clock.run(
            retry_call(RetryPolicy(), call, retry_if=may_resend_submission, clock=clock)
        )
    assert call.tries == [0.0]


# --- read retries --------------------------------------------------------------------------

# aiohttp itself re-sends an idempotent request once when the server drops the connection,
# so each fault fires twice: the second time only this client's retry can get past it.
TRANSIENT_READ_FAULTS = [
    pytest.param(Fault.http_status(JOB_ROUTE, 429, retry_after=0, times=2), id="429"),
    pytest.param(Fault.http_status(JOB_ROUTE, 500, times=2), id="500"),
    pytest.param(Fault.http_status(JOB_ROUTE, 502, times=2), id="502"),
    pytest.param(Fault.http_status(JOB_ROUTE, 503, times=2), id="503"),
    pytest.param(Fault.disconnect(JOB_ROUTE, times=2), id="disconnect"),
    pytest.param(Fault.truncated(JOB_ROUTE, commit=True, times=2), id="truncated"),
    pytest.param(Fault.garbage(JOB_ROUTE, times=2), id="garbage-200"),
    pytest.param(Fault.latency(JOB_ROUTE, 1.0, times=2), id="timeout"),
]


@pytest.mark.parametrize("fault", TRANSIENT_READ_FAULTS)
async def test_get_task_succeeds_after_transient_fault(
    reader: LegnextClient, emulator: Emulator, fault: Fault
) -> None:
    """A status read that fails transiently is retried and returns the job."""
    job_id = emulator.seed_job()
    emulator.add_fault(fault)
    task = await reader.get_task(job_id)
    assert task.job_id == job_id
    assert task.status is TaskStatus.COMPLETED
    assert emulator.faults == ()  # both firings happened


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        pytest.param(Fault.http_status(JOB_ROUTE, 503, times=None), ServerError, id="503"),
        pytest.param(Fault.disconnect(JOB_ROUTE, times=None), APIConnectionError, id="disconnect"),
        pytest.param(Fault.truncated(JOB_ROUTE, times=None), APIConnectionError, id="truncated"),
        pytest.param(Fault.garbage(JOB_ROUTE, times=None), MalformedResponseError, id="garbage"),
    ],
)
async def test_read_gives_up_with_the_error_itself(
    reader: LegnextClient, emulator: Emulator, fault: Fault, kind: type[TransportError]
) -> None:
    """Reads that keep failing end with the client's own error, never tenacity's RetryError."""
    emulator.add_fault(fault)
    with raises(kind) as info:
        await reader.get_task(emulator.seed_job())
    assert not isinstance(info.value, tenacity.RetryError)


async def test_read_gives_up_after_attempts_with_the_last_error(emulator: Emulator) -> None:
    """With ``attempts=3``, three reads are made and the third one's error is raised."""
    for status in (500, 502, 503, 504):
        emulator.add_fault(Fault.http_status(JOB_ROUTE, status))
    policy = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02)
    async with LegnextClient(api_key=API_KEY, base_url=emulator.base_url, retry=policy) as client:
        with raises(ServerError) as info:
            await client.get_task(emulator.seed_job())
    assert info.value.status == 503
    assert [r.status for r in gets(emulator)] == [500, 502, 503]


async def test_retry_after_above_the_limit_stops_retrying(emulator: Emulator) -> None:
    """A ``Retry-After`` longer than ``max_retry_after`` raises RateLimitError at once."""
    emulator.add_fault(Fault.http_status(JOB_ROUTE, 429, retry_after=60, times=None))
    # The overall timeout is far away, so only max_retry_after can stop the retries.
    policy = RetryPolicy(attempts=5, timeout=3600.0, max_retry_after=10.0)
    async with LegnextClient(api_key=API_KEY, base_url=emulator.base_url, retry=policy) as client:
        with raises(RateLimitError) as info:
            async with asyncio.timeout(5):  # a guard: a client that waits 60 s fails here
                await client.get_task(emulator.seed_job())
    assert info.value.retry_after == 60.0
    assert len(gets(emulator)) == 1


async def test_retry_after_replaces_the_backoff(emulator: Emulator) -> None:
    """After a 429 with ``Retry-After: 0`` the read is retried at once, whatever the backoff."""
    emulator.add_fault(Fault.http_status(JOB_ROUTE, 429, retry_after=0))
    job_id = emulator.seed_job()
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, retry=SLOW_BACKOFF
    ) as client:
        task = await client.get_task(job_id)
    assert task.job_id == job_id
    assert [r.status for r in gets(emulator)] == [429, 200]


async def test_balance_read_is_retried(reader: LegnextClient, emulator: Emulator) -> None:
    """``balance()`` is a read too: a 503 then a garbage body are retried."""
    emulator.add_fault(Fault.http_status("GET /api/account/balance", 503))
    emulator.add_fault(Fault.garbage("GET /api/account/balance"))
    balance = await reader.balance()
    assert balance.available_credits == emulator.balance(API_KEY).credits
    assert emulator.faults == ()


# --- waiting through faults ----------------------------------------------------------------

WAIT_FAULTS: list[tuple[FaultKind, Fault]] = [
    ("status", Fault.http_status(JOB_ROUTE, 429, retry_after=0)),
    ("status", Fault.http_status(JOB_ROUTE, 500)),
    ("status", Fault.http_status(JOB_ROUTE, 502)),
    ("status", Fault.http_status(JOB_ROUTE, 503)),
    ("disconnect", Fault.disconnect(JOB_ROUTE)),
    ("truncate", Fault.truncated(JOB_ROUTE, commit=True)),
    ("garbage", Fault.garbage(JOB_ROUTE)),
]


async def test_wait_survives_transient_read_faults(
    client: LegnextClient, emulator: Emulator
) -> None:
    """``await handle`` polls through every kind of transient fault and returns the result."""
    handle = await client.diffusion("a lighthouse at dusk --v 7")
    for _, fault in WAIT_FAULTS:
        emulator.add_fault(fault)
    result = await handle
    assert result.job_id == handle.job_id
    assert len(result.image_urls) == 4
    fired = sorted(r.fault for r in gets(emulator) if r.fault is not None)
    assert fired == sorted(kind for kind, _ in WAIT_FAULTS)


async def test_wait_survives_more_failures_than_read_attempts(
    client: LegnextClient, emulator: Emulator
) -> None:
    """A wait is bounded by its deadline, not by ``RetryPolicy.attempts``."""
    handle = await client.diffusion("a lighthouse at dusk --v 7")
    failures = FAST_RETRY.attempts * 2
    emulator.add_fault(Fault.http_status(JOB_ROUTE, 503, times=failures))
    result = await handle
    assert result.job_id == handle.job_id
    assert sum(1 for r in gets(emulator) if r.status == 503) == failures


async def test_wait_that_never_reads_ends_at_its_deadline(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Reads failing until the deadline end the wait with TaskTimeoutError, not ServerError."""
    handle = await client.diffusion("a lighthouse at dusk --v 7")
    emulator.add_fault(Fault.http_status(JOB_ROUTE, 503, times=None))
    with raises(TaskTimeoutError) as info:
        await handle.wait(poll=fast_poll(timeout=40.0))
    assert info.value.job_id == handle.job_id
    assert any(r.status == 503 for r in gets(emulator))


# --- submission safety: no paid job is ever submitted twice --------------------------------


@pytest.mark.parametrize("endpoint", [pytest.param(e, id=e) for e in ("inpaint", "diffusion")])
@pytest.mark.parametrize(
    "via", [pytest.param(v, id=f"via-{v}") for v in ("disconnect", "status", "latency")]
)
async def test_lost_answer_is_an_unknown_outcome_sent_once(
    reader: LegnextClient,
    emulator: Emulator,
    endpoint: str,
    via: Literal["disconnect", "status", "latency"],
) -> None:
    """A POST whose job was created but whose answer was lost is never re-sent."""
    emulator.add_fault(
        Fault.answer_lost(f"POST /api/v1/{endpoint}", via=via, delay=SHORT_TIMEOUT + 0.4)
    )
    before = time.time()
    with raises(SubmissionOutcomeUnknownError) as info:
        await submit(reader, emulator, endpoint)
    after = time.time()
    error = info.value
    assert "outcome is unknown" in str(error)
    assert error.endpoint == endpoint
    assert before <= error.sent_at <= after
    assert len(created(emulator)) == 1
    sent = await posts_settled(emulator, 1)
    assert len(sent) == 1
    assert sent[0].path == f"/api/v1/{endpoint}"
    assert sent[0].job_id == created(emulator)[0]
    assert error.payload == sent[0].body


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        pytest.param(Fault.http_status("POST /api/v1/diffusion", 500), ServerError, id="500"),
        pytest.param(Fault.http_status("POST /api/v1/diffusion", 502), ServerError, id="502"),
        pytest.param(Fault.http_status("POST /api/v1/diffusion", 503), ServerError, id="503"),
        pytest.param(
            Fault.garbage("POST /api/v1/diffusion"), MalformedResponseError, id="garbage-200"
        ),
        pytest.param(Fault.truncated("POST /api/v1/diffusion"), APIConnectionError, id="truncated"),
    ],
)
async def test_failed_answer_to_a_post_is_an_unknown_outcome(
    reader: LegnextClient, emulator: Emulator, fault: Fault, cause: type[Exception]
) -> None:
    """A 5xx or unreadable answer to a POST raises SubmissionOutcomeUnknownError; one POST."""
    emulator.add_fault(fault)
    with raises(SubmissionOutcomeUnknownError) as info:
        await reader.diffusion("a lighthouse at dusk --v 7")
    assert isinstance(info.value.__cause__, cause)
    assert info.value.payload == {"text": "a lighthouse at dusk --v 7"}
    assert len(posts(emulator)) == 1


async def test_post_refused_with_429_is_sent_again(emulator: Emulator) -> None:
    """A 429 proves no job was made: the POST is re-sent (after ``Retry-After``), one job."""
    emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", 429, retry_after=0))
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=SLOW_BACKOFF
    ) as client:
        handle = await client.diffusion("a lighthouse at dusk --v 7")
    assert [r.status for r in posts(emulator)] == [429, 200]
    assert created(emulator) == [handle.job_id]


async def test_post_429_with_too_long_retry_after_raises_rate_limit(
    reader: LegnextClient, emulator: Emulator
) -> None:
    """A POST's 429 asking for more than ``max_retry_after`` raises RateLimitError, sent once."""
    emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", 429, retry_after=600))
    with raises(RateLimitError) as info:
        await reader.diffusion("a lighthouse at dusk --v 7")
    assert info.value.retry_after == 600.0
    assert len(posts(emulator)) == 1
    assert created(emulator) == []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_post_refused_connection_is_sent_again() -> None:
    """A POST that could not connect provably made no job, so it is sent again once the
    retry policy's wait is over, and lands."""
    port = free_port()
    emulator = Emulator(api_key=API_KEY, time_scale=SCALE, port=port)
    policy = RetryPolicy(attempts=3, timeout=60.0, initial_wait=2.0, max_wait=2.0)
    clock = FakeClock()
    try:
        async with LegnextClient(
            api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/api", retry=policy
        ) as client:
            client._engine.use_clock(clock)
            submission = asyncio.ensure_future(client.diffusion("a lighthouse at dusk --v 7"))
            # Refused at once (nothing listens): the retry engine then waits on the clock.
            while clock.next_due() is None and not submission.done():  # noqa: ASYNC110
                await asyncio.sleep(0)
            assert not submission.done()
            await emulator.start()
            await clock.advance(2.0)  # the backoff draws at most initial_wait
            handle = await submission
        assert [r.status for r in posts(emulator)] == [200]
        assert created(emulator) == [handle.job_id]
    finally:
        await emulator.close()


def _setup_status(status: int, name: str) -> Callable[[Emulator], None]:
    def arm(emulator: Emulator) -> None:
        emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", status, body=sample(name)))

    return arm


def _empty_wallet(emulator: Emulator) -> None:
    emulator.set_balance(API_KEY, credits=0, points=0)


@pytest.mark.parametrize(
    ("arm", "kind"),
    [
        pytest.param(_setup_status(400, "error-400-flat.docs.json"), InvalidRequestError, id="400"),
        pytest.param(_setup_status(401, "error-nested.docs.json"), AuthenticationError, id="401"),
        pytest.param(_empty_wallet, InsufficientCreditsError, id="402-emulated-wallet"),
        pytest.param(
            _setup_status(403, "error-403-task-envelope.live.json"),
            PermissionDeniedError,
            id="403",
        ),
    ],
)
async def test_post_refusal_is_raised_as_is(
    reader: LegnextClient,
    emulator: Emulator,
    arm: Callable[[Emulator], None],
    kind: type[APIStatusError],
) -> None:
    """A definite refusal (400, 401, 402, 403) of a POST raises its own error, sent once."""
    arm(emulator)
    with raises(kind) as info:
        await reader.diffusion("a lighthouse at dusk --v 7")
    assert not isinstance(info.value, SubmissionOutcomeUnknownError)
    assert len(posts(emulator)) == 1
    assert created(emulator) == []


def test_retry_after_date_in_minus_zero_zone_is_utc() -> None:
    """An HTTP date ending in ``-0000`` is read as UTC, whatever the machine's zone."""
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 -0000", now=1445412480.0) == 30.0
