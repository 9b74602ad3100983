"""Clients of one account sharing job slots, learning and callbacks through a real Redis.

Each client here stands for one worker process (its own RedisCoordinator, its own
connections); tests with real worker processes are in ``test_workers.py``. The server is a
private ``redis-server`` (see ``tests/redis_server.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis

from legnext_async import LegnextClient, RecordState, TaskType, ValidationError
from legnext_async._coordination import account_of
from legnext_async.emulator import Emulator
from legnext_async.redis import RedisCoordinator, RedisJobStore

from .conftest import API_KEY, FAST_RETRY, MASK, SCALE, eventually, fast_poll
from .fakes import FakeClock
from .test_job_limits import created_prompts
from .test_webhooks import SECRET, finish_and_deliver, hosted, reads

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from legnext_async._budget import SlotTicket

    from .redis_server import RedisServer

PREFIX = f"legnext:{account_of(API_KEY)}"


@contextlib.asynccontextmanager
async def workers(
    url: str, n: int, emulator: Emulator | None = None, **options: Any
) -> AsyncIterator[list[LegnextClient]]:
    """``n`` clients, each with a coordinator of its own on ``url`` (``options`` go to
    each coordinator)."""
    base_url = emulator.base_url if emulator is not None else "http://127.0.0.1:9"
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                LegnextClient(
                    api_key=API_KEY,
                    base_url=base_url,
                    poll=fast_poll(),
                    retry=FAST_RETRY,
                    coordinator=RedisCoordinator(url, **options),
                )
            )
            for _ in range(n)
        ]
        yield clients


async def inpaint_many(client: LegnextClient, parent: str, tag: str, n: int) -> None:
    handles = await asyncio.gather(
        *(client.inpaint(parent, 0, mask=MASK, remix_prompt=f"{tag}{i}") for i in range(n))
    )
    await asyncio.gather(*handles)


def created(emulator: Emulator) -> list[str]:
    """The prompts of the jobs the emulator created, sorted (a prompt twice: made twice)."""
    return created_prompts(emulator)


def refusals(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "POST" and r.status == 429)


async def learned(url: str) -> dict[str, Any]:
    """What the group learned, as Redis holds it."""
    async with aioredis.Redis.from_url(url, decode_responses=True) as r:
        state = await r.hget(f"{PREFIX}:learn", "state")
    return dict(json.loads(state)) if state else {}


async def queue_length(url: str) -> int:
    async with aioredis.Redis.from_url(url, decode_responses=True) as r:
        return int(await r.zcard(f"{PREFIX}:queue"))


async def slots_in_use(url: str) -> int:
    async with aioredis.Redis.from_url(url, decode_responses=True) as r:
        return int(await r.hlen(f"{PREFIX}:slot"))


# --- slots and learning against the emulator ---------------------------------------------


async def test_workers_learn_the_account_limit_once_and_share_it(redis_url: str) -> None:
    """Two workers on an account of 3 jobs: each job made once, one 429 per lesson the
    group learned (not one per worker), and both know the limit."""
    async with (
        Emulator(
            api_key=API_KEY, time_scale=SCALE, seed=21, concurrency_limit=3, over_limit="reject"
        ) as emulator,
        workers(redis_url, 2, emulator) as (a, b),
    ):
        parent = emulator.seed_job("diffusion")
        await asyncio.gather(inpaint_many(a, parent, "a", 8), inpaint_many(b, parent, "b", 8))
        group = await learned(redis_url)
        assert a._slots.limit == b._slots.limit == group["limit"] == 3
        assert refusals(emulator) == group["discoveries"] >= 1
    assert created(emulator) == sorted([f"a{i}" for i in range(8)] + [f"b{i}" for i in range(8)])


async def test_a_known_limit_given_to_the_group_is_never_exceeded(redis_url: str) -> None:
    """With the account's limit given to the coordinators, three workers never meet a 429."""
    async with (
        Emulator(
            api_key=API_KEY, time_scale=SCALE, seed=22, concurrency_limit=3, over_limit="reject"
        ) as emulator,
        workers(redis_url, 3, emulator, max_active_jobs=3) as clients,
    ):
        parent = emulator.seed_job("diffusion")
        await asyncio.gather(*(inpaint_many(c, parent, f"w{n}", 5) for n, c in enumerate(clients)))
        assert refusals(emulator) == 0
    assert len(created(emulator)) == 15


