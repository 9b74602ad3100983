"""The Redis job store on a real server: shared by workers, safe to retry, and what it does
when Redis is away or comes back without its data.

The rules it shares with the other stores are tested in ``test_store.py`` (its ``store``
fixture has a Redis param); here is what only a store on a server has to get right.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import subprocess
import sys
import traceback
from typing import TYPE_CHECKING

import attrs
import pytest

import legnext_async.redis
from legnext_async import (
    JobRecord,
    LegnextClient,
    RecordState,
    StoreError,
    SubmissionOutcomeUnknownError,
    TaskHandle,
    ValidationError,
)
from legnext_async.redis import RedisJobStore

from .test_durable_jobs import created, inpaint, stored_client
from .test_store import DONE_TASK, PENDING_TASK, answered, record

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from legnext_async.emulator import Emulator

    from .redis_server import RedisServer


class InstantClock:
    """A clock whose sleeps pass at once (time moves by what was slept); ``on_sleep`` is
    called with each sleep's length first, so a test can act while the store waits."""

    def __init__(self, on_sleep: Callable[[float], object] | None = None) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []
        self._on_sleep = on_sleep

    def now(self) -> float:
        return self.time

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        raise AssertionError("the store sets no timers")

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep(seconds)
        self.time += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def worker_a(redis_url: str) -> AsyncIterator[RedisJobStore]:
    """A store of one worker on the session's (emptied) server."""
    async with RedisJobStore(redis_url) as store:
        yield store


@pytest.fixture
async def worker_b(redis_url: str) -> AsyncIterator[RedisJobStore]:
    """A store of another worker on the same server."""
    async with RedisJobStore(redis_url) as store:
        yield store


# --- shared by workers --------------------------------------------------------------------


async def test_one_of_two_workers_wins_each_key(
    worker_a: RedisJobStore, worker_b: RedisJobStore
) -> None:
    """Two workers claiming the same 200 keys at once: each key has exactly one holder, and
    both workers are told the same one."""
    keys = [f"k{i}" for i in range(200)]
    claims = [
        store.claim([record(key, name)])
        for key in keys
        for store, name in ((worker_a, "a"), (worker_b, "b"))
    ]
    results = [held for (held,) in await asyncio.gather(*claims)]
    holders: dict[str, set[str]] = {}
    for held in results:
        holders.setdefault(held.key, set()).add(held.attempt)
    assert all(len(attempts) == 1 for attempts in holders.values())
    stored = {r.key: r.attempt for r in await worker_a.records()}
    assert stored == {key: attempts.pop() for key, attempts in holders.items()}
    assert {r.key for r in await worker_b.records()} == set(keys)


async def test_a_record_written_by_one_worker_is_read_by_another(
    worker_a: RedisJobStore, worker_b: RedisJobStore
) -> None:
    """Another worker finds a record by key, job id and callback token, and sees its totals."""
    claimed = attrs.evolve(record("k"), callback_token="T" * 32)
    await worker_a.claim([claimed])
    await worker_a.put([answered(claimed, PENDING_TASK)])
    assert (await worker_b.get("k")) == await worker_a.get("k")
    found = await worker_b.find("job-1")
    assert found is not None
    assert found.state is RecordState.PENDING
    assert await worker_b.find_token("T" * 32) == found
    assert (await worker_b.totals()).committed == 120


async def test_namespaces_keep_apps_apart(redis_url: str) -> None:
    """Stores of two namespaces on one server share no records, values or totals."""
    async with (
        RedisJobStore(redis_url, namespace="app-one") as one,
        RedisJobStore(redis_url, namespace="app-two") as two,
    ):
        claimed = record("k")
        await one.claim([claimed])
        await one.put([answered(claimed, DONE_TASK)])
        await one.save("durations", "{}")
        assert await two.get("k") is None
        assert await two.records() == []
        assert await two.load("durations") is None
        assert (await two.totals()).spent == 0
        (held,) = await two.claim([record("k", "a2")])
        assert held.attempt == "a2"


