"""Several real worker processes on one account, coordinated through a real Redis server.

Each worker is a process of its own (``worker_driver.py``) with a ``RedisCoordinator``; the
emulator runs here, limited to 6 jobs at once and answering 429 past that, so it sees every
request of every worker. The group must create each job once, stay within the account's
limit, learn the limit with one 429 for all, and get over a worker's SIGKILL, a Redis
restart and callbacks that reach the wrong worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import signal
import time
from typing import TYPE_CHECKING, Any

import redis

from legnext_async import RecordState
from legnext_async._client import SUBMISSIONS_IN_FLIGHT
from legnext_async._coordination import account_of
from legnext_async.emulator import Emulator
from legnext_async.redis import RedisJobStore

from .conftest import eventually
from .worker_driver import API_KEY, Worker, start_worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from legnext_async import JobRecord

    from .redis_server import RedisServer


LIMIT = 6
#: The workers' clock: an inpaint takes about a quarter of a second.
SCALE = 0.0025
DURATIONS = {"inpaint": (90.0, 120.0)}
NAMESPACE = "legnext"
#: Seconds a killed worker's slots outlive it (short, so the test is quick).
LEASE = "1.5"
SECRET = "whsec-workers-0123456789"


@contextlib.asynccontextmanager
async def account(**options: Any) -> AsyncIterator[tuple[Emulator, str]]:
    """An emulator limited to :data:`LIMIT` jobs at once, and a grid to inpaint."""
    async with Emulator(
        api_key=API_KEY,
        time_scale=SCALE,
        seed=10,
        durations=DURATIONS,
        concurrency_limit=LIMIT,
        over_limit="reject",
        request_log_limit=None,
        **options,
    ) as emulator:
        yield emulator, emulator.seed_job("diffusion")


@contextlib.asynccontextmanager
async def workers(
    emulator: Emulator, parent: str, names: list[str], *options: str
) -> AsyncIterator[list[Worker]]:
    """Worker processes, all ready; killed if the block fails before they end."""
    started = await asyncio.gather(
        *(start_worker(emulator.base_url, parent, name, *options) for name in names)
    )
    try:
        yield list(started)
    finally:
        for worker in started:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()


def go(group: list[Worker]) -> None:
    """Let every worker of ``group`` start its batch."""
    for worker in group:
        worker.tell("go")


def created_by_key(emulator: Emulator) -> dict[str, list[str]]:
    """The jobs the emulator created, by the key (the remix prompt) whose POST made them."""
    made: dict[str, list[str]] = collections.defaultdict(list)
    for record in emulator.requests:
        if record.method == "POST" and record.job_id is not None:
            assert isinstance(record.body, dict)
            made[record.body["remixPrompt"]].append(record.job_id)
    return dict(made)


def refusals(emulator: Emulator) -> int:
    """The 429s the emulator answered."""
    return sum(1 for record in emulator.requests if record.status == 429)


def learned(redis_url: str) -> dict[str, Any]:
    """What the group learned of the account's limit, as Redis holds it."""
    with contextlib.closing(redis.Redis.from_url(redis_url, decode_responses=True)) as raw:
        state = raw.hget(f"{NAMESPACE}:{account_of(API_KEY)}:learn", "state")
    assert isinstance(state, str), "the group learned nothing"
    learning: dict[str, Any] = json.loads(state)
    return learning


def done_keys(group: list[Worker]) -> dict[str, str]:
    """Every key's outcome, as its worker reported it."""
    return {e["key"]: e["outcome"] for w in group for e in w.of("done")}


async def test_four_workers_share_one_accounts_slots(redis_url: str) -> None:
    """Four workers: each job made once, all complete, no more 429s than the group's
    discoveries of the limit, and never more than the limit running."""
    names = ["w1", "w2", "w3", "w4"]
    async with (
        account() as (emulator, parent),
        workers(emulator, parent, names, "--count", "12", "--redis", redis_url) as group,
    ):
        go(group)
        statuses = await asyncio.gather(*(w.finish() for w in group))
        made = created_by_key(emulator)
        peak = emulator.peak_active()
        too_many = refusals(emulator)
    assert statuses == [0, 0, 0, 0]
    keys = {f"{name}-{i}" for name in names for i in range(12)}
    assert set(made) == keys
    assert all(len(jobs) == 1 for jobs in made.values()), made
    assert done_keys(group) == dict.fromkeys(keys, "completed")
    learning = learned(redis_url)
    assert 1 <= too_many <= learning["discoveries"]
    assert peak <= LIMIT


def live_workers(redis_url: str) -> int:
    """How many workers the group's Redis holds as alive."""
    with contextlib.closing(redis.Redis.from_url(redis_url)) as raw:
        return int(raw.zcard(f"{NAMESPACE}:{account_of(API_KEY)}:workers"))


async def stored(redis_url: str) -> list[JobRecord]:
    """Every record of the shared store, read as another process would."""
    store = RedisJobStore(redis_url, namespace=NAMESPACE)
    try:
        return await store.records()
    finally:
        await store.close()