async def test_a_clients_own_limit_is_the_groups_when_the_coordinator_has_none(
    redis_url: str,
) -> None:
    """``LegnextClient(max_active_jobs=2, coordinator=...)`` tells the group the limit."""
    async with LegnextClient(
        api_key=API_KEY,
        base_url="http://127.0.0.1:9",
        max_active_jobs=2,
        coordinator=RedisCoordinator(redis_url),
    ) as client:
        first, second = await client._slots.acquire(), await client._slots.acquire()
        third = client._slots.enqueue()
        await eventually(lambda: _equals(queue_length(redis_url), 1), "the third waits")
        assert (first.state, second.state, third.state) == ("granted", "granted", "waiting")
        assert (await learned(redis_url))["limit"] == 2


async def test_slots_are_granted_first_come_first_served_across_workers(redis_url: str) -> None:
    """With one slot, submissions of two workers get it in the order they asked for it."""
    async with workers(redis_url, 2, max_active_jobs=1) as (a, b):
        got: list[str] = []

        async def take(client: LegnextClient, name: str) -> SlotTicket:
            ticket = await client._slots.acquire()
            got.append(name)
            return ticket

        first = await take(a, "a0")
        waiting = []
        for n, (client, name) in enumerate([(b, "b0"), (a, "a1"), (b, "b1")]):
            waiting.append(asyncio.ensure_future(take(client, name)))
            await eventually(functools.partial(_queued, redis_url, n + 1), "queued")
        holder, holder_client = first, a
        for task, client in zip(waiting, [b, a, b], strict=True):
            holder_client._slots.release(holder)
            holder, holder_client = await task, client
        holder_client._slots.release(holder)
        assert got == ["a0", "b0", "a1", "b1"]


async def _queued(url: str, n: int) -> bool:
    return await queue_length(url) == n


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


# --- leases ---------------------------------------------------------------------------------


async def test_the_slots_of_a_silent_worker_come_back_after_its_lease(redis_url: str) -> None:
    """A worker that stops renewing keeps its slot for the lease, then others get it."""
    now = [1_000_000.0]
    async with workers(redis_url, 1, max_active_jobs=1, lease=30, clock=lambda: now[0]) as (a,):
        held = await a._slots.acquire()
        assert held.state == "granted"
        # b's clock reads 10 s later: a's lease still runs.
        later = [now[0] + 10]
        async with workers(redis_url, 1, max_active_jobs=1, lease=30, clock=lambda: later[0]) as (
            b,
        ):
            ticket = b._slots.enqueue()
            await eventually(lambda: _equals(queue_length(redis_url), 1), "b waits in line")
            assert ticket.state == "waiting"
            # Past a's lease (a renews on its own clock, which the test holds still).
            later[0] = now[0] + 31
            await asyncio.wait_for(b._slots.wait_granted(ticket), 30)
            assert ticket.state == "granted"


# --- shared learning ------------------------------------------------------------------------


async def test_a_429_on_a_status_read_slows_every_workers_polling(redis_url: str) -> None:
    """Worker a is throttled on a status read: worker b's poll pace stretches as much."""
    async with workers(redis_url, 2, lease=0.3) as (a, b):
        a._budget.pace.throttled()
        a._budget.pace.throttled()
        assert a._budget.pace.factor == 4.0

        async def b_slowed() -> bool:
            return b._budget.pace.factor == 4.0

        await eventually(b_slowed, "b polls at a's pace")


async def test_a_new_worker_starts_with_the_run_times_the_group_learned(redis_url: str) -> None:
    """Run times learned by worker a are there for a worker started after it."""
    runs = {"inpaint": [41.0, 44.0, 47.0, 50.0, 52.0]}
    async with workers(redis_url, 1, lease=0.3) as (a,):
        a._durations.restore(runs)

        async def saved() -> bool:
            async with aioredis.Redis.from_url(redis_url, decode_responses=True) as r:
                return bool(await r.exists(f"{PREFIX}:durations"))

        await eventually(saved, "a saved its run times")
        async with workers(redis_url, 1, lease=0.3) as (late,):

            async def warm() -> bool:
                return late._durations.to_json() == runs

            await eventually(warm, "the new worker loaded them")
            assert late._durations.window(TaskType.INPAINT) == a._durations.window(TaskType.INPAINT)


