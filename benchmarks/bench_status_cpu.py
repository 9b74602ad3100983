"""Benchmark 1: client CPU per status read, side by side in one run.

Contenders, all reading the same completed job from the same emulator (a separate process,
so only the client's CPU is counted):

- ``raw aiohttp`` (the floor): one ``ClientSession``, ``GET /v1/job/{id}`` with the
  ``x-api-key`` header, ``await resp.read()`` and ``json.loads`` — the least a client does;
- ``legnext_async get_task``: ``await client.get_task(job_id)`` (a typed ``Task``);
- ``legnext_async refresh``: ``await handle.refresh()`` on ``client.task(job_id)``;
- ``legnext (official SDK)``: ``await AsyncClient(...).tasks.get(job_id)`` — only if the
  ``legnext`` package is importable (the nox ``bench`` session installs it).

Each contender first warms up, then reads sequentially in rounds; the order of the
contenders rotates every round so drift in the machine's speed hits all of them alike.
CPU is ``time.process_time()`` of this process around each contender's batch. Reported:
the median round's CPU per read, and the median over rounds of each round's ratio to the
floor's round (paired, so a noisy moment of the shared machine hits both sides).

Run: ``python benchmarks/bench_status_cpu.py [--reads 6000] [--rounds 20] [--json PATH]``
(or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from _common import (
    API_KEY,
    RemoteEmulator,
    cpu_seconds,
    fmt,
    log,
    mean,
    percentile,
    table,
    write_result,
)

from legnext_async import LegnextClient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


#: The ratio to the floor the project aims for.
TARGET_RATIO = 1.3


async def _contenders(
    base_url: str, job_id: str, stack: list[Callable[[], Awaitable[None]]]
) -> dict[str, Callable[[], Awaitable[object]]]:
    """Each contender's "one status read", ready to call; closers appended to ``stack``."""
    readers: dict[str, Callable[[], Awaitable[object]]] = {}

    session = aiohttp.ClientSession()
    stack.append(session.close)
    url = f"{base_url}/v1/job/{job_id}"
    headers = {"x-api-key": API_KEY}

    async def raw_read() -> object:
        async with session.get(url, headers=headers) as response:
            return json.loads(await response.read())

    readers["raw aiohttp (floor)"] = raw_read

    client = LegnextClient(api_key=API_KEY, base_url=base_url)
    await client.__aenter__()
    stack.append(client.aclose)

    async def get_task() -> object:
        return await client.get_task(job_id)

    readers["legnext_async get_task"] = get_task

    handle = client.task(job_id)

    async def refresh() -> object:
        return await handle.refresh()

    readers["legnext_async handle.refresh"] = refresh

    try:
        from legnext import AsyncClient  # the official SDK, installed by the bench session
    except ImportError:
        log("official SDK `legnext` is not installed: its row is skipped")
    else:
        sdk = AsyncClient(api_key=API_KEY, base_url=base_url)
        await sdk.__aenter__()

        async def close_sdk() -> None:
            await sdk.__aexit__(None, None, None)

        stack.append(close_sdk)

        async def sdk_get() -> object:
            return await sdk.tasks.get(job_id)

        readers["legnext (official SDK) tasks.get"] = sdk_get
    return readers


async def _batch(read: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for ``n`` sequential reads."""
    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = cpu_seconds()
    for _ in range(n):
        await read()
    return cpu_seconds() - cpu0, time.perf_counter() - wall0


async def measure(
    base_url: str, job_id: str, reads: int, rounds: int, warmup: int
) -> dict[str, Any]:
    """Run every contender; return per-contender CPU and wall time per read."""
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        readers = await _contenders(base_url, job_id, closers)
        names = list(readers)
        for name in names:  # also checks each contender works against the emulator
            await _batch(readers[name], warmup)
        per_round = max(1, reads // rounds)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        wall: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                c, w = await _batch(readers[name], per_round)
                cpu[name].append(c / per_round)
                wall[name].append(w / per_round)
            log(f"  round {r + 1}/{rounds} done")
    finally:
        for close in reversed(closers):
            await close()
    floor = cpu[names[0]]
    rows = {}
    for name in names:
        # Rounds are paired: the ratio of each round to the floor's in the same round, then
        # the median, so that one noisy round (a shared machine) does not decide.
        ratios = [c / f for c, f in zip(cpu[name], floor, strict=True)]
        rows[name] = {
            "reads": per_round * rounds,
            "cpu_us_per_read": percentile(cpu[name], 50) * 1e6,
            "cpu_us_per_read_mean": mean(cpu[name]) * 1e6,
            "cpu_us_per_read_round_min": min(cpu[name]) * 1e6,
            "cpu_us_per_read_round_max": max(cpu[name]) * 1e6,
            "wall_us_per_read": percentile(wall[name], 50) * 1e6,
            "ratio_to_floor": percentile(ratios, 50),
            "ratio_to_floor_of_means": mean(cpu[name]) / mean(floor),
        }
    return rows


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    rows = []
    for name, row in result["contenders"].items():
        rows.append(
            [
                name,
                fmt(row["cpu_us_per_read"], 0),
                f"{fmt(row['cpu_us_per_read_round_min'], 0)}–"
                f"{fmt(row['cpu_us_per_read_round_max'], 0)}",
                fmt(row["wall_us_per_read"], 0),
                f"{row['ratio_to_floor']:.2f}×",
            ]
        )
    if not result["official_sdk_installed"]:
        rows.append(["legnext (official SDK)", "not installed", "", "", ""])
    return table(
        [
            "contender",
            "CPU µs/read (median round)",
            "range over rounds",
            "wall µs/read",
            "vs floor (median of paired rounds)",
        ],
        rows,
    )


def run(reads: int = 6000, rounds: int = 20, warmup: int = 300) -> dict[str, Any]:
    """Start an emulator, seed one completed job, and measure every contender."""
    with RemoteEmulator(seed=1) as emulator:
        (job_id,) = emulator.seed_jobs(1, "diffusion")
        log(f"bench 1: {reads} reads per contender in {rounds} rounds against {emulator.base_url}")
        contenders = asyncio.run(measure(emulator.base_url, job_id, reads, rounds, warmup))
    ours = contenders["legnext_async get_task"]["ratio_to_floor"]
    return {
        "reads_per_contender": reads,
        "rounds": rounds,
        "warmup": warmup,
        "official_sdk_installed": any("official" in name for name in contenders),
        "contenders": contenders,
        "target_ratio": TARGET_RATIO,
        "target_met": ours <= TARGET_RATIO,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=6000, help="measured reads per contender")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.reads, args.rounds, args.warmup)
    path = write_result("status_cpu", result, args.json)
    print(render(result))
    log(f"written to {path}")


if __name__ == "__main__":
    main()
