"""Soak: a batch killed with SIGKILL hundreds of times, then run to its end. Pays nothing twice?

The batch is ``tests/crash_driver.py`` (inpaints under idempotency keys through
``client.as_completed``, an SQLite job store, each result's images downloaded), run as a
real subprocess against an emulator in this process, which therefore sees every run. The
emulator answers a share of the POSTs late, the job already made (``Fault.latency`` with
``commit``), so that kills land between a POST and its record too.

Each round starts the driver with the same arguments and SIGKILLs it at a random instant:
after a random number of lines of its output (a job recorded, a line finished), plus a
random fraction of a second. After ``--kills`` kills the driver runs once more to its end.

Checked (the script exits 1 if one breaks):

- **no job created twice**: in the emulator's own request log, no line's request made more
  than one job;
- **every line ends** completed (its images on disk under their final names) or reported
  unknown by the last run;
- **unknown outcomes come from kills only**: every unknown line is a claim that a kill left
  in flight (recorded ``submitting`` after that kill, its answer never recorded);
- **the store opens cleanly**: SQLite's ``integrity_check`` after every kill.

Reported: kills, lines, jobs made, completed, unknown (and how many of those the emulator
never saw a job for: requests a kill cut before they were received), wall time.

Run: ``python benchmarks/soak_kills.py [--kills 300] [--lines 200] [--seed 1]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import log, table, write_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from crash_driver import API_KEY, SCALE, created_by_line, run_driver, states

from legnext_async.emulator import Emulator, Fault


def integrity(db: Path) -> bool:
    """Whether the store file passes SQLite's own check (an absent file is fine)."""
    if not db.exists():
        return True
    with contextlib.closing(sqlite3.connect(db)) as raw:
        return raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def soak(kills: int, lines: int, seed: int) -> dict[str, object]:
    """Run the soak in a fresh directory; what it found."""
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="legnext-soak-") as tmp:
        db, out = Path(tmp) / "batch.db", Path(tmp) / "out"
        async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=seed) as emulator:
            emulator.add_fault(
                Fault.latency(
                    "POST /api/v1/inpaint", 0.15, commit=True, times=None, probability=0.3
                )
            )
            parent = emulator.seed_job("diffusion", api_key=API_KEY)
            args = [emulator.base_url, str(db), parent, str(lines), str(out), str(SCALE)]
            in_flight: set[str] = set()
            killed = runs = 0
            broken_files = 0
            while killed < kills:
                runs += 1
                _, status = await run_driver(
                    args, kill_after_lines=rng.randrange(0, 2 * lines), rng=rng
                )
                killed += status == -signal.SIGKILL
                in_flight |= {k for k, (s, _) in states(db).items() if s == "submitting"}
                broken_files += not integrity(db)
                if killed and killed % 25 == 0:
                    log(f"  {killed} kills, {runs} runs")
            events, status = await run_driver(args, kill_after_lines=None, rng=rng)
            made = created_by_line(emulator)
        final = states(db)
        ends = {int(str(e["line"])): e["event"] for e in events if e["event"] != "submitted"}
        completed = [job for state, job in final.values() if state == "completed"]
        unknown = [key for key, (state, _) in final.items() if state != "completed"]
        missing_images = sum(
            len(list(out.glob(f"{job}_*.png"))) != 4 for job in completed if job is not None
        )
    duplicates = sum(len(jobs) - 1 for jobs in made.values())
    checks = {
        "last run exited 0": status == 0,
        "every line ended": sorted(ends) == list(range(lines))
        and set(ends.values()) <= {"done", "unknown"},
        "no job created twice": duplicates == 0,
        "completed lines have their images": missing_images == 0,
        "unknown only where a kill left a claim in flight": set(unknown) <= in_flight,
        "store passed integrity_check after every kill": broken_files == 0,
    }
    return {
        "kills": killed,
        "runs": runs + 1,
        "lines": lines,
        "jobs_made": sum(len(jobs) for jobs in made.values()),
        "duplicates": duplicates,
        "completed": len(completed),
        "unknown": len(unknown),
        "unknown_never_received": sum(1 for key in unknown if key not in made),
        "claims_in_flight_at_kills": len(in_flight),
        "wall_seconds": round(time.monotonic() - started, 1),
        "checks": checks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    options = parser.parse_args()
    log(f"soak: {options.kills} kills of a {options.lines}-line batch")
    result = asyncio.run(soak(options.kills, options.lines, options.seed))
    checks = result["checks"]
    assert isinstance(checks, dict)
    print(
        table(
            ["kills", "lines", "jobs made", "duplicates", "completed", "unknown", "wall s"],
            [
                [
                    result["kills"],
                    result["lines"],
                    result["jobs_made"],
                    result["duplicates"],
                    result["completed"],
                    f"{result['unknown']} ({result['unknown_never_received']} never received)",
                    result["wall_seconds"],
                ]
            ],
        )
    )
    for name, ok in checks.items():
        print(f"- {name}: {'yes' if ok else 'NO'}")
    write_result("soak_kills", result, options.json)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
