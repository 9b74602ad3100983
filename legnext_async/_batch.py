"""Running many jobs: results in the order they finish, one failure never ending the batch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

import attrs

from ._exceptions import LegnextError
from ._handle import TaskHandle

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

__all__ = ["BatchProgress"]

R = TypeVar("R")


@attrs.frozen
class BatchProgress:
    """How far a batch is: ``finished`` of ``total``, of which ``failed`` raised an error."""

    total: int
    finished: int
    failed: int

    @property
    def succeeded(self) -> int:
        """Jobs that finished with a result."""
        return self.finished - self.failed


async def as_completed(
    jobs: Iterable[TaskHandle[R] | Awaitable[TaskHandle[R]]],
    *,
    on_progress: Callable[[BatchProgress], object] | None = None,
) -> AsyncGenerator[tuple[TaskHandle[R] | None, R | LegnextError], None]:
    """Yield ``(handle, outcome)`` per job as it finishes (see ``LegnextClient.as_completed``)."""

    async def settle(
        job: TaskHandle[R] | Awaitable[TaskHandle[R]],
    ) -> tuple[TaskHandle[R] | None, R | LegnextError]:
        handle: TaskHandle[R] | None = None
        try:
            handle = job if isinstance(job, TaskHandle) else await job
            return handle, await handle
        except LegnextError as exc:
            return handle, exc

    loop = asyncio.get_running_loop()
    pending = {loop.create_task(settle(job)) for job in jobs}
    total = len(pending)
    finished = failed = 0
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                item = task.result()
                finished += 1
                failed += isinstance(item[1], LegnextError)
                if on_progress is not None:
                    on_progress(BatchProgress(total=total, finished=finished, failed=failed))
                yield item
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
