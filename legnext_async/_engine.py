"""A job's life: where the job is, what happened to it, and every decision that follows.

The client keeps one :class:`Job` per job it knows: one it submitted, one whose id it was
given, or (later) one restored from a store. The job's :class:`Phase` says where it is::

    WAITING_FOR_SLOT ─SlotGranted─▶ SUBMITTING ─SubmissionAnswered─▶ PENDING ⇄ RUNNING
                                        └─SubmissionFailed─▶ OUTCOME_UNKNOWN | REFUSED

    PENDING | RUNNING ─StatusObserved, CallbackReceived─▶ COMPLETED | FAILED   (final)
    PENDING | RUNNING ─ReadFailed (404)─▶ LOST
    PENDING | RUNNING ─DeadlinePassed─▶ GIVEN_UP
    LOST | GIVEN_UP ─WatchRequested─▶ PENDING | RUNNING (awaited again: read again)

Events say what happened; :meth:`Job.on` takes every one of them and decides, from the
phase, the event and the engine's :class:`Clock`, all that follows: when to read next,
when to give up, when to wake the waiters, when to free the job's slot. Nothing else
changes a job.

A job is *watched* while someone awaits it, or while a submission waits for the slot it
holds: a :class:`Watch` holds the waiters, the policy and the deadline, and is what the
client's :class:`PollScheduler` reads on time. The tenacity strategies of ``_polling.py``
judge each read: keep polling or not, how long to wait, whether the deadline has come.

Slots: a job this client submitted holds a client job slot from its submission until it
is seen finished, lost, or dropped unawaited (its handle collected); any other job holds
one only while watched. :meth:`JobEngine.free_slot` is the one place a slot is given back.

The engine knows the client only through :class:`JobServices`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
import weakref
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, Self, TypeAlias, assert_never

import tenacity

from ._clock import LOOP_CLOCK
from ._exceptions import (
    ClientClosedError,
    LegnextError,
    NotFoundError,
    RateLimitError,
    SubmissionOutcomeUnknownError,
)
from ._models import RawJSON, Task, TaskStatus
from ._polling import (
    NO_HINT,
    DurationModel,
    PollPolicy,
    PollState,
    ScheduleWait,
    ServerHint,
    StopAtDeadline,
    next_delay,
)
from ._retry import is_retryable_read, retry_call
from ._scheduler import PollScheduler
from ._task_errors import TaskTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from ._budget import JobSlots, Pace, SlotTicket
    from ._clock import Clock
    from ._retry import RetryPolicy
    from ._store import JobRecord

__all__ = ["Job", "JobEngine", "JobServices", "Phase"]

logger = logging.getLogger("legnext_async")


class JobServices(Protocol):
    """What the engine uses of a client.

    The engine sends no request and holds no session of its own: it reads a status, takes
    and gives back job slots, and learns run times through this.
    """

    @property
    def poll(self) -> PollPolicy:
        """The client's poll policy (a job's own, if it has one, comes first)."""

    @property
    def retry(self) -> RetryPolicy:
        """How failed one-off reads are retried, and how a failed poll backs off."""

    @property
    def slots(self) -> JobSlots:
        """The client's job slots."""

    @property
    def pace(self) -> Pace:
        """The client-wide stretch of poll gaps after 429s on status reads."""

    @property
    def durations(self) -> DurationModel:
        """The run times learned from the jobs this client saw finish."""

    def check_open(self) -> None:
        """Raise :class:`ClientClosedError` if the client can no longer send."""

    def read_status(self, job_id: str, known: Task | None) -> Awaitable[tuple[Task, ServerHint]]:
        """One status read (no retry): the task (``known`` itself when the answer is the
        very same), and what the answer said of when to read again."""

    def snapshot_changed(self, job: Job, previous: Task | None) -> None:
        """``job`` holds a new snapshot (``job.task``; ``previous`` is the one before):
        the submission's answer, a read or a callback that brought other bytes. Called
        synchronously, once per new snapshot; never for an answer that changed nothing."""

    def job_lost(self, job: Job) -> None:
        """The service answered 404 for ``job``, which was pending or running: it is gone
        (past its retention window). Called synchronously, once per such answer."""

    def job_found(self, job: Job) -> None:
        """The service gave a snapshot of ``job`` (``job.task``) after it was held lost
        (``job.lost_said``, cleared before the call)."""


