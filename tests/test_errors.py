"""Error answers become typed exceptions: status → class, and all three body shapes read."""

from __future__ import annotations

import contextlib
import json
import time
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import attrs
import pytest
from aiohttp import web

from legnext_async import (
    APIStatusError,
    AuthenticationError,
    Canvas,
    ImagePosition,
    InsufficientCreditsError,
    InvalidRequestError,
    LegnextClient,
    LegnextError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionOutcomeUnknownError,
)
from legnext_async.emulator import Emulator

from .conftest import API_KEY, MASK, SCALE, fast_poll

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

E = TypeVar("E", bound=BaseException)

SAMPLES = Path(__file__).resolve().parent / "wire_samples"
JOB_ID = "5dd94ec3-7282-4f04-9445-59e850ef1822"
NO_RETRY = RetryPolicy(attempts=1)
WRONG_KEY = "f" * 64


def sample(name: str) -> bytes:
    """A wire sample's bytes (copied from the reference)."""
    return (SAMPLES / name).read_bytes()


def flat_body(status: int, message: str) -> str:
    """An error body in the flat shape of the docs' endpoint pages."""
    return json.dumps({"code": status, "message": message, "raw_message": "", "detail": None})


@contextlib.contextmanager
def raises(kind: type[E]) -> Iterator[pytest.ExceptionInfo[E]]:
    """``pytest.raises``, then a check that the error's text never shows the API key."""
    with pytest.raises(kind) as info:
        yield info
    error: BaseException | None = info.value
    while error is not None:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        error = error.__cause__ or error.__context__


@attrs.define
class Scripted:
    """A loopback server that answers every request with the status, body and headers set."""

    status: int = 200
    body: bytes | str = b"{}"
    content_type: str = "application/json"
    headers: dict[str, str] = attrs.field(factory=dict)
    paths: list[str] = attrs.field(factory=list)

    async def answer(self, request: web.Request) -> web.Response:
        """The scripted answer."""
        self.paths.append(f"{request.method} {request.path}")
        body = self.body.encode() if isinstance(self.body, str) else self.body
        return web.Response(
            status=self.status, body=body, content_type=self.content_type, headers=self.headers
        )


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Scripted, LegnextClient]]:
    """A scripted server on 127.0.0.1 and a client for it that never retries."""
    server = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with LegnextClient(
            api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/api", retry=NO_RETRY
        ) as client:
            yield server, client
    finally:
        await runner.cleanup()


def emulator_client(emulator: Emulator, *, api_key: str = API_KEY) -> LegnextClient:
    """A client for ``emulator`` that never retries."""
    return LegnextClient(
        api_key=api_key, base_url=emulator.base_url, poll=fast_poll(), retry=NO_RETRY
    )


# --- the status table, against a scripted server -------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        pytest.param(400, InvalidRequestError, id="400-invalid-request"),
        pytest.param(413, InvalidRequestError, id="413-invalid-request"),
        pytest.param(422, InvalidRequestError, id="422-invalid-request"),
        pytest.param(401, AuthenticationError, id="401-authentication"),
        pytest.param(402, InsufficientCreditsError, id="402-insufficient-credits"),
        pytest.param(403, PermissionDeniedError, id="403-permission-denied"),
        pytest.param(404, NotFoundError, id="404-not-found"),
        pytest.param(429, RateLimitError, id="429-rate-limit"),
        pytest.param(500, ServerError, id="500-server"),
        pytest.param(502, ServerError, id="502-server"),
        pytest.param(503, ServerError, id="503-server"),
    ],
)
async def test_status_maps_to_its_exception_class(
    scripted: tuple[Scripted, LegnextClient], status: int, kind: type[APIStatusError]
) -> None:
    """Each documented error status raises its own APIStatusError subclass, with the status."""
    server, client = scripted
    server.status, server.body = status, flat_body(status, f"refused with {status}")
    with raises(APIStatusError) as info:
        await client.get_task(JOB_ID)
    assert type(info.value) is kind
    assert info.value.status == status
    assert info.value.message == f"refused with {status}"


