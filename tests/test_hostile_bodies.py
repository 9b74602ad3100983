"""A hostile or broken server: bodies nested too deep.

Each ends as a typed result or a :class:`LegnextError`, at a bounded cost.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from legnext_async import (
    APIStatusError,
    InvalidRequestError,
    LegnextClient,
    MalformedResponseError,
    RawJSON,
    RetryPolicy,
    ServerError,
    SubmissionOutcomeUnknownError,
    TaskTimeoutError,
)

from .conftest import API_KEY, FAST_RETRY, fast_poll

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

JOB_ID = "5dd94ec3-7282-4f04-9445-59e850ef1822"
NO_RETRY = RetryPolicy(attempts=1)


def task_body(status: str = "completed", **fields: Any) -> dict[str, Any]:
    """A task object as the service sends it, with ``fields`` added or replaced."""
    body: dict[str, Any] = {
        "job_id": JOB_ID,
        "model": "midjourney",
        "task_type": "diffusion",
        "status": status,
        "output": {"image_url": "https://cdn.legnext.ai/temp/1.png"},
        "meta": {"created_at": "2026-01-04T05:54:17Z"},
        "error": {"code": 0, "message": "", "raw_message": ""},
    }
    body.update(fields)
    return body


def answer(body: bytes, status: int = 200) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An answer of ``body`` with ``status``, to every request."""

    async def respond(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    return respond


@attrs.define
class Hostile:
    """A loopback server answering every request with ``respond``; records what it was asked
    and from which client port."""

    respond: Callable[[web.Request], Awaitable[web.StreamResponse]]
    seen: list[str] = attrs.field(factory=list)
    ports: list[int] = attrs.field(factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record, then answer."""
        self.seen.append(f"{request.method} {request.path}")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.ports.append(peer[1] if peer else 0)
        return await self.respond(request)


@contextlib.asynccontextmanager
async def hostile(
    respond: Callable[[web.Request], Awaitable[web.StreamResponse]],
    *,
    retry: RetryPolicy = NO_RETRY,
    api_key: str = API_KEY,
    **options: Any,
) -> AsyncIterator[tuple[Hostile, LegnextClient]]:
    """A :class:`Hostile` server on 127.0.0.1 and a client for it."""
    server = Hostile(respond)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    async with (
        TestServer(app) as test_server,
        LegnextClient(
            api_key=api_key,
            base_url=str(test_server.make_url("/api")),
            retry=retry,
            poll=fast_poll(),
            **options,
        ) as client,
    ):
        yield server, client


# --- answers nested too deep -----------------------------------------------------------------

DEEP = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="arrays"),
    pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="objects"),
]


def nested_logs(depth: int) -> bytes:
    """A task whose JSON nests ``depth`` levels in all (the task object is level one)."""
    logs: object = 1
    for _ in range(depth - 1):
        logs = [logs]
    return json.dumps(task_body(logs=logs)).encode()


@pytest.mark.parametrize("body", DEEP)
async def test_deep_answer_to_a_status_read_is_malformed(body: bytes) -> None:
    """``get_task`` retries a deeply nested body like any unreadable one, then raises it."""
    async with hostile(answer(body), retry=FAST_RETRY) as (server, client):
        with pytest.raises(MalformedResponseError):
            await client.get_task(JOB_ID)
    assert len(server.seen) == FAST_RETRY.attempts


@pytest.mark.parametrize("body", DEEP)
async def test_deep_answer_to_a_refresh_is_malformed(body: bytes) -> None:
    """``handle.refresh()`` raises MalformedResponseError for a deeply nested body."""
    async with hostile(answer(body)) as (_, client):
        with pytest.raises(MalformedResponseError):
            await client.task(JOB_ID).refresh()


@pytest.mark.parametrize("body", DEEP)
async def test_wait_on_deep_answers_ends_at_its_deadline(body: bytes) -> None:
    """Awaiting a job whose every read is deeply nested ends with TaskTimeoutError."""
    async with hostile(answer(body)) as (server, client):
        with pytest.raises(TaskTimeoutError) as info:
            await client.task(JOB_ID).wait(poll=fast_poll(timeout=20.0))
    assert info.value.job_id == JOB_ID
    assert len(server.seen) > 1


@pytest.mark.parametrize("body", DEEP)
async def test_deep_answer_to_a_submission_is_outcome_unknown(body: bytes) -> None:
    """A job-creating POST answered with deep nesting is an unknown outcome, sent once."""
    async with hostile(answer(body), retry=FAST_RETRY) as (server, client):
        with pytest.raises(SubmissionOutcomeUnknownError) as info:
            await client.diffusion("a lighthouse at dusk")
    assert isinstance(info.value.__cause__, MalformedResponseError)
    assert server.seen == ["POST /api/v1/diffusion"]


@pytest.mark.parametrize("body", DEEP)
@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        pytest.param(500, ServerError, "Internal Server Error", id="500"),
        pytest.param(400, InvalidRequestError, "Bad Request", id="400"),
    ],
)
async def test_deep_error_page_keeps_its_status(
    body: bytes, status: int, kind: type[APIStatusError], reason: str
) -> None:
    """A deeply nested error body is no message: the status decides, with its reason phrase."""
    async with hostile(answer(body, status=status)) as (_, client):
        with pytest.raises(kind) as info:
            await client.get_task(JOB_ID)
    assert (info.value.status, info.value.message, info.value.body) == (status, reason, None)


async def test_depth_that_python_accepts_is_still_refused() -> None:
    """900 levels parse in Python but would blow a repr's stack: the read is malformed."""
    async with hostile(answer(nested_logs(900))) as (_, client):
        with pytest.raises(MalformedResponseError):
            await client.get_task(JOB_ID)


async def test_depth_past_the_limit_is_refused_and_at_it_read() -> None:
    """Answers nest at most 32 levels: 32 are read, 33 are malformed."""
    async with hostile(answer(nested_logs(32))) as (_, client):
        task = await client.get_task(JOB_ID)
    assert len(task.logs) == 1
    async with hostile(answer(nested_logs(33))) as (_, client):
        with pytest.raises(MalformedResponseError):
            await client.get_task(JOB_ID)


@pytest.mark.parametrize("body", DEEP)
def test_raw_json_of_deep_bytes_is_a_value_error(body: bytes) -> None:
    """A RawJSON built on deeply nested bytes raises ValueError when read, not RecursionError."""
    with pytest.raises(ValueError, match="nested deeper than 32"):
        dict(RawJSON(body))
