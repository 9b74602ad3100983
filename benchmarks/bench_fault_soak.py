"""Benchmark 6: a fault soak. 500 inpaints against a 6-job account, under random faults.

Three scenarios side by side, each against a fresh emulator of the same configuration (a
separate process, 6 unfinished jobs per account and a 429 beyond, inpaints of 90–120 s,
time-scaled so a scenario takes under a minute when nothing goes wrong):

1. *no faults*: the baseline;
2. *10 % rate-limit 429s*: a random tenth of the POSTs and of the status reads answer 429
   "Too many requests: rate limit exceeded" (``Fault.rate_limited``), a request-rate
   limit rather than the account's job limit;
3. *every fault*: those 429s, plus, on POSTs and status reads alike and a few per cent
   each, gateway 502 and 503 answers, dropped connections, answers cut short (after the
   request was processed), HTML instead of JSON, slow answers, and answers lost after the
   request was processed (``Fault.answer_lost``: the job exists, the client cannot know).

Faults are drawn from the emulator's seeded generator, each in turn: a request the first
fault passes over is offered to the next (so the later ones fire a little less often than
their nominal share); the table counts what actually fired.

In each scenario the ``n`` (500) submissions go through one ``LegnextClient`` with the
default batch settings (no ``max_active_jobs``: the client must learn the account's limit)
and one ``asyncio.gather``. Its poll policy runs on the emulator's time scale, and so do its
retry waits (``RetryPolicy`` ``initial_wait`` and ``max_wait`` scaled by the same factor), so a
backoff costs the share of a job's run time it would against the service.

Reported per scenario: how every submission ended (completed, failed, outcome unknown,
other errors, or not finished within the time bound); the jobs the emulator created
against the POSTs answered 2xx with their job; *duplicates* (jobs created for a
submission that already had one; must be 0) and *re-sends* (POSTs the emulator saw for a
submission after an answer other than 429; must be 0, so outcome-unknown submissions are
never sent again); the makespan on the emulator's clock against the baseline's; requests
in all and status reads per job; 429s by kind; faults that fired; the limit the client
learned (``client._slots``: ``limit``, ``discoveries``, and ``probes`` where it exists);
the factor by which 429s on status reads stretched the poll gaps at the end (the client's
``Pace``, where it exists); and the peak of unfinished jobs at the emulator.

Invariants (the script exits 1 if one breaks): every submission ends within the bound and
with a result or a ``LegnextError``; no duplicates and no re-sends; every baseline job
completes. A scenario that does not finish within ``--timeout`` real seconds is stopped and
reported as not finished.

Run: ``python benchmarks/bench_fault_soak.py [--jobs 500] [--time-scale 0.003]
[--timeout 120] [--json PATH]`` (or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import sys
import time
from typing import Any

import attrs
from _common import (
    API_KEY,
    MASK_POINTS,
    RemoteEmulator,
    cpu_seconds,
    fmt,
    log,
    table,
    write_result,
)

from legnext_async import (
    LegnextClient,
    LegnextError,
    Mask,
    PollPolicy,
    Polygon,
    RetryPolicy,
    SubmissionOutcomeUnknownError,
    TaskFailedError,
)
from legnext_async.emulator import Fault

LIMIT = 6
DURATIONS = {"inpaint": (90.0, 120.0)}
PENDING_SECONDS = 1.0
SEED = 6
POSTS = "POST /api/v1/inpaint"
READS = "GET /api/v1/job/*"
RATE_LIMITED_SHARE = 0.10
#: Real seconds a slow answer is held (about 7 service seconds at the default scale).
SLOW_ANSWER = 0.02
#: Real seconds past a scenario's bound allowed for stopping it (cancel, close the client).
STOP_GRACE = 60.0

SCENARIOS: dict[str, str] = {
    "baseline": "no faults (baseline)",
    "rate_limited": "10 % rate-limit 429s",
    "all_faults": "every fault, at random",
}


def faults_for(scenario: str) -> list[Fault]:
    """The faults armed in ``scenario``, on POSTs and status reads alike, in order."""
    faults: list[Fault] = []
    if scenario == "baseline":
        return faults
    for route in (POSTS, READS):
        faults.append(Fault.rate_limited(route, probability=RATE_LIMITED_SHARE))
        if scenario == "all_faults":
            faults += [
                Fault.http_status(route, 502, probability=0.02, times=None),
                Fault.http_status(route, 503, probability=0.02, times=None),
                Fault.disconnect(route, probability=0.02, times=None),
                Fault.truncated(route, commit=True, probability=0.02, times=None),
                Fault.garbage(route, probability=0.02, times=None),
                Fault.latency(route, SLOW_ANSWER, probability=0.03, times=None),
                Fault.answer_lost(route, probability=0.02, times=None),
            ]
    return faults


def _emulator(time_scale: float) -> RemoteEmulator:
    return RemoteEmulator(
        time_scale=time_scale,
        seed=SEED,
        durations=DURATIONS,
        pending_seconds=PENDING_SECONDS,
        concurrency_limit=LIMIT,
        over_limit="reject",
    )


def _retry_policy(time_scale: float) -> RetryPolicy:
    """The default retry policy with its waits on the emulator's time scale."""
    default = RetryPolicy()
    return attrs.evolve(
        default,
        initial_wait=default.initial_wait * time_scale,
        max_wait=default.max_wait * time_scale,
    )


