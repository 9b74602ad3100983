"""Run the ten benchmarks, each in a fresh process, and table the results.

Writes ``benchmarks/results/<name>.json`` per benchmark and ``benchmarks/results/latest.md``
(the machine and every table; ``--quick`` writes to the temporary directory instead). With
``--update-docs`` it also rewrites the generated block of ``docs/benchmarks.md`` (between
``<!-- bench:results:begin -->`` and ``<!-- bench:results:end -->``), leaving the
commentary around it alone. Benchmark 3 also
redraws ``docs/_static/bench-reads-vs-lag.png`` (if matplotlib is installed).

Run: ``nox -s bench`` (installs the official SDK and matplotlib first), or
``python benchmarks/run_all.py [--quick] [--only NAME ...] [--update-docs]``.
Exits non-zero if a benchmark fails or one of its invariants breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_as_completed
import bench_concurrency_limit
import bench_download
import bench_fault_soak
import bench_many_handles
import bench_poll_efficiency
import bench_status_cpu
import bench_store
import bench_webhooks
import bench_workers
from _common import PACKAGE_ENV, RESULTS_DIR, log, machine, package_label, table

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"

#: name, script, arguments for a full run, arguments for --quick.
BENCHMARKS: list[tuple[str, str, list[str], list[str]]] = [
    ("status_cpu", "bench_status_cpu.py", [], ["--reads", "600", "--rounds", "3"]),
    ("many_handles", "bench_many_handles.py", [], ["--handles", "1000"]),
    ("poll_efficiency", "bench_poll_efficiency.py", [], ["--quick", "--jobs", "20", "--plot", ""]),
    ("concurrency_limit", "bench_concurrency_limit.py", [], ["--jobs", "200"]),
    ("as_completed", "bench_as_completed.py", [], ["--jobs", "500"]),
    ("fault_soak", "bench_fault_soak.py", [], ["--jobs", "60", "--timeout", "60"]),
    ("download", "bench_download.py", [], ["--sizes", "1", "8", "--rounds", "2"]),
    (
        "store",
        "bench_store.py",
        [],
        ["--jobs", "200", "--rounds", "2", "--records", "20000", "--resume-rounds", "2"],
    ),
    ("webhooks", "bench_webhooks.py", [], ["--jobs", "8"]),
    ("workers", "bench_workers.py", [], ["--per-worker", "30", "--time-scale", "0.002"]),
]


def _machine_table(info: dict[str, Any]) -> str:
    rows = [
        ["CPU", f"{info['cpu']} ({info['cores']} cores, shared and noisy)"],
        ["Python", f"{info['implementation']} {info['python']}"],
        ["aiohttp", info["aiohttp"]],
        ["legnext_async", f"{info['legnext_async']} (package at {info.get('commit', '?')})"],
        ["OS", info["platform"]],
        ["date", info["date"]],
    ]
    return table(["machine", ""], rows)


def report(results: dict[str, dict[str, Any]]) -> str:
    """Every available result as Markdown: the machine first, then one section each."""
    first = next(iter(results.values()), None)
    parts = [_machine_table(first["machine"] if first else machine())]
    if "status_cpu" in results:
        r = results["status_cpu"]
        parts.append(
            f"### 1. CPU per status read\n\n{r['reads_per_contender']:,} sequential reads of "
            f"one completed job per contender, in {r['rounds']} interleaved rounds "
            f"(after {r['warmup']} warm-up reads each).\n\n" + bench_status_cpu.render(r)
        )
    if "many_handles" in results:
        r = results["many_handles"]
        parts.append(
            f"### 2. {r['handles']:,} handles through one gather\n\n"
            f"Diffusions of {r['job_durations'][0]:g}–{r['job_durations'][1]:g} s, "
            f"time scale {r['time_scale']:g}, `PollPolicy(target_lag="
            f"{r['poll_policy']['target_lag']:g})`.\n\n" + bench_many_handles.render(r)
        )
    if "poll_efficiency" in results:
        r = results["poll_efficiency"]
        parts.append(
            f"### 3. Poll efficiency\n\n{r['jobs_per_type']} inpaints (90–120 s) and "
            f"{r['jobs_per_type']} diffusions (30–90 s) per schedule, 1 s pending, time scale "
            f"{r['time_scale']:g}; lags in unscaled seconds.\n\n"
            + bench_poll_efficiency.render(r)
            + "\n\nReads per job for a 1.5 s mean lag, interpolated on each schedule's sweep:"
            "\n\n"
            + bench_poll_efficiency.render_at_lag(r)
            + "\n\nEvery point of the sweep (the plot's data):\n\n"
            + bench_poll_efficiency.render_sweep(r)
            + "\n\nScenario B — run times unlike the client's built-in windows: inpaints "
            "150–180 s (slower than documented), diffusions 31–40 s (as observed live):\n\n"
            + bench_poll_efficiency.render_sweep(r, "shifted_rows")
        )
    if "concurrency_limit" in results:
        r = results["concurrency_limit"]
        parts.append(
            f"### 4. {r['jobs']:,} jobs against a limit of {r['limit']} active jobs\n\n"
            f"Inpaints (90–120 s), time scale {r['time_scale']:g}, no `max_active_jobs` given."
            "\n\n" + bench_concurrency_limit.render(r)
        )
    if "as_completed" in results:
        r = results["as_completed"]
        parts.append(
            f"### 5. Results as they finish, {r['jobs']:,} jobs\n\n"
            f"Diffusions of {r['job_durations'][0]:g}–{r['job_durations'][1]:g} s, "
            f"time scale {r['time_scale']:g}, `PollPolicy(target_lag="
            f"{r['poll_policy']['target_lag']:g})`; CPU per job includes the polling, the "
            "same in every row.\n\n" + bench_as_completed.render(r)
        )
    if "fault_soak" in results:
        r = results["fault_soak"]
        parts.append(
            f"### 6. Fault soak, {r['jobs']:,} jobs\n\n"
            f"Inpaints (90–120 s) against a limit of {r['limit']} active jobs, time scale "
            f"{r['time_scale']:g}, no `max_active_jobs` given, one gather per scenario; a "
            f"scenario is stopped after {r['bound_seconds']:g} s of real time.\n\n"
            + bench_fault_soak.render(r)
        )
    if "download" in results:
        r = results["download"]
        parts.append(
            f"### 7. Downloads\n\nOne file per size from the emulator over loopback, "
            f"{r['rounds']} rounds with the contenders' order rotated (reversed every other "
            "cycle), at least 64 MB per contender per round; memory is the `tracemalloc` peak "
            "of one download.\n\n" + bench_download.render(r)
        )
    if "store" in results:
        r = results["store"]
        parts.append("### 8. The job store\n\n" + bench_store.describe(r) + bench_store.render(r))
    if "webhooks" in results:
        r = results["webhooks"]
        parts.append(
            f"### 9. Callbacks\n\n{r['jobs_per_type']} inpaints (90–120 s) and "
            f"{r['jobs_per_type']} diffusions (30–90 s) per row, 1 s pending, time scale "
            f"{r['time_scale']:g}; each callback posted {r['callback_delay']:g} s after its "
            "job's end, signed, and lost with the row's probability; lags in unscaled "
            "seconds, `lag − delay` over the jobs whose callback was delivered.\n\n"
            + bench_webhooks.render(r)
        )
    if "workers" in results:
        r = results["workers"]
        parts.append(
            f"### 10. Several workers on one account\n\n{r['workers']} worker processes × "
            f"{r['per_worker']:,} inpaints (90–120 s) on an account limited to {r['limit']} "
            f"jobs, time scale {r['time_scale']:g}, each contender on a fresh emulator.\n\n"
            + bench_workers.render(r)
        )
    return "\n\n".join(parts) + "\n"


def update_docs(markdown: str) -> bool:
    """Replace the generated block of ``docs/benchmarks.md``; ``False`` if it has none."""
    if not DOCS.exists():
        return False
    text = DOCS.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n\n{markdown}\n{END}{tail}")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--only", nargs="*", help="run only these (by name)")
    parser.add_argument("--update-docs", action="store_true", help="rewrite docs tables")
    args = parser.parse_args()
    # A quick run is a smoke test: its numbers stay out of the tree.
    where = Path(tempfile.gettempdir()) / "legnext-bench-quick" if args.quick else RESULTS_DIR
    where.mkdir(parents=True, exist_ok=True)
    # Fixed now, right after the package was installed: the tree may move on during the run.
    os.environ[PACKAGE_ENV] = package_label()
    log(f"measuring legnext_async at {os.environ[PACKAGE_ENV]}")
    failed: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    for name, script, full, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        out = where / f"{name}.json"
        out.unlink(missing_ok=True)  # never table a stale result
        command = [sys.executable, str(HERE / script), "--json", str(out)]
        command += quick if args.quick else full
        log(f"== {name}: {' '.join(command[1:])}")
        started = time.perf_counter()
        done = subprocess.run(command, check=False, cwd=HERE.parent)
        log(f"== {name}: exit {done.returncode} after {time.perf_counter() - started:.0f} s")
        if done.returncode != 0:
            failed.append(name)
        if out.exists():
            results[name] = json.loads(out.read_text())
    markdown = report(results)
    latest = where / "latest.md"
    latest.write_text(markdown)
    log(f"tables written to {latest}")
    if args.update_docs and not args.quick:
        if update_docs(markdown):
            log(f"tables in {DOCS} updated")
        else:
            log(f"{DOCS} has no generated block to update")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
