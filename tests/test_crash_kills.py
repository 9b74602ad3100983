"""A batch driver killed with SIGKILL at random instants, then run again with the same keys.

The driver (``crash_driver.py``) is a real subprocess; the emulator runs here, so it sees
every run. Whatever instant a kill lands on (while submitting, between a POST and its
record, while waiting, while downloading), the runs together create no job twice, every
line ends completed or reported unknown, and the unknown ones are requests that were in
flight at a kill. ``benchmarks/soak_kills.py`` does the same hundreds of times.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
from pathlib import Path

from legnext_async.emulator import Emulator, Fault

from .conftest import API_KEY
from .crash_driver import SCALE, created_by_line, run_driver, states

LINES = 16
KILLS = 5


async def test_a_killed_batch_run_again_pays_for_nothing_twice(tmp_path: Path) -> None:
    """Five SIGKILLs at random instants, then a full run: no job twice, every line ends."""
    rng = random.Random(1201)
    db, out = tmp_path / "batch.db", tmp_path / "out"
    async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=11) as emulator:
        # Some answers come late (the job made at once): kills land between POST and record.
        emulator.add_fault(
            Fault.latency("POST /api/v1/inpaint", 0.15, commit=True, times=None, probability=0.3)
        )
        parent = emulator.seed_job("diffusion", api_key=API_KEY)
        args = [emulator.base_url, str(db), parent, str(LINES), str(out), str(SCALE)]
        in_flight_at_kills: set[str] = set()
        killed = 0
        for _ in range(KILLS):
            _, status = await run_driver(args, kill_after_lines=rng.randrange(0, 12), rng=rng)
            if status == -signal.SIGKILL:
                killed += 1
            # What a kill left in flight: claims whose answer was not recorded.
            in_flight_at_kills |= {k for k, (s, _) in states(db).items() if s == "submitting"}
        events, status = await run_driver(args, kill_after_lines=None, rng=rng)

        made = created_by_line(emulator)
    assert killed >= 3  # most runs were cut short (a run may finish before its kill)
    assert status == 0
    ends = {int(str(e["line"])): e["event"] for e in events if e["event"] != "submitted"}
    assert sorted(ends) == list(range(LINES))
    assert set(ends.values()) <= {"done", "unknown"}

    final = states(db)
    # No job created twice: each line's request made at most one job.
    assert all(len(jobs) == 1 for jobs in made.values()), made
    for key, (state, job_id) in final.items():
        if state == "completed":
            assert made[key] == [job_id]
        else:
            # Unknown outcomes are exactly requests a kill left in flight.
            assert state in ("submitting", "unknown")
            assert key in in_flight_at_kills
    unknown = {int(k.removeprefix("line-")) for k, (s, _) in final.items() if s != "completed"}
    assert unknown == {line for line, event in ends.items() if event == "unknown"}
    # Every completed line's images are on disk under their final names.
    for state, job_id in final.values():
        if state == "completed":
            assert sorted(p.name for p in out.glob(f"{job_id}_*.png")) == [
                f"{job_id}_{i}.png" for i in range(4)
            ]


async def test_a_store_killed_mid_write_opens_cleanly(tmp_path: Path) -> None:
    """After kills at random instants, the file passes SQLite's integrity check and reads."""
    rng = random.Random(7)
    db, out = tmp_path / "batch.db", tmp_path / "out"
    async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=3) as emulator:
        parent = emulator.seed_job("diffusion", api_key=API_KEY)
        args = [emulator.base_url, str(db), parent, "8", str(out), str(SCALE)]
        for _ in range(3):
            await run_driver(args, kill_after_lines=rng.randrange(1, 6), rng=rng)
    with contextlib.closing(sqlite3.connect(db)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert 0 < len(states(db)) <= 8
