"""TaskHandle: an awaitable job, polled by one background poller however many await it."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import weakref
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import tenacity

from ._exceptions import (
    ClientClosedError,
    RateLimitError,
    TaskFailedError,
    TaskTimeoutError,
)
from ._models import Task, TaskStatus, TaskType
from ._polling import (
    FIRST_READ_SHARE,
    DurationModel,
    PollPolicy,
    PollState,
    ScheduleWait,
    StopAtDeadline,
    next_delay,
)
from ._retry import is_retryable_read, parse_retry_after

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator

    from ._budget import SlotTicket
    from ._client import LegnextClient

__all__ = ["TaskHandle"]

logger = logging.getLogger("legnext_async")

R_co = TypeVar("R_co", covariant=True)


#: The schedule of a policy with ``learn=False``: the reference's typical durations only.
_UNLEARNED = DurationModel()


class _PollRun:
    """One poller's clock, deadline and reads; slotted, as thousands may wait at once.

    Times are service seconds: the event loop's clock divided by the policy's time scale.
    """

    __slots__ = (
        "client",
        "deadline",
        "durations",
        "handle",
        "jitter",
        "loop",
        "policy",
        "scale",
        "state",
        "timeout",
    )

    def __init__(self, handle: TaskHandle[Any], policy: PollPolicy) -> None:
        self.handle = handle
        self.client = client = handle._client
        self.policy = policy
        self.jitter = policy.jitter
        self.loop = asyncio.get_running_loop()
        self.scale = scale = policy.time_scale
        task_type = handle._task.task_type if handle._task is not None else None
        self.timeout = policy.timeout_for(task_type)
        self.deadline = self.loop.time() + self.timeout * scale
        if handle._state_scale != scale:
            # The schedule's clock is in service seconds of this policy's scale.
            submitted = handle._submitted_at
            handle._state = PollState(
                task_type=task_type,
                submitted_at=submitted / scale if submitted is not None else None,
            )
            handle._state_scale = scale
        self.state = handle._state
        self.durations = client._durations if policy.learn else _UNLEARNED

    def now(self) -> float:
        return self.loop.time() / self.scale

    def remaining(self) -> float:
        return (self.deadline - self.loop.time()) / self.scale

    def pace(self) -> float:
        return self.client._budget.pace.factor

    def delay_for(self, task: Task) -> float:
        return next_delay(
            self.policy,
            self.durations,
            self.state,
            task,
            self.now(),
            self.handle._offset(self.scale),
        )

    def error_delay(self, exc: BaseException) -> float:
        state = self.state
        state.errors += 1
        wait = self.client.retry.wait_for(exc, state.errors)
        # Retry-After is in real seconds; the schedule speaks service seconds.
        scaled = wait / self.scale
        return self.policy.clamp(scaled) if isinstance(exc, RateLimitError) else scaled

    async def read(self) -> Task:
        handle = self.handle
        if handle._seed_unread and handle._task is not None:
            handle._seed_unread = False
            return handle._task
        pace = self.client._budget.pace
        try:
            task, retry_after = await self.client._read_task_once(handle._job_id)
        except RateLimitError:
            pace.throttled()
            raise
        pace.succeeded()
        self.state.errors = 0
        return handle._observe(task, retry_after, now=self.now(), scale=self.scale)


class _Outcome:
    """One read's outcome, as tenacity's strategies read it (``failed``, ``result()``,
    ``exception()``), without the lock and condition of tenacity's own Future."""

    __slots__ = ("_error", "_task")

    def __init__(self, task: Task | None, error: Exception | None) -> None:
        self._task = task
        self._error = error

    @property
    def failed(self) -> bool:
        return self._error is not None

    def exception(self) -> Exception | None:
        return self._error

    def result(self) -> Task:
        if self._error is not None:
            raise self._error
        assert self._task is not None
        return self._task


#: Real seconds over which pollers started together spread their set-up (see ``_run``).
START_SPREAD = 0.25
#: Jitter for every handle's poll gaps (one generator: its state is 2.5 KB).
_RNG = random.Random()
#: The poll loop's tenacity strategies, shared by every handle.
_WAIT = ScheduleWait(_RNG)
_STOP = StopAtDeadline()
#: Keep polling while the job is not finished or the read failed in a way worth retrying.
_KEEP_POLLING = tenacity.retry_if_result(lambda task: not task.is_finished) | (
    tenacity.retry_if_exception(is_retryable_read)
)


