"""Benchmark 8: what the job store costs, per job and at ``resume()``, side by side in one run.

**A. Cost per job, end to end.** ``n`` (1,000) inpaints (90–120 s, 1 s pending, time scale
0.01, an account with no limit of active jobs) submitted and awaited through one
``asyncio.gather`` of one client, by three contenders in turn:

- ``no store`` (the baseline): ``LegnextClient()`` as without this feature;
- ``SQLiteJobStore``: a fresh file per pass (WAL, ``synchronous=FULL``; every claim durable
  before its POST, every job id before its submission returns, every status change
  written);
- ``MemoryJobStore``: the same rules in memory (what the store's bookkeeping costs without
  SQLite);
- the floor, three more contenders without this client: ``raw aiohttp`` (the same POSTs,
  at most 4 in flight as the client sends while no limit is known, and the same two reads
  of each job), and the same with the fewest writes the store's promises need, by one
  thread that commits everything queued since its last turn together (a claim before each
  POST and the job id after it, both awaited; each status read, not awaited; one table, no
  index): ``raw aiohttp + sqlite3, FULL`` (synced, as ``SQLiteJobStore``) and ``NORMAL``
  (not synced: a kill of the process loses nothing, a power cut may). Their ratio is to
  ``raw aiohttp``: what durable writes cost any client, however lean.

Every contender reads each job twice, on a fixed schedule (60 s after the submission, while it
runs, and 65 s later, once it has finished; see :data:`POLL`), so that all do the same
requests and the store's cost is not mixed with a schedule that reads more or less often.
The emulator is a separate process, so ``time.process_time()`` counts the client alone, the
store's SQLite thread included; ``time.thread_time()`` of the event loop's thread splits it
into the loop's part and the other threads' (the store's). Each round runs every contender
once, the order rotated every round (and reversed every other cycle of rotations), each
with a fresh client; reported are the median over
rounds of the CPU per job, of each round's ratio to its baseline (paired, so that drift of
the shared machine hits all alike), of the status reads per job (the emulator's count) and
of the wall time, and the CPU per job each contender adds to its baseline. The target is a
ratio of at most 1.10 for SQLite.

**B. ``resume()`` of 100,000 stored jobs.** An SQLite store is filled (not timed) with
``m`` (100,000) ``pending`` records as the client writes them: the request of a real
inpaint and the pending task the emulator answered for it, under its own job id each.
Then, in rounds (order rotated):

- ``sqlite3 SELECT`` (the floor, what no client can beat): a new connection reads the rows'
  columns into tuples;
- ``client.resume()``: ``handles = await client.resume()`` in a fresh client of the file
  (the store opened, the records read, one handle each).

Wall time and CPU per contender (medians); peak memory in a separate pass: the growth of
the process's peak RSS during the first ``resume()`` and the ``tracemalloc`` peak of one.
The target is under 2 s.

Run: ``python benchmarks/bench_store.py [--jobs 1000] [--rounds 5] [--records 100000]
[--resume-rounds 5] [--json PATH]`` (or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import queue
import sqlite3
import tempfile
import threading
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from _common import (
    API_KEY,
    MASK_POINTS,
    RemoteEmulator,
    cpu_seconds,
    fmt,
    log,
    max_rss_bytes,
    percentile,
    table,
    write_result,
)

from legnext_async import (
    JobRecord,
    LegnextClient,
    Mask,
    MemoryJobStore,
    PollPolicy,
    Polygon,
    RecordState,
    SQLiteJobStore,
)

if TYPE_CHECKING:
    from legnext_async import JobStore

TIME_SCALE = 0.01
DURATIONS = {"inpaint": (90.0, 120.0)}
PENDING_SECONDS = 1.0
#: Part A's schedule: a read 60 s after the submission (the job is running) and one 65 s
#: later (it has finished, 91–121 s in), for every contender. The default schedule reads
#: a job more often when it was submitted after others had finished (it learned their run
#: times) and less when the loop is too busy to read on time: a store that spreads the
#: submissions out changed the reads per job by half (3.1–3.8 against 4.6–6.7), which
#: measured the schedule, not the store.
POLL = PollPolicy(
    first_delay=60.0,
    min_interval=65.0,
    max_interval=65.0,
    jitter=0.0,
    learn=False,
    time_scale=TIME_SCALE,
)
#: When each job is read, in seconds after its submission (what :data:`POLL` does).
READS_AFTER = (60.0, 125.0)
#: The most CPU per job a store may add, as a ratio to no store.
TARGET_RATIO = 1.10
#: The longest ``resume()`` of the stored jobs may take, in seconds.
TARGET_RESUME_SECONDS = 2.0
CLIENT_CONTENDERS = ("no store", "SQLiteJobStore", "MemoryJobStore")
#: The floor: the same jobs by raw aiohttp, alone and with the fewest durable writes the
#: store's promises need, by one writer thread that commits everything queued together.
RAW = "raw aiohttp"
RAW_FULL = "raw aiohttp + sqlite3, FULL"
RAW_NORMAL = "raw aiohttp + sqlite3, NORMAL"
RAW_CONTENDERS = (RAW, RAW_FULL, RAW_NORMAL)
CONTENDERS = CLIENT_CONTENDERS + RAW_CONTENDERS
#: What each contender's CPU is compared with.
BASELINE = dict.fromkeys(CLIENT_CONTENDERS, "no store") | dict.fromkeys(RAW_CONTENDERS, RAW)
#: The raw contenders' POSTs in flight at once: the client's own while no limit is known.
RAW_IN_FLIGHT = 4
RESUME_CONTENDERS = ("sqlite3 SELECT (floor)", "client.resume()")
MASK = Mask(areas=[Polygon(width=500, height=500, points=list(MASK_POINTS))])


def median(values: list[float]) -> float:
    return percentile(values, 50)


# --- A. cost per job ------------------------------------------------------------------------


async def _pass(
    base_url: str, parents: list[str], n: int, store: JobStore | None
) -> dict[str, float]:
    """Submit and await ``n`` inpaints through one client with ``store``: CPU and wall."""

    async def one(client: LegnextClient, i: int) -> object:
        handle = await client.inpaint(
            job_id=parents[i % len(parents)],
            image_no=i % 4,
            mask=MASK,
            remix_prompt=f"variation {i}",
        )
        return await handle

    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = cpu_seconds()
    loop0 = time.thread_time()
    async with LegnextClient(api_key=API_KEY, base_url=base_url, poll=POLL, store=store) as client:
        results = await asyncio.gather(*(one(client, i) for i in range(n)))
    loop = time.thread_time() - loop0
    cpu = cpu_seconds() - cpu0
    wall = time.perf_counter() - wall0
    if len(results) != n:
        raise RuntimeError(f"{len(results)} results for {n} jobs")
    return _sample(n, cpu, loop, wall)


def _sample(n: int, cpu: float, loop: float, wall: float) -> dict[str, float]:
    """A pass's measures: ``cpu`` of the process and ``loop`` of the event loop's thread
    (seconds, for ``n`` jobs), and its ``wall`` time."""
    return {
        "cpu_seconds": cpu,
        "cpu_us_per_job": cpu / n * 1e6,
        # The event loop's thread, and the others (the store's SQLite thread).
        "loop_us_per_job": loop / n * 1e6,
        "threads_us_per_job": (cpu - loop) / n * 1e6,
        "wall_seconds": wall,
    }


class _Journal:
    """The fewest durable writes a store with the client's promises makes, and nothing
    else: a claim before each POST and the job id after it (both awaited, ``synchronous``
    as given), every status read after (not awaited). One thread writes everything queued
    since its last turn in one transaction (group commit) and wakes the waiters with one
    call; one table, no secondary index."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[
            tuple[str, tuple[object, ...], asyncio.Future[None] | None] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, args=(path, synchronous))
        self._thread.start()

    def claim(self, key: str, request: str) -> asyncio.Future[None]:
        waiter = self._loop.create_future()
        self._queue.put(("claim", (key, request, time.time()), waiter))
        return waiter

    def update(self, key: str, state: str, job_id: str, task: bytes) -> asyncio.Future[None]:
        """A status to write; the future resolves once it is committed."""
        waiter = self._loop.create_future()
        self._queue.put(("update", (state, job_id, task, time.time(), key), waiter))
        return waiter

    def note(self, key: str, state: str, job_id: str, task: bytes) -> None:
        """A status to write with the next transaction; nobody waits for it."""
        self._queue.put(("update", (state, job_id, task, time.time(), key), None))

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self, path: Path, synchronous: str) -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={synchronous}")
        connection.execute(
            "CREATE TABLE jobs (key TEXT PRIMARY KEY, request TEXT, state TEXT, job_id TEXT,"
            " task BLOB, updated REAL)"
        )
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            connection.execute("BEGIN IMMEDIATE")
            for kind, values, _ in batch:
                if kind == "claim":
                    connection.execute(
                        "INSERT INTO jobs (key, request, state, updated)"
                        " VALUES (?, ?, 'submitting', ?)",
                        values,
                    )
                else:
                    connection.execute(
                        "UPDATE jobs SET state = ?, job_id = ?, task = ?, updated = ?"
                        " WHERE key = ?",
                        values,
                    )
            connection.execute("COMMIT")
            waiters = [waiter for _, _, waiter in batch if waiter is not None]
            if waiters:
                self._loop.call_soon_threadsafe(_wake, waiters)
        connection.close()


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


