"""A finished status is final for a handle, whatever stale answers say afterwards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from legnext_async import LegnextClient, TaskFailedError, TaskStatus

from .conftest import API_KEY, FAST_RETRY, fast_poll
from .hostile import Recorder, job, recording

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager


FAILED = {"code": 10001, "message": "moderation", "raw_message": ""}


def answers(*statuses: str) -> AbstractAsyncContextManager[Recorder]:
    """A recording server answering status reads of ``job-1`` with ``statuses`` in turn."""
    bodies: list[dict[str, Any]] = []
    for status in statuses:
        body = job("job-1", status)
        if status == "failed":
            body["error"] = FAILED
        bodies.append(body)

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(bodies.pop(0))

    return recording(answer)


@pytest.fixture
async def stale_processing() -> AsyncIterator[Recorder]:
    """Answers ``completed``, then ``processing`` (a stale replica)."""
    async with answers("completed", "processing") as server:
        yield server


def client_for(server: Recorder) -> LegnextClient:
    """A client for ``server``, with test-speed polling and retries."""
    return LegnextClient(
        api_key=API_KEY, base_url=server.base_url, poll=fast_poll(), retry=FAST_RETRY
    )


async def test_refresh_after_completed_keeps_the_finished_snapshot(
    stale_processing: Recorder,
) -> None:
    """A ``processing`` answer after ``completed`` leaves the handle done, with the first
    snapshot."""
    async with client_for(stale_processing) as client:
        handle = client.task("job-1")
        finished = await handle.refresh()
        again = await handle.refresh()
        assert handle.done
        assert again is finished
        assert handle.last_task is finished
        result = await handle
    assert result.task is finished
    assert len(stale_processing.requests) == 2


async def test_updates_never_yield_a_running_snapshot_after_a_finished_one(
    stale_processing: Recorder,
) -> None:
    """After a stale ``processing``, ``updates()`` yields the finished snapshot alone."""
    async with client_for(stale_processing) as client:
        handle = client.task("job-1")
        finished = await handle.refresh()
        await handle.refresh()
        seen = [snapshot async for snapshot in handle.updates()]
    assert seen == [finished]
    assert len(stale_processing.requests) == 2


async def test_a_stale_answer_is_logged_at_debug(
    stale_processing: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """The ignored answer is logged at debug level, naming both statuses."""
    caplog.set_level(logging.DEBUG, logger="legnext_async")
    async with client_for(stale_processing) as client:
        handle = client.task("job-1")
        await handle.refresh()
        await handle.refresh()
    assert "job job-1: ignored status 'processing' after completed" in caplog.messages


async def test_completed_then_failed_keeps_the_result() -> None:
    """A job seen ``completed`` keeps its result when a later read says ``failed``."""
    async with (
        answers("completed", "failed") as server,
        client_for(server) as client,
    ):
        handle = client.task("job-1")
        result = await handle
        snapshot = await handle.refresh()
        assert snapshot.status is TaskStatus.COMPLETED
        assert await handle is result
    assert len(server.requests) == 2


async def test_failed_then_completed_keeps_the_failure() -> None:
    """A job seen ``failed`` keeps failing when a later read says ``completed``."""
    async with (
        answers("failed", "completed") as server,
        client_for(server) as client,
    ):
        handle = client.task("job-1")
        with pytest.raises(TaskFailedError) as first:
            await handle
        snapshot = await handle.refresh()
        assert snapshot.status is TaskStatus.FAILED
        with pytest.raises(TaskFailedError) as second:
            await handle
    assert second.value is first.value
    assert len(server.requests) == 2
