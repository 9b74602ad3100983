"""Benchmark 5: results as they finish, for a big batch, side by side in one run.

``n`` (5,000) diffusions of 30–90 s, created in the emulator's own process, are awaited
through ``client.task(job_id)`` handles by three ways of taking results in finishing order:

- ``asyncio.as_completed`` (the standard library's helper; the baseline);
- an ``asyncio.wait(..., return_when=FIRST_COMPLETED)`` loop, the common hand-written
  pattern (and this client's own ``as_completed`` before it took finished tasks from a
  queue): every call touches every pending task, so a batch costs time quadratic in its size;
- ``client.as_completed`` (with a ``BatchProgress`` callback).

Each way gets fresh jobs and a fresh client with the same poll policy, so the polling costs
the same in every pass and the differences are the helper's. Reported: CPU of this process
per job, event-loop lag (p99, max) while results come in, and the wall time.

Run: ``python benchmarks/bench_as_completed.py [--jobs 5000] [--json PATH]`` (or
``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import TYPE_CHECKING, Any

from _common import (
    API_KEY,
    LoopLagProbe,
    RemoteEmulator,
    cpu_seconds,
    fmt,
    log,
    table,
    write_result,
)

from legnext_async import BatchProgress, LegnextClient, PollPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from legnext_async import TaskHandle

TIME_SCALE = 0.05
DURATIONS = (30.0, 90.0)
#: Few reads per job (a gap of about 20 s in the run-time window), so polling stays light.
POLICY = PollPolicy(time_scale=TIME_SCALE, target_lag=10.0)


async def _stdlib(handles: Sequence[TaskHandle[Any]]) -> AsyncIterator[object]:
    for next_done in asyncio.as_completed(handles):
        yield await next_done


async def _wait_loop(handles: Sequence[TaskHandle[Any]]) -> AsyncIterator[object]:
    loop = asyncio.get_running_loop()
    pending = {loop.create_task(handle.wait()) for handle in handles}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            yield task.result()


WAYS = {
    "asyncio.as_completed (baseline)": "stdlib",
    "asyncio.wait(FIRST_COMPLETED) loop": "wait",
    "client.as_completed": "client",
}


async def one_pass(base_url: str, job_ids: list[str], way: str) -> dict[str, Any]:
    """Take every job's result in finishing order one ``way``; CPU, lag and wall time."""
    progress: list[BatchProgress] = []
    async with (
        LegnextClient(api_key=API_KEY, base_url=base_url, poll=POLICY) as client,
        LoopLagProbe() as probe,
    ):
        handles = [client.task(job_id) for job_id in job_ids]
        results: AsyncIterator[object]
        if way == "stdlib":
            results = _stdlib(handles)
        elif way == "wait":
            results = _wait_loop(handles)
        else:
            results = client.as_completed(handles, on_progress=progress.append)
        wall0 = time.perf_counter()
        cpu0 = cpu_seconds()
        count = 0
        async for _ in results:
            count += 1
        cpu = cpu_seconds() - cpu0
        wall = time.perf_counter() - wall0
    if count != len(job_ids) or (way == "client" and progress[-1].finished != count):
        raise RuntimeError(f"{way}: {count} results for {len(job_ids)} jobs")
    return {
        "results": count,
        "cpu_seconds": cpu,
        "cpu_us_per_job": cpu / count * 1e6,
        "wall_seconds": wall,
        "loop_lag_ms": probe.summary_ms(),
    }


def run(jobs: int = 5000) -> dict[str, Any]:
    """Every way against one emulator, each on its own fresh jobs."""
    options = {
        "time_scale": TIME_SCALE,
        "seed": 5,
        "durations": {"diffusion": DURATIONS},
        "pending_seconds": 0.0,
        "concurrency_limit": 4 * jobs + 10,
        "over_limit": "queue",
    }
    passes: dict[str, dict[str, Any]] = {}
    with RemoteEmulator(**options) as emulator:
        for label, way in WAYS.items():
            job_ids = emulator.create_jobs(jobs, "diffusion", {"text": "bench as_completed"})
            log(f"bench 5: {label}, {jobs} jobs")
            passes[label] = asyncio.run(one_pass(emulator.base_url, job_ids, way))
    return {
        "jobs": jobs,
        "time_scale": TIME_SCALE,
        "job_durations": DURATIONS,
        "poll_policy": {"time_scale": TIME_SCALE, "target_lag": POLICY.target_lag},
        "passes": passes,
    }


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    baseline = result["passes"]["asyncio.as_completed (baseline)"]["cpu_seconds"]
    rows = []
    for label, r in result["passes"].items():
        lag = r["loop_lag_ms"]
        rows.append(
            [
                label,
                fmt(r["cpu_us_per_job"], 0),
                f"{r['cpu_seconds'] / baseline:.2f}×",
                f"{fmt(lag['p99'])} / {fmt(lag['max'])}",
                fmt(r["wall_seconds"], 1),
            ]
        )
    return table(
        ["way", "CPU µs per job", "CPU vs baseline", "loop lag p99 / max (ms)", "wall (s)"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.jobs)
    path = write_result("as_completed", result, args.json)
    print(render(result))
    log(f"written to {path}")


if __name__ == "__main__":
    main()
