"""Callbacks end to end: a WebhookReceiver on 127.0.0.1, the emulator posting to it.

The client's engine runs on a fake clock that moves only when a test moves it, so no
status read happens unless the test says so: a wait that ends here ended by its callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import time
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from legnext_async import (
    LegnextClient,
    LegnextError,
    MemoryJobStore,
    RecordState,
    SQLiteJobStore,
    SubmissionOutcomeUnknownError,
    TaskFailedError,
)
from legnext_async.emulator import Emulator, Fault
from legnext_async.webhooks import (
    ACCEPTED,
    REFUSED,
    FinishedJob,
    WebhookReceiver,
    sign,
)

from .conftest import API_KEY, FAST_RETRY, SCALE, fast_poll, serving
from .fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from legnext_async import JobStore, Task, TaskHandle
    from legnext_async._results import ImageResult

T = TypeVar("T")
SECRET = "whsec-test-0123456789"
JOB_ID = "5dd94ec3-7282-4f04-9445-59e850ef1822"


@contextlib.asynccontextmanager
async def hosted(**options: Any) -> AsyncIterator[WebhookReceiver]:
    """A receiver mounted at ``/hooks`` of an aiohttp application on 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    receiver = WebhookReceiver(f"http://127.0.0.1:{port}/hooks", **options)
    app = web.Application()
    app.add_subapp("/hooks", receiver.app())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield receiver
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def setup(
    *, signed: bool = True, store: JobStore | str | None = None, **emulator_options: Any
) -> AsyncIterator[tuple[Emulator, WebhookReceiver, LegnextClient, FakeClock]]:
    """An emulator posting callbacks (signed or not), a receiver for them, and a client on
    a fake clock that moves the emulator's in step."""
    secret = SECRET if signed else None
    async with (
        Emulator(
            api_key=API_KEY, time_scale=SCALE, seed=99, callback_secret=secret, **emulator_options
        ) as emulator,
        hosted(secret=secret, clock=emulator.now) as receiver,
        LegnextClient(
            api_key=API_KEY,
            base_url=emulator.base_url,
            poll=fast_poll(),
            retry=FAST_RETRY,
            webhook=receiver,
            store=store,
        ) as client,
    ):
        clock = FakeClock(also=lambda step: emulator.advance(step / SCALE))
        client._engine.use_clock(clock)
        yield emulator, receiver, client, clock


def reads(emulator: Emulator, job_id: str | None = None) -> int:
    """Status reads the emulator answered (of one job, if given)."""
    return sum(
        1
        for r in emulator.requests
        if r.method == "GET"
        and r.path.startswith("/api/v1/job/")
        and (job_id is None or r.path.endswith(job_id))
    )


def posts(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "POST")


async def finish_and_deliver(emulator: Emulator) -> None:
    """Let every job end on the emulator's clock, and deliver the callbacks now due."""
    emulator.advance(3600)
    await emulator.flush_callbacks()


async def diffusion(client: LegnextClient, **options: Any) -> TaskHandle[ImageResult]:
    return await client.diffusion("a lighthouse at dusk", **options)


async def heard(hook_called: asyncio.Future[T]) -> T:
    """What a hook was called with. The bound is no synchronisation (the hook is called by
    a delivery the test awaited): it turns a hook never called into a failure, not a hang."""
    async with asyncio.timeout(30):
        return await hook_called


def token_of(handle: TaskHandle[Any]) -> str:
    task = handle.last_task
    assert task is not None
    assert task.callback is not None
    return task.callback.rpartition("/")[2]


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers or {}) as response,
    ):
        return response.status, await response.text()


def forged(job_id: str, callback: str, status: str = "completed") -> bytes:
    """A delivery body for ``job_id`` made by someone other than the service."""
    return json.dumps(
        {
            "job_id": job_id,
            "task_type": "diffusion",
            "status": status,
            "config": {"webhook_config": {"endpoint": callback}},
            "output": {"image_url": "https://evil.example/x.png", "image_urls": []},
        }
    ).encode()


def signed_headers(body: bytes, stamp: float, secret: str = SECRET) -> dict[str, str]:
    text = str(int(stamp))
    return {"X-Legnext-Timestamp": text, "X-Legnext-Signature": sign(secret, text, body)}


