"""A hostile or broken server: bodies too long, nested too deep, or quoting the API key.

Each ends as a typed result or a :class:`LegnextError`, at a bounded cost, and nothing made
from the body (an error, a task, a log record) shows the key.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import re
import tracemalloc
import warnings
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from legnext_async import (
    APIStatusError,
    InvalidRequestError,
    LegnextClient,
    MalformedResponseError,
    PollPolicy,
    RawJSON,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    SubmissionOutcomeUnknownError,
    TaskFailedError,
    TaskTimeoutError,
    ValidationError,
)
from legnext_async._client import DEFAULT_MAX_RESPONSE_BYTES, ERROR_BODY_BYTES
from legnext_async.emulator import Emulator

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


# --- the key quoted back ---------------------------------------------------------------------

#: A key with characters whose escapes carry hex letters (k, -, /), for the case rows.
SK_KEY = "sk-" + API_KEY[:30] + "/" + API_KEY[30:]


def json_escaped(text: str, *, upper: bool = False, every: int = 1) -> str:
    r"""``text`` with every ``every``-th character as a JSON ``\uXXXX`` escape."""
    spelled = (f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}" for c in text)
    return "".join(
        e if i % every == 0 else c for i, (c, e) in enumerate(zip(text, spelled, strict=True))
    )


def percent_encoded(text: str, *, upper: bool = True, percent: str = "%") -> str:
    """``text`` with every character percent-encoded (its UTF-8 bytes)."""
    return "".join(
        percent + (f"{b:02X}" if upper else f"{b:02x}") for c in text for b in c.encode()
    )


#: (key, how the server writes it inside a JSON string, as raw body text).
SPELLINGS = [
    pytest.param(API_KEY, API_KEY, id="plain"),
    pytest.param(API_KEY, json_escaped(API_KEY), id="json-every-char"),
    pytest.param(API_KEY, json_escaped(API_KEY, every=3), id="json-some-chars"),
    pytest.param(SK_KEY, json_escaped(SK_KEY), id="json-lower-hex"),
    pytest.param(SK_KEY, json_escaped(SK_KEY, upper=True), id="json-upper-hex"),
    pytest.param(SK_KEY, SK_KEY.replace("/", "\\/"), id="json-escaped-slash"),
    pytest.param(SK_KEY, percent_encoded(SK_KEY), id="percent-upper"),
    pytest.param(SK_KEY, percent_encoded(SK_KEY, upper=False), id="percent-lower"),
    pytest.param(
        SK_KEY, "sk" + percent_encoded("-") + SK_KEY[3:].replace("/", "%2f"), id="percent-some"
    ),
    pytest.param(SK_KEY, percent_encoded(SK_KEY, percent="\\u0025"), id="json-escaped-percent"),
    pytest.param(API_KEY, json_escaped(API_KEY).replace("\\", "\\\\"), id="json-inside-json"),
]


def unveiled(text: str) -> str:
    r"""``text`` with every spelling the table uses undone (``\uXXXX`` under any number of
    backslashes, ``\/``, then percent-encoding), so that a hidden key shows."""
    text = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)
    return unquote(re.sub(r"\\+/", "/", text))


def assert_hidden(key: str, *texts: object) -> None:
    """None of ``texts`` (as ``str``) shows ``key``, however spelled."""
    for text in texts:
        assert key not in unveiled(str(text))


def assert_logs_hidden(key: str, caplog: pytest.LogCaptureFixture) -> None:
    """No captured log record shows ``key``."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        assert_hidden(key, formatter.format(record), repr(record.args))


def quoting(spelled: str) -> bytes:
    """Raw JSON text holding ``spelled`` verbatim (no re-escaping) inside a string."""
    return b'"bad key ' + spelled.encode() + b'"'


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of legnext_async, down to DEBUG."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="legnext_async")
    return caplog