async def _raw_pass(
    base_url: str, parents: list[str], n: int, journal_at: tuple[Path, str] | None
) -> dict[str, float]:
    """The jobs of :func:`_pass` by raw aiohttp (the same POSTs and the same two reads of
    each job), with a :class:`_Journal` at ``journal_at`` (path, ``synchronous``) or none."""
    in_flight = asyncio.Semaphore(RAW_IN_FLIGHT)
    json_type = {"content-type": "application/json"}

    async def one(session: aiohttp.ClientSession, journal: _Journal | None, i: int) -> str:
        body = {
            "jobId": parents[i % len(parents)],
            "imageNo": i % 4,
            "mask": {"areas": [{"width": 500, "height": 500, "points": list(MASK_POINTS)}]},
            "remixPrompt": f"variation {i}",
        }
        request, key = json.dumps(body, separators=(",", ":"), sort_keys=True), f"k{i}"
        async with in_flight:
            if journal is not None:
                await journal.claim(key, request)
            async with session.post(f"{base_url}/v1/inpaint", data=request, headers=json_type) as r:
                r.raise_for_status()
                raw = await r.read()
            job_id = json.loads(raw)["job_id"]
            if journal is not None:
                await journal.update(key, "pending", job_id, raw)
        submitted = time.monotonic()
        status = "pending"
        for after in READS_AFTER:
            await asyncio.sleep(max(0.0, submitted + after * TIME_SCALE - time.monotonic()))
            async with session.get(f"{base_url}/v1/job/{job_id}") as r:
                r.raise_for_status()
                raw = await r.read()
            status = json.loads(raw)["status"]
            if journal is not None:
                journal.note(key, status, job_id, raw)
        return status

    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = cpu_seconds()
    loop0 = time.thread_time()
    journal = _Journal(*journal_at) if journal_at is not None else None
    async with aiohttp.ClientSession(headers={"x-api-key": API_KEY}) as session:
        statuses = await asyncio.gather(*(one(session, journal, i) for i in range(n)))
    if journal is not None:
        await journal.close()
    loop = time.thread_time() - loop0
    cpu = cpu_seconds() - cpu0
    wall = time.perf_counter() - wall0
    if statuses.count("completed") != n:
        raise RuntimeError(f"{statuses.count('completed')} of {n} raw jobs completed")
    return _sample(n, cpu, loop, wall)