@pytest.mark.parametrize(
    ("status", "name", "kind", "code", "message", "raw_message"),
    [
        pytest.param(
            400,
            "error-400-flat.docs.json",
            InvalidRequestError,
            400,
            "Invalid request parameters",
            "Invalid request parameters",
            id="flat",
        ),
        pytest.param(
            403,
            "error-403-task-envelope.live.json",
            PermissionDeniedError,
            403,
            "This feature is only available for whitelisted accounts. Please upgrade your plan "
            "or contact customer support to access this feature.",
            "",
            id="task-envelope",
        ),
        pytest.param(
            401,
            "error-nested.docs.json",
            AuthenticationError,
            401,
            "Failed to verify api key",
            "",
            id="nested",
        ),
    ],
)
async def test_each_error_body_shape_is_read(
    scripted: tuple[Scripted, LegnextClient],
    status: int,
    name: str,
    kind: type[APIStatusError],
    code: int,
    message: str,
    raw_message: str,
) -> None:
    """The flat, task-envelope and nested error bodies all give the message, code and status."""
    server, client = scripted
    server.status, server.body = status, sample(name)
    with raises(kind) as info:
        await client.get_task(JOB_ID)
    error = info.value
    assert (error.status, error.code, error.message) == (status, code, message)
    assert error.raw_message == raw_message
    assert error.body == json.loads(sample(name))
    assert message in str(error)


async def test_error_names_the_request(scripted: tuple[Scripted, LegnextClient]) -> None:
    """A status error records the method and the path (relative to the base URL)."""
    server, client = scripted
    server.status, server.body = 404, flat_body(404, "no such job")
    with raises(NotFoundError) as info:
        await client.get_task(JOB_ID)
    assert (info.value.method, info.value.path) == ("GET", f"/v1/job/{JOB_ID}")
    assert f"GET /v1/job/{JOB_ID}" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason"),
    [
        pytest.param(
            502,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "text/html",
            "Bad Gateway",
            id="html-proxy-page",
        ),
        pytest.param(500, "upstream timeout", "text/plain", "Internal Server Error", id="text"),
        pytest.param(503, b"", "text/plain", "Service Unavailable", id="empty"),
        pytest.param(400, "[1, 2]", "application/json", "Bad Request", id="json-not-an-object"),
    ],
)
async def test_error_body_that_is_not_an_error_object_gives_the_reason_phrase(
    scripted: tuple[Scripted, LegnextClient],
    status: int,
    body: bytes | str,
    content_type: str,
    reason: str,
) -> None:
    """An error body without a readable message falls back to the status's reason phrase."""
    server, client = scripted
    server.status, server.body, server.content_type = status, body, content_type
    with raises(APIStatusError) as info:
        await client.get_task(JOB_ID)
    assert info.value.status == status
    assert info.value.message == reason
    assert info.value.code is None
    assert info.value.body is None


async def test_rate_limit_reads_retry_after_seconds(
    scripted: tuple[Scripted, LegnextClient],
) -> None:
    """A 429's ``Retry-After: 7`` becomes ``retry_after == 7.0``."""
    server, client = scripted
    server.status, server.body = 429, flat_body(429, "slow down")
    server.headers = {"Retry-After": "7"}
    with raises(RateLimitError) as info:
        await client.get_task(JOB_ID)
    assert info.value.retry_after == 7.0


async def test_rate_limit_reads_retry_after_http_date(
    scripted: tuple[Scripted, LegnextClient],
) -> None:
    """A 429's ``Retry-After`` as an HTTP date a minute ahead becomes about 60 seconds."""
    server, client = scripted
    server.status, server.body = 429, flat_body(429, "slow down")
    server.headers = {"Retry-After": formatdate(time.time() + 60, usegmt=True)}
    with raises(RateLimitError) as info:
        await client.get_task(JOB_ID)
    assert info.value.retry_after is not None
    assert 50.0 < info.value.retry_after <= 60.0


async def test_rate_limit_without_retry_after(scripted: tuple[Scripted, LegnextClient]) -> None:
    """A 429 without ``Retry-After`` has ``retry_after`` None."""
    server, client = scripted
    server.status, server.body = 429, flat_body(429, "slow down")
    with raises(RateLimitError) as info:
        await client.get_task(JOB_ID)
    assert info.value.retry_after is None


