"""One worker process of a multi-worker app: a batch of inpaints on one account, then out.

Run as ``python -m tests.worker_driver BASE_URL PARENT --name w1 --count 12 [options]`` (or
by path) by the multi-worker tests and benchmark 10. Each line it writes to stdout is one
JSON document, flushed at once (the process may be killed right after):

- ``{"event": "ready", "worker": name, "url": ...}`` once the client exists (``url``: the
  webhook receiver's address when it serves one); then it waits for a line on stdin (any
  text: "go") before submitting, so that several workers start their batches together;
- ``{"event": "submitted", "key": key, "job_id": id}`` as each submission's job exists;
- ``{"event": "done", "key": key, "job_id": id, "outcome": "completed" | error class}`` as
  each handle ends;
- ``{"event": "batch", ...}`` when every handle has ended: the worker's counters;
- with ``--linger``, it then waits for another stdin line (or its end) before closing the
  client, seeing through the jobs of lost workers it adopts meanwhile;
- ``{"event": "end", ...}`` after the client closed.

Each submission's remix prompt is its key (``{prefix}-{i}``), so the emulator's request log
tells which key made which job. The harness side (:func:`start_worker`, :class:`Worker`)
is here too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from legnext_async import (
    LegnextClient,
    LegnextError,
    Mask,
    PollPolicy,
    Polygon,
    RetryPolicy,
)
from legnext_async.webhooks import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from legnext_async import JobStore
    from legnext_async._coordination import Coordinator

API_KEY = "0f3c9a7be1d24c5fa6b8e2d1c4f7a9b30f3c9a7be1d24c5fa6b8e2d1c4f7a9b3"
MASK = Mask(areas=[Polygon(width=500, height=500, points=[10, 10, 10, 490, 490, 490, 490, 10])])
#: Where a serving worker mounts its receiver.
HOOKS = "/hooks"


def say(**event: Any) -> None:
    """One line of output, flushed at once."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def stdin_line() -> str:
    """The next line of stdin ("" at its end), read without blocking the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


@contextlib.asynccontextmanager
async def receiver_of(args: argparse.Namespace) -> AsyncIterator[WebhookReceiver | None]:
    """The worker's webhook receiver (served on a port of its own with ``--serve``)."""
    if not args.serve and not args.webhook_url:
        yield None
        return
    sock: socket.socket | None = None
    url = args.webhook_url
    if args.serve:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = url or f"http://127.0.0.1:{sock.getsockname()[1]}{HOOKS}"
    receiver = WebhookReceiver(
        url, secret=args.secret, allow_insecure_http=True, clock=clock_of(args)
    )
    if sock is None:
        yield receiver
        return
    app = web.Application()
    app.add_subapp(HOOKS, receiver.app())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield receiver
    finally:
        await runner.cleanup()


def coordinator_of(args: argparse.Namespace) -> Coordinator | None:
    if not args.redis:
        return None
    from legnext_async.redis import RedisCoordinator

    return RedisCoordinator(args.redis, namespace=args.namespace, lease=args.lease)


def store_of(args: argparse.Namespace) -> JobStore | str | None:
    if args.store == "none":
        return None
    if args.store == "sqlite":
        return str(args.store_url)
    from legnext_async.redis import RedisJobStore

    return RedisJobStore(args.store_url, namespace=args.namespace)


def clock_of(args: argparse.Namespace) -> Callable[[], float] | None:
    """The emulator's virtual clock, from one reading of it (``--clock V,T``: it read V at
    Unix time T): the receiver checks signed timestamps against it."""
    if not args.clock:
        return None
    virtual, real = (float(part) for part in args.clock.split(","))
    scale = args.scale
    return lambda: virtual + (time.time() - real) / scale