async def test_two_clients_submitting_the_same_keys_make_one_job_each(
    emulator: Emulator, redis_url: str
) -> None:
    """Two workers' clients submitting the same 6 keys at once make 6 jobs, not 12: the
    second of each pair gets the first's job (or an unknown outcome while it is sent).

    Six: the emulator's account runs six jobs at once, and clients that share no job slots
    would meet its 429s beyond that (not what this test is about).
    """
    parent = emulator.seed_job("diffusion")
    async with (
        stored_client(emulator, RedisJobStore(redis_url)) as one,
        stored_client(emulator, RedisJobStore(redis_url)) as two,
    ):
        calls = [inpaint(client, parent, f"k{i}") for i in range(6) for client in (one, two)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert [o for o in outcomes if not isinstance(o, TaskHandle)] == [
            o for o in outcomes if isinstance(o, SubmissionOutcomeUnknownError)
        ]
    assert len(created(emulator)) == 6


async def test_another_worker_resumes_the_jobs_of_one_that_stopped(
    emulator: Emulator, redis_url: str
) -> None:
    """Jobs a worker submitted and never waited for are finished by another's resume()."""
    parent = emulator.seed_job("diffusion")
    async with stored_client(emulator, RedisJobStore(redis_url)) as gone:
        submitted = [(await inpaint(gone, parent, f"k{i}")).job_id for i in range(5)]
    async with stored_client(emulator, RedisJobStore(redis_url)) as other:
        handles = await other.resume()
        assert [h.job_id for h in handles] == submitted
        await asyncio.gather(*handles)
        finished = await other.records(RecordState.COMPLETED)
    assert sorted(r.key for r in finished) == [f"k{i}" for i in range(5)]
    assert len(created(emulator)) == 5


# --- what is stored -----------------------------------------------------------------------


async def test_the_task_body_round_trips_byte_for_byte(worker_a: RedisJobStore) -> None:
    """The last snapshot is kept as the exact bytes given (any bytes, not only UTF-8)."""
    body = b'{"job_id":"job-1",\x00\xff\xfe "status":"pending"}' + bytes(range(256))
    claimed = record("k")
    await worker_a.claim([claimed])
    await worker_a.put([attrs.evolve(claimed, state=RecordState.PENDING, task_body=body)])
    got = await worker_a.get("k")
    assert got is not None
    assert got.task_body == body


async def test_every_field_of_a_record_round_trips(worker_a: RedisJobStore) -> None:
    """A record with every field set reads back equal, floats and unicode included."""
    full = JobRecord(
        key="clé/1 ☃",
        attempt="a1",
        endpoint="inpaint",
        request={"remixPrompt": "un arbre ☃", "imageNo": 3},
        state=RecordState.SUBMITTING,
        created_at=1_767_225_600.123456789,
        updated_at=1_767_225_601.5,
        job_id="job-é",
        sent_at=1_767_225_600.25,
        points_frozen=0,
        points_consumed=7,
        files=("out/a.png", "out/ü.png"),
        task_body=b"{}",
        callback_token="tok",
    )
    await worker_a.claim([full])
    assert await worker_a.get(full.key) == full


def documented_keys(namespace: str) -> re.Pattern[str]:
    """The keys ``legnext_async.redis``'s docstring lists (``NS:…``, with its words in
    capitals standing for any text), as one pattern."""
    doc = legnext_async.redis.__doc__ or ""
    listed = sorted(set(re.findall(r"``NS:([a-z:-]+(?:[A-Z]+)?)``", doc)))
    assert listed
    return re.compile(
        "|".join(re.escape(namespace + ":") + re.sub(r"[A-Z]+$", ".+", key) for key in listed)
    )


async def test_keys_are_the_documented_ones(redis_server: RedisServer, redis_url: str) -> None:
    """Every key a store writes is one the docstring of ``legnext_async.redis`` lists."""
    async with RedisJobStore(redis_url, namespace="docs") as store:
        claimed = attrs.evolve(record("k"), callback_token="T")
        await store.claim([claimed, record("gone")])
        await store.put([answered(claimed, DONE_TASK)])
        await store.forget("k")
        await store.discard("gone", "a1")
        await store.save("durations", "{}")
    with contextlib.closing(redis_server.client()) as client:
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in client.keys("*"))
    assert len(keys) == 7  # the record, its state set, two indexes, totals, values, epoch
    assert [key for key in keys if not documented_keys("docs").fullmatch(key)] == []
    assert "docs:store:job:gone" not in keys


# --- safe to run twice ------------------------------------------------------------------


async def test_a_claim_run_again_by_its_attempt_gets_its_own_record(
    worker_a: RedisJobStore, worker_b: RedisJobStore
) -> None:
    """A claim sent again after its answer was lost (same attempt) is told the key is its
    own, not someone else's."""
    mine = record("k", "mine")
    assert await worker_a.claim([mine]) == [mine]
    assert await worker_b.claim([mine]) == [mine]
    (theirs,) = await worker_b.claim([record("k", "theirs")])
    assert theirs.attempt == "mine"


