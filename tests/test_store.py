"""Job stores on their own: claims, updates, forgetting, listing, totals, and a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING

import attrs
import pytest

from legnext_async import (
    JobRecord,
    JobStore,
    LegnextClient,
    MemoryJobStore,
    RecordState,
    SQLiteJobStore,
    StoreError,
    Task,
    ValidationError,
)
from legnext_async._keeper import JobKeeper
from legnext_async._polling import DurationModel
from legnext_async._store import CanonicalRequest, canonical_request, state_of
from legnext_async.redis import RedisJobStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from pathlib import Path

PENDING_TASK = {
    "job_id": "job-1",
    "task_type": "inpaint",
    "status": "pending",
    "meta": {"usage": {"type": "point", "frozen": 120, "consume": 0}},
}
DONE_TASK = {
    **PENDING_TASK,
    "status": "completed",
    "meta": {"usage": {"type": "point", "frozen": 120, "consume": 120}},
}


def record(key: str, attempt: str = "a1", *, created_at: float | None = None) -> JobRecord:
    """A fresh claim of ``key``."""
    now = time.time() if created_at is None else created_at
    return JobRecord(
        key=key,
        attempt=attempt,
        endpoint="inpaint",
        request={"jobId": "parent", "imageNo": 0, "remixPrompt": "a tree"},
        state=RecordState.SUBMITTING,
        created_at=now,
        updated_at=now,
        sent_at=now,
    )


def answered(claimed: JobRecord, data: Mapping[str, object]) -> JobRecord:
    """``claimed`` updated with a snapshot made of ``data``."""
    task = Task.from_json(data)
    return claimed.with_task(task, state_of(task))


@pytest.fixture(params=["sqlite", "memory", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    """Each kind of store, empty (an SQLite one in a real file, a Redis one on a real
    server)."""
    made: JobStore
    if request.param == "sqlite":
        made = SQLiteJobStore(tmp_path / "jobs.db")
    elif request.param == "redis":
        made = RedisJobStore(request.getfixturevalue("redis_url"))
    else:
        made = MemoryJobStore()
    async with made:
        yield made


async def test_a_claim_takes_a_free_key(store: JobStore) -> None:
    """The first claim of a key is stored as given."""
    mine = record("k")
    assert await store.claim([mine]) == [mine]
    assert await store.get("k") == mine


async def test_a_read_record_has_the_request_it_was_claimed_with(store: JobStore) -> None:
    """The request read back equals the one given, as a mapping and as canonical text."""
    mine = record("k")
    await store.claim([mine])
    got = await store.get("k")
    assert got is not None
    assert got.request == mine.request
    assert dict(got.request) == {"jobId": "parent", "imageNo": 0, "remixPrompt": "a tree"}
    assert canonical_request(got.request) == canonical_request(mine.request)
    assert got.same_request("inpaint", {"remixPrompt": "a tree", "imageNo": 0, "jobId": "parent"})
    assert not got.same_request("inpaint", {**mine.request, "imageNo": 1})


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"b": [1, {"d": 2, "c": 3}], "a": "é"}, id="nested-unicode"),
        pytest.param({}, id="empty"),
    ],
)
def test_a_canonical_request_reads_like_the_request(request_: dict[str, object]) -> None:
    """A request in canonical form keeps the canonical text and reads as the same mapping."""
    canonical = CanonicalRequest.of(request_)
    assert canonical.text == canonical_request(request_)
    assert canonical_request(canonical) == canonical.text
    assert CanonicalRequest.of(canonical) is canonical
    assert canonical == request_
    assert dict(canonical) == request_
    assert canonical == CanonicalRequest(canonical.text)
    assert canonical != {**request_, "extra": 1}


async def test_a_second_claim_gets_the_holder(store: JobStore) -> None:
    """A key already claimed stays with its first claim; the second learns who holds it."""
    first, second = record("k", "a1"), record("k", "a2")
    await store.claim([first])
    (held,) = await store.claim([second])
    assert held.attempt == "a1"


async def test_a_forgotten_key_is_free_again(store: JobStore) -> None:
    """``forget`` marks the record forgotten (kept), and the key can be claimed anew."""
    await store.claim([record("k", "a1")])
    before = await store.forget("k")
    assert before is not None
    assert before.state is RecordState.SUBMITTING
    forgotten = await store.get("k")
    assert forgotten is not None
    assert forgotten.state is RecordState.FORGOTTEN
    (held,) = await store.claim([record("k", "a2")])
    assert held.attempt == "a2"


async def test_forgetting_an_unknown_key_says_so(store: JobStore) -> None:
    """``forget`` of a key never recorded returns ``None`` and records nothing."""
    assert await store.forget("nobody") is None
    assert await store.records() == []


async def test_put_writes_only_its_own_attempt(store: JobStore) -> None:
    """A late update of an old attempt never writes over the key's newer claim."""
    old = record("k", "a1")
    await store.claim([old])
    await store.forget("k")
    await store.claim([record("k", "a2")])
    await store.put([answered(old, PENDING_TASK)])
    current = await store.get("k")
    assert current is not None
    assert (current.attempt, current.job_id) == ("a2", None)