def _outcome(task: asyncio.Task[object] | None) -> str:
    """How one submission ended: a category, or ``other: <error type>``."""
    if task is None or not task.done() or task.cancelled():
        return "not finished"
    error = task.exception()
    if error is None:
        return "completed"
    if isinstance(error, TaskFailedError):
        return "failed"
    if isinstance(error, SubmissionOutcomeUnknownError):
        return "outcome unknown"
    if isinstance(error, LegnextError):
        return f"other: {type(error).__name__}"
    return f"unexpected: {type(error).__name__}: {error}"


async def _soak(
    emulator: RemoteEmulator, parents: list[str], n: int, bound: float
) -> dict[str, Any]:
    """Submit ``n`` inpaints through one gather; how each ended, and what the client learned."""
    scale = emulator.time_scale
    mask = Mask(areas=[Polygon(width=500, height=500, points=list(MASK_POINTS))])
    async with LegnextClient(
        api_key=API_KEY,
        base_url=emulator.base_url,
        poll=PollPolicy(time_scale=scale),
        retry=_retry_policy(scale),
    ) as client:

        async def one(i: int) -> object:
            handle = await client.inpaint(
                job_id=parents[i % len(parents)],
                image_no=i % 4,
                mask=mask,
                remix_prompt=f"soak {i}",
            )
            return await handle

        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        batch = asyncio.gather(*tasks, return_exceptions=True)
        started = time.perf_counter()
        done, _ = await asyncio.wait([batch], timeout=bound)
        wall = time.perf_counter() - started
        outcomes = [_outcome(task) for task in tasks]  # read at the bound, before stopping
        samples: dict[str, str] = {}
        for task, outcome in zip(tasks, outcomes, strict=True):
            if outcome.startswith(("other: ", "unexpected: ")):
                samples.setdefault(outcome, str(task.exception())[:300])
        if not done:
            batch.cancel()
            await asyncio.wait([batch])
            if not batch.cancelled():
                batch.exception()  # the CancelledError we caused, retrieved so none is logged
        slots = client._slots  # the learned limit, read for the report
        learned = {
            "limit": slots.limit,
            "discoveries": slots.discoveries,
            "probes": getattr(slots, "probes", None),
        }
        # How far 429s on status reads stretched every poll gap (1: not at all).
        pace = getattr(getattr(client, "_budget", None), "pace", None)
        learned["poll_pace"] = getattr(pace, "factor", None)
    return {
        "outcomes": outcomes,
        "error_samples": samples,
        "learned": learned,
        "wall_seconds": wall,
        "finished": bool(done),
    }


def _peak_unfinished(jobs: list[dict[str, Any]]) -> tuple[int, float]:
    """The most jobs unfinished at once at the emulator, and the mean over the makespan."""
    events: list[tuple[float, int]] = []
    for job in jobs:
        events.append((job["created_at"], 1))
        if job["ended_at"] is not None:
            events.append((job["ended_at"], -1))
    events.sort()  # at equal times an end (-1) sorts before a start
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    ended = [job for job in jobs if job["ended_at"] is not None]
    if not ended or len(ended) < len(jobs):
        return peak, math.nan
    span = max(job["ended_at"] for job in ended) - min(job["created_at"] for job in jobs)
    busy = sum(job["ended_at"] - job["created_at"] for job in ended)
    return peak, busy / span if span > 0 else math.nan


def _post_accounting(rows: list[list[Any]]) -> dict[str, int]:
    """Jobs, answers, duplicates and re-sends, from the emulator's log of the POSTs."""
    by_submission: dict[str, list[tuple[int | None, str | None, str | None]]] = (
        collections.defaultdict(list)
    )
    for method, _, status, fault, job_id, prompt in rows:
        if method == "POST":
            by_submission[str(prompt)].append((status, fault, job_id))
    created = answered = duplicates = resends = 0
    for posts in by_submission.values():
        jobs = [job_id for _, _, job_id in posts if job_id is not None]
        created += len(jobs)
        duplicates += max(0, len(jobs) - 1)
        answered += sum(
            1
            for status, fault, job_id in posts
            if job_id is not None
            and status is not None
            and 200 <= status < 300
            and fault != "garbage"
        )
        # Only a 429 proves a POST made no job; anything after another answer is a re-send.
        first_other = next((k for k, (status, _, _) in enumerate(posts) if status != 429), None)
        if first_other is not None:
            resends += len(posts) - first_other - 1
    return {
        "posts": sum(len(posts) for posts in by_submission.values()),
        "jobs_created": created,
        "posts_answered_2xx_with_job": answered,
        "answers_lost_after_creating": created - answered,
        "duplicates": duplicates,
        "resends_after_a_non_429": resends,
    }


