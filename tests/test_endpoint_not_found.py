"""A 404 on a request that names no job says the URL is not an endpoint, and shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from legnext_async import EndpointNotFoundError, LegnextClient, NotFoundError, UpscaleType

from .conftest import API_KEY, FAST_RETRY, fast_poll

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from legnext_async.emulator import Emulator


@pytest.fixture
async def misrouted(emulator: Emulator) -> AsyncIterator[LegnextClient]:
    """A client whose base_url lacks the emulator's ``/api`` path."""
    async with LegnextClient(
        api_key=API_KEY,
        base_url=emulator.base_url.removesuffix("/api"),
        poll=fast_poll(),
        retry=FAST_RETRY,
    ) as client:
        yield client


async def test_a_submission_to_a_wrong_path_names_the_url(
    misrouted: LegnextClient, emulator: Emulator
) -> None:
    """A job-creating POST answered 404 raises EndpointNotFoundError with the URL tried."""
    url = f"{misrouted.base_url}/v1/diffusion"
    with pytest.raises(EndpointNotFoundError) as caught:
        await misrouted.diffusion("a lighthouse")
    error = caught.value
    assert (error.url, error.status, error.method, error.path) == (
        url,
        404,
        "POST",
        "/v1/diffusion",
    )
    assert f"no API endpoint at {url}; check base_url" in str(error)
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert [record.status for record in emulator.requests] == [404]  # sent once, no job
    assert emulator.jobs == []


async def test_a_balance_read_at_a_wrong_path_names_the_url(misrouted: LegnextClient) -> None:
    """``GET /account/balance`` answered 404 is an endpoint not found, too."""
    with pytest.raises(EndpointNotFoundError) as caught:
        await misrouted.balance()
    assert caught.value.url == f"{misrouted.base_url}/account/balance"


async def test_old_except_clauses_still_catch_it(misrouted: LegnextClient) -> None:
    """EndpointNotFoundError is a NotFoundError, so existing handlers keep working."""
    with pytest.raises(NotFoundError):
        await misrouted.balance()


async def test_an_unknown_job_is_still_a_plain_not_found(client: LegnextClient) -> None:
    """A status read answered 404 means the job is unknown, not the endpoint."""
    with pytest.raises(NotFoundError) as caught:
        await client.get_task("no-such-job")
    assert type(caught.value) is NotFoundError


async def test_a_follow_up_of_an_unknown_parent_is_a_plain_not_found(
    client: LegnextClient,
) -> None:
    """A follow-up answered 404 is about the job its body names, not the endpoint."""
    with pytest.raises(NotFoundError) as caught:
        await client.upscale("no-such-job", 0, type=UpscaleType.SUBTLE)
    assert type(caught.value) is NotFoundError
    assert "no-such-job" in str(caught.value)
