"""Job ids: only ids that stay one path segment reach a URL, from callers and from answers."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest
from aiohttp import web

from legnext_async import (
    ImageResult,
    LegnextClient,
    MalformedResponseError,
    SubmissionOutcomeUnknownError,
    TaskTimeoutError,
    ValidationError,
)

from .conftest import API_KEY, FAST_RETRY, fast_poll
from .hostile import Recorder, job, recording

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Ids that would leave ``/v1/job/{job_id}``, or that are not ids at all.
BAD_IDS = [
    pytest.param("..", id="dot-dot"),
    pytest.param(".", id="dot"),
    pytest.param("%2e%2e", id="escaped-dot-dot"),
    pytest.param("..%2F", id="dot-dot-escaped-slash"),
    pytest.param("%2F", id="escaped-slash"),
    pytest.param("x/y", id="slash"),
    pytest.param("x\\y", id="backslash"),
    pytest.param("x?admin=1", id="query"),
    pytest.param("x#frag", id="fragment"),
    pytest.param("x;y", id="semicolon"),
    pytest.param("\uff0e\uff0e", id="fullwidth-dot-dot"),
    pytest.param("x\uff0fy", id="fullwidth-slash"),
    pytest.param("%00", id="escaped-nul"),
    pytest.param("x\x00", id="nul"),
    pytest.param("\n", id="newline"),
    pytest.param("job-1\n", id="trailing-newline"),
    pytest.param(" job-1", id="leading-space"),
    pytest.param("j\u00f6b", id="non-ascii"),
    pytest.param("a" * 200, id="200-chars"),
    pytest.param("a" * 129, id="129-chars"),
    pytest.param("", id="empty"),
]

GOOD_IDS = [
    pytest.param("dcd56f27-3346-46ab-9e82-1bae444812f5", id="uuid"),
    pytest.param("1868588555208310784", id="numeric"),
    pytest.param("job-1", id="test-id"),
    pytest.param("A_b-9", id="underscore"),
    pytest.param("a" * 128, id="128-chars"),
]


async def answer_for_the_path(request: web.Request) -> web.Response:
    """A completed job whose id is the last path segment as sent, whatever was asked."""
    return web.json_response(job(unquote(request.raw_path.rsplit("/", 1)[-1])))


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    """A recording server that answers every request with a completed job."""
    async with recording(answer_for_the_path) as recorder:
        yield recorder


def client_for(recorder: Recorder) -> LegnextClient:
    """A client for ``recorder``, with test-speed polling and retries."""
    return LegnextClient(
        api_key=API_KEY, base_url=recorder.base_url, poll=fast_poll(), retry=FAST_RETRY
    )


@pytest.mark.parametrize("job_id", BAD_IDS)
async def test_task_refuses_a_bad_job_id(server: Recorder, job_id: str) -> None:
    """``client.task`` refuses an id that is not 1-128 of ``[A-Za-z0-9_-]``; nothing is sent."""
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match=r"1 to 128 characters from A-Z") as info:
            client.task(job_id)
    assert info.value.field == "job_id"
    assert server.requests == []


@pytest.mark.parametrize("job_id", BAD_IDS)
async def test_get_task_refuses_a_bad_job_id(server: Recorder, job_id: str) -> None:
    """``client.get_task`` refuses an id that is not 1-128 of ``[A-Za-z0-9_-]``; nothing is
    sent."""
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match=r"1 to 128 characters from A-Z") as info:
            await client.get_task(job_id)
    assert info.value.field == "job_id"
    assert server.requests == []


async def test_a_parent_job_id_is_checked_the_same_way(server: Recorder) -> None:
    """A follow-up's parent id (``jobId`` in a POST body) follows the same rule."""
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="1 to 128 characters"):
            await client.upscale("../../account/balance", 0)
    assert server.requests == []


def test_a_long_refused_id_is_not_echoed_whole() -> None:
    """The error shows the start of a long id and its length, not all of it."""
    with pytest.raises(ValidationError) as info:
        LegnextClient(api_key=API_KEY).task("/" * 5000)
    text = str(info.value)
    assert "(5000 characters)" in text
    assert len(text) < 200