def run_scenario(scenario: str, jobs: int, time_scale: float, bound: float) -> dict[str, Any]:
    """One scenario against its own emulator; everything the table reports."""
    with _emulator(time_scale) as emulator:
        parents = emulator.seed_jobs(4, "diffusion")
        emulator.add_faults(faults_for(scenario))
        mark = emulator.request_mark()
        log(f"bench 6: {SCENARIOS[scenario]}: {jobs} inpaints (bound {bound:g} s)")
        cpu0 = cpu_seconds()
        soak = asyncio.run(_hard_stop(_soak(emulator, parents, jobs, bound), bound + STOP_GRACE))
        cpu = cpu_seconds() - cpu0
        rows = emulator.records_since(mark, "remixPrompt")
        created_jobs = [row for row in emulator.jobs() if not row["seeded"]]
    outcomes = collections.Counter(soak["outcomes"])
    statuses = collections.Counter(f"{method} {status}" for method, _, status, *_ in rows)
    fired = collections.Counter(fault for _, _, _, fault, *_ in rows if fault is not None)
    rate_limited = sum(1 for _, _, status, fault, *_ in rows if status == 429 and fault)
    job_limit = sum(1 for _, _, status, fault, *_ in rows if status == 429 and not fault)
    reads = sum(1 for method, *_ in rows if method == "GET")
    ended = [row["ended_at"] for row in created_jobs if row["ended_at"] is not None]
    span = max(ended) - min(row["created_at"] for row in created_jobs) if ended else math.nan
    makespan = span if len(ended) == len(created_jobs) else math.nan
    peak, mean_running = _peak_unfinished(created_jobs)
    completed = outcomes.get("completed", 0)
    return {
        "scenario": scenario,
        "label": SCENARIOS[scenario],
        "faults": [attrs.asdict(fault) for fault in faults_for(scenario)],
        "finished": soak["finished"],
        "outcomes": dict(outcomes),
        "completed": completed,
        "failed": outcomes.get("failed", 0),
        "outcome_unknown": outcomes.get("outcome unknown", 0),
        "other_errors": sum(v for k, v in outcomes.items() if k.startswith("other: ")),
        "unexpected_errors": sum(v for k, v in outcomes.items() if k.startswith("unexpected: ")),
        "not_finished": outcomes.get("not finished", 0),
        "error_samples": soak["error_samples"],
        **_post_accounting(rows),
        "requests_total": len(rows),
        "requests_by_status": dict(statuses),
        "status_reads": reads,
        "status_reads_per_completed_job": reads / completed if completed else math.nan,
        "http_429_rate_limit_faults": rate_limited,
        "http_429_job_limit": job_limit,
        "faults_fired": dict(fired),
        "learned": soak["learned"],
        "peak_unfinished_at_emulator": peak,
        "mean_unfinished_at_emulator": mean_running,
        "makespan_virtual_seconds": makespan,
        "jobs_ended_per_virtual_hour": len(ended) / span * 3600 if span > 0 else math.nan,
        "wall_seconds": soak["wall_seconds"],
        "client_cpu_seconds": cpu,
    }


async def _hard_stop(soak: Any, seconds: float) -> dict[str, Any]:
    """``soak``, or a clear error if even stopping it overran its grace period."""
    async with asyncio.timeout(seconds):
        result: dict[str, Any] = await soak
        return result


def run(jobs: int = 500, time_scale: float = 0.003, bound: float = 120.0) -> dict[str, Any]:
    """Every scenario in turn, each against its own emulator."""
    rows = [run_scenario(name, jobs, time_scale, bound) for name in SCENARIOS]
    baseline = rows[0]
    for row in rows:
        row["makespan_over_baseline"] = (
            row["makespan_virtual_seconds"] / baseline["makespan_virtual_seconds"]
        )
        row["throughput_over_baseline"] = (
            row["jobs_ended_per_virtual_hour"] / baseline["jobs_ended_per_virtual_hour"]
        )
    invariants = {
        f"{row['scenario']}: {name}": ok
        for row in rows
        for name, ok in (
            ("every submission ended", row["not_finished"] == 0 and row["finished"]),
            ("no bare exceptions", row["unexpected_errors"] == 0),
            ("no duplicate job", row["duplicates"] == 0),
            ("no re-send after a non-429 answer", row["resends_after_a_non_429"] == 0),
        )
    }
    invariants["baseline: every job completed"] = rows[0]["completed"] == jobs
    return {
        "jobs": jobs,
        "limit": LIMIT,
        "time_scale": time_scale,
        "bound_seconds": bound,
        "durations": DURATIONS,
        "seed": SEED,
        "scenarios": rows,
        "invariants": invariants,
    }


