"""as_completed: each item tells which input it was, and job ids are known on creation."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from legnext_async import BatchItem, ImageResult, LegnextClient, ValidationError
from legnext_async.emulator import Emulator

from .conftest import API_KEY, FAST_RETRY, MASK, fast_poll

if TYPE_CHECKING:
    from legnext_async import TaskHandle


async def test_each_item_tells_which_input_it_was(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Every item carries its input's position in ``jobs`` and the input itself, so a
    submission that failed before making a job is still known."""
    parent = emulator.seed_job("diffusion")
    first = await client.inpaint(parent, 0, mask=MASK, remix_prompt="a tree")
    jobs: list[Any] = [
        first,
        client.inpaint(parent, 1, mask=MASK, remix_prompt="a red balloon"),
        client.inpaint(parent, 9, mask=MASK),  # image 9 does not exist: refused before sending
    ]
    items = {item.position: item async for item in client.as_completed(jobs)}
    assert sorted(items) == [0, 1, 2]
    assert all(items[position].job is jobs[position] for position in items)
    assert items[0].handle is first
    assert isinstance(items[1].outcome, ImageResult)
    assert items[1].handle is not None
    assert items[1].outcome.job_id == items[1].handle.job_id
    assert items[2].handle is None
    assert isinstance(items[2].outcome, ValidationError)


async def test_items_still_unpack_as_handle_and_outcome(
    client: LegnextClient, emulator: Emulator
) -> None:
    """An item is a 2-tuple ``(handle, outcome)``, so ``async for handle, outcome in ...``
    keeps working."""
    parent = emulator.seed_job("diffusion")
    jobs = [client.inpaint(parent, 0, mask=MASK)]
    async for item in client.as_completed(jobs):
        handle, outcome = item
        assert isinstance(item, BatchItem)
        assert item == (handle, outcome)
        assert (item.handle, item.outcome) == (handle, outcome)
        assert len(item) == 2
        assert repr(item).startswith("BatchItem(position=0, handle=")


async def test_job_ids_are_reported_as_soon_as_jobs_are_created() -> None:
    """``on_submitted`` hears of every job (given as a handle or made by a submission) while
    all of them are still running, and of no submission that failed."""
    # Jobs here run only when the test advances the emulator's clock.
    async with (
        Emulator(api_key=API_KEY, time_scale=1.0, seed=5) as emulator,
        LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=FAST_RETRY
        ) as client,
    ):
        parent = emulator.seed_job("diffusion")
        given = await client.inpaint(parent, 0, mask=MASK)
        jobs: list[Any] = [
            given,
            client.inpaint(parent, 1, mask=MASK),
            client.inpaint(parent, 9, mask=MASK),  # refused before sending: no job
            client.inpaint(parent, 2, mask=MASK),
        ]
        reported: dict[int, str] = {}
        all_reported = asyncio.Event()

        def on_submitted(position: int, handle: TaskHandle[ImageResult]) -> None:
            assert not handle.done
            reported[position] = handle.job_id
            if len(reported) == 3:
                all_reported.set()

        batch = client.as_completed(jobs, on_submitted=on_submitted)
        first = asyncio.ensure_future(anext(batch))  # the refused submission comes first
        await all_reported.wait()
        assert not [
            info for info in emulator.jobs if info.status == "completed" and not info.seeded
        ]
        assert (await first).position == 2
        emulator.advance(3600)
        finished = {item.position: item async for item in batch}
    assert reported == {
        position: item.handle.job_id
        for position, item in finished.items()
        if item.handle is not None
    }
    assert sorted(reported) == [0, 1, 3]
    assert reported[0] == given.job_id


def test_a_batch_item_copies_with_its_position_and_job() -> None:
    """``copy.copy`` keeps what a batch item says of its input, not only the pair."""
    import copy

    error = ValidationError("image_no", "must be from 0 to 3, got 9")
    job: Any = "the fourth input"
    item: BatchItem[object] = BatchItem(None, error, position=3, job=job)
    copied: BatchItem[object] = copy.copy(item)
    assert copied.position == 3
    assert copied.job is job
    assert tuple(copied) == (None, error)
