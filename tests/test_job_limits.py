"""Which limit a 429 is about, read from the words of its error body."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from legnext_async import LegnextClient, RateLimitError, RetryPolicy
from legnext_async._exceptions import rate_limit_kind
from legnext_async.emulator import Emulator, Fault
from legnext_async.emulator._errors import error_body

from .conftest import API_KEY

if TYPE_CHECKING:
    from legnext_async.emulator._errors import ErrorShape

JOB_LIMIT_MESSAGE = "Concurrent task limit reached (6); try again later"
RATE_LIMIT_MESSAGE = "Too many requests: rate limit exceeded"


@pytest.mark.parametrize(
    ("texts", "kind"),
    [
        pytest.param((JOB_LIMIT_MESSAGE,), "jobs", id="emulator-job-limit"),
        pytest.param(("concurrency limit exceeded",), "jobs", id="concurrency"),
        pytest.param(("You have too many running tasks",), "jobs", id="running-tasks"),
        pytest.param(("max active jobs reached",), "jobs", id="active-jobs"),
        pytest.param(("Task limit reached",), "jobs", id="task-limit"),
        pytest.param((RATE_LIMIT_MESSAGE,), "rate", id="emulator-rate-limit"),
        pytest.param(("rate_limit_exceeded",), "rate", id="rate-limit-code-word"),
        pytest.param(("Request was throttled",), "rate", id="throttled"),
        pytest.param(("Limit: 60 requests per minute",), "rate", id="per-minute"),
        pytest.param(("Too many requests, slow down",), "rate", id="too-many-requests"),
        pytest.param(("Too Many Requests",), "unknown", id="reason-phrase-only"),
        pytest.param(("429 Too Many Requests",), "unknown", id="status-line-only"),
        pytest.param(("Too many concurrent requests",), "unknown", id="both"),
        pytest.param(("Concurrent task limit", "rate limit"), "unknown", id="both-fields"),
        pytest.param(("Quota exceeded",), "unknown", id="neither"),
        pytest.param(("", ""), "unknown", id="empty"),
        pytest.param(("", JOB_LIMIT_MESSAGE), "jobs", id="raw-message-only"),
    ],
)
def test_the_kind_of_a_429_comes_from_its_words(texts: tuple[str, ...], kind: str) -> None:
    """Job words mean the active-job limit, rate words the request rate, else unknown."""
    assert rate_limit_kind(*texts) == kind


@pytest.mark.parametrize("shape", ["flat", "nested", "envelope"])
@pytest.mark.parametrize(
    ("message", "kind"),
    [
        pytest.param(JOB_LIMIT_MESSAGE, "jobs", id="job-limit"),
        pytest.param(RATE_LIMIT_MESSAGE, "rate", id="rate-limit"),
        pytest.param("Too Many Requests", "unknown", id="bare"),
    ],
)
async def test_rate_limit_error_kind_is_read_from_every_body_shape(
    emulator: Emulator, shape: ErrorShape, message: str, kind: str
) -> None:
    """A 429 in any of the three error body shapes carries the kind its message says."""
    body = error_body(shape, 429, message)
    emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 429, body=body))
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.get_task("job-1")
    assert info.value.kind == kind


async def test_a_429_without_a_json_body_is_of_unknown_kind(emulator: Emulator) -> None:
    """A gateway's HTML 429 says nothing about which limit it is."""
    html = "<html><body><h1>429 Too Many Requests</h1>rate limiting</body></html>"
    emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 429, body=html))
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.get_task("job-1")
    assert info.value.kind == "unknown"
