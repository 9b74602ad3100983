"""Job stores: what the client knows of each job it submitted, kept where a crash cannot take it.

Legnext jobs are paid, and the API has no idempotency key and no way to list an account's
jobs: a job id that only lived in a process's memory is lost with the process, and sending
the request again pays twice. A :class:`JobStore` keeps one :class:`JobRecord` per
submission, under the caller's idempotency key:

1. **claimed** (``submitting``) and made durable *before* the POST is sent;
2. updated with the job id as soon as the answer arrives, then with every status change,
   the final task, the points frozen and consumed, and the files downloaded;
3. or marked ``unknown`` when the POST was sent and its answer lost.

A ``submitting`` record that no live client is sending (its process died between sending
and recording the answer) reads as an unknown outcome too: nobody can tell whether the
service made the job. The key stays taken until the user settles it with ``forget``.

Stores here: :class:`SQLiteJobStore` (a file; the standard library's SQLite in WAL mode,
every write committed with a full sync, all of it on a thread of its own so that the event
loop never waits on the disk) and :class:`MemoryJobStore` (a process's memory: the same
rules, for tests and for idempotency within one run).
"""

from __future__ import annotations

import abc
import asyncio
import enum
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import attrs

from ._exceptions import StoreError, ValidationError
from ._models import RawJSON, Task
from ._wire import loads

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "JobRecord",
    "JobStore",
    "MemoryJobStore",
    "RecordState",
    "SQLiteJobStore",
    "StoreError",
    "StoredPoints",
    "canonical_request",
]

T = TypeVar("T")

#: The longest idempotency key accepted: room for a file name, a line number and a hash.
MAX_KEY_LENGTH: Final = 256