async def test_a_late_update_never_undoes_forget(store: JobStore) -> None:
    """A status written after the key was forgotten (its job still polled somewhere)
    leaves the record forgotten and the key free."""
    claimed = record("k")
    await store.claim([claimed])
    await store.forget("k")
    await store.put([answered(claimed, DONE_TASK)])
    current = await store.get("k")
    assert current is not None
    assert current.state is RecordState.FORGOTTEN
    (held,) = await store.claim([record("k", "a2")])
    assert held.attempt == "a2"


async def test_an_update_keeps_the_task_and_points(store: JobStore) -> None:
    """The job id, state, last task and ``meta.usage`` points are what the store hands back."""
    claimed = record("k")
    await store.claim([claimed])
    await store.put([answered(claimed, DONE_TASK)])
    got = await store.get("k")
    assert got is not None
    assert (got.job_id, got.state, got.points_frozen, got.points_consumed) == (
        "job-1",
        RecordState.COMPLETED,
        120,
        120,
    )
    assert got.task is not None
    assert got.task.status.value == "completed"
    assert await store.find("job-1") == got


async def test_discard_frees_only_an_unsent_claim(store: JobStore) -> None:
    """A claim whose POST was never sent can be removed; an answered one cannot."""
    unsent, answered_one = record("a"), record("b")
    await store.claim([unsent, answered_one])
    await store.put([answered(answered_one, PENDING_TASK)])
    await store.discard("a", unsent.attempt)
    await store.discard("b", answered_one.attempt)
    assert await store.get("a") is None
    assert await store.get("b") is not None


async def test_records_are_listed_by_state_oldest_first(store: JobStore) -> None:
    """``records(*states)`` filters by state and keeps the order of creation."""
    claims = [record(f"k{i}", created_at=1000.0 + i) for i in range(3)]
    await store.claim(claims)
    await store.put([answered(claims[2], PENDING_TASK), answered(claims[0], DONE_TASK)])
    assert [r.key for r in await store.records()] == ["k0", "k1", "k2"]
    assert [r.key for r in await store.records(RecordState.PENDING)] == ["k2"]
    assert [r.key for r in await store.records(RecordState.SUBMITTING)] == ["k1"]
    assert [r.key for r in await store.records(limit=2)] == ["k0", "k1"]


async def test_totals_count_frozen_until_finished_then_consumed(store: JobStore) -> None:
    """Committed points are the frozen of unfinished jobs and the consumed of finished ones."""
    running, done, failed = record("r"), record("d"), record("f")
    await store.claim([running, done, failed])
    failed_task = {**DONE_TASK, "status": "failed", "meta": {"usage": {"frozen": 120}}}
    await store.put(
        [
            answered(running, PENDING_TASK),
            answered(done, DONE_TASK),
            answered(failed, failed_task),
        ]
    )
    totals = await store.totals()
    assert (totals.committed, totals.spent) == (240, 120)


async def test_client_state_is_saved_by_name(store: JobStore) -> None:
    """``save``/``load`` keep small values beside the records."""
    assert await store.load("durations") is None
    await store.save("durations", '{"inpaint": [100.0]}')
    await store.save("durations", '{"inpaint": [101.0]}')
    assert await store.load("durations") == '{"inpaint": [101.0]}'