# --- a shared store -------------------------------------------------------------------------


def keyed_client(emulator: Emulator, url: str, **options: Any) -> LegnextClient:
    return LegnextClient(
        api_key=API_KEY,
        base_url=emulator.base_url,
        poll=fast_poll(),
        retry=FAST_RETRY,
        store=RedisJobStore(url),
        coordinator=RedisCoordinator(url, **options),
    )


async def test_resume_on_another_worker_leaves_the_jobs_a_live_worker_watches(
    redis_url: str,
) -> None:
    """Worker b's resume() returns none of the jobs worker a is waiting for; both see every
    record, and a key a submitted is not sent again by b."""
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, seed=31) as emulator,
        keyed_client(emulator, redis_url) as a,
        keyed_client(emulator, redis_url) as b,
    ):
        parent = emulator.seed_job("diffusion")
        handles = [
            await a.inpaint(parent, 0, mask=MASK, remix_prompt=f"k{n}", key=f"k{n}")
            for n in range(3)
        ]
        assert await b.resume() == []
        again = await b.inpaint(parent, 0, mask=MASK, remix_prompt="k0", key="k0")
        assert again.job_id == handles[0].job_id
        await asyncio.gather(*handles)
        assert {r.key for r in await b.records()} == {"k0", "k1", "k2"}
    assert created(emulator) == ["k0", "k1", "k2"]