@pytest.mark.parametrize("job_id", GOOD_IDS)
async def test_a_good_job_id_is_read_at_its_own_path(server: Recorder, job_id: str) -> None:
    """UUIDs, numeric ids and short test ids are read at ``/v1/job/{job_id}``, unchanged."""
    async with client_for(server) as client:
        task = await client.get_task(job_id)
    assert task.job_id == job_id
    assert [(r.method, r.target) for r in server.requests] == [("GET", f"/api/v1/job/{job_id}")]


@pytest.mark.parametrize(
    ("job_id", "target"),
    [
        pytest.param("x/y", "/api/v1/job/x%2Fy", id="slash"),
        pytest.param("x?admin=1", "/api/v1/job/x%3Fadmin=1", id="query"),
        pytest.param("x#frag", "/api/v1/job/x%23frag", id="fragment"),
        pytest.param("%2F", "/api/v1/job/%252F", id="escape"),
    ],
)
async def test_the_status_path_quotes_its_segment(
    server: Recorder, job_id: str, target: str
) -> None:
    """Below the check, the status path escapes the id, so it stays one segment regardless."""
    async with client_for(server) as client:
        await client._read_task_once(job_id)
    assert [r.target for r in server.requests] == [target]


# --- ids in answers -----------------------------------------------------------------------

HOSTILE_IDS = [
    pytest.param("../../account/balance", id="dot-dot-path"),
    pytest.param("x?admin=1", id="query"),
    pytest.param("%2e%2e", id="escaped-dot-dot"),
    pytest.param("a" * 129, id="too-long"),
    pytest.param("", id="empty"),
    pytest.param(1868588555208310784, id="number"),
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
async def test_a_submission_answered_with_a_bad_job_id_has_an_unknown_outcome(
    hostile: object,
) -> None:
    """A POST answer whose ``job_id`` is not an id: outcome unknown, one POST, no reads."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(job(hostile, "pending"))

    async with recording(answer) as server, client_for(server) as client:
        with pytest.raises(SubmissionOutcomeUnknownError) as info:
            await client.diffusion("a lighthouse")
    assert isinstance(info.value.__cause__, MalformedResponseError)
    assert "job_id" in str(info.value)
    assert API_KEY not in str(info.value)
    assert [(r.method, r.target) for r in server.requests] == [("POST", "/api/v1/diffusion")]


@pytest.mark.parametrize(
    "other",
    [
        pytest.param("job-2", id="another-job"),
        pytest.param("../../account/balance", id="dot-dot-path"),
    ],
)
async def test_a_status_answer_about_another_job_is_unreadable(other: str) -> None:
    """A status answer naming another job is a MalformedResponseError, retried at the same
    path, and never read as this job's status."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(job(other))

    async with recording(answer) as server, client_for(server) as client:
        with pytest.raises(MalformedResponseError, match="another job"):
            await client.get_task("job-1")
    assert len(server.requests) == FAST_RETRY.attempts
    assert {(r.method, r.target) for r in server.requests} == {("GET", "/api/v1/job/job-1")}


async def test_a_handle_never_takes_another_jobs_status() -> None:
    """A handle whose reads all name another job times out; it never sees that job's result."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(job("job-2"))

    async with recording(answer) as server, client_for(server) as client:
        handle = client.task("job-1", poll=fast_poll(timeout=30.0))
        with pytest.raises(TaskTimeoutError):
            await handle
    assert handle.job_id == "job-1"
    assert handle.last_task is None
    assert {r.target for r in server.requests} == {"/api/v1/job/job-1"}


@pytest.mark.parametrize(
    "answered",
    [
        pytest.param(None, id="absent"),
        pytest.param("", id="empty"),
        pytest.param("JOB-1", id="other-case"),
    ],
)
async def test_a_status_answer_without_the_id_keeps_the_asked_one(answered: str | None) -> None:
    """A status answer that leaves ``job_id`` out (or spells it in other case) gives a task
    with the id that was asked for, and follow-ups name that id."""

    async def answer(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response(job("job-9", "pending"))
        fields = job(answered)
        if answered is None:
            del fields["job_id"]
        return web.json_response(fields)

    async with recording(answer) as server, client_for(server) as client:
        result = await client.task("job-1")
        assert isinstance(result, ImageResult)
        assert result.job_id == "job-1"
        follow_up = await result.upscale(0)
    assert follow_up.job_id == "job-9"
    [post] = server.sent("POST")
    assert post.body["jobId"] == "job-1"