class Phase(enum.Enum):
    """Where a job is."""

    WAITING_FOR_SLOT = "waiting for a slot"
    SUBMITTING = "submitting"
    #: The submission may or may not have made a job (its answer was lost).
    OUTCOME_UNKNOWN = "outcome unknown"
    #: The submission was answered with an error: no job was made.
    REFUSED = "refused"
    #: Created, and not seen running yet (queued, or not read yet).
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: The service answered 404: it knows no such job (any more).
    LOST = "lost"
    #: A wait passed its deadline; the job may still run.
    GIVEN_UP = "given up"


#: Phases in which a job holds no slot, whoever watches it.
_SLOTLESS: Final = frozenset(
    {Phase.COMPLETED, Phase.FAILED, Phase.LOST, Phase.REFUSED, Phase.OUTCOME_UNKNOWN}
)


def phase_of(task: Task) -> Phase:
    """The phase a status snapshot puts a created job in.

    An undocumented status counts as running once the job has a start time, as queued
    before (as the poll schedule reads it).
    """
    status = task.status
    if status is TaskStatus.COMPLETED:
        return Phase.COMPLETED
    if status is TaskStatus.FAILED:
        return Phase.FAILED
    if status.is_queued or (task.meta.started_at is None and not status.is_known):
        return Phase.PENDING
    return Phase.RUNNING


# --- events -------------------------------------------------------------------------------


class SlotGranted(NamedTuple):
    """The submission got a client job slot: it may be sent."""

    ticket: SlotTicket


class SubmissionAnswered(NamedTuple):
    """The service created the job; ``task`` is its answer."""

    task: Task


class SubmissionFailed(NamedTuple):
    """The submission ended without a job id; ``error`` says whether a job may exist."""

    error: BaseException


class StatusObserved(NamedTuple):
    """A status read answered ``task``; ``polled`` when the job's watch made the read (then
    its time and ``hint`` count for the schedule)."""

    task: Task
    hint: ServerHint = NO_HINT
    polled: bool = False


class ReadFailed(NamedTuple):
    """A status read failed with ``error`` (retries spent, for a one-off read)."""

    error: BaseException
    polled: bool = False


class CallbackReceived(NamedTuple):
    """The service told the job's status from outside (a callback): as good as a read."""

    task: Task


class DeadlinePassed(NamedTuple):
    """The watch's deadline came before the job finished."""


class WatchRequested(NamedTuple):
    """Someone awaits the job, or a waiting submission needs its slot (``policy`` ``None``:
    the job's own, else the client's)."""

    policy: PollPolicy | None


class WatchStarted(NamedTuple):
    """The scheduler set ``watch`` up: when is its first read?"""

    watch: Watch


class WaiterLeft(NamedTuple):
    """A waiter of ``watch`` left (its result came, or it was cancelled)."""

    watch: Watch


class WatchAborted(NamedTuple):
    """The watch must end with ``error`` for its waiters (the client is closing)."""

    error: BaseException


class RestoredFromRecord(NamedTuple):
    """A job known from a record: its id (``None``: the submission's outcome is unknown),
    its last known snapshot, and when it was submitted (clock seconds), if known.

    ``stored``, instead of ``task``, makes the last snapshot when first needed (the job
    is then used, or asked about): restoring many jobs decodes none of them.
    """

    job_id: str | None
    task: Task | None
    submitted_at: float | None
    stored: Callable[[], Task | None] | None = None


Event: TypeAlias = (
    SlotGranted
    | SubmissionAnswered
    | SubmissionFailed
    | StatusObserved
    | ReadFailed
    | CallbackReceived
    | DeadlinePassed
    | WatchRequested
    | WatchStarted
    | WaiterLeft
    | WatchAborted
    | RestoredFromRecord
)


# --- the job ------------------------------------------------------------------------------


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