# --- a callback ends the wait -------------------------------------------------------------


async def test_a_signed_callback_completes_a_wait_without_a_read() -> None:
    """With a secret, the callback's body resolves the handle: no status read at all."""
    async with setup() as (emulator, _, client, _clock):
        handle = await diffusion(client)
        waiter = asyncio.ensure_future(handle.wait())
        await finish_and_deliver(emulator)
        result = await waiter
    assert len(result.image_urls) == 4
    assert reads(emulator) == 0


async def test_an_unsigned_callback_is_confirmed_by_one_read() -> None:
    """Without a secret, the callback is a hint: one status read confirms it."""
    async with setup(signed=False) as (emulator, _, client, _clock):
        handle = await diffusion(client)
        waiter = asyncio.ensure_future(handle.wait())
        await finish_and_deliver(emulator)
        result = await waiter
    assert len(result.image_urls) == 4
    assert reads(emulator, handle.job_id) == 1


async def test_a_failed_job_raises_from_its_callback() -> None:
    """A callback saying ``failed`` ends the wait with TaskFailedError."""
    async with setup() as (emulator, _, client, _clock):
        emulator.fail_next()
        handle = await diffusion(client)
        waiter = asyncio.ensure_future(handle.wait())
        await finish_and_deliver(emulator)
        with pytest.raises(TaskFailedError):
            await waiter
    assert reads(emulator) == 0


@pytest.mark.parametrize("body", ["wrapped", "bare"])
async def test_both_body_shapes_are_read(body: str) -> None:
    """``{"timestamp", "data"}`` and the bare task both resolve the handle."""
    async with setup(callback_body=body) as (emulator, _, client, _clock):
        handle = await diffusion(client)
        waiter = asyncio.ensure_future(handle.wait())
        await finish_and_deliver(emulator)
        assert len((await waiter).image_urls) == 4
    assert reads(emulator) == 0


async def test_a_lost_callback_completes_by_polling() -> None:
    """Every callback lost: the safety net's read ends the wait."""
    async with setup(callback_loss=1.0) as (emulator, _, client, clock):
        handle = await diffusion(client)
        result = await clock.run(handle)
        await emulator.flush_callbacks()
    assert len(result.image_urls) == 4
    assert [r.outcome for r in emulator.callback_log] == ["lost"]
    assert reads(emulator, handle.job_id) == 1  # one read, past the job's window


async def test_duplicates_cost_one_read_and_one_hook() -> None:
    """Three identical unsigned deliveries: one confirming read, the hook called once."""
    seen: list[FinishedJob] = []
    async with setup(signed=False, callback_duplicates=3) as (emulator, receiver, client, _):
        receiver.on_finished(seen.append)
        handle = await diffusion(client)
        waiter = asyncio.ensure_future(handle.wait())
        await finish_and_deliver(emulator)
        await waiter
        await client._desk.settle()  # type: ignore[union-attr]
        await receiver.drain()
    assert reads(emulator, handle.job_id) == 1
    assert [job.job_id for job in seen] == [handle.job_id]
    assert [r.outcome for r in emulator.callback_log] == ["delivered"] * 3


async def test_an_older_status_delivered_late_changes_nothing() -> None:
    """A ``pending`` delivered after ``processing`` (out of order) is not a step back."""
    async with setup() as (emulator, receiver, client, _):
        handle = await diffusion(client)
        url = f"{receiver.public_url}/{token_of(handle)}"
        for status in ("processing", "pending"):
            body = forged(handle.job_id, url, status=status)
            answer, _ = await post(url, body, signed_headers(body, emulator.now()))
            await client._desk.settle()  # type: ignore[union-attr]
            assert answer == ACCEPTED
        assert handle.last_task is not None
        assert handle.last_task.status.value == "processing"


# --- what is refused ------------------------------------------------------------------------


