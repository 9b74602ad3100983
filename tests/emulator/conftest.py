"""Fixtures: emulators on 127.0.0.1 port 0, a client session and a callback receiver."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from types import EllipsisType
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from legnext_async.emulator import Emulator

KEY = "0123456789abcdef" * 4
OTHER_KEY = "fedcba9876543210" * 4
#: Fast enough that a 120 s job takes 0.12 s, slow enough that nothing races.
FAST = 0.001


@attrs.define
class Api:
    """A thin JSON client over one emulator, for tests."""

    session: aiohttp.ClientSession
    emulator: Emulator
    key: str | None = KEY

    def _headers(self, key: str | None) -> dict[str, str]:
        return {} if key is None else {"x-api-key": key}

    async def post(
        self,
        route: str,
        body: object,
        *,
        key: str | EllipsisType | None = ...,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """POST ``body`` (or ``raw`` bytes) to ``/api/v1/<route>``; return (status, JSON)."""
        headers = self._headers(self.key if isinstance(key, EllipsisType) else key)
        url = f"{self.emulator.base_url}/v1/{route}"
        if raw is not None:
            response = await self.session.post(url, data=raw, headers=headers)
        else:
            response = await self.session.post(url, json=body, headers=headers)
        async with response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str, *, key: str | EllipsisType | None = ...) -> tuple[int, Any]:
        """GET ``/api<path>``; return (status, JSON)."""
        headers = self._headers(self.key if isinstance(key, EllipsisType) else key)
        async with self.session.get(f"{self.emulator.base_url}{path}", headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def job(self, job_id: str) -> dict[str, Any]:
        """GET a job that must exist."""
        status, body = await self.get(f"/v1/job/{job_id}")
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def create(self, route: str, body: object) -> dict[str, Any]:
        """POST a create that must succeed."""
        status, task = await self.post(route, body)
        assert status == 200, task
        return task  # type: ignore[no-any-return]

    async def finished(self, route: str, body: object) -> dict[str, Any]:
        """Create a job, let it finish on the virtual clock, and return its final state."""
        task = await self.create(route, body)
        self.emulator.advance(3600)
        return await self.job(task["job_id"])


EmulatorFactory = Callable[..., Awaitable[Emulator]]


@pytest.fixture
async def make_emulator() -> AsyncIterator[EmulatorFactory]:
    """Start emulators with the given options (fast clock, seeded, ``KEY`` only)."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(**options: Any) -> Emulator:
            options.setdefault("api_key", KEY)
            options.setdefault("time_scale", FAST)
            options.setdefault("seed", 1)
            return await stack.enter_async_context(Emulator(**options))

        yield factory


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session, closed after the test."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def emulator(make_emulator: EmulatorFactory) -> Emulator:
    """An emulator with default options, a fast clock and ``KEY`` as its only key."""
    return await make_emulator()


@pytest.fixture
def api(session: aiohttp.ClientSession, emulator: Emulator) -> Api:
    """A JSON client for ``emulator`` authenticated with ``KEY``."""
    return Api(session, emulator)


@attrs.define
class Receiver:
    """A callback endpoint on 127.0.0.1 that records what it is sent."""

    url: str
    bodies: list[Any] = attrs.field(factory=list)
    status: int = 200
    #: The headers and raw body of each delivery, in order.
    headers: list[dict[str, str]] = attrs.field(factory=list)
    raw: list[bytes] = attrs.field(factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running callback receiver."""
    app = web.Application()
    runner = web.AppRunner(app, access_log=None)
    box: list[Receiver] = []

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        box[0].raw.append(raw)
        box[0].headers.append(dict(request.headers))
        box[0].bodies.append(json.loads(raw))
        return web.json_response({"success": True}, status=box[0].status)

    app.router.add_post("/hook", hook)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    box.append(Receiver(f"http://127.0.0.1:{port}/hook"))
    try:
        yield box[0]
    finally:
        await runner.cleanup()
