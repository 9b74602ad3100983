"""Running many jobs: results in the order they finish, one failure never ending the batch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import attrs

from ._exceptions import LegnextError
from ._handle import TaskHandle

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

__all__ = ["BatchProgress"]

R = TypeVar("R")
#: A job's task in a batch: it ends with ``(handle, result or error)``.
_Settled: TypeAlias = "asyncio.Task[tuple[TaskHandle[R] | None, R | LegnextError]]"


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

    # Finished tasks arrive on a queue from their done-callbacks: asyncio.wait() over the
    # pending set would touch every pending task at each completion (quadratic in a batch).
    # A task is dropped once yielded, so a long batch holds only what is still to come.
    loop = asyncio.get_running_loop()
    finished_tasks: asyncio.Queue[_Settled[R]] = asyncio.Queue()
    running: set[_Settled[R]] = set()

    def finish(task: _Settled[R]) -> None:
        running.discard(task)
        finished_tasks.put_nowait(task)

    for job in jobs:
        task = loop.create_task(settle(job))
        running.add(task)
        task.add_done_callback(finish)
    total = len(running)
    finished = failed = 0
    try:
        while finished < total:
            item = (await finished_tasks.get()).result()
            finished += 1
            failed += isinstance(item[1], LegnextError)
            if on_progress is not None:
                on_progress(BatchProgress(total=total, finished=finished, failed=failed))
            yield item
    finally:
        pending = list(running)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
