"""The API key stays safe: https only off loopback, no redirects, never in text or logs."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from typing import TYPE_CHECKING

import attrs
import pytest
from aiohttp import web

from legnext_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    InvalidRequestError,
    LegnextClient,
    LegnextError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionOutcomeUnknownError,
    TaskFailedError,
    TaskTimeoutError,
    ValidationError,
    __version__,
)
from legnext_async.emulator import Emulator, Fault

from .conftest import API_KEY, FAST_RETRY, MASK, fast_poll

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from multidict import CIMultiDictProxy

NO_RETRY = RetryPolicy(attempts=1)
JOB_ID = "5dd94ec3-7282-4f04-9445-59e850ef1822"
BALANCE = {"code": 200, "message": "success", "data": {"account_id": 1, "balance_usd": 1.0}}


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it was raised from or during."""
    current: BaseException | None = error
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def assert_no_key(error: BaseException) -> None:
    """Neither the error's text nor any of its causes' shows the API key."""
    for each in causes(error):
        assert API_KEY not in str(each), type(each).__name__
        assert API_KEY not in repr(each), type(each).__name__


@attrs.define
class Recorder:
    """A loopback server that records every request and answers with ``respond``."""

    respond: Callable[[web.Request], Awaitable[web.StreamResponse]]
    seen: list[tuple[str, str, CIMultiDictProxy[str]]] = attrs.field(factory=list)
    origin: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record, then answer."""
        self.seen.append((request.method, request.path, request.headers))
        return await self.respond(request)


@contextlib.asynccontextmanager
async def serving(
    respond: Callable[[web.Request], Awaitable[web.StreamResponse]], host: str = "127.0.0.1"
) -> AsyncIterator[Recorder]:
    """Run a :class:`Recorder` on ``host``, port 0."""
    recorder = Recorder(respond)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, 0).start()
        recorder.origin = f"http://{host}:{runner.addresses[0][1]}"
        yield recorder
    finally:
        await runner.cleanup()


async def answer_balance(request: web.Request) -> web.Response:
    """A balance answer, whatever was asked."""
    return web.json_response(BALANCE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- plain http:// ---------------------------------------------------------------------------

REMOTE_HTTP = [
    pytest.param("http://api.example.com/api", id="hostname"),
    pytest.param("http://10.1.2.3/api", id="private-ipv4"),
    pytest.param("http://[2001:db8::1]:8080/api", id="ipv6"),
    pytest.param("http://localhost.example.com/api", id="localhost-lookalike"),
]


@pytest.mark.parametrize("base_url", REMOTE_HTTP)
def test_plain_http_to_a_remote_host_is_refused(base_url: str) -> None:
    """``http://`` to a host other than loopback fails at construction, naming ``base_url``."""
    with pytest.raises(ValidationError) as info:
        LegnextClient(api_key=API_KEY, base_url=base_url)
    assert info.value.field == "base_url"
    assert "https://" in str(info.value)
    assert_no_key(info.value)


@pytest.mark.parametrize("base_url", REMOTE_HTTP)
async def test_plain_http_to_a_remote_host_allowed_when_asked(base_url: str) -> None:
    """``allow_insecure_http=True`` lets the client be built for a remote ``http://`` URL."""
    client = LegnextClient(api_key=API_KEY, base_url=base_url, allow_insecure_http=True)
    assert client.base_url == base_url
    await client.aclose()


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("http://127.0.0.1:8080/api", id="127.0.0.1"),
        pytest.param("http://127.0.0.2/api", id="127.0.0.2"),
        pytest.param("http://[::1]:8080/api", id="ipv6-loopback"),
        pytest.param("http://localhost:8080/api", id="localhost"),
        pytest.param("http://LocalHost/api", id="localhost-any-case"),
    ],
)
async def test_plain_http_to_loopback_is_allowed(base_url: str) -> None:
    """``http://`` to this machine needs no opt-in (that is how the emulator is reached)."""
    client = LegnextClient(api_key=API_KEY, base_url=base_url)
    assert client.base_url == base_url
    await client.aclose()


# --- redirects -------------------------------------------------------------------------------