async def test_a_forged_callback_does_not_complete_a_running_job() -> None:
    """Without a secret, a forged ``completed`` is checked by a read, which says running."""
    async with setup(signed=False) as (emulator, receiver, client, _clock):
        handle = await diffusion(client)
        url = f"{receiver.public_url}/{token_of(handle)}"
        status, _ = await post(url, forged(handle.job_id, url))
        await client._desk.settle()  # type: ignore[union-attr]
        assert status == ACCEPTED  # a hint is taken, and checked
        assert not handle.done
        assert reads(emulator, handle.job_id) == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body, now: {}, id="unsigned"),
        pytest.param(lambda body, now: signed_headers(body, now, "wrong"), id="bad-signature"),
        pytest.param(lambda body, now: signed_headers(body, now - 10_000), id="stale"),
        pytest.param(lambda body, now: signed_headers(body, now + 10_000), id="from-the-future"),
        pytest.param(
            lambda body, now: {**signed_headers(body, now), "X-Legnext-Timestamp": "soon"},
            id="unreadable-timestamp",
        ),
    ],
)
async def test_with_a_secret_an_unproven_delivery_is_refused(headers: Any) -> None:
    """Unsigned, badly signed or stale deliveries are refused, and the job still runs."""
    async with setup() as (emulator, receiver, client, _clock):
        handle = await diffusion(client)
        url = f"{receiver.public_url}/{token_of(handle)}"
        body = forged(handle.job_id, url)
        status, _ = await post(url, body, headers(body, emulator.now()))
        await client._desk.settle()  # type: ignore[union-attr]
        assert status == REFUSED
        assert not handle.done
    assert reads(emulator) == 0


async def test_a_signed_delivery_for_another_job_is_refused() -> None:
    """A body signed for one job, replayed to another job's URL, is refused (its echoed
    callback URL names the other token)."""
    async with setup() as (emulator, receiver, client, _clock):
        first, second = await diffusion(client), await diffusion(client)
        captured = forged(first.job_id, f"{receiver.public_url}/{token_of(first)}")
        status, _ = await post(
            f"{receiver.public_url}/{token_of(second)}",
            captured,
            signed_headers(captured, emulator.now()),
        )
        assert status == REFUSED
        assert not second.done


