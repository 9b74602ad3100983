"""Scripted HTTP faults, checked at the transport level with a real client."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from legnext_async.emulator import Fault

from .conftest import KEY, Api, EmulatorFactory

HEADERS = {"x-api-key": KEY}


async def post_raw(api: Api, route: str, body: object) -> aiohttp.ClientResponse:
    """POST and read the whole body, letting transport errors propagate."""
    response = await api.session.post(
        f"{api.emulator.base_url}/v1/{route}", json=body, headers=HEADERS
    )
    async with response:
        await response.read()
    return response


async def test_status_fault_with_retry_after_seconds(api: Api) -> None:
    """A 429 fault answers 429 with a numeric Retry-After and creates no job."""
    api.emulator.add_fault(Fault.http_status("POST /api/v1/diffusion", 429, retry_after=7))
    response = await post_raw(api, "diffusion", {"text": "x"})
    assert response.status == 429
    assert response.headers["Retry-After"] == "7"
    assert api.emulator.jobs == []
    assert (await api.post("diffusion", {"text": "x"}))[0] == 200  # times=1: only once


async def test_status_fault_with_retry_after_date(api: Api) -> None:
    """Retry-After may be an HTTP-date."""
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    api.emulator.add_fault(Fault.http_status("POST /api/v1/*", 503, retry_after=when))
    response = await post_raw(api, "diffusion", {"text": "x"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "Wed, 02 Jan 2030 03:04:05 GMT"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_fault_has_a_body(api: Api, status: int) -> None:
    """5xx faults answer an error body in the configured shape."""
    api.emulator.add_fault(Fault.http_status("GET /api/v1/job/*", status))
    status_seen, body = await api.get("/v1/job/whatever")
    assert status_seen == status
    assert body["error"]["code"] == status


async def test_custom_fault_body(api: Api) -> None:
    """A fault's ``body`` is sent verbatim."""
    api.emulator.add_fault(Fault.http_status("* /api/*", 502, body="upstream timeout"))
    async with api.session.get(f"{api.emulator.base_url}/account/balance") as response:
        assert response.status == 502
        assert await response.text() == "upstream timeout"


async def test_disconnect_drops_the_connection(api: Api) -> None:
    """A disconnect fault closes the connection before any byte; no job is created."""
    api.emulator.add_fault(Fault.disconnect("POST /api/v1/inpaint"))
    parent = api.emulator.seed_job()
    body = {"jobId": parent, "imageNo": 0, "mask": {"url": "https://e.x/m.png"}}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_raw(api, "inpaint", body)
    assert [job.task_type for job in api.emulator.jobs] == ["diffusion"]
    assert api.emulator.requests[-1].status is None


async def test_truncated_body(api: Api) -> None:
    """A truncate fault sends less than its Content-Length, so reading fails."""
    api.emulator.add_fault(Fault.truncated("GET /api/account/balance", commit=True))
    async with api.session.get(
        f"{api.emulator.base_url}/account/balance", headers=HEADERS
    ) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_garbage_body(api: Api) -> None:
    """A garbage fault answers 200 with HTML instead of JSON."""
    api.emulator.add_fault(Fault.garbage("GET /api/v1/job/*"))
    async with api.session.get(f"{api.emulator.base_url}/v1/job/x", headers=HEADERS) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        with pytest.raises(aiohttp.ContentTypeError):
            await response.json()


async def test_latency(api: Api) -> None:
    """A latency fault holds the answer for its delay, then answers normally."""
    api.emulator.add_fault(Fault.latency("GET /api/account/balance", 0.2))
    started = time.monotonic()
    assert (await api.get("/account/balance"))[0] == 200
    assert time.monotonic() - started >= 0.19