@pytest.fixture
async def elsewhere() -> AsyncIterator[Recorder]:
    """A server on 127.0.0.2, another host, that records whatever reaches it."""
    async with serving(answer_balance, host="127.0.0.2") as recorder:
        yield recorder


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_is_not_followed(elsewhere: Recorder, status: int) -> None:
    """A redirect to another host raises APIStatusError, and that host receives nothing."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": elsewhere.origin + request.path})

    async with (
        serving(redirect) as api,
        LegnextClient(api_key=API_KEY, base_url=f"{api.origin}/api", retry=NO_RETRY) as client,
    ):
        with pytest.raises(APIStatusError) as info:
            await client.get_task(JOB_ID)
    assert info.value.status == status
    assert "not followed" in info.value.message
    assert "127.0.0.2" in info.value.message
    assert len(api.seen) == 1
    assert elsewhere.seen == []


async def test_redirect_of_a_submission_is_not_followed(elsewhere: Recorder) -> None:
    """A 307 on a job-creating POST is not followed either: the body and key stay here."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": elsewhere.origin + request.path})

    async with (
        serving(redirect) as api,
        LegnextClient(api_key=API_KEY, base_url=f"{api.origin}/api", retry=NO_RETRY) as client,
    ):
        with pytest.raises(APIStatusError) as info:
            await client.diffusion("a lighthouse at dusk")
    assert "not followed" in info.value.message
    assert [(method, path) for method, path, _ in api.seen] == [("POST", "/api/v1/diffusion")]
    assert elsewhere.seen == []


# --- what goes on the wire -------------------------------------------------------------------


async def test_request_carries_the_key_and_user_agent() -> None:
    """Each request sends ``x-api-key`` and a ``User-Agent`` naming ``legnext-async/<version>``."""
    async with (
        serving(answer_balance) as api,
        LegnextClient(api_key=API_KEY, base_url=f"{api.origin}/api") as client,
    ):
        await client.balance()
    [(method, path, headers)] = api.seen
    assert (method, path) == ("GET", "/api/account/balance")
    assert headers["x-api-key"] == API_KEY
    assert headers["User-Agent"].startswith(f"legnext-async/{__version__} ")


# --- the key never shows up --------------------------------------------------------------------


def test_key_not_in_client_repr() -> None:
    """``repr(client)`` masks the key."""
    client = LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:1/api")
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)
    assert "***" in repr(client)


@attrs.define
class Places:
    """Where the scenarios below send requests."""

    emulator: Emulator
    echo: Recorder


async def echo_key(request: web.Request) -> web.Response:
    """A careless server: its answer quotes the key it was sent, in every field it has.

    The status to answer is the path's first segment: ``/s401/api/...`` answers 401.
    """
    key = request.headers.get("x-api-key", "")
    status = int(request.path.split("/")[1].removeprefix("s"))
    body = {"code": status, "message": f"bad key {key}", "raw_message": f"key={key}"}
    headers = {"Location": f"http://127.0.0.2:1/api?key={key}"} if status < 400 else {}
    return web.Response(
        status=status, body=json.dumps(body), content_type="application/json", headers=headers
    )


@pytest.fixture
async def places(emulator: Emulator) -> AsyncIterator[Places]:
    """The emulator, and a server that echoes the key in its answers."""
    async with serving(echo_key) as echo:
        yield Places(emulator, echo)


def echo_client(places: Places, status: int) -> LegnextClient:
    """A client that never retries, whose requests get ``status`` from the echoing server."""
    return LegnextClient(
        api_key=API_KEY, base_url=f"{places.echo.origin}/s{status}/api", retry=NO_RETRY
    )


def emulator_client(
    places: Places, *, retry: RetryPolicy = FAST_RETRY, request_timeout: float = 5.0
) -> LegnextClient:
    """A client for the emulator, with test-speed polls."""
    return LegnextClient(
        api_key=API_KEY,
        base_url=places.emulator.base_url,
        poll=fast_poll(),
        retry=retry,
        request_timeout=request_timeout,
    )


def echoed_read(status: int) -> Callable[[Places], Awaitable[object]]:
    """A status read answered ``status`` by the echoing server."""

    async def run(places: Places) -> object:
        async with echo_client(places, status) as client:
            return await client.get_task(JOB_ID)

    return run


