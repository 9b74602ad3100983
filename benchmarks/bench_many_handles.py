"""Benchmark 2: 10,000 handles awaited through one ``asyncio.gather``.

Measures, for ``n`` (10,000) pending jobs awaited at once through ``client.task(job_id)``
handles against an emulator in a separate process:

- memory per pending handle: the peak RSS during the gather (sampled every 50 ms from
  ``/proc/self/statm``, and ``ru_maxrss``) minus the RSS before the handles existed, over
  ``n``; and, in a second pass under ``tracemalloc``, the Python heap held per handle once
  every handle has read its job once and sleeps (nothing else allocates then);
- CPU per poll: ``time.process_time()`` of this process over the whole gather, divided by
  the status reads the emulator served;
- event-loop lag: a ticker sleeps 10 ms over and over and records how late it wakes
  (p50 / p99 / max). For reference the same is measured for a gather of ``n`` bare
  ``asyncio.sleep`` coroutines, the lag any gather of that size costs.

The jobs are diffusions lasting 30–90 s (the service's typical range), created before the
measured phase by the emulator process itself; the emulator runs ``--time-scale`` times
real time and the handles use a poll policy with the same ``time_scale`` and
``target_lag=5`` so each job is read a few times.

Run: ``python benchmarks/bench_many_handles.py [--handles 10000] [--time-scale 0.5]
[--json PATH]`` (or ``nox -s bench``). Run it in a fresh process: ``ru_maxrss`` is a peak.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from typing import Any

from _common import (
    API_KEY,
    GcWatch,
    LoopLagProbe,
    RemoteEmulator,
    cpu_seconds,
    current_rss_bytes,
    fmt,
    log,
    max_rss_bytes,
    table,
    write_result,
)

from legnext_async import LegnextClient, PollPolicy

TARGET_BYTES_PER_HANDLE = 10 * 1024
TARGET_LAG_MS = 100.0
DURATIONS = (30.0, 90.0)
POLL_TARGET_LAG = 5.0


class RssSampler:
    """Samples the resident set size every ``interval`` seconds and keeps the peak."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = current_rss_bytes()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, current_rss_bytes())
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.peak = max(self.peak, current_rss_bytes())
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def gather_pass(
    emulator: RemoteEmulator, job_ids: list[str], policy: PollPolicy
) -> dict[str, Any]:
    """Await every job's handle through one gather; memory, CPU and lag."""
    n = len(job_ids)
    gc.collect()
    rss_before = current_rss_bytes()
    maxrss_before = max_rss_bytes()
    mark = emulator.request_mark()
    with GcWatch() as gc_watch:
        async with (
            LegnextClient(api_key=API_KEY, base_url=emulator.base_url, poll=policy) as client,
            LoopLagProbe() as probe,
            RssSampler() as rss,
        ):
            wall0 = time.perf_counter()
            cpu0 = cpu_seconds()
            handles = [client.task(job_id) for job_id in job_ids]
            results = await asyncio.gather(*handles, return_exceptions=True)
            cpu = cpu_seconds() - cpu0
            wall = time.perf_counter() - wall0
    failures = [r for r in results if isinstance(r, BaseException)]
    # What the finished handles leave for the cyclic collector once nothing refers to them.
    del client, handles, results
    started = time.perf_counter()
    garbage = gc.collect()
    collect_ms = (time.perf_counter() - started) * 1000
    requests = emulator.requests_since(mark)
    polls = requests["by_status"].get("GET 200", 0)
    return {
        "handles": n,
        "completed": n - len(failures),
        "failures": sorted({f"{type(f).__name__}: {f}" for f in failures})[:5],
        "polls": polls,
        "requests": requests["by_status"],
        "polls_per_handle": polls / n,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_us_per_poll": cpu / polls * 1e6 if polls else float("nan"),
        "rss_before_bytes": rss_before,
        "rss_peak_bytes": rss.peak,
        "rss_peak_bytes_per_handle": (rss.peak - rss_before) / n,
        "maxrss_before_bytes": maxrss_before,
        "maxrss_after_bytes": max_rss_bytes(),
        "maxrss_bytes_per_handle": (max_rss_bytes() - maxrss_before) / n,
        "loop_lag_ms": probe.summary_ms(),
        "loop_lag_ms_after_2s": probe.summary_ms(after=2.0),
        "gc": gc_watch.summary_ms(),
        "cyclic_garbage_after": {"objects": garbage, "collect_ms": collect_ms},
    }


async def heap_pass(
    emulator: RemoteEmulator, job_ids: list[str], policy: PollPolicy
) -> dict[str, Any]:
    """Python heap per handle once every handle has read its job once and sleeps."""
    n = len(job_ids)
    gc.collect()
    tracemalloc.start()
    try:
        async with LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, poll=policy
        ) as client:
            await client.balance()  # the session and its connector exist before the baseline
            gc.collect()
            before, _ = tracemalloc.get_traced_memory()
            handles = [client.task(job_id) for job_id in job_ids]
            waiting = asyncio.gather(*handles, return_exceptions=True)
            # Watched from outside, as a user would: nothing signals "every handle read".
            while sum(1 for h in handles if h.last_task is not None) < n:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)  # the last reads' buffers are released
            gc.collect()
            pending = sum(1 for h in handles if not h.done)
            held, _ = tracemalloc.get_traced_memory()
            snapshot = tracemalloc.take_snapshot()
        await waiting  # closing the client stopped the pollers
    finally:
        tracemalloc.stop()
    top = [
        {"where": str(stat.traceback[0]), "bytes_per_handle": stat.size / n}
        for stat in snapshot.statistics("lineno")[:15]
    ]
    by_file = [
        {"where": _short(str(stat.traceback[0].filename)), "bytes_per_handle": stat.size / n}
        for stat in snapshot.statistics("filename")[:12]
    ]
    return {
        "handles": n,
        "pending_when_measured": pending,
        "heap_bytes_per_handle": (held - before) / n,
        "top_allocations": top,
        "by_file": by_file,
    }


