"""Webhook callbacks: bodies, duplicates, delay, and refusal of non-loopback hosts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest
from aiohttp import web

from legnext_async.emulator import Emulator
from legnext_async.emulator._callbacks import callback_allowed

from .conftest import Api, EmulatorFactory, Receiver


async def wait_for(receiver: Receiver, count: int, emulator: Emulator) -> None:
    """Finish every job on the emulator's virtual clock, deliver the callbacks now due, and
    check that ``receiver`` holds ``count`` bodies (no polling: the flush waits for them)."""
    emulator.advance(3600)
    await emulator.flush_callbacks()
    assert len(receiver.bodies) == count


async def test_wrapped_callback(api: Api, receiver: Receiver) -> None:
    """A finished job posts {"timestamp": int, "data": task} to its callback once."""
    job_id = (await api.create("diffusion", {"text": "x", "callback": receiver.url}))["job_id"]
    await wait_for(receiver, 1, api.emulator)
    (body,) = receiver.bodies
    assert set(body) == {"timestamp", "data"}
    assert isinstance(body["timestamp"], int)
    assert body["data"]["job_id"] == job_id
    assert body["data"]["status"] == "completed"
    assert body["data"]["config"]["webhook_config"] == {"endpoint": receiver.url, "secret": ""}
    assert body["data"] == await api.job(job_id)
    (record,) = api.emulator.callback_log
    assert (record.outcome, record.status) == ("delivered", 200)


async def test_failed_job_posts_too(api: Api, receiver: Receiver) -> None:
    """A failed job is also posted, with status failed."""
    api.emulator.fail_next()
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 1, api.emulator)
    assert receiver.bodies[0]["data"]["status"] == "failed"


async def test_bare_callback(make_emulator: EmulatorFactory, api: Api, receiver: Receiver) -> None:
    """callback_body="bare" posts the task object itself."""
    api.emulator = await make_emulator(callback_body="bare")
    job_id = (await api.create("diffusion", {"text": "x", "callback": receiver.url}))["job_id"]
    await wait_for(receiver, 1, api.emulator)
    assert receiver.bodies[0]["job_id"] == job_id


async def test_duplicates(make_emulator: EmulatorFactory, api: Api, receiver: Receiver) -> None:
    """callback_duplicates=3 delivers the same body three times."""
    api.emulator = await make_emulator(callback_duplicates=3)
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 3, api.emulator)
    assert receiver.bodies[0]["data"] == receiver.bodies[2]["data"]
    assert [r.delivery for r in api.emulator.callback_log] == [1, 2, 3]


async def test_delay_is_virtual(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """callback_delay holds the post for that many virtual seconds after the job ends."""
    emu = await make_emulator(
        time_scale=1.0, callback_delay=600, durations={"diffusion": (100.0, 100.0)}
    )
    api.emulator = emu
    job_id = (await api.create("diffusion", {"text": "x", "callback": receiver.url}))["job_id"]
    emu.advance(200)
    assert (await api.job(job_id))["status"] == "completed"
    await emu.flush_callbacks()
    assert receiver.bodies == []
    emu.advance(600)
    await emu.flush_callbacks()
    assert len(receiver.bodies) == 1
    ended_at = emu.job(job_id).ended_at
    assert ended_at is not None
    assert receiver.bodies[0]["timestamp"] >= int(ended_at) + 600


async def test_no_callback_before_the_job_ends(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """Nothing is posted while a job is still running."""
    api.emulator = await make_emulator(time_scale=1.0)
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await api.emulator.flush_callbacks()
    assert receiver.bodies == []
    await wait_for(receiver, 1, api.emulator)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "https://webhook.site/d0ca59bc-35a6-4a1e-b1b1-aea7faeb7f67", id="webhook-site"
        ),
        pytest.param("http://10.0.0.1/hook", id="private-ip"),
        pytest.param("http://127.0.0.1@example.com/hook", id="userinfo-trick"),
        pytest.param("http://2130706433/hook", id="integer-ip"),
        pytest.param("http://localhost.example.com/hook", id="localhost-prefix"),
    ],
)
async def test_non_loopback_hosts_are_refused(
    make_emulator: EmulatorFactory, api: Api, url: str
) -> None:
    """A callback to a non-loopback host is recorded as refused and never contacted."""
    emu = await make_emulator()
    api.emulator = emu
    # Any connection attempt would need the callback session; make one impossible.
    session = emu._callbacks.session
    assert session is not None
    await session.close()
    job_id = (await api.create("diffusion", {"text": "x", "callback": url}))["job_id"]
    emu.advance(3600)
    await emu.flush_callbacks()
    (record,) = emu.callback_log
    assert record.outcome == "refused"
    assert record.job_id == job_id
    assert record.url == url
    assert record.status is None


async def test_allowed_hosts_opt_in(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """A host listed in callback_allowed_hosts is contacted."""
    emu: Emulator = await make_emulator(callback_allowed_hosts=["127.0.0.1"])
    api.emulator = emu
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 1, api.emulator)


async def test_localhost_name_is_allowed(api: Api, receiver: Receiver) -> None:
    """The name ``localhost`` counts as loopback."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    await api.create("diffusion", {"text": "x", "callback": url})
    await wait_for(receiver, 1, api.emulator)