class CountingListener:
    """A plain fake of the client's side: it issued every token, and counts deliveries."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str, bool]] = []

    async def delivered(self, token: str, task: Task, *, signed: bool) -> bool:
        self.deliveries.append((token, task.status.value, signed))
        return True


async def test_a_replayed_delivery_is_acknowledged_and_not_passed_on() -> None:
    """The same signed delivery twice: both answered 200, the client hears of it once."""
    now = 1_700_000_000.0
    receiver = WebhookReceiver("https://hooks.example.com/x", secret=SECRET, clock=lambda: now)
    listener = CountingListener()
    receiver.attach(listener)
    token = "T" * 32
    body = forged(JOB_ID, f"{receiver.public_url}/{token}")
    headers = signed_headers(body, now)
    first = await receiver.handle(body, headers, token=token)
    again = await receiver.handle(body, headers, token=token)
    assert (first, again) == (ACCEPTED, ACCEPTED)
    assert listener.deliveries == [(token, "completed", True)]


async def test_a_never_issued_token_is_refused_like_a_missing_path() -> None:
    """A token never issued gets exactly the answer of a path that does not exist."""
    async with setup(signed=False) as (_, receiver, client, _clock):
        handle = await diffusion(client)
        valid = forged(handle.job_id, "")
        made_up = await post(f"{receiver.public_url}/{'A' * 32}", valid)
        malformed = await post(f"{receiver.public_url}/not-a-token", valid)
        nowhere = await post(f"{receiver.public_url}/a/b/c", valid)
    assert made_up == malformed == nowhere
    assert made_up[0] == REFUSED


async def test_a_body_over_the_cap_is_refused() -> None:
    """A body longer than ``max_body_bytes`` is refused like any other refusal."""
    async with setup(signed=False) as (_, receiver, client, _clock):
        handle = await diffusion(client)
        url = f"{receiver.public_url}/{token_of(handle)}"
        huge = forged(handle.job_id, url)[:-1] + b', "pad": "' + b"x" * (300 * 1024) + b'"}'
        answer = await post(url, huge)
        nowhere = await post(f"{receiver.public_url}/a/b/c", huge)
        assert answer == nowhere
        assert answer[0] == REFUSED
        assert not handle.done


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="a-list"),
        pytest.param(b'{"data": {"job_id": "../etc"}}', id="a-bad-job-id"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep"),
    ],
)
async def test_a_body_without_a_task_is_refused(body: bytes) -> None:
    """Bodies that carry no task are refused, at bounded cost."""
    async with hosted() as receiver:
        assert await receiver.handle(body, {}, token="A" * 32) == REFUSED


# --- the store: jobs awaited nowhere, lost answers ----------------------------------------


async def test_a_callback_for_a_job_awaited_nowhere_lands_in_the_store(tmp_path: Path) -> None:
    """Another client submitted the job and left; this one's receiver records its finish
    and calls the hook with the key."""
    db = str(tmp_path / "jobs.db")
    finished: asyncio.Future[FinishedJob] = asyncio.get_running_loop().create_future()
    async with setup(store=db) as (emulator, receiver, _client, _clock):
        receiver.on_finished(finished.set_result)
        other_receiver = WebhookReceiver(receiver.public_url)  # the other process's
        async with LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, store=db, webhook=other_receiver
        ) as other:
            handle = await other.diffusion("a lighthouse", key="job-1")
        await finish_and_deliver(emulator)
        job = await heard(finished)
        assert job.key == "job-1"
        assert job.job_id == handle.job_id
    async with SQLiteJobStore(db) as store:
        record = await store.get("job-1")
    assert record is not None
    assert record.state is RecordState.COMPLETED
    assert reads(emulator) == 0


async def test_a_lost_answer_is_settled_by_its_callback() -> None:
    """The POST's answer was lost; the callback ties the job to the key: the record gets
    the job id, and the key's next call returns the job without paying again."""
    store = MemoryJobStore()
    async with setup(store=store) as (emulator, receiver, client, _clock):
        emulator.add_fault(Fault.answer_lost("POST /api/v1/diffusion"))
        with pytest.raises(SubmissionOutcomeUnknownError):
            await client.diffusion("a lighthouse", key="lost-1")
        finished: asyncio.Future[FinishedJob] = asyncio.get_running_loop().create_future()
        receiver.on_finished(finished.set_result)
        await finish_and_deliver(emulator)
        job = await heard(finished)
        again = await client.diffusion("a lighthouse", key="lost-1")
        result = await again
    (made,) = [j.job_id for j in emulator.jobs]
    assert job.key == "lost-1"
    assert job.job_id == again.job_id == made
    assert len(result.image_urls) == 4
    assert posts(emulator) == 1
    record = await store.get("lost-1")
    assert record is not None
    assert record.state is RecordState.COMPLETED


async def test_an_unsigned_callback_settles_a_lost_answer_only_after_a_read() -> None:
    """Without a secret, the job id a delivery names is adopted only once a status read of
    it echoes the token's URL."""
    store = MemoryJobStore()
    async with setup(signed=False, store=store) as (emulator, receiver, client, _clock):
        emulator.add_fault(Fault.answer_lost("POST /api/v1/diffusion"))
        with pytest.raises(SubmissionOutcomeUnknownError):
            await client.diffusion("a lighthouse", key="lost-1")
        record = await store.get("lost-1")
        assert record is not None
        assert record.callback_token is not None
        url = f"{receiver.public_url}/{record.callback_token}"
        decoy = emulator.seed_job("diffusion")  # a real job, submitted without this URL
        status, _ = await post(url, forged(decoy, url))
        await client._desk.settle()  # type: ignore[union-attr]
        assert status == ACCEPTED
        unsettled = await store.get("lost-1")
        assert unsettled is not None
        assert unsettled.job_id is None
        await finish_and_deliver(emulator)
        await client._desk.settle()  # type: ignore[union-attr]
        settled = await store.get("lost-1")
    assert settled is not None
    assert settled.state is RecordState.COMPLETED
    assert settled.job_id == emulator.jobs[0].job_id != decoy


async def test_a_restored_job_resolves_from_its_callback(tmp_path: Path) -> None:
    """A job resumed from the store after a restart is resolved by its callback."""
    db = str(tmp_path / "jobs.db")
    async with setup(store=db) as (emulator, receiver, client, _clock):
        other = LegnextClient(
            api_key=API_KEY,
            base_url=emulator.base_url,
            store=db,
            webhook=WebhookReceiver(receiver.public_url),
        )
        async with other:
            await other.diffusion("a lighthouse", key="job-1")
        (handle,) = await client.resume()
        waiter = asyncio.ensure_future(handle.wait())
        await finish_and_deliver(emulator)
        assert (await waiter).task.status.value == "completed"
    assert reads(emulator) <= 1  # a restored job may be read once as its watch starts


