"""TaskHandle: an awaitable job, polled by one poll run however many await it.

A run holds the handle's policy, deadline and waiters; the client's ``PollScheduler``
(``_scheduler.py``) times its reads, so a waiting handle owns no task or timer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import types
import weakref
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, Self, TypeVar

import tenacity

from ._exceptions import (
    ClientClosedError,
    LegnextError,
    NotFoundError,
    RateLimitError,
    TaskFailedError,
    TaskTimeoutError,
)
from ._models import RawJSON, Task, TaskStatus, TaskType
from ._polling import (
    DurationModel,
    PollPolicy,
    PollState,
    ScheduleWait,
    StopAtDeadline,
    next_delay,
)
from ._retry import is_retryable_read, parse_retry_after

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Mapping

    from ._budget import SlotTicket
    from ._client import LegnextClient

__all__ = ["TaskHandle"]

logger = logging.getLogger("legnext_async")

R_co = TypeVar("R_co", covariant=True)
_T = TypeVar("_T")


#: The schedule of a policy with ``learn=False``: the reference's typical durations only.
_UNLEARNED = DurationModel()


class _PollRun:
    """One stretch of polling for a handle: its policy, deadline and waiters; slotted, as
    thousands may wait at once. The client's :class:`PollScheduler` times its reads.

    Times are service seconds (the event loop's clock divided by the policy's time scale),
    except ``begin()`` and ``poll()`` answer on the loop's clock, for the scheduler.
    """

    __slots__ = (
        "clock",
        "deadline",
        "durations",
        "ended",
        "handle",
        "listeners",
        "loop",
        "policy",
        "queued",
        "reading",
        "scale",
        "state",
        "timeout",
    )

    def __init__(
        self,
        handle: TaskHandle[Any],
        policy: PollPolicy,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.handle = handle
        self.policy = policy
        self.loop = asyncio.get_running_loop()
        #: The event loop's clock; a test may pass a fixed one to check decisions exactly.
        self.clock = clock or self.loop.time
        self.scale = scale = policy.time_scale
        task_type = handle._task.task_type if handle._task is not None else None
        self.timeout = policy.timeout_for(task_type)
        self.deadline = self.clock() + self.timeout * scale
        if handle._state_scale != scale:
            # The schedule's clock is in service seconds of this policy's scale.
            submitted = handle._submitted_at
            handle._state = PollState(
                task_type=task_type,
                submitted_at=submitted / scale if submitted is not None else None,
            )
            handle._state_scale = scale
        self.state = handle._state
        self.durations = handle._client._durations if policy.learn else _UNLEARNED
        self.listeners: list[asyncio.Future[Task]] = []
        self.ended = False
        self.queued = False
        self.reading: asyncio.Task[None] | None = None

    # --- what the scheduler asks ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self.handle._job_id

    def begin(self) -> float | None:
        """The first read is due now, unless the submission's answer stands for it."""
        handle = self.handle
        seed = handle._task
        if handle._seed_unread and seed is not None:
            handle._seed_unread = False
            return self._decide(seed, None)
        return self.clock()

    async def poll(self) -> float | None:
        """One status read, then the time of the next (``None``: the run ended)."""
        handle = self.handle
        client = handle._client
        pace = client._budget.pace
        task: Task | None = None
        error: Exception | None = None
        try:
            task, hint = await client._read_task_once(handle._job_id, handle._task)
        except RateLimitError as exc:
            pace.throttled()
            error = exc
        except Exception as exc:  # judged by _KEEP_POLLING; CancelledError passes
            error = exc
        else:
            pace.succeeded()
            self.state.errors = 0
            task = handle._observe(task, hint, now=self.now(), scale=self.scale)
        self.reading = None
        if self.ended:
            return None
        return self._decide(task, error)

    def _decide(self, task: Task | None, error: Exception | None) -> float | None:
        """Tenacity's strategies judge the outcome: end the run, or when to read next."""
        attempt = tenacity.RetryCallState(retry_object=self, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        outcome = _Outcome(task, error)
        attempt.outcome = outcome  # type: ignore[assignment]
        if not _KEEP_POLLING(attempt):
            self._finish(outcome)
            return None
        wait = _WAIT(attempt)
        if _STOP(attempt):
            job_id = self.handle._job_id
            self._finish(_Outcome(None, TaskTimeoutError(job_id, self.timeout, self.handle._task)))
            return None
        return self.clock() + wait * self.scale

    def end(self, error: BaseException) -> None:
        """The client is closing: waiters get ``error``."""
        self._finish(_Outcome(None, error))

    def stop(self) -> None:
        """No one waits any more: stop reading (an in-flight read is cancelled)."""
        self._finish(None)

    def _finish(self, outcome: _Outcome | None) -> None:
        if self.ended:
            return
        self.ended = True
        handle = self.handle
        handle._client._polling.forget(self)
        reading = self.reading
        if reading is not None:
            self.reading = None
            reading.cancel()
        error = outcome.exception() if outcome is not None else None
        heard = False
        if outcome is not None:
            for listener in self.listeners:
                if not listener.done():
                    outcome.settle(listener)
                    heard = True
        if error is not None and not heard and not isinstance(error, ClientClosedError):
            # A run nobody awaits (it polls so that a waiting submission gets this job's
            # slot): its failure must still be seen somewhere.
            if isinstance(error, LegnextError):
                logger.warning("stopped polling job %s: %s", handle._job_id, error)
            else:
                logger.error("stopped polling job %s", handle._job_id, exc_info=error)
        if isinstance(error, NotFoundError):
            # The service knows no such job (any more): it holds no slot of the account.
            handle._release_slot()
        if handle._run is self:
            handle._run = None  # no cycle between a finished handle and its last run
            if handle._occupied and not handle.done:
                handle._release_slot()

    # --- what the tenacity strategies ask (PollSchedule) ---------------------------------

    @property
    def jitter(self) -> float:
        return self.policy.jitter

    def now(self) -> float:
        return self.clock() / self.scale

    def remaining(self) -> float:
        return (self.deadline - self.clock()) / self.scale

    def pace(self) -> float:
        return self.handle._client._budget.pace.factor

    def delay_for(self, task: Task) -> float:
        handle = self.handle
        return next_delay(
            self.policy,
            self.durations,
            self.state,
            task,
            self.now(),
            handle._offset(self.scale),
        )

    def error_delay(self, exc: BaseException) -> float:
        state = self.state
        state.errors += 1
        wait = self.handle._client.retry.wait_for(exc, state.errors)
        # Retry-After and the backoff are real seconds, the schedule's service seconds; and a
        # gap stays within the policy's bounds whatever the service asked for.
        return self.policy.clamp(wait / self.scale)

    def bounds(self) -> tuple[float, float]:
        return self.policy.min_interval, self.policy.max_interval


class _SlotHolder(weakref.ref["TaskHandle[Any]"]):
    """The client's weak reference to a handle holding a job slot: it finds the handles to
    poll when a submission waits for a slot, and frees the slot of a handle dropped before
    its job was seen finished. One object per handle (``weakref.finalize`` costs five)."""

    __slots__ = ("client", "ticket")

    def __new__(cls, handle: TaskHandle[Any], client: LegnextClient, ticket: SlotTicket) -> Self:
        return super().__new__(cls, handle, _holder_dropped)

    def __init__(self, handle: TaskHandle[Any], client: LegnextClient, ticket: SlotTicket) -> None:
        # weakref.ref.__init__ only checks the arguments __new__ took.
        self.client = client
        self.ticket = ticket


def _holder_dropped(holder: weakref.ref[TaskHandle[Any]]) -> None:
    assert isinstance(holder, _SlotHolder)
    holder.client._slots.release(holder.ticket)
    holder.client._slot_holders.discard(holder)


class _Outcome:
    """One read's outcome, as tenacity's strategies read it (``failed``, ``result()``,
    ``exception()``), without the lock and condition of tenacity's own Future."""

    __slots__ = ("_error", "_task")

    def __init__(self, task: Task | None, error: BaseException | None) -> None:
        self._task = task
        self._error = error

    @property
    def failed(self) -> bool:
        return self._error is not None

    def exception(self) -> BaseException | None:
        return self._error

    def result(self) -> Task:
        if self._error is not None:
            raise self._error
        assert self._task is not None
        return self._task

    def settle(self, future: asyncio.Future[Task]) -> None:
        """Hand this outcome to a waiter's future."""
        if self._error is not None:
            future.set_exception(self._error)
        else:
            assert self._task is not None
            future.set_result(self._task)


#: Jitter for every handle's poll gaps (one generator: its state is 2.5 KB).
_RNG = random.Random()
#: The poll loop's tenacity strategies, shared by every handle.
_WAIT = ScheduleWait(_RNG)
_STOP = StopAtDeadline()
#: Keep polling while the job is not finished or the read failed in a way worth retrying.
_KEEP_POLLING = tenacity.retry_if_result(lambda task: not task.is_finished) | (
    tenacity.retry_if_exception(is_retryable_read)
)


class ServerHint(NamedTuple):
    """What a status answer said of when to read again, if anything.

    ``retry_after``: the ``Retry-After`` header, in real seconds. ``estimated_time``: the
    field of that name (seconds left, as in the vendor's task listing), in service seconds.
    """

    retry_after: str | None = None
    estimated_time: object = None

    def at(self, now: float, scale: float) -> float | None:
        """The time (service seconds) before which the service asked not to read, if any.

        It may lie far ahead (even at infinity): the schedule honours it only up to the
        policy's ``max_interval``. An ``estimated_time`` that is not a finite number of at
        least 0 (``Infinity``, ``NaN``, a string) is no hint.
        """
        hints = []
        wait = parse_retry_after(self.retry_after)
        if wait is not None:
            hints.append(now + wait / scale)
        eta = self.estimated_time
        if (
            isinstance(eta, int | float)
            and not isinstance(eta, bool)
            and 0 <= eta < math.inf  # False for NaN
        ):
            hints.append(now + float(eta))
        return max(hints) if hints else None


_NO_HINT: Final = ServerHint()


@types.coroutine
def _awaitable(steps: Generator[Any, None, _T]) -> Generator[Any, None, _T]:
    """``steps`` (a plain generator of awaiting steps), awaitable in a coroutine."""
    return (yield from steps)


def _same_answer(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two snapshots came from the same answer (bytes compared, nothing decoded)."""
    if isinstance(b, RawJSON):
        return RawJSON.came_as(a, b.body)
    return not isinstance(a, RawJSON) and a == b


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

    The first finished status seen is final for the handle: a later answer saying otherwise
    is ignored (logged at debug level), so ``done`` never turns back, and the result or the
    failure stays as first seen.
    """

    __slots__ = (
        "__weakref__",
        "_changed",
        "_client",
        "_failure",
        "_holder",
        "_job_id",
        "_make_result",
        "_occupied",
        "_poll",
        "_result",
        "_run",
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
        make_result: Callable[[Task, LegnextClient], R_co],
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
        self._holder: _SlotHolder | None = None
        if ticket is not None:
            self._holder = holder = _SlotHolder(self, client, ticket)
            client._slot_holders.add(holder)
        self._result: R_co | None = None
        self._failure: TaskFailedError | None = None
        self._run: _PollRun | None = None
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
        ``failed``) can only be a stale answer.
        """
        task, _ = await self._client._read_task(self._job_id, self._task)
        return self._observe(task)

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
        run, ended = self._join(poll)
        try:
            while True:
                task = self._task
                if task is not None and _change_key(task) != seen:
                    seen = _change_key(task)
                    yield task
                    if task.is_finished:
                        return
                if ended.done():
                    ended.result()  # raises the error that ended polling, if any
                    return
                changed = self._change_future()
                await asyncio.wait((changed, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._leave(run, ended)

    # --- polling -------------------------------------------------------------------------

    def _waiting(self, poll: PollPolicy | None) -> Generator[Any, None, R_co]:
        """The steps of an await: a plain generator, which costs a big gather less than a
        coroutine calling coroutines."""
        if self._result is not None:
            return self._result
        if self._failure is not None:
            raise self._failure
        run, ended = self._join(poll)
        try:
            task = yield from ended
        finally:
            self._leave(run, ended)
        return self._outcome(task)

    def _join(self, poll: PollPolicy | None) -> tuple[_PollRun, asyncio.Future[Task]]:
        """Wait on the current run (starting one if none): a future of our own, so that
        cancelling one waiter cancels only it (what ``asyncio.shield`` does, for less)."""
        run = self._ensure_run(poll)
        ended: asyncio.Future[Task] = run.loop.create_future()
        run.listeners.append(ended)
        self._waiters += 1
        return run, ended

    def _ensure_run(self, poll: PollPolicy | None) -> _PollRun:
        client = self._client
        client._check_open()
        run = self._run
        if run is None or run.ended:
            if self._ticket is None:
                # A handle for a job made elsewhere occupies a slot only while awaited.
                self._ticket = client._slots.occupy()
                self._occupied = True
            run = self._run = _PollRun(self, poll or self._poll or client.poll)
            client._polling.start(run)
        return run

    def _leave(self, run: _PollRun, ended: asyncio.Future[Task]) -> None:
        self._waiters -= 1
        run.listeners.remove(ended)
        if ended.done() and not ended.cancelled():
            ended.exception()  # retrieved, even if this waiter was cancelled meanwhile
        current = self._run
        if (
            self._waiters == 0
            and current is not None
            and not current.ended
            and not self._keeps_slot_moving()
        ):
            current.stop()

    def _keeps_slot_moving(self) -> bool:
        """Whether this job's slot is wanted by a waiting submission (so keep polling)."""
        return self._ticket is not None and not self._occupied and self._client._slots.waiting > 0

    def _keep_polling(self) -> None:
        """Poll without an awaiter, so the job's slot frees when it ends (see JobSlots)."""
        if not self.done:
            self._ensure_run(None)

    def _outcome(self, task: Task) -> R_co:
        if task.status is TaskStatus.FAILED:
            failure = self._failure = self._failure or TaskFailedError(task)
            raise failure
        if self._result is None:
            self._result = self._make_result(task, self._client)
        return self._result

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
        hint: ServerHint = _NO_HINT,
        *,
        now: float | None = None,
        scale: float = 1.0,
    ) -> Task:
        """Take in a status read: remember it, wake watchers, free the slot when finished.

        Returns the snapshot kept: the previous one when nothing changed, so a big batch of
        waiting handles does not keep promoting fresh copies into the GC's oldest generation.
        """
        previous = self._task
        if previous is not None and previous.is_finished:
            # A finished job never changes again: a later answer that says otherwise (a stale
            # replica, say) is not news, and the first finish, result or failure stands.
            if task.status is not previous.status:
                logger.debug(
                    "job %s: ignored status %.40r after %s",  # escaped, cut: the service chose it
                    self._job_id,
                    task.status.value,
                    previous.status.value,
                )
            return previous
        if previous is not None and (task is previous or _same_answer(previous.raw, task.raw)):
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
            state.hint = hint.at(now, scale)
        if task is previous:
            return task  # nothing new: no change to announce, no finish to learn from
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
                self._result = self._make_result(task, self._client)
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
            holder = self._holder
            if holder is not None:
                self._client._slot_holders.discard(holder)
                self._holder = None
            if self._occupied:
                self._ticket = None
                self._occupied = False

    @property
    def task_type(self) -> TaskType | None:
        """The job's task type, once known."""
        return self._task.task_type if self._task is not None else None