async def test_receiver_error_is_recorded(api: Api, receiver: Receiver) -> None:
    """A non-2xx answer from the receiver is recorded as a failed delivery."""
    receiver.status = 500
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 1, api.emulator)
    (record,) = api.emulator.callback_log
    assert (record.outcome, record.status) == ("failed", 500)


async def test_unreachable_receiver_is_recorded(api: Api) -> None:
    """A refused connection on loopback is recorded as failed, not raised."""
    await api.create("diffusion", {"text": "x", "callback": "http://127.0.0.1:9/hook"})
    api.emulator.advance(3600)
    await api.emulator.flush_callbacks()
    assert api.emulator.callback_log[0].outcome == "failed"


async def test_callbacks_can_be_disabled(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """callbacks_enabled=False posts nothing."""
    api.emulator = await make_emulator(callbacks_enabled=False)
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    api.emulator.advance(3600)
    await api.emulator.flush_callbacks()
    assert receiver.bodies == []
    assert api.emulator.callback_log == []


async def test_queued_job_callback(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """A job that waited in the queue is still posted when it ends."""
    api.emulator = await make_emulator(concurrency_limit=1, over_limit="queue")
    await api.create("diffusion", {"text": "x"})
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 1, api.emulator)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://xn--/hook", id="empty-punycode-label"),
        pytest.param("http://a.xn--/hook", id="empty-punycode-tld"),
        pytest.param("not a url at all", id="no-scheme"),
    ],
)
def test_a_host_that_does_not_decode_is_not_allowed(url: str) -> None:
    """A URL whose host is not valid IDNA is refused, not an error, even if its text is listed."""
    assert callback_allowed(url, frozenset({"xn--", "a.xn--"})) is False


async def test_flush_waits_for_a_delivery_the_worker_started(api: Api) -> None:
    """flush_callbacks() returns only once a delivery already under way is recorded."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow_hook(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({"success": True})

    app = web.Application()
    app.router.add_post("/hook", slow_hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        await api.create("diffusion", {"text": "x", "callback": url})
        api.emulator.advance(3600)
        await asyncio.wait_for(arrived.wait(), timeout=5)  # the worker is delivering it
        flush = asyncio.create_task(api.emulator.flush_callbacks())
        release.set()
        await flush
        (record,) = api.emulator.callback_log
        assert (record.outcome, record.status) == ("delivered", 200)
    finally:
        await runner.cleanup()


async def test_signed_deliveries(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """callback_secret signs each delivery: hex HMAC-SHA256 of "<timestamp>." + body, the
    timestamp being the virtual time in whole seconds."""
    api.emulator = emu = await make_emulator(callback_secret="s3cret", time_scale=1.0)
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 1, emu)
    (headers,), (raw,) = receiver.headers, receiver.raw
    stamp = headers["X-Legnext-Timestamp"]
    expected = hmac.new(b"s3cret", f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    assert headers["X-Legnext-Signature"] == expected
    assert abs(int(stamp) - emu.now()) <= 1


async def test_unsigned_by_default(api: Api, receiver: Receiver) -> None:
    """Without a secret, deliveries carry no signature headers (as the vendor's seem not to)."""
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 1, api.emulator)
    assert "X-Legnext-Signature" not in receiver.headers[0]


async def test_lost_deliveries(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """callback_loss=1 drops every delivery, logged as lost; nothing reaches the receiver."""
    api.emulator = emu = await make_emulator(callback_loss=1.0, callback_duplicates=2)
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 0, emu)
    assert [r.outcome for r in emu.callback_log] == ["lost", "lost"]


async def test_intermediate_status(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """callback_intermediate posts the job when it starts processing, then when it ends."""
    api.emulator = emu = await make_emulator(callback_intermediate=True)
    await api.create("diffusion", {"text": "x", "callback": receiver.url})
    await wait_for(receiver, 2, emu)
    assert sorted(body["data"]["status"] for body in receiver.bodies) == [
        "completed",
        "processing",
    ]


async def test_jitter_reorders_deliveries(
    make_emulator: EmulatorFactory, api: Api, receiver: Receiver
) -> None:
    """callback_jitter delays each delivery at random: the processing one may come last."""
    api.emulator = emu = await make_emulator(
        callback_intermediate=True,
        callback_jitter=10_000,
        seed=3,
        durations={"diffusion": (5.0, 5.0)},
    )
    for _ in range(6):
        await api.create("diffusion", {"text": "x", "callback": receiver.url})
    emu.advance(30_000)
    await emu.flush_callbacks()
    assert len(receiver.bodies) == 12
    last: dict[str, str] = {}
    for body in receiver.bodies:
        last[body["data"]["job_id"]] = body["data"]["status"]
    assert "processing" in last.values()  # some job's start was delivered after its end


@pytest.mark.parametrize(
    ("options", "keyword"),
    [
        pytest.param({"callback_loss": 1.5}, "callback_loss", id="loss"),
        pytest.param({"callback_jitter": -1.0}, "callback_jitter", id="jitter"),
    ],
)
def test_bad_callback_options_name_the_keyword(options: dict[str, float], keyword: str) -> None:
    """A nonsensical delivery option raises ValueError naming its keyword."""
    with pytest.raises(ValueError, match=keyword):
        Emulator(**options)  # type: ignore[arg-type]