async def _stored_jobs(store: JobStore, n: int) -> None:
    """Check that ``store`` recorded ``n`` completed jobs (the feature worked)."""
    completed = await store.records(RecordState.COMPLETED)
    if len(completed) != n:
        raise RuntimeError(f"the store recorded {len(completed)} completed jobs of {n}")
    await store.close()


def run_per_job(jobs: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Every contender once per round, order rotated; medians over rounds."""
    options = {
        "time_scale": TIME_SCALE,
        "seed": 8,
        "durations": DURATIONS,
        "pending_seconds": PENDING_SECONDS,
        "concurrency_limit": 4 * jobs * (rounds + 1) + 10,
        "over_limit": "queue",
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
    ratios: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    added: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    with RemoteEmulator(**options) as emulator:
        parents = emulator.seed_jobs(16)
        # One unmeasured pass warms imports, the connection pool's code paths and SQLite.
        asyncio.run(_pass(emulator.base_url, parents, min(jobs, 100), MemoryJobStore()))
        for round_no in range(rounds):
            shift = round_no % len(CONTENDERS)
            order = CONTENDERS[shift:] + CONTENDERS[:shift]
            if (round_no // len(CONTENDERS)) % 2:
                order = order[::-1]  # no contender always follows the same one
            this_round: dict[str, dict[str, float]] = {}
            for name in order:
                store: JobStore | None = None
                mark = emulator.request_mark()
                if name in RAW_CONTENDERS:
                    journal = None
                    if name != RAW:
                        synchronous = "FULL" if name == RAW_FULL else "NORMAL"
                        journal = (workdir / f"raw-{synchronous}-{round_no}.db", synchronous)
                    sample = asyncio.run(_raw_pass(emulator.base_url, parents, jobs, journal))
                else:
                    if name == "SQLiteJobStore":
                        store = SQLiteJobStore(workdir / f"per-job-{round_no}.db")
                    elif name == "MemoryJobStore":
                        store = MemoryJobStore()
                    sample = asyncio.run(_pass(emulator.base_url, parents, jobs, store))
                sample["reads_per_job"] = emulator.requests_since(mark)["total"] / jobs - 1
                if store is not None:
                    asyncio.run(_stored_jobs(store, jobs))
                this_round[name] = sample
                samples[name].append(sample)
                log(
                    f"bench 8A: round {round_no + 1}/{rounds} {name}: "
                    f"{sample['cpu_us_per_job']:.0f} µs CPU per job (loop"
                    f" {sample['loop_us_per_job']:.0f}, other threads"
                    f" {sample['threads_us_per_job']:.0f}), {sample['reads_per_job']:.2f} reads"
                    f" per job, {sample['wall_seconds']:.1f} s"
                )
            for name in CONTENDERS:
                base = this_round[BASELINE[name]]
                ratios[name].append(this_round[name]["cpu_seconds"] / base["cpu_seconds"])
                added[name].append(this_round[name]["cpu_us_per_job"] - base["cpu_us_per_job"])
    return {
        "jobs": jobs,
        "rounds": rounds,
        "time_scale": TIME_SCALE,
        "durations": DURATIONS,
        "pending_seconds": PENDING_SECONDS,
        "contenders": {
            name: {
                "cpu_us_per_job": median([s["cpu_us_per_job"] for s in samples[name]]),
                "loop_us_per_job": median([s["loop_us_per_job"] for s in samples[name]]),
                "threads_us_per_job": median([s["threads_us_per_job"] for s in samples[name]]),
                "reads_per_job": median([s["reads_per_job"] for s in samples[name]]),
                "baseline": BASELINE[name],
                "added_us_per_job": median(added[name]),
                "cpu_ratio": median(ratios[name]),
                "cpu_ratio_range": [min(ratios[name]), max(ratios[name])],
                "wall_seconds": median([s["wall_seconds"] for s in samples[name]]),
                "samples": samples[name],
            }
            for name in CONTENDERS
        },
    }


# --- B. resume ------------------------------------------------------------------------------


async def _template(base_url: str, parent: str) -> tuple[JobRecord, str]:
    """A real record of a pending inpaint (as the client wrote it) and its job id."""
    store = MemoryJobStore()
    async with LegnextClient(
        api_key=API_KEY,
        base_url=base_url,
        poll=PollPolicy(time_scale=TIME_SCALE),
        store=store,
    ) as client:
        handle = await client.inpaint(
            job_id=parent, image_no=0, mask=MASK, remix_prompt="a red lighthouse", key="template"
        )
        await client._stored().flush()
        record = await store.get("template")
    if record is None or record.state is not RecordState.PENDING or record.task_body is None:
        raise RuntimeError(f"no pending record to copy: {record!r}")
    return record, handle.job_id


async def _fill(path: Path, template: JobRecord, template_id: str, m: int) -> None:
    """Write ``m`` pending records like ``template``, each under its own key and job id."""
    assert template.task_body is not None
    body = template.task_body
    store = SQLiteJobStore(path)
    batch = 10_000
    now = time.time()
    try:
        for start in range(0, m, batch):
            claims = []
            pending = []
            for i in range(start, min(m, start + batch)):
                job_id = str(uuid.uuid4())
                claimed = JobRecord(
                    key=f"auto-{uuid.uuid4().hex}",
                    attempt=uuid.uuid4().hex,
                    endpoint=template.endpoint,
                    request={**template.request, "remixPrompt": f"variation {i}"},
                    state=RecordState.SUBMITTING,
                    created_at=now + i * 1e-3,
                    updated_at=now + i * 1e-3,
                    sent_at=now + i * 1e-3,
                )
                claims.append(claimed)
                pending.append(
                    _evolve(
                        claimed,
                        state=RecordState.PENDING,
                        job_id=job_id,
                        task_body=body.replace(template_id.encode(), job_id.encode()),
                        points_frozen=template.points_frozen,
                    )
                )
            await store.claim(claims)
            await store.put(pending)
    finally:
        await store.close()


def _evolve(record: JobRecord, **changes: Any) -> JobRecord:
    import attrs

    return attrs.evolve(record, **changes)


def _select(path: Path) -> tuple[int, float, float]:
    """The floor: the rows of the unfinished jobs into tuples with a new connection."""
    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = cpu_seconds()
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT key, attempt, endpoint, request, state, created_at, updated_at, job_id,"
            " sent_at, points_frozen, points_consumed, files, task FROM jobs"
            " WHERE state IN ('pending', 'running') ORDER BY created_at, key"
        ).fetchall()
    finally:
        connection.close()
    cpu = cpu_seconds() - cpu0
    wall = time.perf_counter() - wall0
    count = len(rows)
    del rows
    return count, wall, cpu


async def _resume(base_url: str, path: Path) -> tuple[int, float, float]:
    """``await client.resume()`` in a fresh client of ``path``: handles, wall, CPU."""
    gc.collect()
    async with LegnextClient(api_key=API_KEY, base_url=base_url, store=SQLiteJobStore(path)) as c:
        wall0 = time.perf_counter()
        cpu0 = cpu_seconds()
        handles = await c.resume()
        cpu = cpu_seconds() - cpu0
        wall = time.perf_counter() - wall0
        count = len(handles)
        if count and handles[0].last_task is None:
            raise RuntimeError("a resumed handle lost its record's snapshot")
        del handles
    return count, wall, cpu


async def _resume_memory(base_url: str, path: Path) -> dict[str, float]:
    """Peak RSS growth and the ``tracemalloc`` peak of one ``resume()``."""
    gc.collect()
    async with LegnextClient(api_key=API_KEY, base_url=base_url, store=SQLiteJobStore(path)) as c:
        await c._stored().ready()  # opened first: its cost is not the resume's memory
        rss0 = max_rss_bytes()
        handles = await c.resume()
        rss_growth = max_rss_bytes() - rss0
        del handles
    gc.collect()
    async with LegnextClient(api_key=API_KEY, base_url=base_url, store=SQLiteJobStore(path)) as c:
        tracemalloc.start()
        try:
            handles = await c.resume()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        del handles
    return {
        "peak_rss_growth_mb": rss_growth / 1e6,
        "tracemalloc_peak_mb": peak / 1e6,
        "held_after_mb": current / 1e6,
    }


def run_resume(records: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Fill a store, then time the floor and ``resume()`` in rotated rounds."""
    path = workdir / "resume.db"
    with RemoteEmulator(time_scale=TIME_SCALE, seed=9, durations=DURATIONS) as emulator:
        template, template_id = asyncio.run(_template(emulator.base_url, emulator.seed_jobs(1)[0]))
        log(f"bench 8B: filling a store with {records:,} pending records")
        started = time.perf_counter()
        asyncio.run(_fill(path, template, template_id, records))
        log(f"bench 8B: filled in {time.perf_counter() - started:.1f} s")
        # Memory first: the process's peak RSS is still the filling's, not a resume's.
        memory = asyncio.run(_resume_memory(emulator.base_url, path))
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in RESUME_CONTENDERS}
        for round_no in range(rounds):
            order = RESUME_CONTENDERS if round_no % 2 == 0 else RESUME_CONTENDERS[::-1]
            for name in order:
                if name == "client.resume()":
                    count, wall, cpu = asyncio.run(_resume(emulator.base_url, path))
                else:
                    count, wall, cpu = _select(path)
                if count != records:
                    raise RuntimeError(f"{name}: {count} rows of {records}")
                samples[name].append((wall, cpu))
                log(
                    f"bench 8B: round {round_no + 1}/{rounds} {name}: {wall:.3f} s, CPU {cpu:.3f} s"
                )
    return {
        "records": records,
        "rounds": rounds,
        "task_body_bytes": len(template.task_body or b""),
        "request_bytes": len(json.dumps(dict(template.request))),
        "contenders": {
            name: {
                "wall_seconds": median([w for w, _ in samples[name]]),
                "cpu_seconds": median([c for _, c in samples[name]]),
                "wall_range": [min(w for w, _ in samples[name]), max(w for w, _ in samples[name])],
            }
            for name in RESUME_CONTENDERS
        },
        "memory": memory,
    }


