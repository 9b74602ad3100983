"""A loopback server that answers every request with a given function and records them all.

For tests of what the client does with a broken or hostile service: its answers are whatever
the test says, and ``requests`` shows what the client sent, path and query as they came.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from .conftest import API_KEY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


@attrs.frozen
class Seen:
    """One request as the server received it."""

    method: str
    #: The path and query exactly as sent (percent-escapes kept).
    target: str
    with_key: bool
    body: Any


@attrs.define
class Recorder:
    """Records each request, then answers it with ``respond``."""

    respond: Callable[[web.Request], Awaitable[web.StreamResponse]]
    requests: list[Seen] = attrs.field(factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record, then answer."""
        body = await request.json() if request.can_read_body else None
        with_key = request.headers.get("x-api-key") == API_KEY
        self.requests.append(Seen(request.method, request.raw_path, with_key, body))
        return await self.respond(request)

    def sent(self, method: str) -> list[Seen]:
        """The requests of one method."""
        return [seen for seen in self.requests if seen.method == method]


@contextlib.asynccontextmanager
async def recording(
    respond: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[Recorder]:
    """A :class:`Recorder` on 127.0.0.1, port 0, for any method and path; ``base_url`` is the
    client's base URL for it (``.../api``)."""
    recorder = Recorder(respond)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        recorder.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/api"
        yield recorder
    finally:
        await runner.cleanup()


def job(job_id: object, status: str = "completed", **fields: Any) -> dict[str, Any]:
    """A task object as the service sends it (an image job, by default completed)."""
    answer: dict[str, Any] = {
        "job_id": job_id,
        "model": "midjourney",
        "task_type": "diffusion",
        "status": status,
        "output": {
            "image_url": "https://cdn.example/grid.png",
            "image_urls": [f"https://cdn.example/{i}.png" for i in range(4)],
            "available_actions": {"upscale": [0, 1, 2, 3]},
        }
        if status == "completed"
        else None,
    }
    answer.update(fields)
    return answer
