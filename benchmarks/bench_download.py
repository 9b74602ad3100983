"""Benchmark 7: download throughput and memory, ``client.download`` against raw aiohttp.

The emulator (a separate process) serves one output file of each size (``file_size``:
a PNG padded to 1 MB, 32 MB and 256 MB by default), over loopback. Contenders, side by side,
in two pairs (each download mode against the raw stream that is durable the same way):

- ``raw aiohttp`` (the floor): one ``ClientSession``, ``GET`` the file,
  ``resp.content.iter_chunked(64 KiB)`` and a plain ``file.write`` of each chunk on the
  event loop, no fsync;
- ``legnext_async``: ``await client.download(task, directory)`` in its default mode:
  streamed to a temporary file (on the event loop up to 4 MiB, else through the writer
  thread), checked, renamed (no fsync);
- ``raw aiohttp + fsync``: the raw stream with ``os.fsync`` before closing;
- ``legnext_async, fsync=True``: ``client.download(task, directory, fsync=True)``, each
  file flushed to disk before its rename.

Each round downloads the file of one size with each contender in turn (the order rotates
every round, and is reversed every other cycle of rotations, so drift in the shared
machine's speed hits all alike and no contender always follows the same one), at least 64 MB per
contender per round (64 downloads of 1 MB, 2 of 32 MB, 1 of 256 MB); files are deleted
between downloads, outside the timed part. Reported per size: the median round's
throughput, the median over rounds of each round's ratio to each raw contender (paired),
the event loop's lag while downloading (a 10 ms ticker), and in a separate pass under
``tracemalloc`` the peak of Python memory during one download (it must not grow with the
file's size). The targets: each mode at least 0.9 × its raw counterpart at every size.
The script checks every saved file's size and exits 1 if one is wrong.

Run: ``python benchmarks/bench_download.py [--sizes 1 32 256] [--rounds 15] [--json PATH]``
(or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from _common import API_KEY, LoopLagProbe, RemoteEmulator, fmt, log, percentile, table, write_result

from legnext_async import LegnextClient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from legnext_async import Task

    Download = Callable[[Path], Awaitable[Path]]

MB = 1_000_000
#: The ratio to raw aiohttp the project aims for.
TARGET_RATIO = 0.9
#: The most Python memory one download may take at any size: a buffer being filled, one
#: being written and aiohttp's buffer come to about 3 MiB.
MEMORY_BOUND = 4 << 20
#: Bytes each contender moves per round, at least.
ROUND_BYTES = 64 * MB
CHUNK = 64 * 1024
RAW, OURS, RAW_FSYNC, OURS_FSYNC = (
    "raw aiohttp",
    "legnext_async",
    "raw aiohttp + fsync",
    "legnext_async, fsync=True",
)
CONTENDERS = (RAW, OURS, RAW_FSYNC, OURS_FSYNC)
#: Each mode of ``client.download`` and the raw stream it is held against.
PAIRS = {OURS: RAW, OURS_FSYNC: RAW_FSYNC}


def _raw(session: aiohttp.ClientSession, url: str, *, fsync: bool) -> Download:
    async def download(folder: Path) -> Path:
        path = folder / "raw.png"
        async with session.get(url) as response:
            response.raise_for_status()
            with path.open("wb") as file:
                async for chunk in response.content.iter_chunked(CHUNK):
                    file.write(chunk)
                if fsync:
                    file.flush()
                    os.fsync(file.fileno())
        return path

    return download


def _ours(client: LegnextClient, task: Task, *, fsync: bool) -> Download:
    async def download(folder: Path) -> Path:
        (path,) = await client.download(task, folder, fsync=fsync)
        return path

    return download


async def _one_size(emulator: RemoteEmulator, size: int, rounds: int) -> dict[str, Any]:
    """Every round of one file size, then the memory pass."""
    job_id = emulator.seed_jobs(1, "upscale")[0]
    repeats = max(1, ROUND_BYTES // size)
    work = Path(tempfile.mkdtemp(prefix="legnext-bench-download-"))
    seconds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    lags: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    peaks: dict[str, float] = {}
    wrong_sizes = 0
    try:
        async with (
            aiohttp.ClientSession() as session,
            LegnextClient(api_key=API_KEY, base_url=emulator.base_url) as client,
        ):
            task = await client.get_task(job_id)
            url = task.output.image_urls[0]
            downloads = {
                RAW: _raw(session, url, fsync=False),
                OURS: _ours(client, task, fsync=False),
                RAW_FSYNC: _raw(session, url, fsync=True),
                OURS_FSYNC: _ours(client, task, fsync=True),
            }

            async def timed(name: str) -> float:
                nonlocal wrong_sizes
                elapsed = 0.0
                for _ in range(repeats):
                    folder = work / "".join(c if c.isalnum() else "-" for c in name)
                    folder.mkdir(exist_ok=True)
                    started = time.perf_counter()
                    path = await downloads[name](folder)
                    elapsed += time.perf_counter() - started
                    wrong_sizes += path.stat().st_size != size
                    shutil.rmtree(folder)
                return elapsed

            for name in CONTENDERS:  # warm-up: connections, the thread pool, the page cache
                await timed(name)
            for round_no in range(rounds):
                turn = round_no % len(CONTENDERS)
                order = CONTENDERS[turn:] + CONTENDERS[:turn]
                if (round_no // len(CONTENDERS)) % 2:
                    # Rotation alone keeps the cycle: each contender would always follow
                    # the same one (and inherit its page cache and allocator state).
                    order = order[::-1]
                for name in order:
                    async with LoopLagProbe() as probe:
                        seconds[name].append(await timed(name))
                    lags[name].extend(probe.lags)
            for name in CONTENDERS:
                folder = work / "memory"
                folder.mkdir(exist_ok=True)
                # A fresh client, so that the write buffers it keeps are counted too.
                async with LegnextClient(api_key=API_KEY, base_url=emulator.base_url) as fresh:
                    fresh_downloads = {
                        OURS: _ours(fresh, task, fsync=False),
                        OURS_FSYNC: _ours(fresh, task, fsync=True),
                    }
                    tracemalloc.start()
                    try:
                        await fresh_downloads.get(name, downloads[name])(folder)
                        peaks[name] = tracemalloc.get_traced_memory()[1]
                    finally:
                        tracemalloc.stop()
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    moved = size * repeats
    rows = {}
    for name in CONTENDERS:

        def ratio(raw: str, name: str = name) -> float:
            paired = zip(seconds[raw], seconds[name], strict=True)
            return percentile([raw / this for raw, this in paired], 50)

        rows[name] = {
            "mb_per_s_median": moved / percentile(seconds[name], 50) / MB,
            "ratio_to_raw_median": ratio(RAW),
            "ratio_to_raw_fsync_median": ratio(RAW_FSYNC),
            "loop_lag_p99_ms": percentile(lags[name], 99) * 1000,
            "loop_lag_max_ms": max(lags[name], default=float("nan")) * 1000,
            "peak_python_memory_bytes": peaks[name],
        }
    return {"size": size, "repeats": repeats, "rows": rows, "wrong_sizes": wrong_sizes}


def run(sizes_mb: list[int], rounds: int) -> dict[str, Any]:
    """Each size against its own emulator (``file_size`` is an emulator-wide option)."""
    results = []
    for size_mb in sizes_mb:
        size = size_mb * MB
        log(f"bench 7: {size_mb} MB files, {rounds} rounds")
        with RemoteEmulator(file_size=size, time_scale=0.01) as emulator:
            results.append(asyncio.run(_one_size(emulator, size, rounds)))
    key = {RAW: "ratio_to_raw_median", RAW_FSYNC: "ratio_to_raw_fsync_median"}

    def met(mode: str) -> bool:
        return all(r["rows"][mode][key[PAIRS[mode]]] >= TARGET_RATIO for r in results)

    def flat(mode: str) -> bool:
        # Bounded: under MEMORY_BOUND at every size, and the largest file's peak within
        # 1 MiB of the next size's (a file of one batch or less never fills the pipeline).
        peaks = [r["rows"][mode]["peak_python_memory_bytes"] for r in results]
        grown = peaks[-1] - peaks[-2] if len(peaks) > 1 else 0
        return max(peaks) < MEMORY_BOUND and grown < 1 << 20

    return {
        "rounds": rounds,
        "sizes": results,
        "invariants": {"every_file_whole": all(r["wrong_sizes"] == 0 for r in results)},
        "targets": {
            "ratio_at_least": TARGET_RATIO,
            "ratio_met": met(OURS),
            "ratio_met_with_fsync": met(OURS_FSYNC),
            "memory_flat": flat(OURS) and flat(OURS_FSYNC),
        },
    }


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    rows = []
    for entry in result["sizes"]:
        for name in CONTENDERS:
            row = entry["rows"][name]
            rows.append(
                [
                    f"{entry['size'] / MB:g} MB" if name == CONTENDERS[0] else "",
                    name,
                    fmt(row["mb_per_s_median"], 0),
                    f"{row['ratio_to_raw_median']:.2f}×",
                    f"{row['ratio_to_raw_fsync_median']:.2f}×",
                    f"{fmt(row['loop_lag_p99_ms'], 1)} / {fmt(row['loop_lag_max_ms'], 1)}",
                    fmt(row["peak_python_memory_bytes"] / 1024, 0),
                ]
            )
    return table(
        [
            "file",
            "contender",
            "MB/s (median round)",
            "÷ raw aiohttp (median)",
            "÷ raw aiohttp + fsync (median)",
            "loop lag p99 / max, ms",
            "peak Python memory, KiB",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 32, 256], help="in MB")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.sizes, args.rounds)
    path = write_result("download", result, args.json)
    print(render(result))
    log(f"written to {path}")
    if not all(result["invariants"].values()):
        log(f"INVARIANT BROKEN: {result['invariants']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