async def main(args: argparse.Namespace) -> int:
    async with (
        receiver_of(args) as receiver,
        LegnextClient(
            api_key=API_KEY,
            base_url=args.base_url,
            poll=PollPolicy(time_scale=args.scale),
            retry=RetryPolicy(attempts=8, timeout=30.0, initial_wait=0.01, max_wait=0.1),
            max_active_jobs=args.max_active_jobs,
            store=store_of(args),
            webhook=receiver,
            coordinator=coordinator_of(args),
        ) as client,
    ):
        say(event="ready", worker=args.name, url=receiver.public_url if receiver else None)
        await stdin_line()
        keyed = args.store != "none"
        started = time.monotonic()

        async def one(i: int) -> str:
            key = f"{args.prefix}-{i}"
            try:
                handle = await client.inpaint(
                    args.parent,
                    i % 4,
                    mask=MASK,
                    remix_prompt=key,
                    key=key if keyed else None,
                )
            except LegnextError as exc:
                say(event="done", key=key, job_id=None, outcome=type(exc).__name__)
                return type(exc).__name__
            say(event="submitted", key=key, job_id=handle.job_id)
            try:
                await handle
            except LegnextError as exc:
                outcome = type(exc).__name__
            else:
                outcome = "completed"
            say(event="done", key=key, job_id=handle.job_id, outcome=outcome)
            return outcome

        outcomes = await asyncio.gather(*(one(i) for i in range(args.count)))
        slots = client._slots  # the counters, read for the report
        say(
            event="batch",
            worker=args.name,
            seconds=time.monotonic() - started,
            completed=outcomes.count("completed"),
            discoveries=slots.discoveries,
            limit=slots.limit,
        )
        if args.linger:
            await stdin_line()
            while client._adopted:
                await asyncio.wait(list(client._adopted))
    say(event="end", worker=args.name)
    return 0 if all(outcome == "completed" for outcome in outcomes) else 1


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("parent", help="a finished grid to inpaint")
    parser.add_argument("--name", default="worker")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--prefix", help="key prefix (default: the name)")
    parser.add_argument("--scale", type=float, default=0.0025, help="the poll time scale")
    parser.add_argument("--redis", help="a RedisCoordinator on this URL (none: no coordinator)")
    parser.add_argument("--namespace", default="legnext")
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--max-active-jobs", type=int)
    parser.add_argument("--store", choices=["none", "sqlite", "redis"], default="none")
    parser.add_argument("--store-url", help="the SQLite file, or the Redis URL")
    parser.add_argument("--serve", action="store_true", help="serve a webhook receiver")
    parser.add_argument("--webhook-url", help="the receiver's public URL")
    parser.add_argument("--secret", help="the receiver's webhook secret")
    parser.add_argument("--clock", help="V,T: the emulator's clock read V at Unix time T")
    parser.add_argument("--linger", action="store_true", help="after the batch, wait for stdin")
    args = parser.parse_args(argv)
    args.prefix = args.prefix or args.name
    return args


# --- the harness side --------------------------------------------------------------------


def driver_env() -> dict[str, str]:
    """The environment for a worker: this one, with this tree's package importable."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class Worker:
    """A running worker process and the events it wrote so far."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.events: list[dict[str, Any]] = []

    async def next_event(self) -> dict[str, Any] | None:
        """Its next event (``None``: its output ended)."""
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            return None
        event: dict[str, Any] = json.loads(line)
        self.events.append(event)
        return event

    async def until(self, event: str, count: int = 1) -> dict[str, Any]:
        """Read events until the ``count``-th ``event`` (an error if the output ends first)."""
        seen = sum(1 for e in self.events if e["event"] == event)
        while seen < count:
            got = await self.next_event()
            if got is None:
                raise AssertionError(f"{self.name} ended before {count} {event!r}: {self.events}")
            seen += got["event"] == event
        return [e for e in self.events if e["event"] == event][count - 1]

    def tell(self, line: str = "go") -> None:
        """A line on its stdin (it waits for one to start, and with --linger to end)."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    async def finish(self) -> int:
        """Read the rest of its output and wait for it to exit; its exit status."""
        while await self.next_event() is not None:
            pass
        return await self.process.wait()

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


async def start_worker(base_url: str, parent: str, name: str, *options: str) -> Worker:
    """Start a worker and wait for it to be ready (it then waits for :meth:`Worker.tell`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        base_url,
        parent,
        "--name",
        name,
        *options,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=driver_env(),
    )
    worker = Worker(name, process)
    try:
        await worker.until("ready")
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    return worker


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