def echoed_submission(status: int) -> Callable[[Places], Awaitable[object]]:
    """A diffusion answered ``status`` by the echoing server."""

    async def run(places: Places) -> object:
        async with echo_client(places, status) as client:
            return await client.diffusion("a lighthouse at dusk")

    return run


def faulty_read(fault: Fault, *, timeout: float = 5.0) -> Callable[[Places], Awaitable[object]]:
    """A status read of a real job, with ``fault`` armed and no retries."""

    async def run(places: Places) -> object:
        places.emulator.add_fault(fault)
        async with emulator_client(places, retry=NO_RETRY, request_timeout=timeout) as client:
            return await client.get_task(places.emulator.seed_job())

    return run


async def refused_connection(places: Places) -> object:
    """A read from a port nothing listens on."""
    async with LegnextClient(
        api_key=API_KEY, base_url=f"http://127.0.0.1:{free_port()}/api", retry=NO_RETRY
    ) as client:
        return await client.get_task(JOB_ID)


async def lost_answer(places: Places) -> object:
    """A diffusion whose answer is lost after the job was made."""
    places.emulator.add_fault(Fault.answer_lost("POST /api/v1/diffusion"))
    async with emulator_client(places) as client:
        return await client.diffusion("a lighthouse at dusk")


async def unknown_job(places: Places) -> object:
    """A read of a job the emulator never made."""
    async with emulator_client(places) as client:
        return await client.get_task(JOB_ID)


async def failed_job(places: Places) -> object:
    """A job that ends ``failed``."""
    places.emulator.fail_next()
    async with emulator_client(places) as client:
        return await (await client.diffusion("a lighthouse at dusk"))


async def deadline_passed(places: Places) -> object:
    """A wait whose reads fail until its deadline."""
    async with emulator_client(places) as client:
        handle = await client.diffusion("a lighthouse at dusk")
        places.emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 503, times=None))
        return await handle.wait(poll=fast_poll(timeout=20.0))


async def closed_client(places: Places) -> object:
    """A read after ``aclose()``."""
    client = emulator_client(places)
    await client.aclose()
    return await client.get_task(JOB_ID)


async def bad_argument(places: Places) -> object:
    """An inpaint of image 9."""
    async with emulator_client(places) as client:
        return await client.inpaint(JOB_ID, 9, mask=MASK)


async def key_with_a_newline(places: Places) -> object:
    """A key pasted with its trailing newline."""
    return LegnextClient(api_key=API_KEY + "\n", base_url=places.emulator.base_url)


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        pytest.param(echoed_read(400), InvalidRequestError, id="echoed-400"),
        pytest.param(echoed_read(401), AuthenticationError, id="echoed-401"),
        pytest.param(echoed_read(429), RateLimitError, id="echoed-429"),
        pytest.param(echoed_read(502), ServerError, id="echoed-502"),
        pytest.param(echoed_read(302), APIStatusError, id="echoed-redirect"),
        pytest.param(echoed_submission(403), APIStatusError, id="echoed-403-on-post"),
        pytest.param(
            echoed_submission(500), SubmissionOutcomeUnknownError, id="echoed-500-on-post"
        ),
        pytest.param(refused_connection, APIConnectionError, id="connection-refused"),
        pytest.param(
            faulty_read(Fault.disconnect("GET /api/v1/job/*", times=2)),
            APIConnectionError,
            id="disconnect",
        ),
        pytest.param(
            faulty_read(Fault.truncated("GET /api/v1/job/*", commit=True)),
            APIConnectionError,
            id="truncated",
        ),
        pytest.param(
            faulty_read(Fault.garbage("GET /api/v1/job/*")), MalformedResponseError, id="garbage"
        ),
        pytest.param(
            faulty_read(Fault.latency("GET /api/v1/job/*", 1.0), timeout=0.2),
            APITimeoutError,
            id="timeout",
        ),
        pytest.param(lost_answer, SubmissionOutcomeUnknownError, id="answer-lost"),
        pytest.param(unknown_job, NotFoundError, id="not-found"),
        pytest.param(failed_job, TaskFailedError, id="task-failed"),
        pytest.param(deadline_passed, TaskTimeoutError, id="task-timeout"),
        pytest.param(closed_client, ClientClosedError, id="client-closed"),
        pytest.param(bad_argument, ValidationError, id="bad-argument"),
        pytest.param(key_with_a_newline, ValidationError, id="bad-key"),
    ],
)
async def test_key_not_in_error_text(
    places: Places,
    scenario: Callable[[Places], Awaitable[object]],
    kind: type[LegnextError],
) -> None:
    """No error's ``str()`` or ``repr()`` (nor its causes') shows the key, even if echoed."""
    with pytest.raises(kind) as info:
        await scenario(places)
    assert_no_key(info.value)