async def test_a_killed_workers_slots_and_jobs_are_taken_over(redis_url: str) -> None:
    """A worker SIGKILLed mid-batch: its slots come back after the lease, the others finish,
    and its stored unfinished jobs are seen to their end by another; no key made twice."""
    options = ["--count", "12", "--redis", redis_url, "--lease", LEASE, "--linger"]
    options += ["--store", "redis", "--store-url", redis_url]
    async with (
        account() as (emulator, parent),
        workers(emulator, parent, ["w1", "w2", "victim"], *options) as group,
    ):
        *survivors, victim = group
        go(group)
        await victim.until("submitted", 4)  # it has jobs running, and holds their slots
        victim.process.send_signal(signal.SIGKILL)
        assert await victim.finish() == -signal.SIGKILL
        for worker in survivors:
            await worker.until("batch")
        await eventually(lambda: _true(live_workers(redis_url) == 2), "the victim reaped")

        async def all_ended() -> bool:
            return all(
                r.state is RecordState.COMPLETED for r in await stored(redis_url) if r.job_id
            )

        await eventually(all_ended, "every stored job completed")
        for worker in survivors:
            worker.tell("exit")
        statuses = [await worker.finish() for worker in survivors]
        made = created_by_key(emulator)
        peak = emulator.peak_active()
    assert statuses == [0, 0]
    assert all(len(jobs) == 1 for jobs in made.values()), made
    records = {r.key: r for r in await stored(redis_url)}
    orphans = {e["key"] for e in victim.of("submitted")} - {e["key"] for e in victim.of("done")}
    assert orphans  # the kill left jobs of the victim unfinished...
    for key in orphans:  # ...which another worker saw to their end
        assert records[key].state is RecordState.COMPLETED
        assert made[key] == [records[key].job_id]
    # Only requests the kill left in flight have no job id: their outcome is unknown (the
    # service may have made the job before the kill, or not), and no more of them than the
    # victim had POSTs in flight at once.
    unknown = [key for key, record in records.items() if record.job_id is None]
    assert all(key.startswith("victim-") for key in unknown), unknown
    assert len(unknown) <= SUBMISSIONS_IN_FLIGHT
    assert done_keys(survivors) == {
        f"{w}-{i}": "completed" for w in ("w1", "w2") for i in range(12)
    }
    assert peak <= LIMIT


async def _true(value: bool) -> bool:
    return value


async def test_a_redis_restart_mid_batch_loses_no_job(private_redis: RedisServer) -> None:
    """Redis restarted empty mid-batch: every worker finishes, no job made twice."""
    names = ["w1", "w2", "w3"]
    async with (
        account() as (emulator, parent),
        workers(emulator, parent, names, "--count", "12", "--redis", private_redis.url) as group,
    ):
        go(group)
        await group[0].until("submitted", 3)
        await asyncio.to_thread(private_redis.stop)
        await asyncio.to_thread(private_redis.start)
        statuses = await asyncio.gather(*(w.finish() for w in group))
        made = created_by_key(emulator)
        peak = emulator.peak_active()
    assert statuses == [0, 0, 0]
    keys = {f"{name}-{i}" for name in names for i in range(12)}
    assert set(made) == keys
    assert all(len(jobs) == 1 for jobs in made.values()), made
    assert done_keys(group) == dict.fromkeys(keys, "completed")
    assert peak <= LIMIT


async def test_a_callback_reaching_another_worker_resolves_the_waiter(redis_url: str) -> None:
    """Callbacks all reach one worker's receiver (as behind a load balancer); the other
    worker's handles resolve through the group, without polling their jobs."""
    async with account(callback_secret=SECRET) as (emulator, parent):
        clock = f"{emulator.now()},{time.time()}"
        common = ["--count", "8", "--redis", redis_url, "--secret", SECRET, "--clock", clock]
        # The front stays up (--linger) until the back is done, as a web app's server does.
        serving = ["--serve", "--linger"]
        async with workers(emulator, parent, ["front"], *serving, *common) as (front,):
            url = front.of("ready")[0]["url"]
            async with workers(emulator, parent, ["back"], "--webhook-url", url, *common) as (
                back,
            ):
                go([front, back])
                back_status = await back.finish()
                front.tell("exit")
                statuses = [await front.finish(), back_status]
        reads = collections.Counter(
            r.path.rsplit("/", 1)[1]
            for r in emulator.requests
            if r.method == "GET" and r.path.startswith("/api/v1/job/")
        )
        accepted = {
            r.job_id
            for r in emulator.callback_log
            if r.outcome == "delivered" and r.url.startswith(url)
        }
    assert statuses == [0, 0]
    back_jobs = [e["job_id"] for e in back.of("done")]
    assert len(back_jobs) == 8
    assert all(e["outcome"] == "completed" for e in back.of("done"))
    assert accepted >= set(back_jobs)  # the front took the back's callbacks
    # Polling needs at least one status read per job; routed callbacks need none.
    assert sum(reads[job_id] for job_id in back_jobs) < len(back_jobs) // 2, reads