async def test_a_lost_workers_stored_jobs_are_finished_by_another(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Worker a submits and goes away without renewing its lease; once the lease runs
    out, worker b takes over a's unfinished jobs (and says so) and sees them to their end:
    their records end completed, each job made once."""
    caplog.set_level(logging.INFO, logger="legnext_async")
    async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=32) as emulator:
        parent = emulator.seed_job("diffusion")
        async with keyed_client(emulator, redis_url, lease=0.5) as a:
            for n in range(3):
                await a.inpaint(parent, 0, mask=MASK, remix_prompt=f"k{n}", key=f"k{n}")
        # a closed with its jobs unfinished: its slots stay counted until its lease ends.
        async with keyed_client(emulator, redis_url, lease=0.5) as b:
            await eventually(functools.partial(all_completed, b, 3), "b finished a's jobs")
    assert created(emulator) == ["k0", "k1", "k2"]
    assert any("took over 3 unfinished" in r.getMessage() for r in caplog.records)


async def all_completed(client: LegnextClient, n: int) -> bool:
    """Whether ``client``'s store holds ``n`` records, every one completed."""
    records = await client.records()
    return len(records) == n and all(r.state is RecordState.COMPLETED for r in records)


async def members(url: str) -> list[str]:
    async with aioredis.Redis.from_url(url, decode_responses=True) as r:
        return [str(member) for member in await r.zrange(f"{PREFIX}:workers", 0, -1)]


async def test_a_worker_with_nothing_running_leaves_the_group_when_it_closes(
    redis_url: str,
) -> None:
    """A closing worker whose submissions all ended leaves at once; one whose job may still
    run keeps that job's slot counted (until its lease runs out)."""
    async with workers(redis_url, 2, max_active_jobs=2) as (idle, busy):
        ticket = await idle._slots.acquire()
        idle._slots.release(ticket)
        busy_ticket = await busy._slots.acquire()
        assert await busy._slots.send_turn(busy_ticket)
        busy._slots.mark_running(busy_ticket, "5dd94ec3-7282-4f04-9445-59e850ef1822")
        assert idle._membership is not None
        assert busy._membership is not None
        ids = {idle._membership.id, busy._membership.id}  # type: ignore[attr-defined]
        assert set(await members(redis_url)) == ids
        await idle.aclose()
        await busy.aclose()
    assert await members(redis_url) == [busy._membership.id]  # type: ignore[attr-defined]
    assert await slots_in_use(redis_url) == 1


class Relay:
    """A TCP relay on 127.0.0.1 in front of Redis. Armed, it lets the next script call
    through to Redis and loses every answer of that connection from then on (a reply lost
    on the way back); connections made later work."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.armed = False
        self.lost = 0  # connections whose answers were lost
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        # Ended by closing their sockets (a cancelled handler would be logged by asyncio).
        for writer in self._writers:
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers += [writer, up_writer]
        cut = False

        async def requests() -> None:
            nonlocal cut
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if self.armed and b"EVALSHA" in data:
                        self.armed, cut = False, True
                        self.lost += 1
                    up_writer.write(data)
                    await up_writer.drain()
            up_writer.close()

        async def answers() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await up_reader.read(65536):
                    if not cut:
                        writer.write(data)
                        await writer.drain()
            writer.close()

        await asyncio.gather(requests(), answers())


async def test_a_grant_whose_answer_was_lost_is_given_with_a_later_answer(
    redis_server: RedisServer, redis_url: str
) -> None:
    """The release that grants the next submission its slot runs in Redis, but its answer
    never comes back: the grant is answered again with a later answer, and the submission
    goes."""
    relay = Relay(redis_server.port)
    async with (
        relay as relayed,
        workers(relayed, 1, max_active_jobs=1, socket_timeout=0.3, lease=3) as (a,),
    ):
        first = await a._slots.acquire()
        second = a._slots.enqueue()
        await eventually(lambda: _equals(queue_length(redis_url), 1), "the second waits")
        relay.armed = True
        a._slots.release(first)
        await asyncio.wait_for(a._slots.wait_granted(second), 30)
        assert second.state == "granted"
        assert relay.lost == 1


async def test_a_given_limit_holds_whatever_an_earlier_worker_left_in_redis(
    redis_url: str,
) -> None:
    """A worker that learned nothing left the group's learning without a limit; a worker
    given max_active_jobs=2 later makes 2 the group's limit."""
    async with workers(redis_url, 1) as (old,):
        ticket = await old._slots.acquire()
        old._slots.release(ticket)
    assert (await learned(redis_url))["limit"] is None
    async with workers(redis_url, 1, max_active_jobs=2) as (new,):
        first, second = await new._slots.acquire(), await new._slots.acquire()
        third = new._slots.enqueue()
        await eventually(lambda: _equals(queue_length(redis_url), 1), "the third waits")
        assert (first.state, second.state, third.state) == ("granted", "granted", "waiting")


async def test_a_submission_redis_refused_to_queue_is_queued_once_it_can(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis out of memory answers the submission's call with an error: the call is tried
    again (the log says why), and the submission gets its slot once Redis has room."""
    url = private_redis.url
    async with workers(url, 1, max_active_jobs=1) as (a,):
        first = await a._slots.acquire()
        a._slots.release(first)
        with contextlib.closing(private_redis.client()) as admin:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", 1)
            try:
                with caplog.at_level(logging.ERROR, logger="legnext_async"):
                    ticket = a._slots.enqueue()
                    await eventually(
                        lambda: _true(
                            any("a call failed" in r.getMessage() for r in caplog.records)
                        ),
                        "the refused call is said",
                    )
                assert ticket.state == "waiting"
            finally:
                admin.config_set("maxmemory", 0)
        await asyncio.wait_for(a._slots.wait_granted(ticket), 30)


async def test_a_ceiling_given_to_one_worker_holds_when_another_learns(redis_url: str) -> None:
    """Worker b was given max_active_jobs=3; worker a, given none, applies a quiet finish
    that would raise the limit: the group's limit stays 3."""
    async with workers(redis_url, 1) as (a,), workers(redis_url, 1, max_active_jobs=3) as (b,):
        ticket = await b._slots.acquire()
        b._slots.release(ticket)
        assert (await learned(redis_url))["limit"] == 3
        async with aioredis.Redis.from_url(redis_url, decode_responses=True) as r:
            await r.rpush(f"{PREFIX}:lessons", *["q"] * 10)
        assert a._membership is not None
        await a._membership.relearn()  # type: ignore[attr-defined]
        async with aioredis.Redis.from_url(redis_url, decode_responses=True) as r:
            assert await r.hget(f"{PREFIX}:learn", "limit") == "3"
            assert await r.llen(f"{PREFIX}:lessons") == 0


# --- Redis restarting -----------------------------------------------------------------------


async def test_a_restarted_redis_gets_back_what_live_workers_hold(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted without its data: a live worker registers its slot again and the
    group's limit comes back, and it says so in the log."""
    url = private_redis.url
    async with workers(url, 1, max_active_jobs=2, lease=0.3) as (a,):
        ticket = await a._slots.acquire()
        assert await slots_in_use(url) == 1
        with caplog.at_level(logging.WARNING, logger="legnext_async"):
            private_redis.stop()
            private_redis.start()
            assert await slots_in_use(url) == 0
            await eventually(lambda: _equals(slots_in_use(url), 1), "the slot is registered again")
        assert (await learned(url))["limit"] == 2
        assert ticket.state == "granted"
        assert any("registering again" in r.getMessage() for r in caplog.records)


async def test_submissions_wait_while_redis_is_down_and_go_when_it_is_back(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """While Redis cannot be reached no slot is granted (the log says what the worker does),
    and the waiting submission gets its slot once Redis answers again."""
    url = private_redis.url
    async with workers(url, 1, max_active_jobs=1, lease=0.3, socket_timeout=0.5) as (a,):
        first = await a._slots.acquire()
        with caplog.at_level(logging.INFO, logger="legnext_async"):
            private_redis.stop()
            a._slots.release(first)
            ticket = a._slots.enqueue()
            await eventually(
                lambda: _true(any("cannot be reached" in r.getMessage() for r in caplog.records)),
                "the worker says it cannot reach Redis",
            )
            assert ticket.state == "waiting"
            private_redis.start()
            await asyncio.wait_for(a._slots.wait_granted(ticket), 30)
        assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_stalled_redis_is_waited_out_like_an_unreachable_one(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis frozen (SIGSTOP): calls time out, nothing is granted meanwhile, and the
    waiting submission gets its slot once the server runs again (SIGCONT)."""
    url = private_redis.url
    async with workers(url, 1, max_active_jobs=1, lease=0.3, socket_timeout=0.2) as (a,):
        first = await a._slots.acquire()
        with caplog.at_level(logging.INFO, logger="legnext_async"):
            os.kill(private_redis.pid, signal.SIGSTOP)
            try:
                a._slots.release(first)
                ticket = a._slots.enqueue()
                await eventually(
                    lambda: _true(
                        any("cannot be reached" in r.getMessage() for r in caplog.records)
                    ),
                    "the worker says it cannot reach Redis",
                )
                assert ticket.state == "waiting"
            finally:
                os.kill(private_redis.pid, signal.SIGCONT)
            await asyncio.wait_for(a._slots.wait_granted(ticket), 30)
        assert any("answers again" in r.getMessage() for r in caplog.records)


async def _true(value: bool) -> bool:
    return value


# --- callbacks ------------------------------------------------------------------------------


async def test_a_callback_received_by_another_worker_resolves_the_waiting_handle(
    redis_url: str,
) -> None:
    """Both workers' callback URLs lead to worker b's receiver (one load balancer): a's job
    resolves from its callback, routed through Redis, without a status read."""
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, seed=99, callback_secret=SECRET) as emulator,
        hosted(secret=SECRET, clock=emulator.now) as receiver_b,
    ):
        from legnext_async.webhooks import WebhookReceiver

        receiver_a = WebhookReceiver(receiver_b.public_url, secret=SECRET, clock=emulator.now)
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": emulator.base_url,
            "poll": fast_poll(),
            "retry": FAST_RETRY,
        }
        async with (
            LegnextClient(
                **options, webhook=receiver_a, coordinator=RedisCoordinator(redis_url)
            ) as a,
            LegnextClient(
                **options, webhook=receiver_b, coordinator=RedisCoordinator(redis_url)
            ) as b,
        ):
            a._engine.use_clock(FakeClock())  # a never polls on its own: only a callback ends it
            handle = await a.diffusion("a lighthouse at dusk")
            token = handle.last_task.callback.rpartition("/")[2]  # type: ignore[union-attr]

            async def owned() -> bool:
                async with aioredis.Redis.from_url(redis_url, decode_responses=True) as r:
                    return bool(await r.exists(f"{PREFIX}:tok:{token}"))

            await eventually(owned, "a's token is known to the group")
            assert b is not None
            await finish_and_deliver(emulator)
            result = await asyncio.wait_for(handle, 30)
            assert result.task.is_finished
            assert reads(emulator, handle.job_id) == 0


# --- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"lease": 0}, "lease", id="lease"),
        pytest.param({"max_active_jobs": 0}, "max_active_jobs", id="max_active_jobs"),
        pytest.param({"socket_timeout": -1}, "socket_timeout", id="socket_timeout"),
        pytest.param({"namespace": ""}, "namespace", id="namespace"),
        pytest.param({"url": "http://127.0.0.1:6379"}, "url", id="url"),
    ],
)
def test_bad_coordinator_arguments_name_the_field(options: dict[str, Any], field: str) -> None:
    arguments = {"url": "redis://127.0.0.1:6379/0", **options}
    with pytest.raises(ValidationError) as caught:
        RedisCoordinator(**arguments)
    assert caught.value.field == field


def test_a_coordinator_never_shows_the_password_of_its_url() -> None:
    for url in (
        "redis://:hunter2-secret@127.0.0.1:6379/0",
        "redis://user:hunter2-secret@127.0.0.1:6379/0",
        "redis://127.0.0.1:6379/0?password=hunter2-secret",
    ):
        coordinator = RedisCoordinator(url)
        assert "hunter2-secret" not in repr(coordinator)
        assert "hunter2-secret" not in coordinator.shown_url


def test_a_coordinator_serves_one_client() -> None:
    coordinator = RedisCoordinator("redis://127.0.0.1:6379/0")
    LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9", coordinator=coordinator)
    with pytest.raises(ValidationError, match="another client"):
        LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9", coordinator=coordinator)


def test_the_account_name_in_redis_tells_nothing_of_the_key() -> None:
    assert API_KEY not in PREFIX
    assert account_of(API_KEY) == account_of(API_KEY) != account_of(API_KEY[::-1])


async def adoptions(url: str) -> dict[str, str]:
    async with aioredis.Redis.from_url(url, decode_responses=True) as r:
        found = await r.hgetall(f"{PREFIX}:adopted")
    return {str(job): str(worker) for job, worker in found.items()}


async def test_what_a_worker_took_over_is_forgotten_in_redis_once_the_jobs_end(
    redis_url: str,
) -> None:
    """Redis's list of taken-over jobs does not grow: a job a worker resumed while watching
    it, and the jobs it took over from a lost worker, leave the list when they end."""
    async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=33) as emulator:
        parent = emulator.seed_job("diffusion")
        async with keyed_client(emulator, redis_url, lease=0.5) as a:
            mine = await a.inpaint(parent, 0, mask=MASK, remix_prompt="mine", key="mine")
            assert [h.job_id for h in await a.resume()] == [mine.job_id]
            await mine
            for n in range(2):
                await a.inpaint(parent, 0, mask=MASK, remix_prompt=f"k{n}", key=f"k{n}")
        async with keyed_client(emulator, redis_url, lease=0.5) as b:
            await eventually(functools.partial(all_completed, b, 3), "b finished a's jobs")

            async def none_left() -> bool:
                return await adoptions(redis_url) == {}

            await eventually(none_left, "the list of taken-over jobs emptied")
    assert created(emulator) == ["k0", "k1", "mine"]


async def test_a_worker_holding_every_slot_hears_at_once_that_another_waits(
    redis_url: str,
) -> None:
    """Worker a holds the only slot with a job nobody awaits (so a does not poll it); when
    worker b's submission starts to wait, a is told through Redis and watches its job, so
    the slot frees when the job ends, long before a's next beat (a third of a 600 s lease)."""
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, seed=34) as emulator,
        workers(redis_url, 2, emulator, max_active_jobs=1, lease=600.0) as (a, b),
    ):
        parent = emulator.seed_job("diffusion")
        held = await a.inpaint(parent, 0, mask=MASK, remix_prompt="held")

        async def running() -> bool:
            async with aioredis.Redis.from_url(redis_url, decode_responses=True) as r:
                return list((await r.hgetall(f"{PREFIX}:slot")).values()) == ["r"]

        await eventually(running, "a's job holds the slot, and a has heard back")
        waiting = asyncio.ensure_future(b.inpaint(parent, 0, mask=MASK, remix_prompt="next"))

        async def made() -> bool:
            return waiting.done()

        await eventually(made, "b's submission was sent once a's job ended")
        assert (await held).job_id == held.job_id
        await (await waiting)
    assert created(emulator) == ["held", "next"]