def _learned(learned: dict[str, Any]) -> str:
    probes = learned.get("probes")
    found = learned["discoveries"]
    text = f"{learned['limit']} ({found} {'discovery' if found == 1 else 'discoveries'}"
    return text + (f", {probes} probes)" if probes is not None else ")")


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table, one column per scenario."""
    rows = result["scenarios"]

    def line(label: str, cell: Any) -> list[str]:
        return [label, *(str(cell(row)) for row in rows)]

    def fired(row: dict[str, Any]) -> str:
        kinds = dict(row["faults_fired"])
        # Status faults are the rate-limit 429s and the gateway 5xx answers.
        rate_limited = row["http_429_rate_limit_faults"]
        gateway = kinds.pop("status", 0) - rate_limited
        kinds.update({"429 rate limit": rate_limited, "5xx": gateway})
        return (
            ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()) if count) or "none"
        )

    body = [
        line("finished within the bound", lambda r: "yes" if r["finished"] else "**no**"),
        line(
            "submissions: completed / failed / outcome unknown / other errors / not finished",
            lambda r: (
                f"{r['completed']} / {r['failed']} / {r['outcome_unknown']} / "
                f"{r['other_errors'] + r['unexpected_errors']} / {r['not_finished']}"
            ),
        ),
        line(
            "jobs created / POSTs answered 2xx with their job",
            lambda r: f"{r['jobs_created']} / {r['posts_answered_2xx_with_job']}",
        ),
        line(
            "duplicates / re-sends after a non-429 answer",
            lambda r: f"{r['duplicates']} / {r['resends_after_a_non_429']}",
        ),
        line(
            "makespan, virtual s (× baseline)",
            lambda r: (
                f"{fmt(r['makespan_virtual_seconds'], 0)} ({fmt(r['makespan_over_baseline'], 2)}×)"
                if r["finished"]
                else "not finished"
            ),
        ),
        line(
            "jobs ended per virtual hour (× baseline)",
            lambda r: (
                f"{fmt(r['jobs_ended_per_virtual_hour'], 1)} "
                f"({fmt(r['throughput_over_baseline'], 2)}×)"
            ),
        ),
        line("wall time, s", lambda r: fmt(r["wall_seconds"], 1)),
        line(
            "requests in all (POSTs / status reads)",
            lambda r: f"{r['requests_total']:,} ({r['posts']:,} / {r['status_reads']:,})",
        ),
        line(
            "status reads per completed job",
            lambda r: fmt(r["status_reads_per_completed_job"], 1),
        ),
        line(
            "429s: rate-limit faults / job limit",
            lambda r: f"{r['http_429_rate_limit_faults']} / {r['http_429_job_limit']}",
        ),
        line("faults fired", fired),
        line("learned limit", lambda r: _learned(r["learned"])),
        line(
            "poll gaps stretched by 429s on reads, at the end",
            lambda r: (
                "n/a" if r["learned"]["poll_pace"] is None else f"{r['learned']['poll_pace']:.1f}×"
            ),
        ),
        line(
            "unfinished jobs at the emulator: peak / mean",
            lambda r: (
                f"{r['peak_unfinished_at_emulator']} / {fmt(r['mean_unfinished_at_emulator'], 2)}"
            ),
        ),
        line("client CPU, s", lambda r: fmt(r["client_cpu_seconds"], 1)),
    ]
    other = sorted(
        {k for row in rows for k in row["outcomes"] if k.startswith(("other: ", "unexpected: "))}
    )
    for kind in other:
        body.append(line(f"  {kind}", lambda r, kind=kind: r["outcomes"].get(kind, 0)))
    broken = [name for name, ok in result["invariants"].items() if not ok]
    verdict = "ok" if not broken else "BROKEN: " + "; ".join(broken)
    body.append(["invariants", verdict, *([""] * (len(rows) - 1))])
    return table(["measure", *(row["label"] for row in rows)], body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--time-scale", type=float, default=0.003, help="real s per virtual s")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="real seconds a scenario may take"
    )
    parser.add_argument("--json", help="where to write the result (default results/)")
    args = parser.parse_args()
    result = run(args.jobs, args.time_scale, args.timeout)
    path = write_result("fault_soak", result, args.json)
    print(render(result))
    log(f"written to {path}")
    if not all(result["invariants"].values()):
        broken = [name for name, ok in result["invariants"].items() if not ok]
        log(f"INVARIANT BROKEN: {broken}")
        sys.exit(1)


if __name__ == "__main__":
    main()
