"""Benchmark 4: 1,000 inpaints through one gather against an account limited to 6 jobs.

The emulator (a separate process, time-scaled 200×) runs at most 6 jobs per account and
answers 429 to a 7th (``over_limit="reject"``). The client is given no
``max_active_jobs``, so it must learn the limit from the 429s and queue the rest locally.
We count every request the emulator saw, the 429s, the client's limit discoveries
(``client._slots.discoveries``) and its probes above the limit known to work
(``client._slots.probes``: each refused one costs a 429), and compare the total with the
*poll-only-while-running bound*: each job costs one POST plus the status reads the same
client needs for a job that runs without waiting (measured here in a reference run: a
warm client given ``max_active_jobs=6``, so it never submits a job the account cannot
start and never reads a job that is not running). The clairvoyant floor (one POST and one
read per job) is reported too.

Invariants checked (the script exits 1 if one breaks): the emulator created exactly 1,000
jobs (none submitted twice), 1,000 POSTs succeeded, and every handle completed.

Run: ``python benchmarks/bench_concurrency_limit.py [--jobs 1000] [--time-scale 0.005]
[--json PATH]`` (or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from _common import (
    API_KEY,
    MASK_POINTS,
    RemoteEmulator,
    cpu_seconds,
    fmt,
    log,
    mean,
    table,
    write_result,
)

from legnext_async import LegnextClient, Mask, PollPolicy, Polygon

LIMIT = 6
DURATIONS = {"inpaint": (90.0, 120.0)}
PENDING_SECONDS = 1.0
TARGET_RATIO = 2.0
REFERENCE_WARMUP = 12
REFERENCE_JOBS = 60


def _emulator(time_scale: float) -> RemoteEmulator:
    return RemoteEmulator(
        time_scale=time_scale,
        seed=4,
        durations=DURATIONS,
        pending_seconds=PENDING_SECONDS,
        concurrency_limit=LIMIT,
        over_limit="reject",
    )


async def _inpaints(client: LegnextClient, parents: list[str], n: int) -> list[object]:
    """Submit and await ``n`` inpaints through one gather; results or exceptions."""
    mask = Mask(areas=[Polygon(width=500, height=500, points=list(MASK_POINTS))])

    async def one(i: int) -> object:
        handle = await client.inpaint(
            job_id=parents[i % len(parents)],
            image_no=i % 4,
            mask=mask,
            remix_prompt=f"variation {i}",
        )
        return await handle

    return list(await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True))


async def _reference(emulator: RemoteEmulator, parents: list[str]) -> dict[str, Any]:
    """Reads per job of a warm client that knows the limit (so polls only running jobs)."""
    policy = PollPolicy(time_scale=emulator.time_scale)
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=policy, max_active_jobs=LIMIT
    ) as client:
        await _inpaints(client, parents, REFERENCE_WARMUP)
        mark = emulator.request_mark()
        results = await _inpaints(client, parents, REFERENCE_JOBS)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"reference run failed: {errors[0]!r}")
    requests = emulator.requests_since(mark)
    reads = list(requests["gets_by_job"].values())
    return {
        "jobs": REFERENCE_JOBS,
        "reads_per_job": mean(reads),
        "requests": requests["by_status"],
    }


async def _main_run(emulator: RemoteEmulator, parents: list[str], n: int) -> dict[str, Any]:
    policy = PollPolicy(time_scale=emulator.time_scale)
    mark = emulator.request_mark()
    wall0 = time.perf_counter()
    cpu0 = cpu_seconds()
    async with LegnextClient(api_key=API_KEY, base_url=emulator.base_url, poll=policy) as client:
        results = await _inpaints(client, parents, n)
        discoveries = client._slots.discoveries  # the learned limit, read for the report
        probes = client._slots.probes
        learned_limit = client._slots.limit
    cpu = cpu_seconds() - cpu0
    wall = time.perf_counter() - wall0
    requests = emulator.requests_since(mark)
    jobs = [row for row in emulator.jobs() if not row["seeded"]]
    errors = [r for r in results if isinstance(r, BaseException)]
    return {
        "results": results,
        "errors": sorted({f"{type(e).__name__}: {e}" for e in errors})[:5],
        "completed": len(results) - len(errors),
        "requests": requests,
        "discoveries": discoveries,
        "probes": probes,
        "learned_limit": learned_limit,
        "jobs": jobs,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }


def run(jobs: int = 1000, time_scale: float = 0.005) -> dict[str, Any]:
    """The reference run and the main run, each against its own emulator."""
    with _emulator(time_scale) as emulator:
        parents = emulator.seed_jobs(4, "diffusion")
        log(f"bench 4: reference run ({REFERENCE_JOBS} inpaints, limit known)")
        reference = asyncio.run(_reference(emulator, parents))
    with _emulator(time_scale) as emulator:
        parents = emulator.seed_jobs(4, "diffusion")
        log(f"bench 4: {jobs} inpaints through one gather, limit {LIMIT} to be learned")
        main = asyncio.run(_main_run(emulator, parents, jobs))
    by_status: dict[str, int] = main["requests"]["by_status"]
    total = main["requests"]["total"]
    posts = sum(v for k, v in by_status.items() if k.startswith("POST"))
    gets = sum(v for k, v in by_status.items() if k.startswith("GET"))
    too_many = sum(v for k, v in by_status.items() if k.endswith(" 429"))
    created = main["jobs"]
    ended = [row["ended_at"] for row in created if row["ended_at"] is not None]
    started = [row["created_at"] for row in created]
    makespan = max(ended) - min(started) if ended and started else float("nan")
    durations = [row["ended_at"] - row["created_at"] for row in created if row["ended_at"]]
    ideal = sum(durations) / LIMIT
    bound = jobs * (1 + reference["reads_per_job"])
    invariants = {
        "emulator_created_exactly_n_jobs": len(created) == jobs,
        "n_posts_succeeded": by_status.get("POST 200", 0) == jobs,
        "every_handle_completed": main["completed"] == jobs,
        "every_job_completed": all(row["status"] == "completed" for row in created),
    }
    return {
        "jobs": jobs,
        "limit": LIMIT,
        "time_scale": time_scale,
        "durations": DURATIONS,
        "requests_total": total,
        "requests_by_status": by_status,
        "posts": posts,
        "reads": gets,
        "reads_per_job": gets / jobs,
        "http_429": too_many,
        "limit_discoveries": main["discoveries"],
        "limit_probes": main["probes"],
        "learned_limit": main["learned_limit"],
        "reference": reference,
        "bound_running_only": bound,
        "bound_clairvoyant": 2 * jobs,
        "ratio_to_bound": total / bound,
        "ratio_to_clairvoyant": total / (2 * jobs),
        "makespan_virtual_seconds": makespan,
        "ideal_makespan_virtual_seconds": ideal,
        "makespan_over_ideal": makespan / ideal if ideal else float("nan"),
        "client_cpu_seconds": main["cpu_seconds"],
        "wall_seconds": main["wall_seconds"],
        "errors": main["errors"],
        "invariants": invariants,
        "targets": {
            "ratio_at_most": TARGET_RATIO,
            "ratio_met": total / bound <= TARGET_RATIO,
            "429_at_most_discoveries": too_many <= main["discoveries"],
        },
    }


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    rows = [
        ["jobs / account limit", f"{result['jobs']:,} / {result['limit']}"],
        ["requests in all (POST + GET)", f"{result['requests_total']:,}"],
        ["  POSTs (incl. 429s) / status reads", f"{result['posts']:,} / {result['reads']:,}"],
        ["  status reads per job", fmt(result["reads_per_job"], 2)],
        ["HTTP 429 answers", f"{result['http_429']}"],
        [
            "limit discoveries (learned limit)",
            f"{result['limit_discoveries']} ({result['learned_limit']})",
        ],
        ["probes above the limit known to work", f"{result.get('limit_probes', 'n/a')}"],
        [
            "poll-only-while-running bound (1 POST + reference reads per job)",
            f"{fmt(result['bound_running_only'], 0)} "
            f"(1 + {fmt(result['reference']['reads_per_job'], 2)} per job)",
        ],
        ["requests ÷ that bound", f"{result['ratio_to_bound']:.2f}×"],
        [
            "clairvoyant floor (1 POST + 1 read per job) and ratio",
            f"{result['bound_clairvoyant']:,} ({result['ratio_to_clairvoyant']:.2f}×)",
        ],
        [
            "makespan, virtual s (ideal: Σ job time ÷ 6)",
            f"{fmt(result['makespan_virtual_seconds'], 0)} "
            f"({fmt(result['ideal_makespan_virtual_seconds'], 0)}; "
            f"{result['makespan_over_ideal']:.3f}×)",
        ],
        ["client CPU (whole run)", f"{fmt(result['client_cpu_seconds'], 1)} s"],
        [
            "invariants (no duplicate job; all completed)",
            "ok" if all(result["invariants"].values()) else f"BROKEN {result['invariants']}",
        ],
    ]
    return table(["measure", "value"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.005, help="real s per virtual s")
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.jobs, args.time_scale)
    path = write_result("concurrency_limit", result, args.json)
    print(render(result))
    log(f"written to {path}")
    if not all(result["invariants"].values()):
        log(f"INVARIANT BROKEN: {result['invariants']} {result['errors']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
