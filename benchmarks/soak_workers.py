"""Soak: several workers on one account, one of them SIGKILLed again and again. Nothing twice?

Four worker processes (``tests/worker_driver.py``) share one account that an emulator in
this process limits to 6 running jobs (a 7th POST is answered 429), a ``RedisJobStore`` and
a ``RedisCoordinator`` with a short lease (1.5 s), on a private ``redis-server``. Every
worker is given the SAME keys (``soak-0`` … ``soak-{N-1}``, one inpaint each, the key also
the remix prompt), so they race each other for every key, as the workers of a web app do
when a request is retried on another one. The emulator answers a share of the POSTs late,
the job already made (``Fault.latency`` with ``commit``), so that kills also land between
a POST and its record.

At random instants (0.1–1 s apart) one worker, picked at random, is SIGKILLed and started
again with the same arguments, ``--kills`` times. A worker that ended its batch lingers
(``--linger``), adopting the jobs of workers that died, so it stays a target. After the
last kill the soak waits until every stored job has ended and every worker has ended its
batch, then lets them exit.

Checked (the script exits 1 if one breaks):

- **no job created twice**: in the emulator's own request log, no key's request made more
  than one job;
- **never more than 6 running**: the emulator's own peak of the account's running jobs;
- **every key ends**: its stored record is completed, or its outcome unknown (a claim
  recorded, its answer never recorded);
- **unknown outcomes come from kills only**: every unknown key was a claim in flight right
  after some kill (recorded ``submitting`` while the killed worker was dead);
- **the last workers exit cleanly** (exit status 0 or 1: 1 when one of their keys ended
  as an unknown outcome, or raced another worker's claim).

Reported too: how the last workers' handles ended, and how many of them ended
``SubmissionOutcomeUnknownError`` on a key that completed (a claim of another live worker
found mid-POST: the documented answer to a key being sent elsewhere right now).

Reported: kills, keys, jobs made, duplicates, completed, unknown (and how many of those the
emulator never saw a job for), peak running, 429s, wall time.

Run: ``python benchmarks/soak_workers.py [--kills 50] [--keys 300] [--workers 4]
[--seed 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
# First on the path: this tree's package (the one the worker processes run), the worker
# driver and the private Redis server of the tests.
sys.path.insert(0, str(ROOT))

from _common import log, table, write_result  # noqa: E402

from legnext_async import JobRecord, RecordState  # noqa: E402
from legnext_async.emulator import Emulator, Fault  # noqa: E402
from legnext_async.redis import RedisJobStore  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.worker_driver import API_KEY, Worker, start_worker  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

LIMIT = 6
#: The clock of the emulator and the workers: an inpaint takes about half a second.
SCALE = 0.005
DURATIONS = {"inpaint": (90.0, 120.0)}
NAMESPACE = "soak"
#: Seconds a killed worker's slots outlive it.
LEASE = "1.5"
#: The longest the soak waits for the jobs to end after the last kill.
DRAIN_TIMEOUT = 300.0


async def stored(url: str) -> list[JobRecord]:
    """Every record of the shared store, read as another process would."""
    store = RedisJobStore(url, namespace=NAMESPACE)
    try:
        return await store.records()
    finally:
        await store.close()


def created_by_key(emulator: Emulator) -> dict[str, list[str]]:
    """The jobs the emulator created, by the key (the remix prompt) whose POST made them."""
    made: dict[str, list[str]] = collections.defaultdict(list)
    for record in emulator.requests:
        if record.method == "POST" and record.job_id is not None:
            assert isinstance(record.body, dict)
            made[record.body["remixPrompt"]].append(record.job_id)
    return dict(made)


class Slot:
    """One of the soak's workers: its current process, and the task reading its output."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.worker: Worker | None = None
        self.reader: asyncio.Task[int] | None = None

    async def start(self, base_url: str, parent: str, options: list[str]) -> None:
        """Start a process with the slot's arguments, let it go, and read its output."""
        worker = await start_worker(base_url, parent, self.name, *options)
        worker.tell("go")
        self.worker = worker
        self.reader = asyncio.create_task(worker.finish())

    async def kill(self) -> int:
        """SIGKILL the process; its exit status."""
        assert self.worker is not None
        assert self.reader is not None
        with contextlib.suppress(ProcessLookupError):
            self.worker.process.send_signal(signal.SIGKILL)
        return await self.reader

    def ended_batch(self) -> bool:
        return self.worker is not None and bool(self.worker.of("batch"))


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``await condition()`` holds, looking every 0.2 s (it is a state of other
    processes and of Redis: nothing here could signal it)."""
    while not await condition():  # noqa: ASYNC110 - no event marks it
        await asyncio.sleep(0.2)


async def soak(kills: int, keys: int, workers: int, seed: int) -> dict[str, Any]:
    """Run the soak against a fresh emulator and Redis server; what it found."""
    rng = random.Random(seed)
    started = time.monotonic()
    with RedisServer() as server:
        url = server.url
        options = ["--count", str(keys), "--prefix", "soak", "--scale", str(SCALE)]
        options += ["--redis", url, "--namespace", NAMESPACE, "--lease", LEASE]
        options += ["--store", "redis", "--store-url", url, "--linger"]
        async with Emulator(
            api_key=API_KEY,
            time_scale=SCALE,
            seed=seed,
            durations=DURATIONS,
            concurrency_limit=LIMIT,
            over_limit="reject",
            request_log_limit=None,
        ) as emulator:
            emulator.add_fault(
                Fault.latency(
                    "POST /api/v1/inpaint", 0.15, commit=True, times=None, probability=0.3
                )
            )
            parent = emulator.seed_job("diffusion")
            slots = [Slot(f"w{i + 1}") for i in range(workers)]
            try:
                await asyncio.gather(
                    *(slot.start(emulator.base_url, parent, options) for slot in slots)
                )
                in_flight: set[str] = set()
                killed = 0
                while killed < kills:
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
                    victim = rng.choice(slots)
                    status = await victim.kill()
                    killed += status == -signal.SIGKILL
                    # Read while the victim is dead: its claims are in flight for good.
                    in_flight |= {
                        r.key for r in await stored(url) if r.state is RecordState.SUBMITTING
                    }
                    await victim.start(emulator.base_url, parent, options)
                    if killed % 10 == 0:
                        log(f"  {killed} kills")

                async def drained() -> bool:
                    if not all(slot.ended_batch() for slot in slots):
                        return False
                    records = await stored(url)
                    return all(r.state.is_finished for r in records if r.job_id is not None)

                async with asyncio.timeout(DRAIN_TIMEOUT):
                    await until(drained)
                for slot in slots:
                    assert slot.worker is not None
                    slot.worker.tell("exit")
                statuses = [await slot.reader for slot in slots if slot.reader is not None]
                last_outcomes = [
                    (e["key"], e["outcome"])
                    for slot in slots
                    if slot.worker is not None
                    for e in slot.worker.of("done")
                ]
            finally:
                for slot in slots:
                    if slot.reader is not None and not slot.reader.done():
                        await slot.kill()
            made = created_by_key(emulator)
            peak = emulator.peak_active()
            too_many = sum(1 for record in emulator.requests if record.status == 429)
        records = {r.key: r for r in await stored(url)}
    everything = {f"soak-{i}" for i in range(keys)}
    completed = {k for k, r in records.items() if r.state is RecordState.COMPLETED}
    unknown = {k for k, r in records.items() if r.state.outcome_unknown or r.job_id is None}
    duplicates = sum(len(jobs) - 1 for jobs in made.values())
    # A key another live worker was submitting at that instant is an unknown outcome to
    # the worker that found its claim, though the key's job exists a moment later.
    raced = sum(
        1
        for key, outcome in last_outcomes
        if outcome == "SubmissionOutcomeUnknownError" and key in completed
    )
    checks = {
        "no job created twice": duplicates == 0,
        f"never more than {LIMIT} running at the emulator": peak <= LIMIT,
        "every key ended completed or unknown": completed | unknown == everything
        and not completed & unknown,
        "unknown only where a kill left a claim in flight": unknown <= in_flight,
        "completed keys hold the job the emulator made": all(
            made.get(k) == [records[k].job_id] for k in completed
        ),
        "the last workers exited": all(s in (0, 1) for s in statuses),
    }
    return {
        "kills": killed,
        "workers": workers,
        "keys": keys,
        "lease_seconds": float(LEASE),
        "jobs_made": sum(len(jobs) for jobs in made.values()),
        "duplicates": duplicates,
        "completed": len(completed),
        "unknown": len(unknown),
        "unknown_never_received": sum(1 for key in unknown if key not in made),
        "claims_in_flight_at_kills": len(in_flight),
        "peak_running": peak,
        "answers_429": too_many,
        "last_exit_statuses": statuses,
        "last_outcomes": dict(collections.Counter(outcome for _, outcome in last_outcomes)),
        "last_unknown_on_completed_keys": raced,
        "wall_seconds": round(time.monotonic() - started, 1),
        "checks": checks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    options = parser.parse_args()
    log(f"soak: {options.kills} kills among {options.workers} workers on {options.keys} keys")
    result = asyncio.run(soak(options.kills, options.keys, options.workers, options.seed))
    checks = result["checks"]
    print(
        table(
            [
                "kills",
                "workers",
                "keys",
                "jobs made",
                "duplicates",
                "completed",
                "unknown",
                "peak running",
                "429s",
                "wall s",
            ],
            [
                [
                    result["kills"],
                    result["workers"],
                    result["keys"],
                    result["jobs_made"],
                    result["duplicates"],
                    result["completed"],
                    f"{result['unknown']} ({result['unknown_never_received']} never received)",
                    result["peak_running"],
                    result["answers_429"],
                    result["wall_seconds"],
                ]
            ],
        )
    )
    print(f"last workers' handles: {result['last_outcomes']}", end="")
    print(f" ({result['last_unknown_on_completed_keys']} unknown on keys that completed)")
    for name, ok in checks.items():
        print(f"- {name}: {'yes' if ok else 'NO'}")
    write_result("soak_workers", result, options.json)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
