"""Benchmark 8: callbacks — status reads per job and detection lag, with and without webhooks.

Jobs with the service's typical run times (inpaint 90–120 s, diffusion 30–90 s, 1 s
pending first) run on an emulator in a separate process, time-scaled (``--time-scale
0.05``: 20× real time), that posts each finished job to its callback URL ``--delay``
virtual seconds after it ends (2 s by default), signed with a secret, losing each delivery
with the probability of the scenario: 0 %, 30 %, 100 %. The callbacks go to a
``WebhookReceiver`` served by this process on 127.0.0.1.

Contenders, each a fresh client waiting for one batch (``--jobs`` inpaints and as many
diffusions, submitted in random order over 20 s) in every scenario:

- ``polling alone``: ``LegnextClient`` without a receiver (the schedule of benchmark 3);
- ``callbacks, signed``: ``LegnextClient(webhook=WebhookReceiver(..., secret=...))``: a
  delivery's body is trusted, no read needed;
- ``callbacks, unsigned``: the receiver has no secret: each delivery is a hint confirmed
  by one status read.

Per job: the status reads the emulator served, and the *detection lag*: when ``await
handle`` returned, placed on the emulator's virtual clock, minus the job's true end. All
times are virtual (unscaled) seconds. ``lag − delay`` is the lag beyond the callback's own
delay, over the jobs whose callback was delivered.

Targets (the exit status is 1 if one is missed): at most 1.1 reads per job when every
callback arrives; a mean lag within 0.5 s of the callback's delay for delivered callbacks;
at 100 % loss, no more reads per job than polling alone.

Run: ``python benchmarks/bench_webhooks.py [--jobs 30] [--time-scale 0.05] [--delay 2]
[--json PATH]`` (or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from _common import (
    API_KEY,
    MASK_POINTS,
    RemoteEmulator,
    fmt,
    log,
    mean,
    percentile,
    table,
    write_result,
)
from aiohttp import web

from legnext_async import LegnextClient, Mask, PollPolicy, Polygon
from legnext_async.webhooks import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

DURATIONS = {"inpaint": (90.0, 120.0), "diffusion": (30.0, 90.0)}
PENDING_SECONDS = 1.0
#: Submissions are spread over this many virtual seconds, in random order.
STAGGER = 20.0
LOSSES = (0.0, 0.3, 1.0)
CONTENDERS = ("polling alone", "callbacks, signed", "callbacks, unsigned")
SECRET = "bench-webhook-secret"
#: Targets (see the module docstring).
MAX_READS_WITH_CALLBACKS = 1.1
MAX_EXTRA_LAG = 0.5


@contextlib.asynccontextmanager
async def hosted(receiver_options: dict[str, Any]) -> AsyncIterator[WebhookReceiver]:
    """A receiver on 127.0.0.1 (a port picked first, as its URL needs it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    receiver = WebhookReceiver(f"http://127.0.0.1:{port}/hooks", **receiver_options)
    app = web.Application()
    app.add_subapp("/hooks", receiver.app())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield receiver
    finally:
        await runner.cleanup()


async def _batch(
    emulator: RemoteEmulator,
    client: LegnextClient,
    parents: list[str],
    jobs_per_type: int,
    delay: float,
    rng: random.Random,
) -> dict[str, Any]:
    """Submit ``jobs_per_type`` of each task type, staggered; wait; measure each job."""
    scale = emulator.time_scale
    kinds = ["inpaint"] * jobs_per_type + ["diffusion"] * jobs_per_type
    rng.shuffle(kinds)
    offsets = sorted(rng.uniform(0, STAGGER) for _ in kinds)
    mark = emulator.request_mark()
    callbacks_mark = len(emulator.call("callback_log"))
    mask = Mask(areas=[Polygon(width=500, height=500, points=list(MASK_POINTS))])

    async def one(task_type: str, offset: float, parent: str) -> tuple[str, float]:
        await asyncio.sleep(offset * scale)
        if task_type == "inpaint":
            handle = await client.inpaint(
                job_id=parent, image_no=0, mask=mask, remix_prompt="a tree in the middle"
            )
        else:
            handle = await client.diffusion("a lighthouse at dusk --v 7")
        await handle
        return handle.job_id, time.monotonic()

    observations = await asyncio.gather(
        *(
            one(k, o, parents[i % len(parents)])
            for i, (k, o) in enumerate(zip(kinds, offsets, strict=True))
        )
    )
    requests = emulator.requests_since(mark)
    ends = {row["job_id"]: row for row in emulator.jobs()}
    delivered = {
        job_id
        for job_id, outcome in emulator.call("callback_log")[callbacks_mark:]
        if outcome == "delivered"
    }
    reads: list[float] = []
    lags: list[float] = []
    extra: list[float] = []
    for job_id, seen in observations:
        row = ends[job_id]
        if row["status"] != "completed":
            raise RuntimeError(f"job {job_id} ended {row['status']}")
        lag = emulator.virtual_at(seen) - row["ended_at"]
        reads.append(requests["gets_by_job"].get(job_id, 0))
        lags.append(lag)
        if job_id in delivered:
            extra.append(lag - delay)
    return {
        "jobs": len(reads),
        "reads_per_job": mean(reads),
        "reads_max": max(reads),
        "lag_mean": mean(lags),
        "lag_p95": percentile(lags, 95),
        "delivered": len(extra),
        "extra_lag_mean": mean(extra) if extra else None,
        "extra_lag_p95": percentile(extra, 95) if extra else None,
    }


async def _scenario(
    emulator: RemoteEmulator, loss: float, jobs_per_type: int, delay: float, seed: int
) -> list[dict[str, Any]]:
    scale = emulator.time_scale
    parents = emulator.seed_jobs(4, "diffusion")
    rng = random.Random(seed)
    policy = PollPolicy(time_scale=scale)
    rows = []

    def virtual_now() -> float:
        return emulator.virtual_at(time.monotonic())

    for contender in CONTENDERS:
        async with contextlib.AsyncExitStack() as stack:
            receiver = None
            if contender != "polling alone":
                secret = SECRET if contender == "callbacks, signed" else None
                receiver = await stack.enter_async_context(
                    hosted({"secret": secret, "clock": virtual_now})
                )
            client = await stack.enter_async_context(
                LegnextClient(
                    api_key=API_KEY, base_url=emulator.base_url, poll=policy, webhook=receiver
                )
            )
            measured = await _batch(emulator, client, parents, jobs_per_type, delay, rng)
        row = {"loss": loss, "contender": contender, **measured}
        rows.append(row)
        log(
            f"  loss {loss:4.0%} {contender:20s} {row['reads_per_job']:5.2f} reads/job, lag "
            f"mean {row['lag_mean']:6.2f} p95 {row['lag_p95']:6.2f} s"
        )
    return rows


def measure(jobs_per_type: int, time_scale: float, delay: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for loss in LOSSES:
        options = {
            "time_scale": time_scale,
            "seed": 5,
            "durations": DURATIONS,
            "pending_seconds": PENDING_SECONDS,
            "concurrency_limit": 100_000,
            "callback_secret": SECRET,
            "callback_loss": loss,
            "callback_delay": delay,
        }
        with RemoteEmulator(**options) as emulator:
            rows += asyncio.run(_scenario(emulator, loss, jobs_per_type, delay, seed=11))
    return rows


def check(result: dict[str, Any]) -> list[str]:
    """The targets missed, in words (none: an empty list)."""
    missed = []
    rows = result["rows"]
    alone = {r["loss"]: r for r in rows if r["contender"] == "polling alone"}
    for row in rows:
        name = f"{row['contender']} at {row['loss']:.0%} loss"
        if row["contender"] == "polling alone":
            continue
        if row["loss"] == 0.0 and row["reads_per_job"] > MAX_READS_WITH_CALLBACKS:
            missed.append(f"{name}: {row['reads_per_job']:.2f} reads/job")
        extra = row["extra_lag_mean"]
        if extra is not None and extra > MAX_EXTRA_LAG:
            missed.append(f"{name}: lag {extra:.2f} s past the callback's delay")
        if row["loss"] == 1.0 and row["reads_per_job"] > alone[1.0]["reads_per_job"]:
            missed.append(f"{name}: more reads than polling alone")
    return missed


def render(result: dict[str, Any]) -> str:
    """Every row as a Markdown table."""
    out = [
        [
            f"{row['loss']:.0%}",
            row["contender"],
            fmt(row["reads_per_job"], 2),
            fmt(row["lag_mean"], 2),
            fmt(row["lag_p95"], 2),
            f"{row['delivered']} / {row['jobs']}",
            fmt(row["extra_lag_mean"], 2),
            fmt(row["extra_lag_p95"], 2),
        ]
        for row in result["rows"]
    ]
    return table(
        [
            "callback loss",
            "contender",
            "reads/job",
            "lag mean (s)",
            "lag p95 (s)",
            "callbacks delivered",
            "lag − delay, mean (s)",
            "lag − delay, p95 (s)",
        ],
        out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="inpaints (and diffusions) per row")
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--delay", type=float, default=2.0, help="callback delay (virtual s)")
    parser.add_argument("--json", default=None, help="where to write the result")
    args = parser.parse_args()
    log(
        f"bench 8: {args.jobs} inpaints + {args.jobs} diffusions per row, callbacks "
        f"{args.delay:g} s after each end, time scale {args.time_scale:g}"
    )
    rows = measure(args.jobs, args.time_scale, args.delay)
    result = {
        "jobs_per_type": args.jobs,
        "time_scale": args.time_scale,
        "callback_delay": args.delay,
        "durations": DURATIONS,
        "rows": rows,
    }
    result["missed"] = check(result)
    path = write_result("webhooks", result, args.json)
    print(render(result))
    log(f"written to {path}")
    if result["missed"]:
        log("TARGETS MISSED: " + "; ".join(result["missed"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
