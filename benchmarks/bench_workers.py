"""Benchmark 10: 4 worker processes × 250 inpaints on one account limited to 6 jobs.

The emulator (a separate process, time-scaled 200× like benchmark 4) runs at most 6 jobs
per account and answers 429 to a 7th. Four worker processes (``tests/worker_driver.py``,
each a ``LegnextClient`` awaiting its 250 inpaints through one gather) share the account,
three ways, each run against a fresh emulator:

- **shared slots**: every worker given ``RedisCoordinator(url)`` (a private
  ``redis-server``): one pool of job slots, the limit learned once for the group;
- **by hand**: no coordinator, each worker given ``max_active_jobs`` (2, 2, 1, 1);
- **independent**: no coordinator, no ``max_active_jobs``: each learns the limit alone.

Then one process runs all 1,000 alone (the reference for finishing time), and the
single-process running-only bound is measured as in benchmark 4 (a warm client knowing the
limit: one POST plus its status reads per job). Reported per contender: the peak of jobs
running at once at the emulator, the 429s, the limit discoveries (the group's, from Redis,
for shared slots; the sum of every worker's otherwise), the requests against that bound,
and the finishing time (the emulator's virtual makespan, first creation to last end)
against the one process's.

Invariants checked (the script exits 1 if one breaks): no run created a key's job twice,
and every handle completed, except with independent learning, whose workers may give up on
submissions refused again and again (how its handles ended is reported).

Run: ``python benchmarks/bench_workers.py [--per-worker 250] [--time-scale 0.005]
[--json PATH]`` (needs ``redis-server`` on PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# First on the path: this tree's package (the one the worker processes run), the worker
# driver and the private Redis server of the tests.
sys.path.insert(0, str(ROOT))

import bench_concurrency_limit  # noqa: E402
from _common import RemoteEmulator, fmt, log, table, write_result  # noqa: E402

from tests.redis_server import RedisServer  # noqa: E402
from tests.worker_driver import API_KEY, Worker, start_worker  # noqa: E402

LIMIT = 6
WORKERS = 4
BY_HAND = (2, 2, 1, 1)
NAMESPACE = "bench10"
TARGET_REQUESTS = 1.3
TARGET_FINISH = 1.1


def _emulator(time_scale: float) -> RemoteEmulator:
    return RemoteEmulator(
        api_key=API_KEY,
        time_scale=time_scale,
        seed=10,
        durations=bench_concurrency_limit.DURATIONS,
        pending_seconds=bench_concurrency_limit.PENDING_SECONDS,
        concurrency_limit=LIMIT,
        over_limit="reject",
    )


async def _run_workers(
    emulator: RemoteEmulator, parent: str, options: list[list[str]], per_worker: int
) -> list[Worker]:
    """Start one worker per ``options``, let them all go at once, wait for their ends."""
    scale = str(emulator.time_scale)
    group = await asyncio.gather(
        *(
            start_worker(
                emulator.base_url,
                parent,
                f"w{n}",
                "--count",
                str(per_worker),
                "--scale",
                scale,
                *extra,
            )
            for n, extra in enumerate(options)
        )
    )
    try:
        for worker in group:
            worker.tell("go")
        statuses = await asyncio.gather(*(worker.finish() for worker in group))
    finally:
        for worker in group:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
    if any(statuses):
        log(f"bench 10: a worker exited with {statuses}")
    return list(group)


def _group_learning(url: str) -> dict[str, Any]:
    import redis

    from legnext_async._coordination import account_of

    with contextlib.closing(redis.Redis.from_url(url, decode_responses=True)) as raw:
        state = raw.hget(f"{NAMESPACE}:{account_of(API_KEY)}:learn", "state")
    return json.loads(state) if state else {}


def _contender(
    name: str,
    time_scale: float,
    options: list[list[str]],
    per_worker: int,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """One run against a fresh emulator: what the emulator saw and the workers said."""
    with _emulator(time_scale) as emulator:
        parent = emulator.seed_jobs(1, "diffusion")[0]
        mark = emulator.request_mark()
        log(f"bench 10: {name}: {len(options)} worker(s) × {per_worker} inpaints")
        wall0 = time.perf_counter()
        group = asyncio.run(_run_workers(emulator, parent, options, per_worker))
        wall = time.perf_counter() - wall0
        requests = emulator.requests_since(mark)
        rows = emulator.records_since(mark, "remixPrompt")
        jobs = [row for row in emulator.jobs() if not row["seeded"]]
        peak = emulator.peak_active()
    made: collections.Counter[str] = collections.Counter(
        str(row[5]) for row in rows if row[0] == "POST" and row[4] is not None
    )
    by_status: dict[str, int] = requests["by_status"]
    batches = [e for w in group for e in w.of("batch")]
    done = [e for w in group for e in w.of("done")]
    if redis_url is not None:
        discoveries = int(_group_learning(redis_url).get("discoveries", 0))
    else:
        discoveries = sum(int(e["discoveries"]) for e in batches)
    created = [row["created_at"] for row in jobs]
    ended = [row["ended_at"] for row in jobs if row["ended_at"] is not None]
    n = per_worker * len(options)
    return {
        "workers": len(options),
        "jobs": n,
        "requests_total": requests["total"],
        "requests_by_status": by_status,
        "http_429": sum(v for k, v in by_status.items() if k.endswith(" 429")),
        "limit_discoveries": discoveries,
        "peak_running": peak,
        "makespan_virtual_seconds": max(ended) - min(created) if ended else float("nan"),
        "wall_seconds": wall,
        "worker_seconds": [e["seconds"] for e in batches],
        "outcomes": dict(collections.Counter(str(e["outcome"]) for e in done)),
        "invariants": {
            "no_key_created_twice": max(made.values(), default=0) <= 1,
            "every_handle_completed": len(done) == n
            and all(e["outcome"] == "completed" for e in done),
        },
    }


def run(per_worker: int = 250, time_scale: float = 0.005) -> dict[str, Any]:
    """The reference, the three contenders and the one process, each on a fresh emulator."""
    with bench_concurrency_limit._emulator(time_scale) as emulator:
        parents = emulator.seed_jobs(4, "diffusion")
        log("bench 10: reference run (one warm process knowing the limit)")
        reference = asyncio.run(bench_concurrency_limit._reference(emulator, parents))
    total = per_worker * WORKERS
    bound = total * (1 + reference["reads_per_job"])
    contenders: dict[str, dict[str, Any]] = {}
    with RedisServer() as server:
        shared = ["--redis", server.url, "--namespace", NAMESPACE]
        contenders["shared slots"] = _contender(
            "shared slots", time_scale, [shared] * WORKERS, per_worker, server.url
        )
    contenders["by hand"] = _contender(
        "by hand",
        time_scale,
        [["--max-active-jobs", str(n)] for n in BY_HAND],
        per_worker,
    )
    contenders["independent"] = _contender("independent", time_scale, [[]] * WORKERS, per_worker)
    alone = _contender("one process", time_scale, [[]], total)
    for result in (*contenders.values(), alone):
        result["ratio_to_bound"] = result["requests_total"] / bound
        result["finish_over_one_process"] = (
            result["makespan_virtual_seconds"] / alone["makespan_virtual_seconds"]
        )
        result["targets"] = {
            "peak_at_most_limit": result["peak_running"] <= LIMIT,
            "429_at_most_discoveries": result["http_429"] <= result["limit_discoveries"],
            "requests_met": result["ratio_to_bound"] <= TARGET_REQUESTS,
            "finish_met": result["finish_over_one_process"] <= TARGET_FINISH,
        }
    return {
        "workers": WORKERS,
        "per_worker": per_worker,
        "limit": LIMIT,
        "by_hand": list(BY_HAND),
        "time_scale": time_scale,
        "reference": reference,
        "bound_running_only": bound,
        "contenders": contenders,
        "one_process": alone,
        # Independent learning may give up on submissions refused again and again: that is
        # its result, reported; a key made twice is a bug in any contender.
        "invariants": {
            f"{name}: {check}": ok
            for name, result in (*contenders.items(), ("one process", alone))
            for check, ok in result["invariants"].items()
            if name != "independent" or check == "no_key_created_twice"
        },
    }


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table: one column per contender."""
    columns = [*result["contenders"].items(), ("one process, all alone", result["one_process"])]

    def row(label: str, cell: Any) -> list[str]:
        return [label, *(cell(r) for _, r in columns)]

    rows = [
        row("processes × inpaints", lambda r: f"{r['workers']} × {r['jobs'] // r['workers']:,}"),
        row("peak running at the emulator (limit 6)", lambda r: f"{r['peak_running']}"),
        row("HTTP 429 answers", lambda r: f"{r['http_429']}"),
        row("limit discoveries", lambda r: f"{r['limit_discoveries']}"),
        row("requests in all", lambda r: f"{r['requests_total']:,}"),
        row("requests ÷ running-only bound", lambda r: f"{r['ratio_to_bound']:.2f}×"),
        row(
            "finishing time, virtual s",
            lambda r: f"{fmt(r['makespan_virtual_seconds'], 0)}",
        ),
        row("finishing time ÷ one process", lambda r: f"{r['finish_over_one_process']:.3f}×"),
        row("wall time, s", lambda r: fmt(r["wall_seconds"], 1)),
        row(
            "handles completed (others: how they ended)",
            lambda r: ", ".join(f"{n:,} {outcome}" for outcome, n in r["outcomes"].items()),
        ),
        row(
            "a key created twice",
            lambda r: "no" if r["invariants"]["no_key_created_twice"] else "YES (BROKEN)",
        ),
    ]
    bound = result["bound_running_only"]
    note = (
        f"\n\nRunning-only bound: {fmt(bound, 0)} requests (1 POST + "
        f"{fmt(result['reference']['reads_per_job'], 2)} reads per job, a warm process "
        f"knowing the limit). By hand: max_active_jobs {result['by_hand']}."
    )
    return table(["measure", *(name for name, _ in columns)], rows) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-worker", type=int, default=250)
    parser.add_argument("--time-scale", type=float, default=0.005, help="real s per virtual s")
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.per_worker, args.time_scale)
    path = write_result("workers", result, args.json)
    print(render(result))
    log(f"written to {path}")
    if not all(result["invariants"].values()):
        log(f"INVARIANT BROKEN: {result['invariants']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