class RecordState(enum.Enum):
    """Where a stored submission is."""

    #: Claimed: the POST is about to be sent, or was sent and its answer not yet recorded.
    #: Found in a store that no live client is writing, it is an unknown outcome.
    SUBMITTING = "submitting"
    #: The POST was sent and its answer lost: a job may exist, and may be billed.
    UNKNOWN = "unknown"
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: The service answered 404 for the job: it is past its retention window (or was never
    #: the account's). ``resume`` leaves it; a read that finds it again updates the record.
    LOST = "lost"
    #: Settled by the user (``forget``): the key may be used for a new submission.
    FORGOTTEN = "forgotten"

    @property
    def is_unfinished(self) -> bool:
        """Whether the record names a job that may still be running (``resume`` waits
        for it)."""
        return self is RecordState.PENDING or self is RecordState.RUNNING

    @property
    def is_finished(self) -> bool:
        """Whether the job was seen ``completed`` or ``failed``."""
        return self is RecordState.COMPLETED or self is RecordState.FAILED

    @property
    def outcome_unknown(self) -> bool:
        """Whether nobody can tell if the submission made a job."""
        return self is RecordState.SUBMITTING or self is RecordState.UNKNOWN


def check_key(key: object) -> str:
    """An idempotency key: any text of 1 to :data:`MAX_KEY_LENGTH` printable characters."""
    if not isinstance(key, str):
        raise ValidationError("key", f"must be a string, got {type(key).__name__}")
    if not key.strip():
        raise ValidationError("key", "must not be empty or blank")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError("key", f"must be at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    if not key.isprintable():
        raise ValidationError("key", "must not contain control characters")
    return key


def canonical_request(request: Mapping[str, Any]) -> str:
    """The request as one string, equal for equal requests whatever the order of fields."""
    if type(request) is CanonicalRequest:
        return request.text
    return json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class CanonicalRequest(Mapping[str, Any]):
    """A request kept as its canonical JSON text (see :func:`canonical_request`), decoded
    when first read.

    A record's request is encoded once, when the submission is claimed, and not decoded
    at all when a store hands back records that nobody reads the request of (``resume``
    of many jobs): every later write of the record reuses the text.
    """

    __slots__ = ("_data", "text")

    def __init__(self, text: str) -> None:
        #: The canonical JSON text.
        self.text = text
        self._data: dict[str, Any] | None = None

    @classmethod
    def of(cls, request: Mapping[str, Any]) -> CanonicalRequest:
        """``request`` (a JSON object) in canonical form."""
        if type(request) is CanonicalRequest:
            return request
        return cls(canonical_request(request))

    def _decoded(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            parsed = json.loads(self.text)
            data = self._data = parsed if isinstance(parsed, dict) else {}
        return data

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __eq__(self, other: object) -> bool:
        if type(other) is CanonicalRequest:
            return other.text == self.text
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # like a dict

    def __repr__(self) -> str:
        return repr(self._decoded())


def task_bytes(task: Task | None) -> bytes | None:
    """A task as the JSON bytes to keep: as the service sent them when they are at hand."""
    if task is None:
        return None
    raw = task.raw
    if isinstance(raw, RawJSON):
        return raw.body
    return json.dumps(task.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def _task_from(body: bytes | None) -> Task | None:
    if body is None:
        return None
    try:
        data = loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return Task.from_json(data, body=body)


@attrs.frozen
class JobRecord:
    """One submission as a store keeps it.

    ``key`` is the idempotency key (given, or made up by the client), ``attempt`` tells one
    submission under a key from a later one after ``forget``. ``request`` is the JSON body
    that was (or is about to be) sent to ``endpoint``. Times are Unix seconds; ``sent_at``
    is when the POST was last sent. ``points_frozen`` and ``points_consumed`` are the
    task's ``meta.usage``; ``files`` the paths of downloaded outputs. ``task`` is the last
    snapshot seen (decoded when first read). ``callback_token`` is the token of the callback
    URL a webhook receiver gave the submission (then ``request`` carries that URL).
    """

    key: str
    attempt: str
    endpoint: str
    request: Mapping[str, Any]
    state: RecordState
    created_at: float
    updated_at: float
    job_id: str | None = None
    sent_at: float | None = None
    points_frozen: int | None = None
    points_consumed: int | None = None
    files: tuple[str, ...] = ()
    task_body: bytes | None = attrs.field(default=None, repr=False)
    callback_token: str | None = attrs.field(default=None, repr=False)

    @functools.cached_property
    def task(self) -> Task | None:
        """The last snapshot of the job, if one was seen."""
        return _task_from(self.task_body)

    def same_request(self, endpoint: str, request: Mapping[str, Any]) -> bool:
        """Whether ``request`` to ``endpoint`` (as the caller made it) is the one recorded.

        The callback URL a webhook receiver added is not the caller's, and is left out:
        the same call again gets another token, and is the same request.
        """
        recorded = self.request
        if self.callback_token is not None:
            recorded = {name: value for name, value in recorded.items() if name != "callback"}
        return endpoint == self.endpoint and canonical_request(request) == canonical_request(
            recorded
        )

    def with_task(self, task: Task, state: RecordState, *, now: float | None = None) -> JobRecord:
        """This record updated with a new snapshot of its job."""
        usage = task.meta.usage
        return attrs.evolve(
            self,
            state=state,
            job_id=task.job_id or self.job_id,
            task_body=task_bytes(task),
            points_frozen=usage.frozen,
            points_consumed=usage.consume,
            updated_at=time.time() if now is None else now,
        )


def state_of(task: Task) -> RecordState:
    """The record state a snapshot stands for."""
    status = task.status
    if status.is_finished:
        return RecordState.COMPLETED if status.value == "completed" else RecordState.FAILED
    return RecordState.PENDING if status.is_queued else RecordState.RUNNING


@attrs.frozen
class StoredPoints:
    """Points of a store's jobs: ``committed`` (consumed by finished jobs, frozen by the
    others) and ``spent`` (consumed)."""

    committed: int = 0
    spent: int = 0


class JobStore(abc.ABC):
    """Where a client keeps its :class:`JobRecord` s (see the module docstring).

    Every method is a coroutine that does its work without blocking the event loop, and
    may be used by several clients (and, for a store of a shared file or server, several
    processes) at once: :meth:`claim` decides atomically who owns a key.
    """

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional: a store with nothing to open
        """Make the store ready (idempotent; every other method opens it when needed)."""

    async def close(self) -> None:  # noqa: B027 - optional: a store with nothing to close
        """Release what the store holds (idempotent); it opens again when used."""

    @abc.abstractmethod
    async def get(self, key: str) -> JobRecord | None:
        """The record under ``key``, if any (a forgotten one too)."""

    @abc.abstractmethod
    async def find(self, job_id: str) -> JobRecord | None:
        """The latest record of the job ``job_id``, if any."""

    @abc.abstractmethod
    async def claim(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        """For each record, store it unless its key is taken; the record that holds each key
        afterwards (the given one, or the one that had it: check ``attempt``).

        A key is free when no record has it or its record was forgotten. Atomic per key
        against every other writer of the store.
        """

    @abc.abstractmethod
    async def put(self, records: Sequence[JobRecord]) -> None:
        """Write new versions of records this client claimed, together.

        A record whose key was claimed again since (by another ``attempt``), or forgotten,
        is not written: the key is no longer this submission's.
        """

    async def write(
        self,
        claims: Sequence[JobRecord],
        records: Sequence[JobRecord],
        values: Sequence[tuple[str, str]] = (),
    ) -> list[JobRecord]:
        """:meth:`claim` ``claims``, then :meth:`put` ``records`` and :meth:`save` each
        ``(name, value)``; the records that hold the claimed keys.

        The client hands each turn's news to this one method. This default makes the calls
        one after another; a store that can do them in one transaction (one sync to the
        disk, one round trip) should, as :class:`SQLiteJobStore` does.
        """
        held = await self.claim(claims) if claims else []
        if records:
            await self.put(records)
        for name, value in values:
            await self.save(name, value)
        return held

    @abc.abstractmethod
    async def discard(self, key: str, attempt: str) -> None:
        """Remove a claimed record whose POST was provably never sent (the key is free)."""

    @abc.abstractmethod
    async def forget(self, key: str) -> JobRecord | None:
        """Mark the record under ``key`` forgotten (recorded; the key may be used anew);
        the record as it was, or ``None`` if there was none."""

    @abc.abstractmethod
    async def records(self, *states: RecordState, limit: int | None = None) -> list[JobRecord]:
        """The records in any of ``states`` (every record if none is given), oldest first."""

    async def find_token(self, token: str) -> JobRecord | None:
        """The record whose submission carried the callback token ``token``, if any.

        Asked once per webhook delivery. This default reads every record; a store should
        answer from an index (both stores here do).
        """
        for record in await self.records():
            if record.callback_token == token:
                return record
        return None

    @abc.abstractmethod
    async def totals(self) -> StoredPoints:
        """Points committed and spent by every job of the store (forgotten ones included:
        their points were taken all the same)."""

    @abc.abstractmethod
    async def load(self, name: str) -> str | None:
        """A value the client keeps beside its records (learned poll windows), if saved."""

    @abc.abstractmethod
    async def save(self, name: str, value: str) -> None:
        """Keep ``value`` under ``name`` beside the records."""


def _committed(record: JobRecord) -> int:
    if record.state.is_finished:
        return record.points_consumed or 0
    return record.points_frozen or 0


class MemoryJobStore(JobStore):
    """A :class:`JobStore` in this process's memory: keys are honoured across the clients
    that share it, for as long as the process lives. Nothing survives the process."""

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}
        self._meta: dict[str, str] = {}
        #: Keys by callback token.
        self._tokens: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<MemoryJobStore {len(self._records)} records>"

    async def get(self, key: str) -> JobRecord | None:
        return self._records.get(key)

    async def find(self, job_id: str) -> JobRecord | None:
        found = None
        for record in self._records.values():
            if record.job_id == job_id and (found is None or record.created_at >= found.created_at):
                found = record
        return found

    async def find_token(self, token: str) -> JobRecord | None:
        key = self._tokens.get(token)
        record = self._records.get(key) if key is not None else None
        return record if record is not None and record.callback_token == token else None

    async def claim(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        held = []
        for record in records:
            current = self._records.get(record.key)
            if current is None or current.state is RecordState.FORGOTTEN:
                current = self._records[record.key] = record
                if record.callback_token is not None:
                    self._tokens[record.callback_token] = record.key
            held.append(current)
        return held

    async def put(self, records: Sequence[JobRecord]) -> None:
        for record in records:
            current = self._records.get(record.key)
            if (
                current is not None
                and current.attempt == record.attempt
                and current.state is not RecordState.FORGOTTEN
            ):
                self._records[record.key] = record

    async def discard(self, key: str, attempt: str) -> None:
        current = self._records.get(key)
        if (
            current is not None
            and current.attempt == attempt
            and current.state is RecordState.SUBMITTING
        ):
            del self._records[key]

    async def forget(self, key: str) -> JobRecord | None:
        current = self._records.get(key)
        if current is not None:
            self._records[key] = attrs.evolve(
                current, state=RecordState.FORGOTTEN, updated_at=time.time()
            )
        return current

    async def records(self, *states: RecordState, limit: int | None = None) -> list[JobRecord]:
        wanted = set(states)
        found = [r for r in self._records.values() if not wanted or r.state in wanted]
        found.sort(key=lambda r: r.created_at)
        return found if limit is None else found[:limit]

    async def totals(self) -> StoredPoints:
        records = self._records.values()
        return StoredPoints(
            committed=sum(_committed(r) for r in records),
            spent=sum(r.points_consumed or 0 for r in records),
        )

    async def load(self, name: str) -> str | None:
        return self._meta.get(name)

    async def save(self, name: str, value: str) -> None:
        self._meta[name] = value


# --- SQLite ----------------------------------------------------------------------------------

_SCHEMA_VERSION: Final = 2
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    attempt TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    job_id TEXT,
    sent_at REAL,
    points_frozen INTEGER,
    points_consumed INTEGER,
    files TEXT NOT NULL DEFAULT '[]',
    task BLOB,
    callback_token TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_job_id ON jobs (job_id);
CREATE INDEX IF NOT EXISTS jobs_by_callback_token ON jobs (callback_token);
CREATE TABLE IF NOT EXISTS client_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: From each older schema version to the next (the version's index is the one it upgrades).
_MIGRATIONS: Final = {
    # 1 -> 2: the callback token of a record (webhooks).
    1: "ALTER TABLE jobs ADD COLUMN callback_token TEXT;"
    "CREATE INDEX IF NOT EXISTS jobs_by_callback_token ON jobs (callback_token);",
}
_COLUMNS: Final = (
    "key, attempt, endpoint, request, state, created_at, updated_at, job_id, sent_at,"
    " points_frozen, points_consumed, files, task, callback_token"
)
_STATES: Final = {state.value: state for state in RecordState}
#: Rows per statement of a multi-row write (14 parameters a row, far below SQLite's limit).
_CHUNK: Final = 64


@functools.lru_cache(maxsize=16)
def _claims_sql(n: int) -> str:
    """Claim ``n`` records in one statement: each a new record, or one over a forgotten
    record of its key (a key is free then); a key held otherwise is left alone."""
    columns = [column.strip() for column in _COLUMNS.split(",")]
    row = f"({','.join('?' * len(columns))})"
    return (
        f"INSERT INTO jobs ({_COLUMNS}) VALUES {','.join([row] * n)}"
        f" ON CONFLICT (key) DO UPDATE SET ({_COLUMNS}) ="
        f" ({','.join('excluded.' + column for column in columns)})"
        " WHERE jobs.state = 'forgotten'"
    )


@functools.lru_cache(maxsize=16)
def _puts_sql(n: int) -> str:
    """Update ``n`` records (the parameters of each: :func:`_row` but the key and the
    attempt, then those two) in one statement, each only while its attempt holds the key."""
    columns = [column.strip() for column in _COLUMNS.split(",")][2:]
    row = f"({','.join('?' * (len(columns) + 2))})"
    assignments = ", ".join(f"{column} = v.column{i}" for i, column in enumerate(columns, 1))
    return (
        f"UPDATE jobs SET {assignments} FROM (VALUES {','.join([row] * n)}) AS v"
        f" WHERE jobs.key = v.column{len(columns) + 1}"
        f" AND jobs.attempt = v.column{len(columns) + 2}"
        # A forgotten record stays forgotten: a late status of its job changes nothing.
        " AND jobs.state <> 'forgotten'"
    )


def _chunks(rows: Sequence[tuple[object, ...]]) -> Iterator[tuple[int, list[object]]]:
    """``rows`` in runs of a power of two (at most :data:`_CHUNK`), flattened: few
    statements per write, and few distinct ones for SQLite's statement cache."""
    start = 0
    while start < len(rows):
        size = min(_CHUNK, 1 << ((len(rows) - start).bit_length() - 1))
        yield size, [value for row in rows[start : start + size] for value in row]
        start += size


_SAVE: Final = (
    "INSERT INTO client_state (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


def _row(record: JobRecord) -> tuple[object, ...]:
    return (
        record.key,
        record.attempt,
        record.endpoint,
        canonical_request(record.request),
        record.state.value,
        record.created_at,
        record.updated_at,
        record.job_id,
        record.sent_at,
        record.points_frozen,
        record.points_consumed,
        json.dumps(list(record.files), ensure_ascii=False),
        record.task_body,
        record.callback_token,
    )


def _record(row: Sequence[Any]) -> JobRecord:
    (key, attempt, endpoint, request, state, created, updated, job_id, sent, frozen) = row[:10]
    consumed, files, task, token = row[10:]
    return JobRecord(
        key=key,
        attempt=attempt,
        endpoint=endpoint,
        request=CanonicalRequest(request),
        state=_STATES.get(state, RecordState.UNKNOWN),
        created_at=created,
        updated_at=updated,
        job_id=job_id,
        sent_at=sent,
        points_frozen=frozen,
        points_consumed=consumed,
        files=tuple(json.loads(files)) if files != "[]" else (),
        task_body=task,
        callback_token=token,
    )


class SQLiteJobStore(JobStore):
    """A :class:`JobStore` in an SQLite file (the standard library's; no server to run).

    The file is in WAL mode and every write is committed with ``synchronous=FULL``: once a
    write returned, a crash of the process or of the machine keeps it, and a kill at any
    instant leaves a file that opens cleanly. All SQLite work runs on one thread of the
    store's own, so the event loop never waits on the disk; concurrent writes of a client
    are grouped into one transaction by the client. Several stores (clients, processes)
    may use one file: SQLite's locks order their writes, and a writer waits up to
    ``busy_timeout`` seconds for another's transaction.

    ``path`` is the file (made if missing); ``":memory:"`` is refused, as a store there
    would end with its connection (use :class:`MemoryJobStore`).
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        if not self.path or self.path == ":memory:":
            raise ValidationError(
                "path", "must name a file (use MemoryJobStore for a store in memory)"
            )
        if busy_timeout <= 0:
            raise ValidationError("busy_timeout", f"must be positive, got {busy_timeout}")
        self.busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        # One connection per store thread: a close() racing a new call closes only its own.
        self._local = threading.local()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SQLiteJobStore {self.path!r}>"

    # --- the store's thread --------------------------------------------------------------

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``work`` with the connection on the store's thread (opening it first)."""
        with self._lock:
            executor = self._executor
            if executor is None:
                executor = self._executor = ThreadPoolExecutor(
                    1, thread_name_prefix="legnext-store"
                )
        return asyncio.get_running_loop().run_in_executor(executor, self._run, work)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = self._connect()
            return work(connection)
        except sqlite3.Error as exc:
            raise StoreError(f"job store {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # Setting up a file (its journal mode, its tables) while another connection does
            # the same can answer "locked" at once, without SQLite's busy wait: wait here.
            deadline = time.monotonic() + self.busy_timeout
            pause = 0.005
            while True:
                try:
                    self._set_up(connection)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() + pause > deadline:
                        raise
                    time.sleep(pause)  # on the store's own thread, never the event loop's
                    pause = min(pause * 2, 0.2)
        except BaseException:
            connection.close()
            raise
        return connection

    def _set_up(self, connection: sqlite3.Connection) -> None:
        """WAL and full syncs for this connection, and the tables if the file is new."""
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise StoreError(
                f"job store {self.path} was written by a newer legnext_async (schema"
                f" {version}; this one reads {_SCHEMA_VERSION})"
            )
        if version < _SCHEMA_VERSION:
            self._upgrade(connection)

    def _upgrade(self, connection: sqlite3.Connection) -> None:
        """Bring the file to this schema, in one write transaction: a new file made, an
        older one migrated. The version is read again under the lock, so two processes
        opening the file at once both succeed, and a migration runs once."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                script = _SCHEMA  # a new file (a version is set in the same transaction)
            else:
                script = "".join(_MIGRATIONS[old] for old in range(version, _SCHEMA_VERSION))
            for statement in filter(str.strip, script.split(";")):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    async def open(self) -> None:
        await self._call(lambda connection: None)

    async def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return

        def shut() -> None:
            connection = getattr(self._local, "connection", None)
            self._local.connection = None
            if connection is not None:
                connection.close()

        try:
            await asyncio.get_running_loop().run_in_executor(executor, shut)
        finally:
            executor.shutdown(wait=False)

    # --- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> JobRecord | None:
        def work(connection: sqlite3.Connection) -> JobRecord | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else _record(row)

        return await self._call(work)

    async def find(self, job_id: str) -> JobRecord | None:
        def work(connection: sqlite3.Connection) -> JobRecord | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ? ORDER BY created_at DESC LIMIT 1",
                (job_id,),
            ).fetchone()
            return None if row is None else _record(row)

        return await self._call(work)

    async def find_token(self, token: str) -> JobRecord | None:
        def work(connection: sqlite3.Connection) -> JobRecord | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE callback_token = ? LIMIT 1", (token,)
            ).fetchone()
            return None if row is None else _record(row)

        return await self._call(work)

    async def records(self, *states: RecordState, limit: int | None = None) -> list[JobRecord]:
        query = f"SELECT {_COLUMNS} FROM jobs"
        params: list[object] = []
        if states:
            query += f" WHERE state IN ({','.join('?' * len(states))})"
            params.extend(state.value for state in states)
        query += " ORDER BY created_at, key"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)

        def work(connection: sqlite3.Connection) -> list[JobRecord]:
            return [_record(row) for row in connection.execute(query, params)]

        return await self._call(work)

    async def totals(self) -> StoredPoints:
        def work(connection: sqlite3.Connection) -> StoredPoints:
            committed, spent = connection.execute(
                "SELECT"
                " COALESCE(SUM(CASE WHEN state IN ('completed', 'failed')"
                " THEN COALESCE(points_consumed, 0) ELSE COALESCE(points_frozen, 0) END), 0),"
                " COALESCE(SUM(COALESCE(points_consumed, 0)), 0) FROM jobs"
            ).fetchone()
            return StoredPoints(committed=committed, spent=spent)

        return await self._call(work)

    async def load(self, name: str) -> str | None:
        def work(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT value FROM client_state WHERE name = ?", (name,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._call(work)

    # --- writes ---------------------------------------------------------------------------

    async def claim(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        return await self.write(records, ())

    async def put(self, records: Sequence[JobRecord]) -> None:
        await self.write((), records)

    async def write(
        self,
        claims: Sequence[JobRecord],
        records: Sequence[JobRecord],
        values: Sequence[tuple[str, str]] = (),
    ) -> list[JobRecord]:
        """:meth:`claim` ``claims``, :meth:`put` ``records`` and :meth:`save` ``values`` in
        one transaction (one sync to the disk); the records that hold the claimed keys."""
        claim_rows = [_row(record) for record in claims]
        # The last version of each submission (one statement cannot update a row twice).
        latest = {(record.key, record.attempt): record for record in records}
        put_rows = [(*_row(record)[2:], key, attempt) for (key, attempt), record in latest.items()]

        def work(connection: sqlite3.Connection) -> list[JobRecord]:
            # Few statements, each for many rows: the store's thread takes the interpreter
            # lock back after each one, waiting for the event loop's thread to let it go.
            with _transaction(connection):
                stored = connection.total_changes
                for size, flat in _chunks(claim_rows):
                    connection.execute(_claims_sql(size), flat)
                if connection.total_changes - stored == len(claims):
                    held = list(claims)  # every claim stored (the usual case)
                else:
                    held = [self._holder(connection, record) for record in claims]
                for size, flat in _chunks(put_rows):
                    connection.execute(_puts_sql(size), flat)
                if values:
                    connection.executemany(_SAVE, values)
            return held

        return await self._call(work)

    @staticmethod
    def _holder(connection: sqlite3.Connection, claimed: JobRecord) -> JobRecord:
        """The record that holds ``claimed``'s key: itself if its attempt was stored."""
        row = connection.execute(f"SELECT {_COLUMNS} FROM jobs WHERE key = ?", (claimed.key,))
        stored = row.fetchone()
        return claimed if stored[1] == claimed.attempt else _record(stored)

    async def discard(self, key: str, attempt: str) -> None:
        def work(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.execute(
                    "DELETE FROM jobs WHERE key = ? AND attempt = ? AND state = 'submitting'",
                    (key, attempt),
                )

        await self._call(work)

    async def forget(self, key: str) -> JobRecord | None:
        def work(connection: sqlite3.Connection) -> JobRecord | None:
            with _transaction(connection):
                row = connection.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE key = ?", (key,)
                ).fetchone()
                if row is None:
                    return None
                connection.execute(
                    "UPDATE jobs SET state = 'forgotten', updated_at = ? WHERE key = ?",
                    (time.time(), key),
                )
            return _record(row)

        return await self._call(work)

    async def save(self, name: str, value: str) -> None:
        await self.write((), (), [(name, value)])


class _transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error): the write lock is taken at
    the start, so two writers never deadlock upgrading a read lock."""

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        if not self._connection.in_transaction:
            self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        connection = self._connection
        if not connection.in_transaction:
            return
        if exc_type is None:
            connection.execute("COMMIT")
        else:
            connection.execute("ROLLBACK")


def open_store(store: JobStore | str | os.PathLike[str] | None) -> JobStore | None:
    """The store a client was given: a path stands for an :class:`SQLiteJobStore`."""
    if store is None or isinstance(store, JobStore):
        return store
    if isinstance(store, str | os.PathLike):
        return SQLiteJobStore(store)
    raise ValidationError(
        "store", f"must be a JobStore or the path of an SQLite file, got {type(store).__name__}"
    )