async def test_totals_follow_every_change_of_a_record(worker_a: RedisJobStore) -> None:
    """The running sums equal the points of the records after claims, updates written
    twice, a forget, a discard and a claim over a forgotten record."""
    a, b, c = record("a"), record("b"), record("c")
    await worker_a.claim([a, b, c])
    await worker_a.put([answered(a, PENDING_TASK), answered(b, PENDING_TASK)])
    await worker_a.put([answered(a, DONE_TASK), answered(a, DONE_TASK)])
    await worker_a.put([answered(a, DONE_TASK)])
    await worker_a.forget("b")
    await worker_a.discard("c", "a1")
    await worker_a.claim([record("b", "a2")])
    by_hand = {
        "committed": 0,
        "spent": 0,
    }
    for kept in await worker_a.records():
        finished = kept.state.is_finished
        by_hand["committed"] += (kept.points_consumed if finished else kept.points_frozen) or 0
        by_hand["spent"] += kept.points_consumed or 0
    totals = await worker_a.totals()
    assert (
        {"committed": totals.committed, "spent": totals.spent}
        == by_hand
        == {
            "committed": 120,
            "spent": 120,
        }
    )


# --- faults -----------------------------------------------------------------------------


async def test_an_unreachable_redis_is_tried_until_the_timeout(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis down, an operation tries again with growing waits for
    ``unavailable_timeout`` seconds, then raises StoreError naming the server; the
    outage is logged once, however many operations meet it."""
    clock = InstantClock()
    async with RedisJobStore(private_redis.url, unavailable_timeout=30) as store:
        store.use_clock(clock)
        private_redis.stop()
        with caplog.at_level(logging.INFO, "legnext_async"):
            with pytest.raises(StoreError, match=f"127.0.0.1:{private_redis.port}.*unreachable"):
                await store.claim([record("k")])
            assert clock.time - 1000 == pytest.approx(30)
            assert len(clock.sleeps) > 5
            assert clock.sleeps[1] > clock.sleeps[0]
            with pytest.raises(StoreError):
                await store.get("k")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"job store: Redis at {private_redis.url} is unreachable"
    ]


async def test_a_redis_back_within_the_timeout_goes_unnoticed_but_in_the_log(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An operation that meets Redis down succeeds once it is back; the log says when it
    went and when it came back, once each."""
    clock = InstantClock(on_sleep=lambda _: private_redis.start())
    async with RedisJobStore(private_redis.url) as store:
        store.use_clock(clock)
        await store.claim([record("before")])
        private_redis.stop()
        with caplog.at_level(logging.INFO, "legnext_async"):
            await store.save("durations", "{}")
        assert await store.load("durations") == "{}"
    assert len(clock.sleeps) == 1
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in levels] == ["WARNING", "INFO", "WARNING"]
    assert "unreachable" in levels[0][1]
    assert "answers again" in levels[1][1]
    assert "lost its data" in levels[2][1]  # it came back empty: see the next test


