"""Running many jobs: results in the order they finish, one failure never ending the batch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import attrs

from ._exceptions import LegnextError
from ._handle import TaskHandle

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

    from ._spending import PointTotals

__all__ = ["BatchItem", "BatchProgress"]

R = TypeVar("R")
#: A job's task in a batch: it ends with the job's item.
_Settled: TypeAlias = "asyncio.Task[BatchItem[R]]"


class BatchItem(tuple["TaskHandle[R] | None", "R | LegnextError"], Generic[R]):
    """One job of a batch, finished: it unpacks as ``(handle, outcome)``.

    ``position`` and ``job`` say which input it was, even for a submission that never made a
    job (``handle`` is then ``None``).

    Attributes:
        position: the job's place in the ``jobs`` given to
            :meth:`LegnextClient.as_completed`, from 0.
        job: that element of ``jobs`` itself (a handle, or the submission awaitable).
    """

    position: int
    job: TaskHandle[R] | Awaitable[TaskHandle[R]]

    def __new__(
        cls,
        handle: TaskHandle[R] | None,
        outcome: R | LegnextError,
        *,
        position: int,
        job: TaskHandle[R] | Awaitable[TaskHandle[R]],
    ) -> BatchItem[R]:
        item = super().__new__(cls, (handle, outcome))
        item.position = position
        item.job = job
        return item

    @property
    def handle(self) -> TaskHandle[R] | None:
        """The job's handle, or ``None`` if its submission failed."""
        return self[0]

    @property
    def outcome(self) -> R | LegnextError:
        """The job's result, or the error that ended it (or its submission)."""
        return self[1]

    def __repr__(self) -> str:
        return f"BatchItem(position={self.position}, handle={self[0]!r}, outcome={self[1]!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # tuple's own would call BatchItem((handle, outcome)), without position and job.
        return (_batch_item, (self[0], self[1], self.position, self.job))


def _batch_item(
    handle: TaskHandle[R] | None,
    outcome: R | LegnextError,
    position: int,
    job: TaskHandle[R] | Awaitable[TaskHandle[R]],
) -> BatchItem[R]:
    """A :class:`BatchItem` again (for ``copy`` and ``pickle``)."""
    return BatchItem(handle, outcome, position=position, job=job)


@attrs.frozen
class BatchProgress:
    """How far a batch is: ``finished`` of ``total``, of which ``failed`` raised an error.

    ``points``: the client's points committed and spent at that moment (all its jobs, not
    only the batch's), if it has ``max_points``; else ``None``.
    """

    total: int
    finished: int
    failed: int
    points: PointTotals | None = None

    @property
    def points_committed(self) -> int | None:
        """Points the client's jobs have reserved, frozen or spent (``None``: not counted)."""
        return self.points.committed if self.points is not None else None

    @property
    def points_spent(self) -> int | None:
        """Points the client's finished jobs consumed (``None``: not counted)."""
        return self.points.spent if self.points is not None else None

    @property
    def succeeded(self) -> int:
        """Jobs that finished with a result."""
        return self.finished - self.failed


async def as_completed(
    jobs: Iterable[TaskHandle[R] | Awaitable[TaskHandle[R]]],
    *,
    on_progress: Callable[[BatchProgress], object] | None = None,
    on_submitted: Callable[[int, TaskHandle[R]], object] | None = None,
    points: Callable[[], PointTotals] | None = None,
) -> AsyncGenerator[BatchItem[R], None]:
    """Yield a :class:`BatchItem` per job as it finishes (see ``LegnextClient.as_completed``)."""

    async def settle(position: int, job: TaskHandle[R] | Awaitable[TaskHandle[R]]) -> BatchItem[R]:
        try:
            handle = job if isinstance(job, TaskHandle) else await job
        except LegnextError as exc:
            return BatchItem(None, exc, position=position, job=job)
        if on_submitted is not None:
            on_submitted(position, handle)
        outcome: R | LegnextError
        try:
            outcome = await handle
        except LegnextError as exc:
            outcome = exc
        return BatchItem(handle, outcome, position=position, job=job)

    # Finished tasks arrive on a queue from their done-callbacks: asyncio.wait() over the
    # pending set would touch every pending task at each completion (quadratic in a batch).
    # A task is dropped once yielded, so a long batch holds only what is still to come.
    loop = asyncio.get_running_loop()
    finished_tasks: asyncio.Queue[_Settled[R]] = asyncio.Queue()
    running: set[_Settled[R]] = set()

    def finish(task: _Settled[R]) -> None:
        running.discard(task)
        finished_tasks.put_nowait(task)

    for position, job in enumerate(jobs):
        task = loop.create_task(settle(position, job))
        running.add(task)
        task.add_done_callback(finish)
    total = len(running)
    finished = failed = 0
    try:
        while finished < total:
            item = (await finished_tasks.get()).result()
            finished += 1
            failed += isinstance(item.outcome, LegnextError)
            if on_progress is not None:
                on_progress(
                    BatchProgress(
                        total=total,
                        finished=finished,
                        failed=failed,
                        points=points() if points is not None else None,
                    )
                )
            yield item
    finally:
        pending = list(running)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