def _server_hint(task: Task, retry_after: str | None, now: float, scale: float) -> float | None:
    """When the service asked to be read next (service seconds), if it said.

    ``Retry-After`` on a status answer is in real seconds; an ``estimated_time`` field
    (seconds left, as in the vendor's task listing) is in service seconds.
    """
    hints = []
    wait = parse_retry_after(retry_after)
    if wait is not None:
        hints.append(now + wait / scale)
    eta = task.raw.get("estimated_time")
    if isinstance(eta, int | float) and not isinstance(eta, bool) and eta >= 0:
        hints.append(now + float(eta))
    return max(hints) if hints else None


def _change_key(task: Task) -> tuple[object, ...]:
    return (task.status, task.meta.started_at, task.meta.ended_at, len(task.logs))


class TaskHandle(Generic[R_co]):
    """A job on the service: await it for the result, or read it once with :meth:`refresh`.

    ``await handle`` (or :meth:`wait`) polls until the job is ``completed`` and returns its
    result (an :class:`ImageResult`, :class:`VideoResult` or :class:`TextResult`); a
    ``failed`` job raises :class:`TaskFailedError`. However many coroutines await the
    handle, one poller reads the status. Cancelling an await never touches the job on the
    service; when the last awaiter goes, the poller stops (unless a submission is waiting
    for this job's slot, which frees only when the job is seen finished). A finished handle
    returns its cached result without a request.
    """

    __slots__ = (
        "__weakref__",
        "_changed",
        "_client",
        "_failure",
        "_finalizer",
        "_job_id",
        "_listeners",
        "_make_result",
        "_occupied",
        "_poll",
        "_poller",
        "_result",
        "_seed_unread",
        "_state",
        "_state_scale",
        "_submitted_at",
        "_task",
        "_ticket",
        "_waiters",
    )

    def __init__(
        self,
        client: LegnextClient,
        job_id: str,
        *,
        make_result: Callable[[Task], R_co],
        task: Task | None = None,
        submitted_at: float | None = None,
        ticket: SlotTicket | None = None,
        poll: PollPolicy | None = None,
    ) -> None:
        self._client = client
        self._job_id = job_id
        self._make_result = make_result
        self._task = task
        self._seed_unread = task is not None and not task.is_finished
        self._poll = poll
        self._submitted_at = submitted_at  # the event loop's clock, real seconds
        self._state = PollState(task_type=None)
        self._state_scale: float | None = None
        self._ticket = ticket
        self._occupied = False
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if ticket is not None:
            self._finalizer = weakref.finalize(self, client._slots.release, ticket)
        self._result: R_co | None = None
        self._failure: TaskFailedError | None = None
        self._poller: asyncio.Task[Task] | None = None
        self._listeners: list[asyncio.Future[Task]] = []
        self._waiters = 0
        self._changed: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        status = self._task.status.value if self._task is not None else "unknown"
        return f"<TaskHandle job_id={self._job_id!r} status={status!r}>"

    @property
    def job_id(self) -> str:
        """The job's id on the service."""
        return self._job_id

    @property
    def last_task(self) -> Task | None:
        """The latest status seen (from the submission, a read or the poller), if any."""
        return self._task

    @property
    def done(self) -> bool:
        """Whether the job was seen finished (completed or failed)."""
        return self._task is not None and self._task.is_finished

    def __await__(self) -> Generator[Any, None, R_co]:
        return self.wait().__await__()

    async def wait(self, poll: PollPolicy | None = None) -> R_co:
        """Poll until the job finishes and return its result.

        ``poll`` overrides the handle's policy if this call starts the poller.

        Raises:
            TaskFailedError: the job ended ``failed``.
            TaskTimeoutError: the policy's deadline passed (the job may still finish; await
                again, or ``client.task(job_id)``, to resume).
            ClientClosedError: the client was closed meanwhile.
            APIStatusError: a status read was refused for good (401, 403, 404).
        """
        if self._result is not None:
            return self._result
        if self._failure is not None:
            raise self._failure
        poller = self._start_poller(poll)
        self._waiters += 1
        try:
            task = await self._join(poller)
        finally:
            self._leave(poller)
        return self._outcome(task)

    async def refresh(self) -> Task:
        """Read the job's status once (retrying failed reads) and return it."""
        task, _ = await self._client._read_task(self._job_id)
        return self._observe(task, None)

    async def updates(self, poll: PollPolicy | None = None) -> AsyncIterator[Task]:
        """Yield a snapshot each time the status (or progress) changes, ending with the final one.

        The current snapshot, if known, comes first. A ``failed`` job ends the iteration
        after its snapshot; awaiting the handle then raises :class:`TaskFailedError`.
        """
        seen: tuple[object, ...] | None = None
        task = self._task
        if task is not None and task.is_finished:
            yield task
            return
        poller = self._start_poller(poll)
        self._waiters += 1
        try:
            while True:
                task = self._task
                if task is not None and _change_key(task) != seen:
                    seen = _change_key(task)
                    yield task
                    if task.is_finished:
                        return
                if poller.done():
                    await self._join(poller)  # raises the poller's error, if any
                    continue
                changed = self._change_future()
                await asyncio.wait((changed, poller), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._leave(poller)

    # --- the poller ----------------------------------------------------------------------

    def _start_poller(self, poll: PollPolicy | None) -> asyncio.Task[Task]:
        client = self._client
        client._check_open()
        poller = self._poller
        # A poller asked to stop (its last awaiter left) may not have ended yet: a new
        # await must not join it, or it would share its cancellation.
        if poller is None or poller.done() or poller.cancelling():
            if self._ticket is None:
                # A handle for a job made elsewhere occupies a slot only while awaited.
                self._ticket = client._slots.occupy()
                self._occupied = True
            policy = poll or self._poll or client.poll
            poller = self._poller = client._spawn(self._run(policy), self._job_id)
            listeners: list[asyncio.Future[Task]] = []
            self._listeners = listeners
            poller.add_done_callback(functools.partial(self._poller_done, listeners))
        return poller

    def _poller_done(
        self, listeners: list[asyncio.Future[Task]], poller: asyncio.Task[Task]
    ) -> None:
        """Hand the poller's outcome to everyone waiting on it; free an occupied slot."""
        if not poller.cancelled():
            poller.exception()  # retrieved even with no one waiting (a slot keeper's error)
        for listener in listeners:
            if not listener.done():
                self._settle(listener, poller)
        if self._occupied and not self.done and poller is self._poller:
            self._release_slot()

    def _settle(self, future: asyncio.Future[Task], poller: asyncio.Task[Task]) -> None:
        if poller.cancelled():
            # Pollers are cancelled by aclose(), or when their last waiter left.
            future.set_exception(
                ClientClosedError(f"the client was closed while waiting for job {self._job_id}")
            )
        elif (error := poller.exception()) is not None:
            future.set_exception(error)
        else:
            future.set_result(poller.result())

    async def _join(self, poller: asyncio.Task[Task]) -> Task:
        """Wait for ``poller``'s outcome on a future of our own, so that cancelling this
        wait cancels only it (what ``asyncio.shield`` does, for less per waiter)."""
        future: asyncio.Future[Task] = poller.get_loop().create_future()
        if poller.done():
            self._settle(future, poller)
            return await future
        listeners = self._listeners
        listeners.append(future)
        try:
            return await future
        finally:
            listeners.remove(future)

    def _leave(self, poller: asyncio.Task[Task]) -> None:
        self._waiters -= 1
        if self._waiters == 0 and not poller.done() and not self._keeps_slot_moving():
            poller.cancel()

    def _keeps_slot_moving(self) -> bool:
        """Whether this job's slot is wanted by a waiting submission (so keep polling)."""
        return self._ticket is not None and not self._occupied and self._client._slots.waiting > 0

    def _keep_polling(self) -> None:
        """Poll without an awaiter, so the job's slot frees when it ends (see JobSlots)."""
        if not self.done and (self._poller is None or self._poller.done()):
            self._start_poller(None)

    def _outcome(self, task: Task) -> R_co:
        if task.status is TaskStatus.FAILED:
            failure = self._failure = self._failure or TaskFailedError(task)
            raise failure
        if self._result is None:
            self._result = self._make_result(task)
        return self._result

    async def _run(self, policy: PollPolicy) -> Task:
        """Poll until a finished status, the deadline, or a refusal that retrying cannot mend."""
        task = self._task
        if self._seed_unread and task is not None:
            # Thousands of handles awaited at once would all set up their pollers in one
            # event-loop iteration; spread that work over the wait before the first read,
            # whose time is fixed by the submission, so nothing is read later for it.
            first = policy.first_delay
            if first is None:
                first = FIRST_READ_SHARE * self._client._durations.window(task.task_type)[0]
            cap = min(START_SPREAD, first * policy.time_scale / 2)
            await asyncio.sleep(_RNG.uniform(0.0, cap))
        run = _PollRun(self, policy)
        # Tenacity's own retry loop costs ~4 KB and a reference cycle per poller, which
        # ten thousand pending handles feel; this loop drives the same tenacity strategies,
        # shared by all handles, with this run as the retry state's ``retry_object``.
        attempt = tenacity.RetryCallState(retry_object=run, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        while True:
            try:
                outcome = _Outcome(await run.read(), None)
            except Exception as exc:  # judged by _KEEP_POLLING; CancelledError passes
                outcome = _Outcome(None, exc)
            attempt.outcome = outcome  # type: ignore[assignment]
            if not _KEEP_POLLING(attempt):
                return outcome.result()  # a finished task, or raises what ends the wait
            attempt.upcoming_sleep = _WAIT(attempt)
            if _STOP(attempt):
                raise TaskTimeoutError(self._job_id, run.timeout, self._task)
            await asyncio.sleep(attempt.upcoming_sleep * run.scale)
            attempt.prepare_for_next_attempt()

    def _offset(self, scale: float) -> float | None:
        """The service's clock minus ours (service seconds), from our submission if we made
        the job, else from the client's other submissions."""
        task = self._task
        if self._submitted_at is not None and task is not None:
            created = task.meta.created_at
            if created is not None:
                return created.timestamp() - self._submitted_at / scale
        return self._client._server_offsets.get(scale)

    def _observe(
        self,
        task: Task,
        retry_after: str | None,
        *,
        now: float | None = None,
        scale: float = 1.0,
    ) -> Task:
        """Take in a status read: remember it, wake watchers, free the slot when finished.

        Returns the snapshot kept: the previous one when nothing changed, so a big batch of
        waiting handles does not keep promoting fresh copies into the GC's oldest generation.
        """
        previous = self._task
        if previous is not None and previous.raw == task.raw:
            task = previous
        self._task = task
        self._seed_unread = False
        state = self._state
        state.task_type = task.task_type
        if now is not None:
            state.last_read_at = now
            if task.status.is_queued:
                state.last_queued_at = now
            elif state.first_running_at is None:
                state.first_running_at = now
            state.hint = _server_hint(task, retry_after, now, scale)
        if previous is None or _change_key(previous) != _change_key(task):
            changed = self._changed
            if changed is not None and not changed.done():
                changed.set_result(None)
            self._changed = None
        if task.is_finished and (previous is None or not previous.is_finished):
            if (self._poll or self._client.poll).learn:
                self._client._durations.observe(task)
            self._release_slot()
            if task.status is TaskStatus.COMPLETED and self._result is None:
                self._result = self._make_result(task)
            logger.debug("job %s finished: %s", self._job_id, task.status.value)
        return task

    def _change_future(self) -> asyncio.Future[None]:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _release_slot(self) -> None:
        ticket = self._ticket
        if ticket is not None:
            self._client._slots.release(ticket)
            self._client._slot_holders.discard(self)
            if self._finalizer is not None:
                self._finalizer.detach()
            if self._occupied:
                self._ticket = None
                self._occupied = False

    @property
    def task_type(self) -> TaskType | None:
        """The job's task type, once known."""
        return self._task.task_type if self._task is not None else None