async def test_latency_times_out_the_client(api: Api) -> None:
    """A client with a shorter timeout gives up during a latency fault."""
    api.emulator.add_fault(Fault.latency("GET /api/account/balance", 5))
    with pytest.raises(asyncio.TimeoutError):
        await api.session.get(
            f"{api.emulator.base_url}/account/balance",
            headers=HEADERS,
            timeout=aiohttp.ClientTimeout(total=0.1),
        )


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.answer_lost("POST /api/v1/diffusion"), id="disconnect"),
        pytest.param(Fault.answer_lost("POST /api/v1/diffusion", via="status"), id="status-502"),
        pytest.param(Fault.truncated("POST /api/v1/diffusion", commit=True), id="truncated"),
        pytest.param(Fault.garbage("POST /api/v1/diffusion", commit=True), id="garbage"),
    ],
)
async def test_answer_lost_creates_exactly_one_job(api: Api, fault: Fault) -> None:
    """With commit the job is created and billed although the client never sees its id."""
    api.emulator.add_fault(fault)
    try:
        response = await post_raw(api, "diffusion", {"text": "x"})
    except aiohttp.ClientError:
        pass
    else:
        assert response.status != 200 or response.content_type != "application/json"
    (job,) = api.emulator.jobs
    assert job.frozen == 80
    assert api.emulator.requests[-1].job_id == job.job_id


async def test_answer_lost_by_latency(api: Api) -> None:
    """A timed-out client's job exists when the fault processed the request first."""
    api.emulator.add_fault(Fault.answer_lost("POST /api/v1/diffusion", via="latency", delay=5))
    with pytest.raises(asyncio.TimeoutError):
        await api.session.post(
            f"{api.emulator.base_url}/v1/diffusion",
            json={"text": "x"},
            headers=HEADERS,
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    assert len(api.emulator.jobs) == 1


async def test_after_and_times(api: Api) -> None:
    """``after`` skips the first matches and ``times`` bounds how often a fault fires."""
    api.emulator.add_fault(Fault.http_status("GET /api/account/*", 500, after=1, times=2))
    statuses = [(await api.get("/account/balance"))[0] for _ in range(5)]
    assert statuses == [200, 500, 500, 200, 200]
    assert api.emulator.faults == ()


async def test_forever_fault_until_cleared(api: Api) -> None:
    """``times=None`` fires until clear_faults()."""
    api.emulator.add_fault(Fault.http_status("GET /api/account/balance", 503, times=None))
    assert [(await api.get("/account/balance"))[0] for _ in range(3)] == [503] * 3
    api.emulator.clear_faults()
    assert (await api.get("/account/balance"))[0] == 200


async def test_fault_route_must_name_method_and_path() -> None:
    """A malformed route pattern is rejected when the fault is built."""
    with pytest.raises(ValueError, match="route"):
        Fault.disconnect("inpaint")


async def test_request_log_does_not_store_the_key(api: Api) -> None:
    """The request log keeps method, path, status and body, never the API key."""
    await api.create("diffusion", {"text": "x"})
    (record,) = api.emulator.requests
    assert (record.method, record.path, record.status) == ("POST", "/api/v1/diffusion", 200)
    assert record.body == {"text": "x"}
    assert record.job_id is not None
    assert KEY not in repr(api.emulator.requests)


async def test_request_log_limit(make_emulator: Any, api: Api) -> None:
    """request_log_limit keeps only the newest records."""
    api.emulator = await make_emulator(request_log_limit=2)
    for _ in range(3):
        await api.get("/account/balance")
    await api.create("diffusion", {"text": "x"})
    assert [r.path for r in api.emulator.requests] == ["/api/account/balance", "/api/v1/diffusion"]


# --- random faults ---------------------------------------------------------------------


async def statuses(api: Api, n: int, path: str = "/account/balance") -> list[int]:
    """The statuses of ``n`` GETs of ``path``, one after the other."""
    return [(await api.get(path))[0] for _ in range(n)]


async def test_a_random_fault_fires_on_the_share_its_seed_dictates(api: Api) -> None:
    """With seed 1, a 10 % fault fires on exactly 91 of 1,000 matches, in every run."""
    api.emulator.add_fault(
        Fault.http_status("GET /api/account/balance", 503, probability=0.1, times=None)
    )
    seen = await statuses(api, 1000)
    assert seen.count(503) == 91
    assert seen.count(200) == 1000 - 91


@pytest.mark.parametrize(
    ("seed", "same"),
    [pytest.param(5, True, id="same-seed"), pytest.param(6, False, id="other-seed")],
)
async def test_random_faults_repeat_with_the_seed(
    make_emulator: EmulatorFactory, api: Api, seed: int, same: bool
) -> None:
    """Two emulators with the same seed fire a random fault on the same requests."""
    runs = []
    for emulator_seed in (5, seed):
        api.emulator = await make_emulator(seed=emulator_seed)
        api.emulator.add_fault(Fault.disconnect("GET /api/v1/job/*", probability=0.3, times=None))
        api.emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 404, times=None))
        for _ in range(200):
            with contextlib.suppress(aiohttp.ServerDisconnectedError):
                await api.get("/v1/job/x")
        runs.append([record.fault for record in api.emulator.requests])
    assert (runs[0] == runs[1]) is same
    assert 30 < runs[0].count("disconnect") < 90