async def test_a_key_called_again_is_the_same_request_despite_a_new_token() -> None:
    """The callback URL the receiver adds is not part of the request compared by a key."""
    async with setup(store=MemoryJobStore()) as (emulator, _, client, _clock):
        first = await client.diffusion("a lighthouse", key="k")
        second = await client.diffusion("a lighthouse", key="k")
    assert first.job_id == second.job_id
    assert posts(emulator) == 1


async def test_a_callback_given_by_the_caller_stays_the_callers() -> None:
    """``callback=`` given to a call is sent as given; that job is polled as usual."""
    async with setup() as (emulator, _, client, clock):
        handle = await diffusion(client, callback="http://127.0.0.1:9/mine")
        assert (await clock.run(handle)).image_urls
    (posted,) = [r.body for r in emulator.requests if r.method == "POST"]
    assert isinstance(posted, dict)
    assert posted["callback"] == "http://127.0.0.1:9/mine"
    assert reads(emulator, handle.job_id) > 0


# --- hooks ----------------------------------------------------------------------------------


async def test_a_failing_hook_is_logged_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook that raises is logged with its job; the next hook still runs."""
    ran: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def broken(job: FinishedJob) -> None:
        raise RuntimeError("the user's bug")

    async def fine(job: FinishedJob) -> None:
        ran.set_result(job.job_id)

    async with setup() as (emulator, receiver, client, _clock):
        receiver.on_finished(broken)
        receiver.on_finished(fine)
        handle = await diffusion(client)
        await finish_and_deliver(emulator)
        assert await heard(ran) == handle.job_id
        await receiver.drain()
    assert "the user's bug" in caplog.text
    assert handle.job_id in caplog.text


# --- the receiver alone ---------------------------------------------------------------------


async def test_a_receiver_serves_one_client() -> None:
    """A second client on the same receiver is refused."""
    receiver = WebhookReceiver("https://hooks.example.com/legnext")
    async with LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9", webhook=receiver):
        with pytest.raises(LegnextError, match="another client"):
            LegnextClient(api_key=API_KEY, base_url="http://127.0.0.1:9", webhook=receiver)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        pytest.param("http://hooks.example.com/x", "public_url", id="plain-http"),
        pytest.param("ftp://127.0.0.1/x", "public_url", id="not-http"),
        pytest.param("https://u:p@example.com/x", "public_url", id="credentials"),
    ],
)
def test_a_bad_public_url_is_refused(url: str, field: str) -> None:
    """The public URL must be an absolute https URL (http only for loopback)."""
    with pytest.raises(ValueError, match=field):
        WebhookReceiver(url)


def test_the_secret_is_not_in_the_repr() -> None:
    """A receiver's repr shows its URL, never its secret."""
    receiver = WebhookReceiver("https://hooks.example.com/x", secret=SECRET)
    assert SECRET not in repr(receiver)
    assert "signed" in repr(receiver)


async def test_the_tolerance_is_judged_on_the_receivers_clock() -> None:
    """A delivery stamped within ``tolerance`` of the receiver's clock passes the check;
    one stamped past it does not (the clock is injected: no real time passes)."""
    start = 1_700_000_000.0
    now = [start]
    receiver = WebhookReceiver(
        "https://hooks.example.com/x", secret=SECRET, tolerance=10, clock=lambda: now[0]
    )
    body = b"{}"
    assert receiver._verified(body, signed_headers(body, start - 10)) is not None
    assert receiver._verified(body, signed_headers(body, start - 11)) is None
    stamp = str(int(start * 1000))
    millis = {"X-Legnext-Timestamp": stamp, "X-Legnext-Signature": sign(SECRET, stamp, body)}
    assert receiver._verified(body, millis) is not None  # milliseconds are recognised
    now[0] += 11
    assert receiver._verified(body, signed_headers(body, start)) is None