# --- SQLite specifics -----------------------------------------------------------------


async def test_sqlite_file_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    """The file is a WAL journal; its records survive the store being closed and reopened."""
    path = tmp_path / "jobs.db"
    async with SQLiteJobStore(path) as store:
        await store.claim([record("k")])
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    async with SQLiteJobStore(path) as again:
        assert (await again.get("k")) is not None


async def test_two_stores_on_one_file_agree_on_each_key(tmp_path: Path) -> None:
    """Claims from two stores of one file, interleaved, give every key exactly one holder."""
    path = tmp_path / "jobs.db"
    async with SQLiteJobStore(path) as one, SQLiteJobStore(path) as two:
        claims = [
            (one if i % 2 else two).claim([record(f"k{i % 50}", f"{'one' if i % 2 else 'two'}")])
            for i in range(200)
        ]
        results = await asyncio.gather(*claims)
        holders = {held[0].key: held[0].attempt for held in results}
        for held in results:
            assert held[0].attempt == holders[held[0].key]
        assert len(await one.records()) == 50


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer version is not read as if it were ours."""
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        await SQLiteJobStore(path).open()


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """Garbage in place of the file raises StoreError naming the path."""
    path = tmp_path / "jobs.db"
    path.write_bytes(b"not a database at all" * 100)
    store = SQLiteJobStore(path)
    with pytest.raises(StoreError, match=r"jobs\.db"):
        await store.get("k")
    await store.close()


@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param(lambda p: SQLiteJobStore(":memory:"), "path", id="memory-path"),
        pytest.param(lambda p: SQLiteJobStore(p, busy_timeout=0), "busy_timeout", id="timeout"),
    ],
)
def test_bad_store_arguments_name_the_field(
    make: Callable[[Path], object], field: str, tmp_path: Path
) -> None:
    """Nonsense arguments raise ValidationError naming the field."""
    with pytest.raises(ValidationError, match=field):
        make(tmp_path / "jobs.db")


def test_a_client_takes_a_path_as_an_sqlite_store(tmp_path: Path) -> None:
    """``store="jobs.db"`` is a shorthand for ``SQLiteJobStore("jobs.db")``."""
    client = LegnextClient(api_key="k" * 20, base_url="http://127.0.0.1:9", store=tmp_path / "j")
    assert isinstance(client.store, SQLiteJobStore)
    assert client.store.path == str(tmp_path / "j")


def test_a_client_refuses_a_store_of_another_type() -> None:
    """Anything but a JobStore or a path is refused, naming ``store``."""
    with pytest.raises(ValidationError, match="store"):
        LegnextClient(api_key="k" * 20, base_url="http://127.0.0.1:9", store=42)  # type: ignore[arg-type]


# --- the keeper: grouped writes ---------------------------------------------------------


class CountingStore(MemoryJobStore):
    """A memory store that counts the batches it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def put(self, records: list[JobRecord]) -> None:  # type: ignore[override]
        self.batches.append(len(records))
        await super().put(records)


async def test_updates_queued_together_are_written_in_one_batch() -> None:
    """Many jobs changing at once cost one write, and each job's latest version wins."""
    store = CountingStore()
    keeper = JobKeeper(store, DurationModel())
    claims = [record(f"k{i}") for i in range(100)]
    await store.claim(claims)
    for claimed in claims:
        keeper.write(answered(claimed, PENDING_TASK))
        keeper.write(answered(claimed, DONE_TASK))
    await keeper.flush()
    assert store.batches == [100]
    assert {r.state for r in await store.records()} == {RecordState.COMPLETED}


async def test_updates_nobody_awaits_wait_for_company_until_a_flush() -> None:
    """Status updates queued at different moments share one write; a flush writes at once."""
    store = CountingStore()
    keeper = JobKeeper(store, DurationModel(), gather=3600.0)
    claims = [record(f"k{i}") for i in range(3)]
    await store.claim(claims)
    for claimed in claims:
        keeper.write(answered(claimed, PENDING_TASK))
        for _ in range(3):
            await asyncio.sleep(0)  # turns of the loop (no waiting): the writer takes its own
    await keeper.flush()
    assert store.batches == [3]