#: Jitter for every job's poll gaps (one generator: its state is 2.5 KB).
_RNG = random.Random()
#: The poll's tenacity strategies, shared by every job.
_WAIT = ScheduleWait(_RNG)
_STOP = StopAtDeadline()
#: Keep polling while the job is not finished or the read failed in a way worth retrying.
_KEEP_POLLING = tenacity.retry_if_result(lambda task: not task.is_finished) | (
    tenacity.retry_if_exception(is_retryable_read)
)
#: The schedule of a policy with ``learn=False``: the reference's typical durations only.
_UNLEARNED = DurationModel()


def _same_answer(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two snapshots came from the same answer (bytes compared, nothing decoded)."""
    if isinstance(b, RawJSON):
        return RawJSON.came_as(a, b.body)
    return not isinstance(a, RawJSON) and a == b


def progress_of(task: Task) -> int:
    """How far a snapshot says its job got: 0 queued, 1 running, 2 finished."""
    if task.is_finished:
        return 2
    return 0 if phase_of(task) is Phase.PENDING else 1


def change_key(task: Task) -> tuple[object, ...]:
    """What makes a snapshot news to someone following the job."""
    return (task.status, task.meta.started_at, task.meta.ended_at, len(task.logs))


class Job:
    """One job's state: its phase, last snapshot, slot, schedule and current watch.

    Slotted, as tens of thousands may wait at once. Only :meth:`on` changes it.
    """

    __slots__ = (
        "__weakref__",
        "changed",
        "engine",
        "expects_callback",
        "holder",
        "job_id",
        "keeps_slot",
        "lost_said",
        "phase",
        "policy",
        "record",
        "schedule",
        "schedule_scale",
        "seed_unread",
        "stored",
        "submitted_at",
        "task",
        "ticket",
        "watch",
    )

    def __init__(
        self,
        engine: JobEngine,
        job_id: str,
        phase: Phase,
        *,
        policy: PollPolicy | None = None,
    ) -> None:
        self.engine = engine
        #: ``""`` until the service names the job.
        self.job_id = job_id
        self.phase = phase
        #: The latest snapshot (from the submission, a read or a callback), if any.
        self.task: Task | None = None
        #: The job's own poll policy (a handle's), over the client's.
        self.policy = policy
        #: When the submission was answered (clock seconds), for jobs this client made.
        self.submitted_at: float | None = None
        self.ticket: SlotTicket | None = None
        #: Whether the slot is held until the job ends (a submission's), or only while
        #: the job is watched.
        self.keeps_slot = False
        self.holder: _SlotHolder | None = None
        #: What the schedule knows, in service seconds of ``schedule_scale`` (made by the
        #: first watch).
        self.schedule: PollState | None = None
        self.schedule_scale: float | None = None
        #: Whether the submission's answer stands for the first read.
        self.seed_unread = False
        self.watch: Watch | None = None
        self.changed: asyncio.Future[None] | None = None
        #: The job's record in the client's store, if it has one (the client keeps it).
        self.record: JobRecord | None = None
        #: Whether the client holds the job as lost (told so by ``job_lost``, or restored
        #: from a record that says so): the next snapshot the service gives tells it the
        #: job was found, even one with the very bytes seen before.
        self.lost_said = False
        #: Makes the snapshot of a restored job, not decoded yet (see ``snapshot``).
        self.stored: Callable[[], Task | None] | None = None
        #: Whether the service will post the job to the client's webhook receiver: then
        #: polling is only a sparse safety net (see ``_polling.safety_net``).
        self.expects_callback = False

    def __repr__(self) -> str:
        return f"<Job {self.job_id!r} {self.phase.value}>"

    # --- the one place where a job's life is decided -----------------------------------

    def on(self, event: Event) -> float | None:
        """Take in ``event`` and act on it: the job's phase, snapshot, waiters and slot.

        Returns the clock time of the watch's next read when the event was one of the
        watch's own (its start or a read it made) and the watch goes on; else ``None``.
        """
        if self.stored is not None:
            self._unpack()
        try:
            return self._on(event)
        finally:
            self._settle_slot()

    @property
    def snapshot(self) -> Task | None:
        """The latest snapshot, the one of a restored job's record decoded if need be."""
        if self.stored is not None:
            self._unpack()
        return self.task

    def _unpack(self) -> None:
        """Take in a restored job's recorded snapshot, before anything else happens to it."""
        stored, self.stored = self.stored, None
        assert stored is not None
        task = stored()
        if task is not None and self.task is None:
            self._take(task)  # old news: a watch reads again at once

    def _on(self, event: Event) -> float | None:
        match event:
            case StatusObserved(task, hint, polled):
                watch = self.watch
                if polled and watch is not None:
                    watch.state.errors = 0
                    self._take(task, watch, hint)
                    if self.lost_said:
                        self._found()
                    return self._next_read(watch, _Outcome(self.task, None))
                self._take(task)
                if self.lost_said:
                    self._found()
                if self.phase is Phase.COMPLETED or self.phase is Phase.FAILED:
                    self._end_watch(_Outcome(self.task, None))
                return None
            case ReadFailed(error, polled):
                if isinstance(error, NotFoundError) and self.phase not in _SLOTLESS:
                    self.phase = Phase.LOST
                    self.lost_said = True
                    self.engine.services.job_lost(self)
                watch = self.watch
                if polled and watch is not None:
                    return self._next_read(watch, _Outcome(None, error))
                if self.phase is Phase.LOST:
                    self._end_watch(_Outcome(None, error))
                return None
            case CallbackReceived(task):
                if self.phase is Phase.OUTCOME_UNKNOWN and not self.job_id and task.job_id:
                    # The callback of a submission whose answer was lost: the job exists.
                    self.job_id = task.job_id
                elif task.job_id != self.job_id or not self.job_id:
                    logger.debug("job %s: ignored a callback about another job", self.job_id)
                    return None
                known = self.task
                if known is not None and progress_of(task) < progress_of(known):
                    # Deliveries may come out of order: a "pending" after a "processing"
                    # is old news, not a step back.
                    return None
                self._take(task)
                if self.lost_said:
                    self._found()
                if self.phase is Phase.COMPLETED or self.phase is Phase.FAILED:
                    self._end_watch(_Outcome(self.task, None))
                return None
            case WatchStarted(watch):
                if watch is not self.watch:
                    return None  # ended before the scheduler set it up
                seed = self.task
                if self.seed_unread and seed is not None:
                    self.seed_unread = False
                    return self._next_read(watch, _Outcome(seed, None))
                return self.engine.clock.now()
            case DeadlinePassed():
                watch = self.watch
                if watch is not None:
                    if self.phase not in _SLOTLESS:
                        self.phase = Phase.GIVEN_UP
                    timeout = TaskTimeoutError(self.job_id, watch.timeout, self.task)
                    self._end_watch(_Outcome(None, timeout))
                return None
            case WatchRequested(policy):
                self._start_watch(policy)
                return None
            case WaiterLeft(watch):
                if watch is self.watch and not watch.listeners and not self._slot_wanted():
                    self._end_watch(None)
                return None
            case WatchAborted(error):
                self._end_watch(_Outcome(None, error))
                return None
            case SlotGranted(ticket):
                self.phase = Phase.SUBMITTING
                self.ticket = ticket
                self.keeps_slot = True
                return None
            case SubmissionAnswered(task):
                self._created(task)
                return None
            case SubmissionFailed(error):
                unknown = isinstance(error, SubmissionOutcomeUnknownError | asyncio.CancelledError)
                self.phase = Phase.OUTCOME_UNKNOWN if unknown else Phase.REFUSED
                return None
            case RestoredFromRecord(job_id, task, submitted_at, stored):
                if job_id is None:
                    self.phase = Phase.OUTCOME_UNKNOWN
                    return None
                self.job_id = job_id
                self.submitted_at = submitted_at
                self.phase = Phase.PENDING
                if task is not None:
                    self._take(task)  # old news: a watch reads again at once
                else:
                    self.stored = stored
                return None
            case _:
                assert_never(event)

    # --- what the decisions are made of ---------------------------------------------------

    def _found(self) -> None:
        """The service gave a snapshot of a job held lost: it is not (a 404 in passing)."""
        self.lost_said = False
        if self.task is not None and self.phase is Phase.LOST:
            self.phase = phase_of(self.task)
        self.engine.services.job_found(self)

    def _take(self, task: Task, watch: Watch | None = None, hint: ServerHint = NO_HINT) -> None:
        """Keep ``task`` as the latest snapshot; wake followers on a change; learn from a
        finish. ``watch``: the watch whose read brought it (its time counts for the
        schedule).

        The snapshot held stays when nothing changed, so a big batch of waiting jobs does
        not keep promoting fresh copies into the GC's oldest generation; and once the job
        was seen finished, nothing replaces that snapshot (a stale replica's ``processing``
        is not news).
        """
        previous = self.task
        if previous is not None and previous.is_finished:
            if task.status is not previous.status:
                logger.debug(
                    "job %s: ignored status %.40r after %s",  # escaped, cut: the service chose it
                    self.job_id,
                    task.status.value,
                    previous.status.value,
                )
            return
        if previous is not None and (task is previous or _same_answer(previous.raw, task.raw)):
            task = previous
        self.task = task
        self.seed_unread = False
        if watch is not None:
            now = watch.now()
            state = watch.state
            state.last_read_at = now
            if task.status.is_queued:
                state.last_queued_at = now
            elif state.first_running_at is None:
                state.first_running_at = now
            state.hint = hint.at(now, watch.scale)
        if task is previous:
            return  # nothing new: no change to announce, no finish to learn from
        self.phase = phase_of(task)
        self.engine.services.snapshot_changed(self, previous)
        if previous is None or change_key(previous) != change_key(task):
            changed = self.changed
            # One awaited by ``updates()`` in a loop that has ended since is nobody's now.
            if changed is not None and not changed.done() and not changed.get_loop().is_closed():
                changed.set_result(None)
            self.changed = None
        if task.is_finished:
            services = self.engine.services
            if (self.policy or services.poll).learn:
                services.durations.observe(task)
            logger.debug("job %s finished: %s", self.job_id, task.status.value)

    def _created(self, task: Task) -> None:
        """The submission's answer: the job now has an id, a snapshot and a slot to keep."""
        engine = self.engine
        services = engine.services
        now = engine.clock.now()
        if self.ticket is not None:
            services.slots.mark_running(self.ticket, task.job_id)
            self.holder = engine.hold(self)
        self.job_id = task.job_id
        self.submitted_at = now
        created = task.meta.created_at
        if created is not None:
            scale = services.poll.time_scale
            engine.offsets[scale] = created.timestamp() - now / scale
        self._take(task)
        self.seed_unread = not task.is_finished
        if self._slot_wanted():
            self._start_watch(None)

    def _next_read(self, watch: Watch, outcome: _Outcome) -> float | None:
        """Tenacity's strategies judge a read of ``watch``: end the watch, or when to read
        next (clock seconds)."""
        attempt = tenacity.RetryCallState(retry_object=watch, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        attempt.outcome = outcome  # type: ignore[assignment]
        if not _KEEP_POLLING(attempt):
            self._end_watch(outcome)
            return None
        wait = _WAIT(attempt)
        if _STOP(attempt):
            self._on(DeadlinePassed())
            return None
        return watch.clock.now() + wait * watch.scale

    def _start_watch(self, policy: PollPolicy | None) -> None:
        """Watch the job unless it is watched already (or finished)."""
        if self.watch is not None or self.phase in (Phase.COMPLETED, Phase.FAILED):
            return
        assert self.job_id, "a job is watched only once it has an id"
        engine = self.engine
        if engine.closed:
            return  # a waiting submission's call to keep slots moving, too late
        services = engine.services
        if self.ticket is None:
            # A job made elsewhere (or lost and awaited again) counts only while watched.
            self.ticket = services.slots.occupy(self.job_id)
            self.keeps_slot = False
        if self.phase is Phase.LOST or self.phase is Phase.GIVEN_UP:
            self.phase = phase_of(self.task) if self.task is not None else Phase.PENDING
        watch = self.watch = Watch(self, policy or self.policy or services.poll)
        engine.polling.start(watch)

    def _end_watch(self, outcome: _Outcome | None) -> None:
        """End the current watch, if any: its waiters get ``outcome`` (``None``: none is
        left), and a read in flight is cancelled."""
        watch = self.watch
        if watch is None:
            return
        self.watch = None
        watch.ended = True
        self.engine.polling.forget(watch)
        reading = watch.reading
        if reading is not None:
            watch.reading = None
            reading.cancel()
        error = outcome.exception() if outcome is not None else None
        heard = False
        if outcome is not None:
            for listener in watch.listeners:
                if not listener.done():
                    outcome.settle(listener)
                    heard = True
        if error is not None and not heard and not isinstance(error, ClientClosedError):
            # A watch nobody awaits (it polls so that a waiting submission gets this job's
            # slot): its failure must still be seen somewhere.
            if isinstance(error, LegnextError):
                logger.warning("stopped polling job %s: %s", self.job_id, error)
            else:
                logger.error("stopped polling job %s", self.job_id, exc_info=error)

    def _slot_wanted(self) -> bool:
        """Whether a submission waits for a slot this job holds until it ends (then the job
        is polled, awaited or not, so that its slot frees when it does)."""
        return self.keeps_slot and self.engine.services.slots.waiting > 0

    def _settle_slot(self) -> None:
        """Give the slot back once the job no longer needs it."""
        ticket = self.ticket
        if ticket is None:
            return
        if self.phase in _SLOTLESS or (not self.keeps_slot and self.watch is None):
            holder = self.holder
            self.ticket = self.holder = None
            self.keeps_slot = False
            self.engine.free_slot(ticket, holder)

    # --- what a handle asks -----------------------------------------------------------

    def join(self, policy: PollPolicy | None) -> tuple[Watch, asyncio.Future[Task]]:
        """Wait on the job's watch (starting one if none): a future of the waiter's own, so
        that cancelling one waiter cancels only it (what ``asyncio.shield`` does, for less).
        """
        self.engine.services.check_open()
        self.on(WatchRequested(policy))
        watch = self.watch
        assert watch is not None
        ended: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        watch.listeners.append(ended)
        return watch, ended

    def leave(self, watch: Watch, ended: asyncio.Future[Task]) -> None:
        """The waiter of ``ended`` is gone (answered or cancelled)."""
        watch.listeners.remove(ended)
        if ended.done() and not ended.cancelled():
            ended.exception()  # retrieved, even if this waiter was cancelled meanwhile
        if not watch.listeners:
            self.on(WaiterLeft(watch))

    def next_change(self) -> asyncio.Future[None]:
        """A future resolved when the snapshot next changes (for ``updates()``)."""
        changed = self.changed
        loop = asyncio.get_running_loop()
        if changed is None or changed.done() or changed.get_loop() is not loop:
            changed = self.changed = loop.create_future()
        return changed

    async def refresh(self) -> Task:
        """Read the status once (failed reads retried); the snapshot kept afterwards."""
        engine = self.engine
        services = engine.services
        job_id, known = self.job_id, self.snapshot
        try:
            task, _ = await retry_call(
                services.retry,
                lambda: services.read_status(job_id, known),
                retry_if=is_retryable_read,
                clock=engine.clock,
            )
        except NotFoundError as exc:
            self.on(ReadFailed(exc))
            raise
        self.on(StatusObserved(task))
        assert self.task is not None
        return self.task

    def offset(self, scale: float) -> float | None:
        """The service's clock minus ours (service seconds), from our submission if we made
        the job, else from the client's other submissions."""
        task = self.task
        if self.submitted_at is not None and task is not None:
            created = task.meta.created_at
            if created is not None:
                return created.timestamp() - self.submitted_at / scale
        return self.engine.offsets.get(scale)


class Watch:
    """One stretch of watching a job: its waiters, policy and deadline; what the scheduler
    reads on time, and what the poll's tenacity strategies consult (a ``PollSchedule``).

    Times are service seconds (the clock divided by the policy's time scale), except that
    ``begin()`` and ``poll()`` answer in clock seconds, for the scheduler.
    """

    __slots__ = (
        "clock",
        "deadline",
        "durations",
        "ended",
        "job",
        "listeners",
        "policy",
        "queued",
        "reading",
        "scale",
        "state",
        "timeout",
    )

    def __init__(self, job: Job, policy: PollPolicy) -> None:
        self.job = job
        self.policy = policy
        engine = job.engine
        self.clock = clock = engine.clock
        self.scale = scale = policy.time_scale
        task = job.task
        task_type = task.task_type if task is not None else None
        self.timeout = policy.timeout_for(task_type)
        self.deadline = clock.now() + self.timeout * scale
        state = job.schedule
        if state is None or job.schedule_scale != scale:
            # The schedule's clock is in service seconds of this policy's scale.
            submitted = job.submitted_at
            state = job.schedule = PollState(
                task_type=task_type,
                submitted_at=submitted / scale if submitted is not None else None,
                expects_callback=job.expects_callback,
            )
            job.schedule_scale = scale
        #: The job's schedule (it outlives the watch).
        self.state = state
        self.durations = engine.services.durations if policy.learn else _UNLEARNED
        self.listeners: list[asyncio.Future[Task]] = []
        self.ended = False
        self.queued = False
        self.reading: asyncio.Task[None] | None = None

    # --- what the scheduler asks -----------------------------------------------------

    @property
    def name(self) -> str:
        return self.job.job_id

    def begin(self) -> float | None:
        """The first read is due now, unless the submission's answer stands for it."""
        return self.job.on(WatchStarted(self))

    async def poll(self) -> float | None:
        """One status read, then the time of the next (``None``: the watch ended)."""
        job = self.job
        services = job.engine.services
        event: StatusObserved | ReadFailed
        try:
            task, hint = await services.read_status(job.job_id, job.task)
        except RateLimitError as exc:
            services.pace.throttled()
            event = ReadFailed(exc, polled=True)
        except Exception as exc:  # judged by _KEEP_POLLING; CancelledError passes
            event = ReadFailed(exc, polled=True)
        else:
            services.pace.succeeded()
            event = StatusObserved(task, hint, polled=True)
        self.reading = None
        if self.ended:
            return None
        return job.on(event)

    def end(self, error: BaseException) -> None:
        """The scheduler is closing (or failed): the waiters get ``error``."""
        if not self.ended:
            self.job.on(WatchAborted(error))

    # --- what the tenacity strategies ask (PollSchedule) -----------------------------

    @property
    def jitter(self) -> float:
        return self.policy.jitter

    def now(self) -> float:
        return self.clock.now() / self.scale

    def remaining(self) -> float:
        return (self.deadline - self.clock.now()) / self.scale

    def pace(self) -> float:
        return self.job.engine.services.pace.factor

    def delay_for(self, task: Task) -> float:
        job = self.job
        return next_delay(
            self.policy, self.durations, self.state, task, self.now(), job.offset(self.scale)
        )

    def error_delay(self, exc: BaseException) -> float:
        state = self.state
        state.errors += 1
        wait = self.job.engine.services.retry.wait_for(exc, state.errors)
        # Retry-After and the backoff are real seconds, the schedule's service seconds; and a
        # gap stays within the policy's bounds whatever the service asked for.
        return self.policy.clamp(wait / self.scale)

    def bounds(self) -> tuple[float, float]:
        return self.policy.min_interval, self.policy.max_interval


class _SlotHolder(weakref.ref[Job]):
    """The engine's weak reference to a job that holds a slot until it ends: it finds the
    jobs to poll when a submission waits for a slot, and frees the slot of a job dropped
    before it was seen finished. One object per job (``weakref.finalize`` costs five)."""

    __slots__ = ("engine", "ticket")

    def __new__(cls, job: Job, engine: JobEngine, ticket: SlotTicket) -> Self:
        return super().__new__(cls, job, _holder_dropped)

    def __init__(self, job: Job, engine: JobEngine, ticket: SlotTicket) -> None:
        # weakref.ref.__init__ only checks the arguments __new__ took.
        self.engine = engine
        self.ticket = ticket


def _holder_dropped(holder: weakref.ref[Job]) -> None:
    assert isinstance(holder, _SlotHolder)
    holder.engine.free_slot(holder.ticket, holder)


class JobEngine:
    """Every job of one client: makes them, times their reads, keeps their slots moving.

    ``clock`` times every read, deadline and retry (the event loop's, unless a test gives
    another).
    """

    __slots__ = ("_max_in_flight", "clock", "closed", "holders", "offsets", "polling", "services")

    def __init__(
        self, services: JobServices, *, max_in_flight: int, clock: Clock = LOOP_CLOCK
    ) -> None:
        self.services = services
        #: What times reads, deadlines and retries (see :meth:`use_clock`).
        self.clock = clock
        self._max_in_flight = max_in_flight
        #: Times the watches' reads; one per event loop (see :meth:`renew`).
        self.polling = PollScheduler(max_in_flight, clock)
        #: Jobs holding a slot until they end (weakly).
        self.holders: set[_SlotHolder] = set()
        #: The service's clock minus ours (service seconds), by time scale, from the last
        #: submission answered: it places a job's ``started_at`` on our clock.
        self.offsets: dict[float, float] = {}
        #: The client was closed: no watch starts any more.
        self.closed = False
        services.slots.on_wait = self.watch_slot_holders

    def use_clock(self, clock: Clock) -> None:
        """Time everything by ``clock`` from now on (tests: a fake one, before any wait)."""
        self.clock = self.polling.clock = clock

    def renew(self) -> None:
        """The client moved to a new event loop: a fresh scheduler (the old loop's timers
        and tasks will never run)."""
        self.polling = PollScheduler(self._max_in_flight, self.clock)

    # --- making jobs --------------------------------------------------------------------

    def job(self, job_id: str, policy: PollPolicy | None = None) -> Job:
        """A job created elsewhere, not read yet (nothing is sent until it is watched)."""
        return Job(self, job_id, Phase.PENDING, policy=policy)

    async def submit(
        self,
        send: Callable[[SlotTicket], Awaitable[Task]],
        policy: PollPolicy | None = None,
        *,
        expects_callback: bool = False,
    ) -> Job:
        """Wait for a job slot, then ``send`` the submission with it; the job created.

        ``expects_callback``: the submission carries a callback URL of the client's webhook
        receiver. Raises what ``send`` raised (the slot is then given back).
        """
        job = Job(self, "", Phase.WAITING_FOR_SLOT, policy=policy)
        job.expects_callback = expects_callback
        ticket = await self.services.slots.acquire()
        job.on(SlotGranted(ticket))
        try:
            task = await send(ticket)
        except BaseException as exc:
            job.on(SubmissionFailed(exc))
            raise
        job.on(SubmissionAnswered(task))
        return job

    def restore(
        self,
        job_id: str | None,
        *,
        task: Task | None = None,
        sent_at: float | None = None,
        policy: PollPolicy | None = None,
        stored: Callable[[], Task | None] | None = None,
        expects_callback: bool = False,
    ) -> Job:
        """A job known from a record: its id (``None`` if its submission's outcome is
        unknown), its last snapshot (or ``stored``, which makes it when first needed: it
        must not be finished), and when it was sent (Unix seconds), if known.

        It holds a slot only while watched, like any job this process did not submit.
        ``expects_callback``: its submission carried a callback URL of the client's webhook
        receiver.
        """
        submitted_at = None
        if sent_at is not None:
            submitted_at = self.clock.now() - max(0.0, time.time() - sent_at)
        job = Job(self, "", Phase.OUTCOME_UNKNOWN, policy=policy)
        job.expects_callback = expects_callback
        job.on(RestoredFromRecord(job_id, task, submitted_at, stored))
        return job

    # --- slots --------------------------------------------------------------------------

    def hold(self, job: Job) -> _SlotHolder:
        """Remember (weakly) that ``job`` holds its slot until it ends."""
        assert job.ticket is not None
        holder = _SlotHolder(job, self, job.ticket)
        self.holders.add(holder)
        return holder

    def free_slot(self, ticket: SlotTicket, holder: _SlotHolder | None) -> None:
        """Give a job slot back: the one place that does (a job's transition, a failed
        submission, or a job collected before it ended)."""
        self.services.slots.release(ticket)
        if holder is not None:
            self.holders.discard(holder)

    def watch_slot_holders(self) -> None:
        """A submission waits for a slot: make sure every job holding one is watched.

        Otherwise jobs submitted but not (yet) awaited, as in
        ``await asyncio.gather(*submissions)``, would hold their slots forever.
        """
        if self.closed:
            return
        for holder in list(self.holders):
            job = holder()
            if job is not None:
                job.on(WatchRequested(None))

    # --- closing ------------------------------------------------------------------------

    async def stop(self, error: Callable[[str], BaseException]) -> None:
        """End every watch (its waiters get ``error(job_id)``) and wait for reads to stop."""
        await self.polling.aclose(lambda run: error(run.name))