def test_replay_memory_is_bounded() -> None:
    """The signatures kept for replays never exceed ``replay_memory``."""
    receiver = WebhookReceiver(
        "https://hooks.example.com/x", secret=SECRET, replay_memory=3, clock=time.time
    )
    for n in range(10):
        receiver._remember(f"sig-{n}")
    assert list(receiver._seen) == ["sig-7", "sig-8", "sig-9"]


async def test_without_a_store_a_dropped_handles_job_reaches_the_hooks() -> None:
    """A client without a store submits and drops the handle; the callback still reaches
    the hooks (a web app that answers at once and is told later)."""
    async with setup() as (emulator, receiver, client, _clock):
        finished: asyncio.Future[FinishedJob] = asyncio.get_running_loop().create_future()
        receiver.on_finished(finished.set_result)
        job_id = (await diffusion(client)).job_id
        gc.collect()  # the handle and its job are gone
        assert not client._desk._jobs  # type: ignore[union-attr]
        await finish_and_deliver(emulator)
        job = await heard(finished)
    assert job.job_id == job_id
    assert job.key is None
    assert job.task.status.value == "completed"


async def test_a_receiver_runs_on_a_port_of_its_own() -> None:
    """``receiver.app()`` served alone (no prefix) answers its deliveries."""
    async with Emulator(api_key=API_KEY, time_scale=SCALE, seed=5) as emulator:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        receiver = WebhookReceiver(f"http://127.0.0.1:{sock.getsockname()[1]}")
        runner = web.AppRunner(receiver.app(), access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            async with LegnextClient(
                api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), webhook=receiver
            ) as client:
                client._engine.use_clock(FakeClock())
                handle = await diffusion(client)
                waiter = asyncio.ensure_future(handle.wait())
                await finish_and_deliver(emulator)
                assert len((await waiter).image_urls) == 4
        finally:
            await runner.cleanup()
    assert [r.outcome for r in emulator.callback_log] == ["delivered"]


class BrokenLookupStore(MemoryJobStore):
    """A store whose token lookup fails, as a user's store might."""

    async def find_token(self, token: str) -> None:
        raise RuntimeError("the disk is gone")


async def test_a_failing_store_lookup_refuses_the_delivery_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store that fails to look a token up: the delivery is refused and the error logged."""
    async with setup(signed=False, store=BrokenLookupStore()) as (_, receiver, _client, _):
        body = forged(JOB_ID, "")
        status, _ = await post(f"{receiver.public_url}/{'A' * 32}", body)
    assert status == REFUSED
    assert "the disk is gone" in caplog.text


async def test_a_callback_that_beats_the_posts_answer_is_kept_for_it() -> None:
    """The callback comes while the POST's answer is still on its way: it is kept, and
    resolves the handle as soon as the answer names the job (no status read)."""
    received, release = asyncio.Event(), asyncio.Event()
    callback: list[str] = []
    gets: list[str] = []

    def task(status: str) -> dict[str, Any]:
        return {
            "job_id": JOB_ID,
            "task_type": "diffusion",
            "status": status,
            "config": {"webhook_config": {"endpoint": callback[0]}},
        }

    async def create(request: web.Request) -> web.Response:
        callback.append((await request.json())["callback"])
        received.set()
        await release.wait()  # the answer is slow: the callback overtakes it
        return web.json_response(task("pending"))

    async def read(request: web.Request) -> web.Response:
        gets.append(request.match_info["job_id"])
        return web.json_response(task("pending"))

    app = web.Application()
    app.router.add_post("/api/v1/diffusion", create)
    app.router.add_get("/api/v1/job/{job_id}", read)
    async with (
        serving(app) as base_url,
        hosted(secret=SECRET) as receiver,
        LegnextClient(
            api_key=API_KEY, base_url=base_url, retry=FAST_RETRY, webhook=receiver
        ) as client,
    ):
        client._engine.use_clock(FakeClock())
        submitting = asyncio.ensure_future(diffusion(client))
        await received.wait()
        body = json.dumps(task("completed")).encode()
        status, _ = await post(callback[0], body, signed_headers(body, time.time()))
        release.set()
        handle = await submitting
        finished = await heard(asyncio.ensure_future(handle.wait()))
    assert status == ACCEPTED
    assert finished.task.status.value == "completed"
    assert gets == []