async def test_balance_errors_are_mapped_too(scripted: tuple[Scripted, LegnextClient]) -> None:
    """``balance()`` goes through the same mapping: a nested 401 is an AuthenticationError."""
    server, client = scripted
    server.status, server.body = 401, sample("error-nested.docs.json")
    with raises(AuthenticationError) as info:
        await client.balance()
    assert info.value.message == "Failed to verify api key"
    assert server.paths == ["GET /api/account/balance"]


async def test_every_error_derives_from_legnext_error(
    scripted: tuple[Scripted, LegnextClient],
) -> None:
    """A caller can catch every API error as LegnextError."""
    server, client = scripted
    server.status, server.body = 418, flat_body(418, "teapot")
    with raises(LegnextError) as info:
        await client.get_task(JOB_ID)
    assert type(info.value) is APIStatusError
    assert info.value.status == 418


# --- the emulator's real refusals ----------------------------------------------------------


async def test_emulator_wrong_key_is_authentication_error(emulator: Emulator) -> None:
    """The emulator's 401 for an unknown key raises AuthenticationError with its message."""
    job_id = emulator.seed_job()
    async with emulator_client(emulator, api_key=WRONG_KEY) as client:
        with raises(AuthenticationError) as info:
            await client.get_task(job_id)
    assert (info.value.status, info.value.code) == (401, 401)
    assert info.value.message == "Failed to verify api key"
    assert WRONG_KEY not in str(info.value)


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param("envelope", id="task-envelope"),
        pytest.param("flat", id="flat"),
        pytest.param("nested", id="nested"),
    ],
)
async def test_emulator_401_is_read_in_every_error_shape(
    shape: Literal["envelope", "flat", "nested"],
) -> None:
    """Whichever error body shape the emulator is set to, the 401's message and code are read."""
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, error_shape=shape) as emu,
        emulator_client(emu, api_key=WRONG_KEY) as client,
    ):
        with raises(AuthenticationError) as info:
            await client.balance()
    assert (info.value.status, info.value.code) == (401, 401)
    assert info.value.message == "Failed to verify api key"


async def test_emulator_unknown_job_is_not_found(emulator: Emulator) -> None:
    """A status read of a job the emulator never made raises NotFoundError naming the job."""
    async with emulator_client(emulator) as client:
        with raises(NotFoundError) as info:
            await client.get_task(JOB_ID)
    assert info.value.status == 404
    assert JOB_ID in info.value.message


async def test_emulator_refuses_inpaint_of_unfinished_parent(emulator: Emulator) -> None:
    """The server's own check (parent not completed) comes back as InvalidRequestError."""
    async with emulator_client(emulator) as client:
        parent = await client.diffusion("a lighthouse at dusk")
        with raises(InvalidRequestError) as info:
            await client.inpaint(parent.job_id, 0, mask=MASK, remix_prompt="a tree")
    assert info.value.status == 400
    assert "not completed" in info.value.message
    assert not isinstance(info.value, SubmissionOutcomeUnknownError)
    assert [job.task_type for job in emulator.jobs] == ["diffusion"]


async def test_emulator_insufficient_balance_is_insufficient_credits(
    emulator: Emulator,
) -> None:
    """The emulator's 402 for an empty wallet raises InsufficientCreditsError."""
    emulator.set_balance(API_KEY, credits=0, points=0)
    async with emulator_client(emulator) as client:
        with raises(InsufficientCreditsError) as info:
            await client.diffusion("a lighthouse at dusk")
    assert info.value.status == 402
    assert "Insufficient balance" in info.value.message
    assert emulator.jobs == []


async def test_emulator_edit_without_whitelist_is_permission_denied(emulator: Emulator) -> None:
    """The live 403 of ``/v1/edit`` for an account not whitelisted raises PermissionDeniedError."""
    parent = emulator.seed_job()
    async with emulator_client(emulator) as client:
        with raises(PermissionDeniedError) as info:
            await client.edit(
                parent,
                0,
                canvas=Canvas(width=1024, height=1024),
                img_pos=ImagePosition(width=512, height=512, x=256, y=256),
                remix_prompt="a tree",
            )
    assert (info.value.status, info.value.code) == (403, 403)
    assert "whitelisted" in info.value.message
    assert not isinstance(info.value, SubmissionOutcomeUnknownError)
    assert [job.job_id for job in emulator.jobs] == [parent]
