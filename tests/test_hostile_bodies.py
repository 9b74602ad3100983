"""A hostile or broken server: bodies too long, or nested too deep.

Each ends as a typed result or a :class:`LegnextError`, at a bounded cost.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import tracemalloc
import warnings
import zlib
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
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    SubmissionOutcomeUnknownError,
    TaskTimeoutError,
    ValidationError,
)
from legnext_async._client import DEFAULT_MAX_RESPONSE_BYTES, ERROR_BODY_BYTES

from .conftest import API_KEY, FAST_RETRY, fast_poll

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

JOB_ID = "5dd94ec3-7282-4f04-9445-59e850ef1822"
NO_RETRY = RetryPolicy(attempts=1)
MIB = 1024 * 1024
#: What a broken server sends: far past any cap.
HUGE = 50 * MIB
#: The pieces a streaming answer is written in.
PIECE = b"x" * (64 * 1024)


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


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Trace allocations; the list holds the peak (bytes) once the block ends."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


# --- answers too long ------------------------------------------------------------------------


@attrs.define
class Stream:
    """An answer of ``total`` bytes, written piece by piece as the client takes them.

    ``length`` is the Content-Length to announce (``None``: chunked, no length); ``written``
    counts the bytes that got out before the client hung up.
    """

    status: int = 200
    total: int = HUGE
    length: int | None = None
    head: bytes = b""
    written: int = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Write the answer until done or the client hangs up."""
        response = web.StreamResponse(status=self.status, headers={"Content-Type": "text/html"})
        if self.length is not None:
            response.content_length = self.length
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client hung up: what tests hope for
            await response.write(self.head)
            self.written = len(self.head)
            while self.written < self.total:
                await response.write(PIECE)
                self.written += len(PIECE)
            await response.write_eof()
        return response


@functools.cache
def bomb(wbits: int) -> bytes:
    """50 MB of zeros, compressed (gzip for ``wbits`` 31, deflate for 15) to about 50 KB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(len(PIECE))  # small pieces: the traced peak is the client's, not this
    return b"".join(packer.compress(zeros) for _ in range(HUGE // len(PIECE))) + packer.flush()


def compressed(encoding: str, wbits: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A 200 whose ``encoding``-compressed body inflates to 50 MB."""

    async def respond(request: web.Request) -> web.Response:
        return web.Response(
            body=bomb(wbits),
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )

    return respond


