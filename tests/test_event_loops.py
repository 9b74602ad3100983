"""One client, one event loop after another: each loop gets a fresh session, nothing leaks,
and what the client learned carries over."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import legnext_async
from legnext_async import LegnextClient, LegnextError
from legnext_async.emulator import Emulator

from .conftest import API_KEY, SCALE

ROOT = Path(legnext_async.__file__).resolve().parent.parent
#: Loopback, with nothing listening: nothing may be sent to it.
NOWHERE = "http://127.0.0.2:9/api"


async def run_program(name: str, emulator: Emulator) -> Any:
    """Run ``tests/loop_programs.py``'s ``name`` with ``-W error`` against ``emulator``; its
    findings, after checking that it exited 0 and printed nothing on stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "LEGNEXT_BASE_URL": emulator.base_url,
        "LEGNEXT_API_KEY": API_KEY,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "tests.loop_programs",
        name,
        str(SCALE),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert stderr.decode() == ""
    assert process.returncode == 0
    return json.loads(stdout)


def created_jobs(emulator: Emulator) -> list[str]:
    """The statuses of the jobs the program created."""
    return [info.status for info in emulator.jobs if not info.seeded]


async def test_two_asyncio_runs_share_a_client_without_a_leak(emulator: Emulator) -> None:
    """A never-closed client runs a job in each of two ``asyncio.run()`` calls, with no
    warning, unclosed session or closed-loop error."""
    first, second = await run_program("two_runs", emulator)
    assert first != second
    assert created_jobs(emulator) == ["completed", "completed"]


async def test_a_handle_made_in_one_loop_is_awaited_in_the_next(emulator: Emulator) -> None:
    """A job submitted under one ``asyncio.run()`` is waited for under another."""
    submitted, finished = await run_program("handle_across_runs", emulator)
    assert submitted == finished
    assert created_jobs(emulator) == ["completed"]


async def test_updates_cut_in_one_loop_leave_nothing_stale_for_the_next(
    emulator: Emulator,
) -> None:
    """A change awaited by ``updates()`` in a loop that ended is not announced into it later:
    the next loop's wait ends, and the job's slot is freed for the next submission."""
    assert await run_program("updates_cut_across_runs", emulator) == ["completed", "created"]


async def test_the_learned_job_limit_carries_over_to_the_next_loop() -> None:
    """After one 429 taught the account's limit, the next loop's burst waits for slots in
    the client instead of being refused again."""
    # Jobs last half a real second, so the first burst meets a full account however slowly
    # its submissions go out.
    async with Emulator(
        api_key=API_KEY, time_scale=SCALE, seed=3, durations={"diffusion": (100.0, 100.0)}
    ) as emulator:
        assert await run_program("limit_across_runs", emulator) == [7, 7]
        posts = [record.status for record in emulator.requests if record.method == "POST"]
        assert collections.Counter(posts) == {200: 14, 429: 1}
        assert created_jobs(emulator) == ["completed"] * 14


def test_a_loop_that_has_not_shut_down_keeps_the_client() -> None:
    """While the client's loop is alive (here stopped, not closed), another loop may not use
    it: a LegnextError says what to do, and nothing is sent."""
    client = LegnextClient(api_key=API_KEY, base_url=NOWHERE)
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(client.__aenter__())
        with pytest.raises(LegnextError, match="belongs to another event loop, which has not"):
            asyncio.run(client.balance())
        first.run_until_complete(client.aclose())
    finally:
        first.run_until_complete(first.shutdown_asyncgens())
        first.close()
    assert client.closed


def test_a_borrowed_session_of_another_loop_is_refused() -> None:
    """A session passed in belongs to its caller's loop: using the client in another loop
    raises a LegnextError naming ``session=``, before anything is sent."""

    async def borrow() -> tuple[aiohttp.ClientSession, LegnextClient]:
        session = aiohttp.ClientSession()
        return session, LegnextClient(api_key=API_KEY, base_url=NOWHERE, session=session)

    session, client = asyncio.run(borrow())
    try:
        with pytest.raises(LegnextError, match="session= belongs to another event loop"):
            asyncio.run(client.balance())
    finally:
        asyncio.run(session.close())  # it never opened a connection
    assert session.closed