async def test_a_durable_write_does_not_wait_for_company() -> None:
    """A write someone awaits is made at once, taking the updates queued before it along."""
    store = CountingStore()
    keeper = JobKeeper(store, DurationModel(), gather=3600.0)
    claims = [record(f"k{i}") for i in range(2)]
    await store.claim(claims)
    keeper.write(answered(claims[0], PENDING_TASK))
    await keeper.durable(answered(claims[1], PENDING_TASK))
    assert store.batches == [2]
    assert {r.state for r in await store.records()} == {RecordState.PENDING}


async def test_learned_run_times_are_saved_and_restored() -> None:
    """What a keeper saved of the run times, a new keeper of the store takes in."""
    store = MemoryJobStore()
    learned = DurationModel()
    for run in (100, 104, 110):
        learned.observe(
            Task.from_json(
                {
                    **DONE_TASK,
                    "meta": {
                        "started_at": "2026-01-01T00:00:00Z",
                        "ended_at": f"2026-01-01T00:0{run // 60}:{run % 60:02d}Z",
                    },
                }
            )
        )
    keeper = JobKeeper(store, learned)
    keeper.learned()
    await keeper.flush()
    fresh = DurationModel()
    await JobKeeper(store, fresh).ready()
    assert fresh.to_json() == learned.to_json()
    assert fresh.samples(Task.from_json(DONE_TASK).task_type) == 3


async def test_many_stores_opening_a_new_file_at_once_all_open(tmp_path: Path) -> None:
    """Eight stores setting up one new file together (journal mode, tables) all succeed."""
    path = tmp_path / "jobs.db"
    stores = [SQLiteJobStore(path) for _ in range(8)]
    try:
        await asyncio.gather(*(s.claim([record(f"k{i}")]) for i, s in enumerate(stores)))
        assert len(await stores[0].records()) == 8
    finally:
        await asyncio.gather(*(s.close() for s in stores))


# --- SQLite: one transaction per turn of the keeper -------------------------------------


class CountingSQLiteStore(SQLiteJobStore):
    """An SQLite store that counts the transactions the keeper hands it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.turns: list[tuple[int, int]] = []

    async def write(
        self,
        claims: Sequence[JobRecord],
        records: Sequence[JobRecord],
        values: Sequence[tuple[str, str]] = (),
    ) -> list[JobRecord]:
        self.turns.append((len(claims), len(records)))
        return await super().write(claims, records, values)


async def test_claims_and_updates_queued_together_share_one_sqlite_transaction(
    tmp_path: Path,
) -> None:
    """A claim and the job-id write of another job queued at once are one write."""
    store = CountingSQLiteStore(tmp_path / "jobs.db")
    keeper = JobKeeper(store, DurationModel())
    try:
        first = record("k1")
        await store.claim([first])
        store.turns.clear()
        written = keeper.durable(answered(first, PENDING_TASK))
        claimed = keeper.claim(record("k2"))
        await asyncio.gather(written, claimed)
        assert store.turns == [(1, 1)]
        states = {r.key: r.state for r in await store.records()}
        assert states == {"k1": RecordState.PENDING, "k2": RecordState.SUBMITTING}
    finally:
        await keeper.close()


async def test_a_write_that_fails_keeps_none_of_its_claims(tmp_path: Path) -> None:
    """Claims and updates written together are atomic: a failing update leaves no claim."""
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        first = record("k1")
        await store.claim([first])
        # Not a value SQLite can store: the transaction fails after the claim was made.
        unbindable = attrs.evolve(answered(first, PENDING_TASK), task_body=[1, 2])  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            await store.write([record("k2")], [unbindable])
        assert [r.key for r in await store.records()] == ["k1"]


async def test_a_claim_of_a_held_key_answers_the_holder_in_a_shared_write(
    tmp_path: Path,
) -> None:
    """Among claims written together, one of a key held by another attempt gets that
    attempt's record, and the others are stored."""
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        await store.claim([record("taken", "theirs")])
        held = await store.write([record("free", "mine"), record("taken", "mine")], [])
        assert [(r.key, r.attempt) for r in held] == [("free", "mine"), ("taken", "theirs")]