@pytest.mark.parametrize(
    "respond",
    [
        pytest.param(Stream(), id="chunked-no-length"),
        pytest.param(Stream(length=HUGE), id="honest-length"),
        pytest.param(
            Stream(length=HUGE, head=json.dumps(task_body()).encode(), total=0),
            id="length-says-50MB-body-small",
        ),
        pytest.param(compressed("gzip", 31), id="gzip-bomb"),
        pytest.param(compressed("deflate", 15), id="deflate-bomb"),
    ],
)
async def test_answer_past_the_cap_is_refused_in_bounded_memory(
    respond: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> None:
    """A 200 longer than the cap (decompressed) is ResponseTooLargeError, read no further."""
    async with hostile(respond) as (_, client):
        with peak_memory() as peak, pytest.raises(ResponseTooLargeError) as info:
            await client.get_task(JOB_ID)
    assert isinstance(info.value, MalformedResponseError)
    assert (info.value.status, info.value.limit) == (200, DEFAULT_MAX_RESPONSE_BYTES)
    assert f"{DEFAULT_MAX_RESPONSE_BYTES} bytes" in str(info.value)
    assert peak[0] < 2 * DEFAULT_MAX_RESPONSE_BYTES


async def test_server_stops_writing_once_the_client_hangs_up() -> None:
    """The client closes the connection of an answer past the cap: the rest is never sent."""
    stream = Stream()
    async with hostile(stream) as (_, client):
        with pytest.raises(ResponseTooLargeError):
            await client.get_task(JOB_ID)
    assert stream.written < HUGE


def padded(body: bytes, size: int) -> bytes:
    """The JSON object ``body`` padded with spaces to exactly ``size`` bytes."""
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def test_max_response_bytes_sets_the_cap() -> None:
    """An answer of exactly ``max_response_bytes`` bytes is read; one byte more is refused."""
    body = padded(json.dumps(task_body()).encode(), 100_000)
    async with hostile(answer(body), max_response_bytes=100_000) as (_, client):
        task = await client.get_task(JOB_ID)
    assert task.job_id == JOB_ID
    async with hostile(answer(body), max_response_bytes=99_999) as (_, client):
        with pytest.raises(ResponseTooLargeError) as info:
            await client.get_task(JOB_ID)
    assert info.value.limit == 99_999


async def test_answer_past_the_cap_is_retried_by_reads() -> None:
    """A read retries an answer past the cap like any unreadable body; the next one counts."""
    too_long = json.dumps(task_body(logs=["x" * 200_000])).encode()
    answers = iter([answer(too_long), answer(json.dumps(task_body()).encode())])

    async def respond(request: web.Request) -> web.StreamResponse:
        return await next(answers)(request)

    async with hostile(respond, retry=FAST_RETRY, max_response_bytes=100_000) as (server, client):
        task = await client.get_task(JOB_ID)
    assert task.logs == ()
    assert len(server.seen) == 2


async def test_answer_past_the_cap_to_a_submission_is_outcome_unknown() -> None:
    """A job-creating POST answered past the cap may have made a job: it is never re-sent."""
    async with hostile(Stream(), retry=FAST_RETRY) as (server, client):
        with pytest.raises(SubmissionOutcomeUnknownError) as info:
            await client.diffusion("a lighthouse at dusk")
    assert isinstance(info.value.__cause__, ResponseTooLargeError)
    assert server.seen == ["POST /api/v1/diffusion"]


async def test_cut_off_connection_is_closed_not_pooled() -> None:
    """An answer cut at the cap closes its connection (the next read opens another), while
    answers read whole keep theirs; nothing warns of an unclosed resource."""
    good = answer(json.dumps(task_body()).encode())
    answers: Iterator[Callable[[web.Request], Awaitable[web.StreamResponse]]]
    answers = iter([good, good, Stream(total=MIB), good])

    async def respond(request: web.Request) -> web.StreamResponse:
        return await next(answers)(request)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with hostile(respond, max_response_bytes=64 * 1024) as (server, client):
            await client.get_task(JOB_ID)
            await client.get_task(JOB_ID)
            with pytest.raises(ResponseTooLargeError):
                await client.get_task(JOB_ID)
            await client.get_task(JOB_ID)
        gc.collect()
    first, pooled, cut, fresh = server.ports
    assert first == pooled == cut
    assert fresh != cut
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(Stream(status=500), id="chunked-no-length"),
        pytest.param(Stream(status=500, length=HUGE), id="honest-length"),
    ],
)
async def test_long_error_page_is_read_only_to_the_error_cap(stream: Stream) -> None:
    """A retried 50 MB 500 page is read at most 64 KiB a time; the status still decides."""
    async with hostile(stream, retry=FAST_RETRY) as (server, client):
        with peak_memory() as peak, pytest.raises(ServerError) as info:
            await client.get_task(JOB_ID)
    assert (info.value.status, info.value.message, info.value.body) == (
        500,
        "Internal Server Error",
        None,
    )
    assert len(server.seen) == FAST_RETRY.attempts
    assert peak[0] < 16 * ERROR_BODY_BYTES
    assert stream.written < HUGE


async def test_error_body_up_to_the_error_cap_gives_its_message() -> None:
    """An error body of exactly 64 KiB gives its message; one byte more, the reason phrase."""
    body = padded(json.dumps({"code": 400, "message": "no such prompt"}).encode(), ERROR_BODY_BYTES)
    async with hostile(answer(body, status=400)) as (_, client):
        with pytest.raises(InvalidRequestError) as info:
            await client.get_task(JOB_ID)
    assert info.value.message == "no such prompt"
    async with hostile(answer(body + b" ", status=400)) as (_, client):
        with pytest.raises(InvalidRequestError) as info:
            await client.get_task(JOB_ID)
    assert (info.value.message, info.value.body) == ("Bad Request", None)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(0, "at least 1024, got 0", id="zero"),
        pytest.param(1023, "at least 1024, got 1023", id="below-minimum"),
        pytest.param("4MB", "integer", id="string"),
        pytest.param(True, "integer", id="bool"),
        pytest.param(4096.0, "integer", id="float"),
    ],
)
def test_max_response_bytes_is_validated(value: object, shown: str) -> None:
    """A cap that is not an integer of at least 1024 is a ValidationError naming the field."""
    with pytest.raises(ValidationError) as info:
        LegnextClient(
            api_key=API_KEY,
            base_url="http://127.0.0.1:1/api",
            max_response_bytes=value,  # type: ignore[arg-type]
        )
    assert info.value.field == "max_response_bytes"
    assert shown in str(info.value)


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