async def test_unfinished_records_are_written_back_after_redis_lost_its_data(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted without persistence: the worker that holds a pending job writes its
    record back before its next write, and another worker sees it again."""
    async with (
        RedisJobStore(private_redis.url) as worker_a,
        RedisJobStore(private_redis.url) as worker_b,
    ):
        running, done = record("running"), record("done")
        await worker_a.claim([running, done])
        await worker_a.put([answered(running, PENDING_TASK), answered(done, DONE_TASK)])
        assert await worker_b.get("running") is not None
        private_redis.kill()
        private_redis.start()
        with caplog.at_level(logging.WARNING, "legnext_async"):
            await worker_a.save("durations", "{}")
        assert any("lost its data" in r.getMessage() for r in caplog.records)
        back = await worker_b.get("running")
        assert back is not None
        assert (back.state, back.job_id) == (RecordState.PENDING, "job-1")
        assert await worker_b.find("job-1") == back
        assert await worker_b.get("done") is None  # finished: not held, lost with the data
        assert (await worker_b.totals()).committed == 120
        (held,) = await worker_b.claim([record("running", "a2")])
        assert held.attempt == running.attempt


async def test_a_claimed_key_stays_held_after_redis_lost_its_data(
    private_redis: RedisServer,
) -> None:
    """A key claimed (its POST in flight) is written back before another worker's read,
    so that worker cannot claim it again."""
    async with (
        RedisJobStore(private_redis.url) as worker_a,
        RedisJobStore(private_redis.url) as worker_b,
    ):
        await worker_a.claim([record("k", "a")])
        private_redis.kill()
        private_redis.start()
        assert await worker_a.get("k") is not None  # a read notices the loss as well
        (held,) = await worker_b.claim([record("k", "b")])
        assert held.attempt == "a"


async def test_an_update_after_the_loss_is_written_though_its_key_was_lost(
    private_redis: RedisServer,
) -> None:
    """A worker that resumed another's job (and so never wrote it) writes its next status
    after a data loss, although the record is gone."""
    async with RedisJobStore(private_redis.url) as worker_a:
        claimed = record("k")
        await worker_a.claim([claimed])
        await worker_a.put([answered(claimed, PENDING_TASK)])
    async with RedisJobStore(private_redis.url) as worker_b:
        (resumed,) = await worker_b.records(RecordState.PENDING)
        private_redis.kill()
        private_redis.start()
        await worker_b.put([answered(resumed, DONE_TASK)])
        got = await worker_b.get("k")
        assert got is not None
        assert got.state is RecordState.COMPLETED


async def test_an_update_of_a_discarded_claim_is_not_written_back(
    worker_a: RedisJobStore,
) -> None:
    """Without a data loss, an update of a key nobody holds writes nothing (as in SQLite)."""
    claimed = record("k")
    await worker_a.claim([claimed])
    await worker_a.discard("k", "a1")
    await worker_a.put([answered(claimed, PENDING_TASK)])
    assert await worker_a.get("k") is None


async def test_operations_meeting_the_loss_together_wait_for_one_write_back(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten operations that find the data gone at once: one write-back (one warning), and
    every one of them sees the records written back."""
    async with RedisJobStore(private_redis.url) as worker_a:
        claims = [record(f"k{i}") for i in range(10)]
        await worker_a.claim(claims)
        private_redis.kill()
        private_redis.start()
        with caplog.at_level(logging.WARNING, "legnext_async"):
            found = await asyncio.gather(*(worker_a.get(c.key) for c in claims))
        assert [r.key if r else None for r in found] == [c.key for c in claims]
    assert [r.getMessage() for r in caplog.records if "lost its data" in r.getMessage()] == [
        f"job store: Redis at {private_redis.url} lost its data (a restart without"
        " persistence?): writing back the 10 unfinished records of this store"
    ]


# --- what is not ours -----------------------------------------------------------------


async def test_a_foreign_key_in_the_namespace_is_a_store_error(
    redis_server: RedisServer, worker_a: RedisJobStore
) -> None:
    """A value of another type where a record belongs raises StoreError naming the
    server (Redis refused the script), not a bare Redis error."""
    await worker_a.open()
    with contextlib.closing(redis_server.client()) as client:
        client.set("legnext:store:job:k", "not a record")
    with pytest.raises(StoreError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 failed"):
        await worker_a.claim([record("k")])


async def test_an_unreadable_record_is_a_store_error(
    redis_server: RedisServer, worker_a: RedisJobStore
) -> None:
    """A record hash missing its fields (written by hand) raises StoreError naming it."""
    await worker_a.open()
    with contextlib.closing(redis_server.client()) as client:
        client.hset("legnext:store:job:k", "attempt", "a1")
    with pytest.raises(StoreError, match="'k' is unreadable"):
        await worker_a.get("k")


# --- one event loop after another ---------------------------------------------------------


def test_a_store_serves_one_event_loop_after_another(redis_url: str) -> None:
    """A store used in ``asyncio.run()`` and then in another connects again in the second."""
    store = RedisJobStore(redis_url)

    async def first() -> None:
        await store.claim([record("k")])
        await store.close()

    async def second() -> JobRecord | None:
        try:
            return await store.get("k")
        finally:
            await store.close()

    asyncio.run(first())
    got = asyncio.run(second())
    assert got is not None
    assert got.key == "k"


def test_a_client_closes_its_redis_store_with_its_loop(redis_url: str) -> None:
    """A client reads its Redis store in one ``asyncio.run()`` and the next: the end of
    each loop closes the store's connections there (nothing is left open)."""
    store = RedisJobStore(redis_url)
    client = LegnextClient(api_key="k" * 20, base_url="http://127.0.0.1:9", store=store)

    async def claim_and_read() -> list[JobRecord]:
        await store.claim([record("k")])
        return await client.records()

    async def read() -> list[JobRecord]:
        return await client.records()

    assert [r.key for r in asyncio.run(claim_and_read())] == ["k"]
    assert [r.key for r in asyncio.run(read())] == ["k"]
    asyncio.run(client.aclose())


# --- secrets and arguments ---------------------------------------------------------------


async def test_the_password_is_in_no_repr_error_or_log(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The URL's password shows in neither the store's repr, nor a refused login's
    error, nor an unreachable server's error and log line."""
    with contextlib.closing(private_redis.client()) as client:
        client.config_set("requirepass", "secret-one")
    wrong = RedisJobStore(f"redis://:secret-two@127.0.0.1:{private_redis.port}/0")
    right = RedisJobStore(
        f"redis://:secret-one@127.0.0.1:{private_redis.port}/0", unavailable_timeout=0
    )
    texts = [repr(wrong), repr(right), str(wrong.url)]
    with pytest.raises(StoreError, match="refused") as refused:
        await wrong.get("k")
    await right.claim([record("k")])
    private_redis.stop()
    with (
        caplog.at_level(logging.INFO, "legnext_async"),
        pytest.raises(StoreError, match="unreachable") as unreachable,
    ):
        await right.get("k")
    for error in (refused.value, unreachable.value):
        texts.append("".join(traceback.format_exception(error)))
    texts.extend(r.getMessage() for r in caplog.records)
    assert caplog.records
    assert [text for text in texts if "secret" in text] == []
    await wrong.close()
    await right.close()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        pytest.param({"url": "http://:secret@127.0.0.1:6379"}, "url", id="scheme"),
        pytest.param({"url": "redis://:secret@127.0.0.1:port"}, "url", id="port"),
        pytest.param({"url": 6379}, "url", id="not-text"),
        pytest.param({"namespace": ""}, "namespace", id="empty-namespace"),
        pytest.param({"namespace": "a\nb"}, "namespace", id="control-namespace"),
        pytest.param({"namespace": "n" * 101}, "namespace", id="long-namespace"),
        pytest.param({"unavailable_timeout": -1}, "unavailable_timeout", id="timeout"),
        pytest.param({"unavailable_timeout": float("nan")}, "unavailable_timeout", id="nan"),
        pytest.param({"socket_timeout": 0}, "socket_timeout", id="socket-timeout"),
        pytest.param({"socket_connect_timeout": 0}, "socket_connect_timeout", id="connect-timeout"),
    ],
)
def test_bad_arguments_name_the_field(arguments: dict[str, object], field: str) -> None:
    """Nonsense arguments raise ValidationError naming the field, never the password."""
    given: dict[str, object] = {"url": "redis://127.0.0.1:6379/0", **arguments}
    with pytest.raises(ValidationError, match=field) as raised:
        RedisJobStore(**given)  # type: ignore[arg-type]
    assert "secret" not in str(raised.value)


def test_the_repr_names_the_server_and_namespace() -> None:
    """The repr shows where the records are: scheme, host, port, database, namespace."""
    store = RedisJobStore("redis://user:pw@127.0.0.1:6390/2?password=pw", namespace="shop")
    assert repr(store) == "<RedisJobStore redis://127.0.0.1:6390/2 namespace='shop'>"


# --- the extra --------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_without_the_redis_package_the_import_names_the_extra() -> None:
    """``import legnext_async.redis`` without ``redis`` installed says which extra to
    install."""
    ran = _python("import sys; sys.modules['redis'] = None; import legnext_async.redis")
    assert ran.returncode != 0
    assert "ImportError" in ran.stderr
    assert "pip install 'legnext-async[redis]'" in ran.stderr


def test_the_core_package_does_not_import_redis() -> None:
    """``import legnext_async`` loads neither ``legnext_async.redis`` nor ``redis``."""
    ran = _python(
        "import sys, legnext_async;"
        " print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'"
        " or m.startswith('legnext_async.redis')))"
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


async def test_a_burst_of_calls_waits_for_connections_instead_of_failing(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Far more calls at once than the store keeps connections: each waits for one, and
    nothing reads as Redis being away."""
    store = RedisJobStore(redis_url)
    try:
        with caplog.at_level(logging.WARNING, logger="legnext_async"):
            found = await asyncio.gather(*(store.get(f"burst-{n}") for n in range(300)))
        assert found == [None] * 300
        assert not [r for r in caplog.records if "unreachable" in r.getMessage()]
    finally:
        await store.close()
