"""A nightly batch as a user writes it, to be killed: inpaints under keys, results downloaded.

Run as a script (``python tests/crash_driver.py BASE_URL STORE PARENT COUNT OUT_DIR SCALE``)
by the SIGKILL tests and the kill soak (``benchmarks/soak_kills.py``), killed at random
instants, then run again with the same arguments. Each line of output is one JSON
document: ``{"event": "submitted", "line": i}`` as a job's id is recorded, then
``{"event": "done" | "unknown" | "error", "line": i}`` as its line ends (after its files
were downloaded, for ``done``).

The harness side (:func:`run_driver`, :func:`states`, :func:`created_by_line`) is here too,
for the tests and the soak alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from legnext_async import (
    LegnextClient,
    LegnextError,
    Mask,
    PollPolicy,
    Polygon,
    RetryPolicy,
    SubmissionOutcomeUnknownError,
    TaskResult,
)

if TYPE_CHECKING:
    import random

    from legnext_async import ImageResult, TaskHandle
    from legnext_async.emulator import Emulator

API_KEY = "0f3c9a7be1d24c5fa6b8e2d1c4f7a9b30f3c9a7be1d24c5fa6b8e2d1c4f7a9b3"
#: The driver's clock: an inpaint takes about a quarter of a second.
SCALE = 0.0025
MASK = Mask(areas=[Polygon(width=500, height=500, points=[10, 10, 10, 100, 100, 100, 100, 10])])


def say(event: str, line: int) -> None:
    """One line of output, flushed at once (the process may die right after)."""
    sys.stdout.write(json.dumps({"event": event, "line": line}) + "\n")
    sys.stdout.flush()


async def main(
    base_url: str, store: str, parent: str, count: int, out_dir: str, scale: float
) -> int:
    async with LegnextClient(
        api_key=API_KEY,
        base_url=base_url,
        store=store,
        poll=PollPolicy(time_scale=scale),
        retry=RetryPolicy(attempts=5, timeout=10.0, initial_wait=0.01, max_wait=0.05),
    ) as client:
        submissions = [
            client.inpaint(parent, 0, mask=MASK, remix_prompt=f"line {i}", key=f"line-{i}")
            for i in range(count)
        ]

        def submitted(position: int, handle: TaskHandle[ImageResult]) -> None:
            say("submitted", position)

        failures = 0
        async for item in client.as_completed(submissions, on_submitted=submitted):
            _, outcome = item
            if isinstance(outcome, SubmissionOutcomeUnknownError):
                say("unknown", item.position)
            elif isinstance(outcome, LegnextError):
                failures += 1
                say("error", item.position)
            else:
                assert isinstance(outcome, TaskResult)
                await client.download(outcome, out_dir)
                say("done", item.position)
    return 1 if failures else 0


# --- the harness side --------------------------------------------------------------------


def states(db: Path) -> dict[str, tuple[str, str | None]]:
    """Every key of the store file: ``(state, job_id)``, read as a new process would."""
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(db)) as raw:
        return {k: (s, j) for k, s, j in raw.execute("SELECT key, state, job_id FROM jobs")}


def created_by_line(emulator: Emulator) -> dict[str, list[str]]:
    """The jobs the emulator created, by the batch line whose request made them."""
    made: dict[str, list[str]] = {}
    for record in emulator.requests:
        if record.method == "POST" and record.job_id is not None:
            assert isinstance(record.body, dict)
            line = record.body["remixPrompt"].removeprefix("line ")
            made.setdefault(f"line-{line}", []).append(record.job_id)
    return made


def driver_env() -> dict[str, str]:
    """The environment for the driver: this one, with the package importable."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


async def run_driver(
    args: list[str], *, kill_after_lines: int | None, rng: random.Random
) -> tuple[list[dict[str, object]], int]:
    """Run the driver; with ``kill_after_lines``, SIGKILL it at a random instant after that
    many lines of output (or when it ends first). Its events and exit status."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=driver_env(),
    )
    assert process.stdout is not None
    events: list[dict[str, object]] = []
    ended = False
    try:
        while kill_after_lines is None or len(events) < kill_after_lines:
            line = await process.stdout.readline()
            if not line:
                break
            events.append(json.loads(line))
        if kill_after_lines is not None and process.returncode is None:
            # A moment later, wherever the driver is by then: the instant is the point.
            await asyncio.sleep(rng.uniform(0.0, 0.2))
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
        rest = await process.stdout.read()
        events.extend(json.loads(line) for line in rest.splitlines() if line.strip())
        ended = True
    finally:
        if not ended:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        status = await process.wait()
    return events, status


if __name__ == "__main__":
    base_url, store, parent, count, out_dir, scale = sys.argv[1:7]
    sys.exit(asyncio.run(main(base_url, store, parent, int(count), out_dir, float(scale))))