def _short(filename: str) -> str:
    """``aiohttp/client.py`` rather than the whole site-packages path."""
    for marker in ("site-packages/", "legnext_async/", "lib/python"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return ("legnext_async/" + tail) if marker == "legnext_async/" else tail
    return filename


async def reference_gather(n: int) -> dict[str, float]:
    """Loop lag of a gather of ``n`` bare ``asyncio.sleep`` coroutines (the floor)."""
    async with LoopLagProbe() as probe:
        await asyncio.gather(*(asyncio.sleep(1.0) for _ in range(n)))
        await asyncio.sleep(0.2)
    return probe.summary_ms()


def run(handles: int = 10_000, time_scale: float = 0.5) -> dict[str, Any]:
    """Both passes against one emulator; the reference gather; the result dict."""
    options = {
        "time_scale": time_scale,
        "seed": 2,
        "durations": {"diffusion": DURATIONS},
        "pending_seconds": 0.0,
        "concurrency_limit": 2 * handles + 10,
        "over_limit": "queue",
    }
    policy = PollPolicy(time_scale=time_scale, target_lag=POLL_TARGET_LAG)
    log("bench 2: reference gather of bare sleeps")
    reference = asyncio.run(reference_gather(handles))
    with RemoteEmulator(**options) as emulator:
        log(f"bench 2: creating {handles} jobs in the emulator process")
        job_ids = emulator.create_jobs(handles, "diffusion", {"text": "bench many handles"})
        log(f"bench 2: awaiting {handles} handles through one gather")
        main = asyncio.run(gather_pass(emulator, job_ids, policy))
        log("bench 2: heap pass under tracemalloc")
        more_ids = emulator.create_jobs(handles, "diffusion", {"text": "bench heap pass"})
        heap = asyncio.run(heap_pass(emulator, more_ids, policy))
    per_handle = max(main["rss_peak_bytes_per_handle"], heap["heap_bytes_per_handle"])
    lag = main["loop_lag_ms"]["max"]
    return {
        "handles": handles,
        "time_scale": time_scale,
        "job_durations": DURATIONS,
        "poll_policy": {"time_scale": time_scale, "target_lag": POLL_TARGET_LAG},
        "gather": main,
        "reference_bare_gather_lag_ms": reference,
        "heap": heap,
        "targets": {
            "bytes_per_handle": TARGET_BYTES_PER_HANDLE,
            "loop_lag_ms": TARGET_LAG_MS,
            "memory_met": per_handle <= TARGET_BYTES_PER_HANDLE,
            "lag_met": lag < TARGET_LAG_MS,
        },
    }


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    g = result["gather"]
    h = result["heap"]
    lag = g["loop_lag_ms"]
    ref = result["reference_bare_gather_lag_ms"]
    steady = g["loop_lag_ms_after_2s"]
    gcs = g["gc"]
    garbage = g["cyclic_garbage_after"]
    rows = [
        ["handles awaited / completed", f"{g['handles']:,} / {g['completed']:,}"],
        ["status reads (polls) per handle", fmt(g["polls_per_handle"], 2)],
        ["wall time of the gather", f"{fmt(g['wall_seconds'], 1)} s"],
        [
            "peak RSS over baseline, per handle",
            f"{fmt(g['rss_peak_bytes_per_handle'] / 1024, 1)} KiB",
        ],
        ["ru_maxrss growth, per handle", f"{fmt(g['maxrss_bytes_per_handle'] / 1024, 1)} KiB"],
        [
            "Python heap per pending handle (tracemalloc)",
            f"{fmt(h['heap_bytes_per_handle'] / 1024, 1)} KiB",
        ],
        ["CPU per poll", f"{fmt(g['cpu_us_per_poll'], 0)} µs"],
        [
            "event-loop lag p50 / p99 / max",
            f"{fmt(lag['p50'])} / {fmt(lag['p99'])} / {fmt(lag['max'])} ms"
            f" (worst at {fmt(lag['max_at_s'], 2)} s)",
        ],
        [
            "  the same from 2 s after the gather started",
            f"{fmt(steady['p50'])} / {fmt(steady['p99'])} / {fmt(steady['max'])} ms",
        ],
        [
            "GC pauses during the gather: count, longest (gen 2 count)",
            f"{gcs['collections']:.0f}, {fmt(gcs['max_ms'])} ms ({gcs['gen2_count']:.0f})",
        ],
        [
            "cyclic garbage the finished handles leave: objects, gc.collect() time",
            f"{garbage['objects']:,} ({garbage['objects'] / g['handles']:.0f} per handle),"
            f" {fmt(garbage['collect_ms'])} ms",
        ],
        [
            "reference: lag of a gather of bare sleeps, p50 / p99 / max",
            f"{fmt(ref['p50'])} / {fmt(ref['p99'])} / {fmt(ref['max'])} ms",
        ],
    ]
    return table(["measure", "value"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handles", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=0.5, help="real s per virtual s")
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.handles, args.time_scale)
    path = write_result("many_handles", result, args.json)
    print(render(result))
    log(f"written to {path}")


if __name__ == "__main__":
    main()