# --- the whole benchmark ----------------------------------------------------------------------


def run(jobs: int, rounds: int, records: int, resume_rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="legnext-bench-store-") as tmp:
        workdir = Path(tmp)
        per_job = run_per_job(jobs, rounds, workdir) if jobs else None
        resume = run_resume(records, resume_rounds, workdir) if records else None
    return {"per_job": per_job, "resume": resume}


def render_per_job(result: dict[str, Any]) -> str:
    rows = []
    for name, r in result["contenders"].items():
        low, high = r["cpu_ratio_range"]
        # Results written before the floor was measured have no baseline column.
        baseline = r.get("baseline", "no store")
        added = r.get("added_us_per_job")
        rows.append(
            [
                name,
                fmt(r["cpu_us_per_job"], 0),
                f"{fmt(r['loop_us_per_job'], 0)} / {fmt(r['threads_us_per_job'], 0)}",
                "" if name == baseline else f"{fmt(added, 0) if added is not None else '?'}",
                "" if name == baseline else f"{r['cpu_ratio']:.2f}× ({low:.2f}–{high:.2f})",
                baseline,
                f"{r['reads_per_job']:.2f}",
                fmt(r["wall_seconds"], 1),
            ]
        )
    return table(
        [
            "contender",
            "CPU µs per job",
            "loop / other threads",
            "added µs per job",
            "CPU vs its baseline (range)",
            "baseline",
            "reads per job",
            "wall (s)",
        ],
        rows,
    )


