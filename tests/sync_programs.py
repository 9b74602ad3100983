"""Programs that use the blocking client, ``legnext_async.sync.Client``, as users do.

``test_sync_client.py`` runs each in a subprocess with ``-W error``, where any warning or
leak (an unclosed session or socket, a coroutine never awaited, a thread left running)
shows on stderr or in the findings. Usage: ``python -W error -m tests.sync_programs
PROGRAM TIME_SCALE``; the client takes its base URL and key from the environment. Each
program prints its findings as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING

from legnext_async import MemoryJobStore, PollPolicy
from legnext_async.sync import Client

if TYPE_CHECKING:
    from collections.abc import Callable


def threads() -> list[str]:
    """The names of the threads alive now."""
    return sorted(thread.name for thread in threading.enumerate())


def script(poll: PollPolicy) -> object:
    """A plain script: a job, a follow-up of its result, then the client closed."""
    with Client(poll=poll) as client:
        result = client.diffusion("a lighthouse").wait()
        upscaled = result.upscale(0).wait()
        jobs = [result.job_id, upscaled.job_id, len(upscaled.image_urls)]
    return {"jobs": jobs, "threads": threads()}


def in_running_loop(poll: PollPolicy) -> object:
    """Blocking calls made from a coroutine, as a notebook cell makes them."""

    async def cell() -> list[str]:
        client = Client(poll=poll)
        try:
            result = client.diffusion("a lighthouse").wait()
            return [result.job_id, client.get_task(result.job_id).status.value]
        finally:
            client.close()

    return {"jobs": asyncio.run(cell()), "threads": threads()}


def from_threads(poll: PollPolicy) -> object:
    """Four threads share one client, each running a job to its end."""
    found: dict[int, str] = {}
    with Client(poll=poll) as client:

        def run(n: int) -> None:
            found[n] = client.diffusion(f"take {n}").wait().job_id

        workers = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return {"jobs": sorted(found.values()), "threads": threads()}


def never_closed(poll: PollPolicy) -> object:
    """A job run by a client that is never closed: closed at exit, with no warning."""
    client = Client(poll=poll)
    return {"jobs": [client.diffusion("a lighthouse").wait().job_id]}


def interrupted(poll: PollPolicy) -> object:
    """Ctrl-C while a submission's POST is on its way: the submission is cancelled in the
    client's loop (its key recorded as an unknown outcome) before the call raises."""
    with Client(poll=poll, store=MemoryJobStore()) as client:
        print("submitting", flush=True)
        try:
            client.diffusion("a lighthouse", key="interrupted")
        except KeyboardInterrupt:
            pass
        else:
            return {"interrupted": False}
        states = {record.key: record.state.value for record in client.records()}
    return {"interrupted": True, "states": states, "threads": threads()}


PROGRAMS: dict[str, Callable[[PollPolicy], object]] = {
    program.__name__: program
    for program in (script, in_running_loop, from_threads, never_closed, interrupted)
}


def main() -> None:
    # A shell that starts a command in the background makes it ignore SIGINT, and Python
    # then never raises KeyboardInterrupt: the Ctrl-C program needs the usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name, scale = sys.argv[1], float(sys.argv[2])
    print(json.dumps(PROGRAMS[name](PollPolicy(time_scale=scale))), flush=True)


if __name__ == "__main__":
    main()
