"""The request log keeps a bounded summary of each body, however big the body was."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest

from legnext_async.emulator import Emulator, Fault

from .conftest import KEY, Api, EmulatorFactory

HEADERS = {"x-api-key": KEY}
MiB = 1024 * 1024
#: The documented defaults: bodies past 32 MiB answer 413; a record keeps 64 KiB of a body.
BODY_LIMIT = 32 * MiB
LOGGED = 64 * 1024
BIG = 30 * MiB


async def json_text_body(size: int) -> AsyncIterator[bytes]:
    """A ``{"text": "aaa..."}`` body of exactly ``size`` bytes, made as it is sent."""
    head, tail = b'{"text": "', b'"}'
    yield head
    chunk = b"a" * 65536
    left = size - len(head) - len(tail)
    while left > 0:
        yield chunk[: min(left, len(chunk))]
        left -= len(chunk)
    yield tail


async def filler(size: int) -> AsyncIterator[bytes]:
    """``size`` bytes of filler, made as they are sent."""
    chunk = b"a" * 65536
    while size > 0:
        yield chunk[: min(size, len(chunk))]
        size -= len(chunk)


async def chunked(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``body`` in HTTP/1.1 chunked transfer coding."""
    async for chunk in body:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length: (status, body)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def post_bare(
    emulator: Emulator, path: str, fields: dict[str, str], body: AsyncIterator[bytes]
) -> tuple[int, bytes]:
    """POST over a bare connection, then GET the balance on it; the POST's (status, body).

    Unlike aiohttp's client, it sends the whole body even after an early answer. The GET
    is answered only once the emulator has read (and dropped) the rest of that body, so
    the test ends with the connection idle and the emulator closes at once.
    """
    async with asyncio.timeout(60):  # a guard against a hang, not a synchronisation
        reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
        try:
            head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
            writer.write(head.encode() + b"\r\n")
            async for chunk in body:
                writer.write(chunk)
                await writer.drain()
            writer.write(
                f"GET /api/account/balance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"x-api-key: {KEY}\r\n\r\n".encode()
            )
            answer = await read_answer(reader)
            assert (await read_answer(reader))[0] == 200  # the connection is still usable
            return answer
        finally:
            writer.close()
            await writer.wait_closed()


class Traced:
    """Python heap traced since the start: now and at its peak, over the starting level."""

    base = 0

    @property
    def grown(self) -> int:
        return tracemalloc.get_traced_memory()[0] - self.base

    @property
    def peak(self) -> int:
        return tracemalloc.get_traced_memory()[1] - self.base


@contextmanager
def traced() -> Iterator[Traced]:
    """Trace Python allocations (the emulator's included: it runs in this process)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    probe = Traced()
    probe.base = tracemalloc.get_traced_memory()[0]
    try:
        yield probe
    finally:
        if started:
            tracemalloc.stop()


async def test_ten_big_refused_posts_leave_only_bounded_records(api: Api) -> None:
    """Ten refused 30 MiB POSTs leave ten 64 KiB summaries, not 300 MiB of bodies."""
    url = f"{api.emulator.base_url}/v1/diffusion"
    with traced() as memory:
        for _ in range(10):
            async with api.session.post(url, data=json_text_body(BIG), headers=HEADERS) as resp:
                assert resp.status == 400  # the prompt is far too long
                await resp.read()
        grown, peak = memory.grown, memory.peak
    records = api.emulator.requests
    assert len(records) == 10
    for record in records:
        assert record.body is None
        assert record.body_size == BIG
        assert len(record.body_prefix) == LOGGED
        assert record.body_prefix.startswith(b'{"text": "aaa')
        assert record.body_truncated
    assert grown < 1 * MiB
    # One body is read, decoded and dropped at a time; all ten would be 300 MiB.
    assert peak < 4 * BIG


async def test_a_declared_oversized_body_is_refused_unread(api: Api) -> None:
    """A Content-Length past the limit answers 413 at once, without buffering the body."""
    size = BODY_LIMIT + 8 * MiB
    with traced() as memory:
        status, body = await post_bare(
            api.emulator, "/api/v1/diffusion", {"Content-Length": str(size)}, filler(size)
        )
        peak = memory.peak
    assert status == 413
    assert b"too large" in body
    assert peak < 4 * MiB
    record, _ = api.emulator.requests
    assert (record.status, record.body_size, record.body_prefix) == (413, size, b"")
    assert record.body_truncated


async def test_an_undeclared_oversized_body_is_refused_at_the_limit(api: Api) -> None:
    """A chunked body is refused (413) once it passes the limit, not kept to its end."""
    size = BODY_LIMIT + 32 * MiB
    with traced() as memory:
        status, _ = await post_bare(
            api.emulator,
            "/api/v1/diffusion",
            {"Transfer-Encoding": "chunked"},
            chunked(filler(size)),
        )
        peak = memory.peak
    assert status == 413
    assert peak < BODY_LIMIT + 8 * MiB
    record, _ = api.emulator.requests
    assert BODY_LIMIT < record.body_size < size
    assert len(record.body_prefix) == LOGGED


async def test_a_normal_post_is_logged_in_full(api: Api) -> None:
    """A small body is kept whole: its bytes, its size and its decoded JSON."""
    sent = json.dumps({"text": "a lighthouse"}).encode()
    async with api.session.post(
        f"{api.emulator.base_url}/v1/diffusion",
        data=sent,
        headers={**HEADERS, "Content-Type": "application/json"},
    ) as response:
        assert response.status == 200
    (record,) = api.emulator.requests
    assert record.body == {"text": "a lighthouse"}
    assert (record.body_prefix, record.body_size, record.body_truncated) == (sent, len(sent), False)


async def test_request_log_body_bytes_sets_how_much_is_kept(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """``request_log_body_bytes`` caps the prefix; a body longer than it is not decoded."""
    api.emulator = await make_emulator(request_log_body_bytes=8)
    await api.create("diffusion", {"text": "a lighthouse"})
    (record,) = api.emulator.requests
    assert record.body_prefix == b'{"text":'
    assert record.body is None
    assert record.body_truncated


async def test_a_get_logs_no_body(api: Api) -> None:
    """A request whose body is never read is logged with an empty summary."""
    await api.get("/account/balance")
    (record,) = api.emulator.requests
    assert (record.body, record.body_prefix, record.body_size, record.body_truncated) == (
        None,
        b"",
        0,
        False,
    )


async def test_request_log_body_bytes_must_not_be_negative(make_emulator: EmulatorFactory) -> None:
    """A negative cap is refused when the emulator is built."""
    with pytest.raises(ValueError, match="request_log_body_bytes"):
        await make_emulator(request_log_body_bytes=-1)


async def test_a_faulted_post_logs_what_was_sent(api: Api) -> None:
    """A POST a fault answers without processing still shows its body in the log."""
    api.emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", 503))
    status, _ = await api.post("diffusion", {"text": "a lighthouse"})
    assert status == 503
    (record,) = api.emulator.requests
    assert (record.fault, record.job_id) == ("status", None)
    assert record.body == {"text": "a lighthouse"}