async def test_a_fault_that_does_not_fire_lets_the_next_one_apply(api: Api) -> None:
    """A match a random fault passes over is offered to the next armed fault."""
    api.emulator.add_fault(
        Fault.http_status("GET /api/account/balance", 503, probability=0.5, times=None)
    )
    api.emulator.add_fault(Fault.http_status("GET /api/account/balance", 500, times=None))
    seen = await statuses(api, 40)
    assert set(seen) == {500, 503}


async def test_times_counts_firings_of_a_random_fault(api: Api) -> None:
    """``times`` bounds how often a random fault fires, not how often it matches."""
    api.emulator.add_fault(
        Fault.http_status("GET /api/account/balance", 503, probability=0.2, times=3)
    )
    seen = await statuses(api, 100)
    assert seen.count(503) == 3
    assert api.emulator.faults == ()


async def test_random_faults_do_not_change_job_ids(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """Fault draws have their own stream: arming one changes no job id or run time."""
    books: list[list[tuple[str, float]]] = []
    for armed in (False, True):
        api.emulator = await make_emulator(seed=3)
        if armed:
            api.emulator.add_fault(
                Fault.http_status("GET /api/account/*", 503, probability=0.5, times=None)
            )
        for _ in range(3):
            await api.get("/account/balance")
            await api.create("diffusion", {"text": "x"})
        books.append(
            [
                (job.job_id, round((job.ended_at or 0) - job.created_at, 6))
                for job in api.emulator.jobs
            ]
        )
    assert books[0] == books[1]


@pytest.mark.parametrize(
    "probability",
    [
        pytest.param(0.0, id="zero"),
        pytest.param(-0.1, id="negative"),
        pytest.param(1.5, id="above-one"),
        pytest.param(math.nan, id="nan"),
    ],
)
def test_probability_must_be_a_chance(probability: float) -> None:
    """A probability outside (0, 1] is refused when the fault is built."""
    with pytest.raises(ValueError, match="probability"):
        Fault.rate_limited("GET /api/*", probability=probability)


# --- rate-limit 429s -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message_of"),
    [
        pytest.param("envelope", lambda body: body["error"]["message"], id="envelope"),
        pytest.param("flat", lambda body: body["message"], id="flat"),
        pytest.param("nested", lambda body: body["error"]["message"], id="nested"),
    ],
)
async def test_rate_limited_says_it_is_a_rate_limit(
    make_emulator: EmulatorFactory,
    api: Api,
    shape: str,
    message_of: Callable[[Any], str],
) -> None:
    """A rate-limit fault answers 429 saying so, in the configured error shape."""
    api.emulator = await make_emulator(error_shape=shape)
    api.emulator.add_fault(Fault.rate_limited("POST /api/v1/diffusion", times=1))
    status, body = await api.post("diffusion", {"text": "x"})
    assert (status, message_of(body)) == (429, "Too many requests: rate limit exceeded")
    assert api.emulator.jobs == []


async def test_rate_limited_differs_from_the_job_limit(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """The account's own 429 (too many unfinished jobs) says something else."""
    api.emulator = await make_emulator(concurrency_limit=1)
    await api.create("diffusion", {"text": "x"})
    status, body = await api.post("diffusion", {"text": "x"})
    assert status == 429
    assert body["error"]["message"] == "Concurrent task limit reached (1); try again later"


async def test_rate_limited_fires_forever_with_retry_after(api: Api) -> None:
    """By default a rate-limit fault never disarms, and it may carry Retry-After."""
    api.emulator.add_fault(Fault.rate_limited("GET /api/account/balance", retry_after=2))
    for _ in range(3):
        async with api.session.get(
            f"{api.emulator.base_url}/account/balance", headers=HEADERS
        ) as response:
            assert (response.status, response.headers["Retry-After"]) == (429, "2")
    assert len(api.emulator.faults) == 1