async def test_many_claims_and_updates_in_one_write_all_land(tmp_path: Path) -> None:
    """A write of more rows than one statement takes (in runs of 64, 32, 4) stores each."""
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        claims = [record(f"k{i:03}") for i in range(100)]
        assert await store.write(claims, []) == claims
        await store.write([], [answered(claimed, DONE_TASK) for claimed in claims[:99]])
        states = [r.state for r in await store.records()]
        assert states == [RecordState.COMPLETED] * 99 + [RecordState.SUBMITTING]


@pytest.mark.parametrize(
    ("first", "last", "kept_state"),
    [
        pytest.param(DONE_TASK, PENDING_TASK, RecordState.PENDING, id="pending-last"),
        pytest.param(PENDING_TASK, DONE_TASK, RecordState.COMPLETED, id="completed-last"),
    ],
)
async def test_the_last_of_two_versions_in_one_put_wins(
    store: JobStore,
    first: Mapping[str, object],
    last: Mapping[str, object],
    kept_state: RecordState,
) -> None:
    """Two versions of one record handed over together: the later one is kept."""
    claimed = record("k")
    await store.claim([claimed])
    await store.put([answered(claimed, first), answered(claimed, last)])
    kept = await store.get("k")
    assert kept is not None
    assert kept.state is kept_state


async def test_a_record_is_found_by_its_callback_token(store: JobStore) -> None:
    """``find_token`` finds the record whose submission carried a token, and no other."""
    await store.claim([attrs.evolve(record("k1"), callback_token="T" * 32)])
    await store.claim([record("k2")])
    found = await store.find_token("T" * 32)
    assert found is not None
    assert (found.key, found.callback_token) == ("k1", "T" * 32)
    assert await store.find_token("U" * 32) is None


async def test_the_default_find_token_reads_the_records() -> None:
    """A store that does not index tokens still finds them through ``records``."""

    class Plain(MemoryJobStore):
        find_token = JobStore.find_token

    store = Plain()
    await store.claim([attrs.evolve(record("k1"), callback_token="T" * 32)])
    found = await store.find_token("T" * 32)
    assert found is not None
    assert found.key == "k1"


def test_the_receivers_callback_url_is_not_part_of_the_request() -> None:
    """A record made with a receiver's callback URL matches the call made without it, and
    not a call that brings a callback URL of its own."""
    made = attrs.evolve(
        record("k1"),
        request={"text": "x", "callback": "https://hooks.example.com/T"},
        callback_token="T",
    )
    assert made.same_request("inpaint", {"text": "x"})
    assert not made.same_request("inpaint", {"text": "x", "callback": "https://mine.example"})
    assert not attrs.evolve(made, callback_token=None).same_request("inpaint", {"text": "x"})


#: The schema of version 1 (before callback tokens), as files written then have it.
SCHEMA_1 = """
CREATE TABLE jobs (
    key TEXT PRIMARY KEY, attempt TEXT NOT NULL, endpoint TEXT NOT NULL,
    request TEXT NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, job_id TEXT, sent_at REAL, points_frozen INTEGER,
    points_consumed INTEGER, files TEXT NOT NULL DEFAULT '[]', task BLOB
);
CREATE INDEX jobs_by_state ON jobs (state, created_at);
CREATE INDEX jobs_by_job_id ON jobs (job_id);
CREATE TABLE client_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO jobs VALUES ('old', 'a0', 'inpaint', '{}', 'completed', 1.0, 2.0, 'job-0',
    1.0, 120, 120, '[]', NULL);
PRAGMA user_version = 1;
"""


async def test_a_version_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    """A file of the first schema opens: its records kept, callback tokens stored from then."""
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(SCHEMA_1)
    async with SQLiteJobStore(path) as store:
        old = await store.get("old")
        assert old is not None
        assert (old.job_id, old.state, old.callback_token) == ("job-0", RecordState.COMPLETED, None)
        await store.claim([attrs.evolve(record("new"), callback_token="T" * 32)])
        found = await store.find_token("T" * 32)
        assert found is not None
        assert found.key == "new"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
