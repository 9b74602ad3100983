"""TaskHandle: an awaitable view of one job of the engine (``_engine.py``).

The handle decides nothing: awaiting it joins the job's watch, ``refresh()`` asks the job
for one read, and the job's engine does the rest. What the handle adds is the result's type:
it turns the finished task into an image, video or text result (once) and a failure into a
:class:`TaskFailedError` (once).
"""

from __future__ import annotations

import asyncio
import types
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._engine import change_key
from ._models import TaskStatus
from ._task_errors import TaskFailedError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator

    from ._engine import Job
    from ._models import Task, TaskType
    from ._polling import PollPolicy

__all__ = ["TaskHandle"]

R_co = TypeVar("R_co", covariant=True)
_T = TypeVar("_T")
_O = TypeVar("_O")


@types.coroutine
def _awaitable(steps: Generator[Any, None, _T]) -> Generator[Any, None, _T]:
    """``steps`` (a plain generator of awaiting steps), awaitable in a coroutine."""
    return (yield from steps)


class TaskHandle(Generic[R_co]):
    """A job on the service: await it for the result, or read it once with :meth:`refresh`.

    ``await handle`` (or :meth:`wait`) polls until the job is ``completed`` and returns its
    result (an :class:`ImageResult`, :class:`VideoResult` or :class:`TextResult`); a
    ``failed`` job raises :class:`TaskFailedError`. However many coroutines await the
    handle, one poller reads the status. Cancelling an await never touches the job on the
    service; when the last awaiter goes, the poller stops (unless a submission is waiting
    for this job's slot, which frees only when the job is seen finished). A finished handle
    returns its cached result without a request.

    The first finished status seen is final for the handle: a later answer saying otherwise
    is ignored (logged at debug level), so ``done`` never turns back, and the result or the
    failure stays as first seen.
    """

    __slots__ = ("__weakref__", "_failure", "_job", "_make_result", "_owner", "_result")

    def __init__(self, job: Job, make_result: Callable[[Task, _O], R_co], owner: _O) -> None:
        """A view of ``job`` whose result is ``make_result(task, owner)``."""
        self._job = job
        self._make_result: Callable[[Task, Any], R_co] = make_result
        self._owner: object = owner
        self._result: R_co | None = None
        self._failure: TaskFailedError | None = None

    def __repr__(self) -> str:
        task = self._job.snapshot
        status = task.status.value if task is not None else "unknown"
        return f"<TaskHandle job_id={self._job.job_id!r} status={status!r}>"

    @property
    def job_id(self) -> str:
        """The job's id on the service."""
        return self._job.job_id

    @property
    def last_task(self) -> Task | None:
        """The latest status seen (from the submission, a read or the poller), if any."""
        return self._job.snapshot

    @property
    def done(self) -> bool:
        """Whether the job was seen finished (completed or failed)."""
        task = self._job.snapshot
        return task is not None and task.is_finished

    @property
    def task_type(self) -> TaskType | None:
        """The job's task type, once known."""
        task = self._job.snapshot
        return task.task_type if task is not None else None

    def __await__(self) -> Generator[Any, None, R_co]:
        return self._waiting(None)

    async def wait(self, poll: PollPolicy | None = None) -> R_co:
        """Poll until the job finishes and return its result.

        ``poll`` overrides the handle's policy if this call starts polling.

        Raises:
            TaskFailedError: the job ended ``failed``.
            TaskTimeoutError: the policy's deadline passed (the job may still finish; await
                again, or ``client.task(job_id)``, to resume).
            ClientClosedError: the client was closed meanwhile.
            APIStatusError: a status read was refused for good (401, 403, 404).
        """
        return await _awaitable(self._waiting(poll))

    async def refresh(self) -> Task:
        """Read the job's status once (retrying failed reads) and return it.

        Once the job was seen finished, that snapshot is returned whatever the read says: a
        finished job does not change, so a later ``processing`` (or a ``completed`` turned
        ``failed``) can only be a stale answer. A finish seen here ends the waits on the
        handle at once.
        """
        return await self._job.refresh()

    async def updates(self, poll: PollPolicy | None = None) -> AsyncIterator[Task]:
        """Yield a snapshot each time the status (or progress) changes, ending with the final one.

        The current snapshot, if known, comes first. A ``failed`` job ends the iteration
        after its snapshot; awaiting the handle then raises :class:`TaskFailedError`.
        """
        job = self._job
        task = job.snapshot
        if task is not None and task.is_finished:
            yield task
            return
        seen: tuple[object, ...] | None = None
        watch, ended = job.join(poll)
        try:
            while True:
                task = job.task
                if task is not None and change_key(task) != seen:
                    seen = change_key(task)
                    yield task
                    if task.is_finished:
                        return
                if ended.done():
                    ended.result()  # raises the error that ended polling, if any
                    return
                changed = job.next_change()
                await asyncio.wait((changed, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            job.leave(watch, ended)

    def _waiting(self, poll: PollPolicy | None) -> Generator[Any, None, R_co]:
        """The steps of an await: a plain generator, which costs a big gather less than a
        coroutine calling coroutines."""
        job = self._job
        task = job.task
        if task is None or not task.is_finished:
            watch, ended = job.join(poll)
            try:
                task = yield from ended
            finally:
                job.leave(watch, ended)
        return self._outcome(task)

    def _outcome(self, task: Task) -> R_co:
        """The result of the finished ``task`` (made once), or its failure (raised)."""
        if task.status is TaskStatus.FAILED:
            failure = self._failure = self._failure or TaskFailedError(task)
            raise failure
        result = self._result
        if result is None:
            result = self._result = self._make_result(task, self._owner)
        return result
