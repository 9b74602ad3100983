"""Shared fixtures: a Legnext emulator on 127.0.0.1 and a client pointed at it, and a
private Redis server (see :mod:`tests.redis_server`).

Jobs run on the emulator's virtual clock :data:`SCALE` times real time (an inpaint of
90–120 s takes about half a second); the client's poll schedule runs on the same scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from legnext_async import LegnextClient, Mask, PollPolicy, Polygon, RetryPolicy
from legnext_async.emulator import Emulator

from .redis_server import RedisServer, RedisServerMissingError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

#: Real seconds per service second in tests.
SCALE = 0.005
#: The key tests use; assertions check it never shows up in text.
API_KEY = "0f3c9a7be1d24c5fa6b8e2d1c4f7a9b30f3c9a7be1d24c5fa6b8e2d1c4f7a9b3"
#: Fast retries for tests: same logic, shorter waits.
FAST_RETRY = RetryPolicy(attempts=5, timeout=5.0, initial_wait=0.01, max_wait=0.05)
#: Any valid inpaint mask: one 500x500 area.
MASK = Mask(areas=[Polygon(width=500, height=500, points=[10, 10, 10, 100, 100, 100, 100, 10])])


# Property tests: the same examples on every run (a failure in CI reproduces locally), no
# per-example deadline or generation-speed check (the machine may be busy), and no example
# database. HYPOTHESIS_PROFILE=soak searches longer and at random. Hypothesis still caches
# the constants it finds in the source under .hypothesis/, which git ignores.
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=5_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def fast_poll(**overrides: Any) -> PollPolicy:
    """A poll policy on the test time scale."""
    return PollPolicy(time_scale=SCALE, **overrides)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A running emulator that accepts only :data:`API_KEY`."""
    async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=1234) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[LegnextClient]:
    """A client for :func:`emulator`, with test-speed polling and retries."""
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=FAST_RETRY
    ) as legnext:
        yield legnext


#: The faster clock of the endpoint and follow-up tables (an inpaint takes ~0.1 s).
FAST_SCALE = 0.001


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A fast emulator whose key may also use the whitelisted endpoints (edit, upload-paint)."""
    async with Emulator(api_key=API_KEY, time_scale=FAST_SCALE, seed=7, whitelisted=True) as server:
        yield server


@pytest.fixture
async def legnext(emu: Emulator) -> AsyncIterator[LegnextClient]:
    """A client for :func:`emu`, polling on the same clock."""
    async with LegnextClient(
        api_key=API_KEY, base_url=emu.base_url, poll=PollPolicy(time_scale=FAST_SCALE)
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on 127.0.0.1 (a free port) while the block runs; yields the client's
    ``base_url`` for it (``http://127.0.0.1:PORT/api``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def job_server(
    answer: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A small server on 127.0.0.1 answering ``GET /api/v1/job/{job_id}`` with ``answer``;
    yields the client's ``base_url`` for it."""
    app = web.Application()
    app.router.add_get("/api/v1/job/{job_id}", answer)
    async with serving(app) as base_url:
        yield base_url


def _redis_server() -> RedisServer:
    """A server to start, or a test failure that says how to install one."""
    try:
        return RedisServer()
    except RedisServerMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private ``redis-server`` for the whole run (127.0.0.1, a free port, no
    persistence); tests share it through :func:`redis_url` and never stop it."""
    with _redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's Redis server, emptied (FLUSHALL) for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A ``redis-server`` of this test alone, which it may stop, kill and start again
    (on the same port, with its data lost)."""
    with _redis_server() as server:
        yield server


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, patience: float = 45.0
) -> None:
    """Look at a real condition in another process (a Redis server, a worker) until it
    holds. There is nothing here to wait on but a look; ``patience`` turns a condition that
    never comes into a failure naming ``what``, not a hang, and is far more than needed."""
    deadline = time.monotonic() + patience
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)  # the pace of looking, not a synchronisation