@pytest.mark.parametrize(("key", "spelled"), [p for p in SPELLINGS if p.id != "plain"])
async def test_key_quoted_in_an_error_body_is_scrubbed(
    key: str, spelled: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """An error body quoting the key in its message, raw_message and detail shows ``***``."""
    quoted = quoting(spelled)
    body = (
        b'{"code":400,"message":' + quoted + b',"raw_message":' + quoted
        + b',"detail":{' + quoted + b":[" + quoted + b"]}}"
    )  # fmt: skip
    async with hostile(answer(body, status=400), api_key=key) as (_, client):
        with pytest.raises(InvalidRequestError) as info:
            await client.get_task(JOB_ID)
    error = info.value
    assert error.message == error.raw_message == "bad key ***"
    assert error.body == {
        "code": 400,
        "message": "bad key ***",
        "raw_message": "bad key ***",
        "detail": {"bad key ***": ["bad key ***"]},
    }
    assert_hidden(key, error, repr(error), vars(error))
    assert_logs_hidden(key, debug_logs)


@pytest.mark.parametrize(("key", "spelled"), SPELLINGS)
async def test_key_quoted_by_a_failed_job_is_scrubbed(
    key: str, spelled: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """A failed job whose error message quotes the key raises TaskFailedError showing ``***``."""
    body = json.dumps(task_body("failed", error={"code": 10001, "message": "@"})).encode()
    body = body.replace(b'"@"', quoting(spelled))
    async with hostile(answer(body), api_key=key) as (_, client):
        with pytest.raises(TaskFailedError) as info:
            await client.task(JOB_ID)
    error = info.value
    assert error.message == "bad key ***"
    raw = error.task.raw
    assert_hidden(key, error, repr(error), vars(error), repr(error.task), repr(raw), dict(raw))
    assert_hidden(key, bytes(raw.body).decode() if isinstance(raw, RawJSON) else "")
    assert_logs_hidden(key, debug_logs)


@pytest.mark.parametrize(("key", "spelled"), SPELLINGS)
async def test_key_quoted_by_a_completed_job_is_scrubbed(
    key: str, spelled: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """A completed task quoting the key (a callback URL, a log line) keeps only ``***``."""
    body = json.dumps(task_body(config={"webhook_config": {"endpoint": "@"}}, logs=["@"])).encode()
    body = body.replace(b'"@"', quoting(spelled))
    async with hostile(answer(body), api_key=key) as (_, client):
        task = await client.get_task(JOB_ID)
    assert task.callback == "bad key ***"
    assert task.logs == ("bad key ***",)
    assert isinstance(task.raw, RawJSON)
    assert_hidden(key, repr(task), repr(task.raw), dict(task.raw), task.raw.body.decode())
    assert_logs_hidden(key, debug_logs)


async def test_key_quoted_in_a_submission_refusal_is_scrubbed() -> None:
    """A job-creating POST refused with a body quoting the key (JSON-escaped) shows ``***``."""
    body = b'{"code":400,"message":' + quoting(json_escaped(API_KEY)) + b"}"
    async with hostile(answer(body, status=400)) as (_, client):
        with pytest.raises(InvalidRequestError) as info:
            await client.diffusion("a lighthouse at dusk")
    assert info.value.message == "bad key ***"
    assert_hidden(API_KEY, info.value, vars(info.value))


async def test_key_in_a_redirect_host_is_scrubbed() -> None:
    """A redirect to a host named after the key names ``***`` instead."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": f"http://{API_KEY}.example/"})

    async with hostile(redirect) as (_, client):
        with pytest.raises(APIStatusError) as info:
            await client.get_task(JOB_ID)
    assert "***.example" in info.value.message
    assert_hidden(API_KEY, info.value)


async def test_redirect_to_an_unreadable_location_is_a_status_error() -> None:
    """A Location that is no URL at all names no host, rather than escaping as ValueError."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://[oops/"})

    async with hostile(redirect) as (_, client):
        with pytest.raises(APIStatusError) as info:
            await client.get_task(JOB_ID)
    assert "an unknown place" in info.value.message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32-be"])
async def test_key_in_a_body_not_in_utf8_is_scrubbed(encoding: str) -> None:
    """A task in UTF-16 or UTF-32 (json reads those too) quoting the key keeps only ``***``."""
    body = json.dumps(task_body(logs=[f"bad key {API_KEY}"])).encode(encoding)
    async with hostile(answer(body)) as (_, client):
        task = await client.get_task(JOB_ID)
    assert task.logs == ("bad key ***",)
    assert_hidden(API_KEY, repr(task), dict(task.raw))


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("s", id="s"),
        pytest.param("id", id="id"),
        pytest.param("emulator", id="emulator"),
    ],
)
async def test_a_short_test_key_leaves_answers_intact(key: str) -> None:
    """A key too short to be a secret (an emulator's test key) is not scrubbed from answers,
    which would rewrite ``status`` or ``job_id`` in every one of them."""
    async with (
        Emulator(time_scale=0.001) as emu,
        LegnextClient(api_key=key, base_url=emu.base_url, poll=PollPolicy(time_scale=0.001)) as c,
    ):
        handle = await c.diffusion("a lighthouse")
        result = await handle
    assert result.job_id == handle.job_id
    assert len(result.image_urls) == 4