def render_resume(result: dict[str, Any]) -> str:
    rows = []
    floor = result["contenders"]["sqlite3 SELECT (floor)"]["wall_seconds"]
    for name, r in result["contenders"].items():
        low, high = r["wall_range"]
        rows.append(
            [
                name,
                f"{fmt(r['wall_seconds'], 2)} ({low:.2f}–{high:.2f})",
                fmt(r["cpu_seconds"], 2),
                f"{r['wall_seconds'] / floor:.1f}×",
            ]
        )
    memory = result["memory"]
    return (
        table(["contender", "wall s (range)", "CPU s", "vs floor"], rows)
        + f"\n\nPeak memory of one `resume()` of {result['records']:,} records: process peak RSS "
        f"+{fmt(memory['peak_rss_growth_mb'], 0)} MB; `tracemalloc` peak "
        f"{fmt(memory['tracemalloc_peak_mb'], 0)} MB, of which "
        f"{fmt(memory['held_after_mb'], 0)} MB held by the handles."
    )


def describe(result: dict[str, Any]) -> str:
    """What the tables of :func:`render` are about, for ``run_all.py``'s report."""
    parts = []
    per_job, resume = result.get("per_job"), result.get("resume")
    if per_job:
        low, high = per_job["durations"]["inpaint"]
        parts.append(
            f"{per_job['jobs']:,} inpaints ({low:g}–{high:g} s, {per_job['pending_seconds']:g} s"
            f" pending, time scale {per_job['time_scale']:g}) submitted and awaited through one "
            "gather per contender, each job read 60 s and 125 s after its submission (the same "
            f"reads for every contender), {per_job['rounds']} rounds with the order rotated "
            "(reversed every other cycle); CPU of this process (the store's thread included; "
            "split into the event loop's thread and the others), medians over rounds, the "
            "ratio paired per round. Target: SQLite ≤ 1.10×. The `raw aiohttp` rows are the "
            "floor: the same requests without this client (4 POSTs in flight), alone and with "
            "the fewest writes the store's promises need (a claim before each POST and the job "
            "id after it, awaited; each status, not awaited), by one thread that commits all "
            "it has queued together, into one table with no index; `FULL` syncs each commit as "
            "`SQLiteJobStore` does, `NORMAL` does not (safe from a kill, not from a power cut)."
        )
    if resume:
        parts.append(
            f"`resume()` of {resume['records']:,} pending records (task bodies of "
            f"{resume['task_body_bytes']} bytes, as the emulator answers an inpaint) in a fresh "
            f"client, against the raw `sqlite3` SELECT of the same rows; medians of "
            f"{resume['rounds']} rounds. Target: under 2 s."
        )
    return "\n\n".join(parts) + "\n\n" if parts else ""


def render(result: dict[str, Any]) -> str:
    parts = []
    if result.get("per_job"):
        parts.append(render_per_job(result["per_job"]))
    if result.get("resume"):
        parts.append(render_resume(result["resume"]))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="inpaints per pass (0: skip A)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=100_000, help="stored jobs (0: skip B)")
    parser.add_argument("--resume-rounds", type=int, default=5)
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.jobs, args.rounds, args.records, args.resume_rounds)
    path = write_result("store", result, args.json)
    print(render(result))
    log(f"written to {path}")
    per_job, resume = result["per_job"], result["resume"]
    if per_job and per_job["contenders"]["SQLiteJobStore"]["cpu_ratio"] > TARGET_RATIO:
        log(f"above target: SQLite store CPU ratio > {TARGET_RATIO}")
    if resume and resume["contenders"]["client.resume()"]["wall_seconds"] > TARGET_RESUME_SECONDS:
        log(f"above target: resume() > {TARGET_RESUME_SECONDS} s")


if __name__ == "__main__":
    main()