async def test_key_not_in_debug_logs(caplog: pytest.LogCaptureFixture, emulator: Emulator) -> None:
    """A whole run through the emulator, errors and retries included, logs nothing of the key."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="legnext_async")
    emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", 429, retry_after=0))
    emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 503))
    emulator.add_fault(Fault.garbage("GET /api/v1/job/*"))
    emulator.add_fault(Fault.answer_lost("POST /api/v1/inpaint", after=1))
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=FAST_RETRY
    ) as client:
        grid = await (await client.diffusion("a lighthouse at dusk"))
        await (await client.inpaint(grid.job_id, 0, mask=MASK, remix_prompt="a tree"))
        await client.get_task(grid.job_id)
        await client.balance()
        with pytest.raises(NotFoundError):
            await client.get_task(JOB_ID)
        with pytest.raises(SubmissionOutcomeUnknownError):
            await client.inpaint(grid.job_id, 1, mask=MASK, remix_prompt="a tree")
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert any(record.name == "legnext_async" for record in caplog.records)
    for record in caplog.records:
        assert API_KEY not in formatter.format(record)
        assert API_KEY not in repr(record.args)


async def test_key_not_in_handle_result_or_task_reprs(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Handles, results and tasks, whose reprs end up in logs and tracebacks, omit the key."""
    handle = await client.inpaint(emulator.seed_job(), 0, mask=MASK, remix_prompt="a tree")
    result = await handle
    task = await client.get_task(handle.job_id)
    elsewhere = client.task(handle.job_id)
    for thing in (handle, result, result.task, task, elsewhere, client, client.poll, client.retry):
        assert API_KEY not in repr(thing)


# --- configuration from the environment ------------------------------------------------------


async def test_key_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """Without arguments, ``LEGNEXT_API_KEY`` and ``LEGNEXT_BASE_URL`` are used."""
    monkeypatch.setenv("LEGNEXT_API_KEY", API_KEY)
    monkeypatch.setenv("LEGNEXT_BASE_URL", emulator.base_url)
    async with LegnextClient() as client:
        balance = await client.balance()
    assert client.base_url == emulator.base_url
    assert balance.available_credits == emulator.balance(API_KEY).credits


async def test_arguments_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """Explicit ``api_key`` and ``base_url`` override the environment variables."""
    monkeypatch.setenv("LEGNEXT_API_KEY", "e" * 64)
    monkeypatch.setenv("LEGNEXT_BASE_URL", "https://api.example.com/api")
    async with LegnextClient(api_key=API_KEY, base_url=emulator.base_url) as client:
        await client.balance()
    assert client.base_url == emulator.base_url


def test_base_url_defaults_to_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither argument nor ``LEGNEXT_BASE_URL``, the production URL is used."""
    monkeypatch.delenv("LEGNEXT_BASE_URL", raising=False)
    assert LegnextClient(api_key=API_KEY).base_url == "https://api.legnext.ai/api"


def test_missing_key_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither argument nor ``LEGNEXT_API_KEY``, construction fails naming ``api_key``."""
    monkeypatch.delenv("LEGNEXT_API_KEY", raising=False)
    with pytest.raises(ValidationError) as info:
        LegnextClient(base_url="http://127.0.0.1:1/api")
    assert info.value.field == "api_key"
    assert "LEGNEXT_API_KEY" in str(info.value)


def test_environment_base_url_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain ``http://`` remote ``LEGNEXT_BASE_URL`` is refused like the argument would be."""
    monkeypatch.setenv("LEGNEXT_BASE_URL", "http://api.example.com/api")
    with pytest.raises(ValidationError) as info:
        LegnextClient(api_key=API_KEY)
    assert info.value.field == "base_url"
