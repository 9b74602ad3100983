"""When to read a job's status: an ETA-aware schedule, as tenacity wait and stop strategies.

A job is created, waits in the service's queue (``pending``/``staged``), runs
(``processing``) for a duration typical of its task type, and ends. Reading its status at a
fixed interval wastes most reads: nothing can change while it waits or during the first
minute of an inpaint. So the schedule:

1. makes the first read after a share (:data:`FIRST_READ_SHARE`) of the shortest typical
   run of the task type;
2. reads a queued job rarely (``queued_interval``): it has not started, so it cannot finish;
3. for a running job, predicts the finish from ``started_at`` and the task type's run-time
   window ``[low, high]``; it sleeps until ``low`` and then reads every ``2 × target_lag``
   until ``high``, so a finish inside the window is seen ``target_lag`` late on average;
4. past ``high`` (an overdue job), backs off in proportion to how overdue it is;
5. honours a server hint (``Retry-After`` on a status answer, an ``estimated_time`` field)
   up to ``max_interval``;
6. learns each task type's window from the ``started_at``/``ended_at`` of jobs this client
   saw finish (:class:`DurationModel`).

All schedule times are in *service seconds*; ``PollPolicy.time_scale`` converts them to
real sleeping time, so the same schedule runs against an emulator that runs jobs 100× faster.
"""

from __future__ import annotations

import collections
import math
import os
import random
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

import attrs
import tenacity

from ._exceptions import ValidationError
from ._models import Task, TaskStatus, TaskType
from ._retry import parse_retry_after

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PollPolicy"]

#: Typical run time (``processing``) of each task type, in seconds: reference §2 (where it
#: gives none: retexture, remove_background, enhance, the same guesses as the emulator's).
DEFAULT_DURATIONS: Final[dict[TaskType, tuple[float, float]]] = {
    TaskType.DIFFUSION: (30.0, 90.0),
    TaskType.VARIATION: (60.0, 90.0),
    TaskType.UPSCALE: (90.0, 120.0),
    TaskType.REROLL: (60.0, 90.0),
    TaskType.BLEND: (60.0, 90.0),
    TaskType.DESCRIBE: (30.0, 60.0),
    TaskType.SHORTEN: (20.0, 40.0),
    TaskType.PAN: (90.0, 120.0),
    TaskType.OUTPAINT: (90.0, 120.0),
    TaskType.INPAINT: (90.0, 120.0),
    TaskType.REMIX: (90.0, 120.0),
    TaskType.EDIT: (90.0, 120.0),
    TaskType.UPLOAD_PAINT: (90.0, 120.0),
    TaskType.RETEXTURE: (90.0, 120.0),
    TaskType.REMOVE_BACKGROUND: (15.0, 20.0),
    TaskType.ENHANCE: (60.0, 90.0),
    TaskType.VIDEO_DIFFUSION: (180.0, 300.0),
    TaskType.EXTEND_VIDEO: (180.0, 300.0),
    TaskType.VIDEO_UPSCALE: (240.0, 360.0),
}
#: For task types this client does not know.
UNKNOWN_DURATION: Final = (30.0, 180.0)
#: The first read comes after this share of the shortest typical run.
FIRST_READ_SHARE: Final = 0.8
#: Default overall deadline of a wait, by output family, in seconds.
DEFAULT_TIMEOUTS: Final = {"image": 900.0, "text": 600.0, "video": 1800.0}
#: Finished jobs needed before a learned window replaces the default one.
LEARN_AFTER: Final = 3
#: Run times kept per task type.
LEARN_WINDOW: Final = 200
#: Seconds added on each side of a learned window: the service's timestamps are whole seconds.
LEARN_MARGIN: Final = 1.0
#: How fast an overdue job's reads back off: the gap grows by this share of the time overdue.
OVERDUE_GROWTH: Final = 0.25
#: With a callback expected, the safety net's first read comes this share of the task
#: type's longest typical run after the window's end: by then the callback of a job that
#: ran its usual course has come (or was lost).
CALLBACK_GRACE: Final = 0.25
#: The environment variable a policy built without ``time_scale`` takes it from, so that a
#: program runs unchanged against an emulator started with ``--time-scale``.
TIME_SCALE_ENV: Final = "LEGNEXT_TIME_SCALE"


def time_scale_from_env() -> float:
    """``$LEGNEXT_TIME_SCALE`` as a number, or 1.0 when it is unset or empty.

    Raises:
        ValidationError: it is set to anything but a finite number above 0.
    """
    text = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (0 < scale < math.inf):  # False for NaN
        raise ValidationError(
            TIME_SCALE_ENV,
            f"must be a number above 0 (real seconds per service second), got {text[:40]!r}",
        )
    return scale


def _time_scale_or_env(value: float | None) -> float:
    return time_scale_from_env() if value is None else value


@attrs.frozen
class PollPolicy:
    """How a :class:`TaskHandle` waits for its job.

    All times are seconds of the service's clock (see ``time_scale``).

    Attributes:
        first_delay: seconds between submission and the first status read. ``None``: a share
            (0.8) of the task type's shortest typical run, e.g. 72 s for an inpaint.
        min_interval: the shortest gap between two reads of one job (jitter included).
        max_interval: the longest gap between two reads of one job, whatever the service's
            hints (``Retry-After``, ``estimated_time``) or the client's pace after 429s say.
        target_lag: how late, on average, a finish inside the predicted window is seen;
            reads there come every ``2 × target_lag`` seconds.
        queued_interval: the gap between reads of a job still queued (``pending``/``staged``);
            it cannot finish before it starts, so these reads are rare. Capped at half the
            shortest typical run, so a short job is not missed.
        timeout: the overall deadline of a wait. ``None``: 15 minutes for image jobs, 10 for
            text and 30 for videos (the service takes 0.5–2, 0.5–1 and 3–6 minutes).
        jitter: each gap is scaled by a random factor in ``1 ± jitter``, so many handles never
            read in lock-step.
        learn: learn each task type's run time from the jobs this client sees finish.
        time_scale: real seconds per service second. Leave it at 1 against the real service;
            set it to the emulator's ``time_scale`` to run the same schedule faster in tests.
            ``None`` (the default): ``$LEGNEXT_TIME_SCALE`` if set (an invalid value raises
            :class:`ValidationError` naming the variable), else 1.
    """

    first_delay: float | None = attrs.field(default=None)
    min_interval: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    max_interval: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    target_lag: float = attrs.field(default=1.5, validator=attrs.validators.gt(0))
    queued_interval: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))
    timeout: float | None = attrs.field(default=None)
    jitter: float = attrs.field(
        default=0.1, validator=[attrs.validators.ge(0), attrs.validators.lt(1)]
    )
    learn: bool = True
    time_scale: float = attrs.field(
        default=None, converter=_time_scale_or_env, validator=attrs.validators.gt(0)
    )

    def __attrs_post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            msg = "PollPolicy.min_interval must not exceed max_interval"
            raise ValueError(msg)
        if self.first_delay is not None and self.first_delay < 0:
            msg = "PollPolicy.first_delay must be >= 0 or None"
            raise ValueError(msg)
        if self.timeout is not None and self.timeout <= 0:
            msg = "PollPolicy.timeout must be > 0 or None"
            raise ValueError(msg)

    def timeout_for(self, task_type: TaskType | None) -> float:
        """The overall deadline for a job of ``task_type`` (service seconds)."""
        if self.timeout is not None:
            return self.timeout
        family = task_type.family if task_type is not None else "image"
        return DEFAULT_TIMEOUTS[family]

    def clamp(self, seconds: float) -> float:
        """``seconds`` bounded to ``min_interval..max_interval``."""
        return min(self.max_interval, max(self.min_interval, seconds))


class DurationModel:
    """Per task type, the window ``[low, high]`` in which a started job usually finishes.

    Starts from :data:`DEFAULT_DURATIONS`; once :data:`LEARN_AFTER` jobs of a type were seen
    finishing, the window is the range of their run times (the last :data:`LEARN_WINDOW`),
    widened by a second on each side for the service's whole-second timestamps.
    """

    def __init__(self) -> None:
        self._runs: dict[TaskType, collections.deque[float]] = {}
        # Every poll asks for a window; the runs change only when a job finishes.
        self._windows: dict[TaskType, tuple[float, float]] = {}

    def window(self, task_type: TaskType) -> tuple[float, float]:
        """Seconds after ``started_at`` between which a job of this type usually ends."""
        window = self._windows.get(task_type)
        if window is None:
            runs = self._runs.get(task_type)
            if runs is not None and len(runs) >= LEARN_AFTER:
                window = (max(0.0, min(runs) - LEARN_MARGIN), max(runs) + LEARN_MARGIN)
            else:
                window = DEFAULT_DURATIONS.get(task_type, UNKNOWN_DURATION)
            self._windows[task_type] = window
        return window

    def observe(self, task: Task) -> None:
        """Learn from a job that finished successfully (others say nothing of run time)."""
        run = task.meta.run_seconds
        if task.status is not TaskStatus.COMPLETED or run is None or run < 0:
            return
        runs = self._runs.get(task.task_type)
        if runs is None:
            runs = self._runs[task.task_type] = collections.deque(maxlen=LEARN_WINDOW)
        runs.append(run)
        self._windows.pop(task.task_type, None)

    def samples(self, task_type: TaskType) -> int:
        """How many run times of ``task_type`` were learned."""
        return len(self._runs.get(task_type, ()))

    def to_json(self) -> dict[str, list[float]]:
        """The run times learned, by task type (what :meth:`restore` takes)."""
        return {task_type.value: list(runs) for task_type, runs in self._runs.items()}

    def restore(self, saved: Mapping[str, object]) -> None:
        """Take in run times saved by :meth:`to_json` (an earlier run's), before the ones
        learned here; values that are not finite non-negative numbers are skipped."""
        for name, runs in saved.items():
            if not isinstance(runs, list):
                continue
            task_type = TaskType(str(name))
            learned = self._runs.get(task_type, ())
            merged: collections.deque[float] = collections.deque(maxlen=LEARN_WINDOW)
            merged.extend(
                float(run)
                for run in runs
                if isinstance(run, int | float)
                and not isinstance(run, bool)
                and math.isfinite(run)
                and run >= 0
            )
            merged.extend(learned)
            if merged:
                self._runs[task_type] = merged
                self._windows.pop(task_type, None)


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


#: A status answer that said nothing of when to read again.
NO_HINT: Final = ServerHint()


@attrs.define
class PollState:
    """What one job's schedule knows of it, in the client's service-second clock.

    ``submitted_at`` is known only for jobs this client created; ``last_queued_at`` is the
    last read that still saw the job queued; ``hint`` an absolute time before which the
    server asked not to read again.
    """

    task_type: TaskType | None
    submitted_at: float | None = None
    last_read_at: float | None = None
    last_queued_at: float | None = None
    first_running_at: float | None = None
    hint: float | None = None
    errors: int = 0
    #: The service will post the job to a webhook receiver: polls are a safety net.
    expects_callback: bool = False


def next_delay(
    policy: PollPolicy,
    durations: DurationModel,
    state: PollState,
    task: Task | None,
    now: float,
    server_offset: float | None,
) -> float:
    """Service seconds from ``now`` until the next status read (before jitter and pacing).

    ``server_offset`` is the service clock minus the client's (``None`` if unknown): it places
    ``started_at`` on the client's clock.
    """
    if task is None:
        return 0.0
    task_type = task.task_type
    low, high = durations.window(task_type)
    dense = 2 * policy.target_lag
    delay: float
    if task.status.is_queued or (task.meta.started_at is None and not task.status.is_known):
        if state.last_read_at is None and state.submitted_at is not None:
            first = policy.first_delay
            if first is None:
                first = FIRST_READ_SHARE * low
            delay = max(0.0, state.submitted_at + first - now)
        else:
            delay = policy.clamp(min(policy.queued_interval, low / 2))
    else:
        started = _started_on_client_clock(task, state, server_offset)
        elapsed = now - started
        if elapsed < low:
            delay = max(low - elapsed, policy.min_interval)
        elif elapsed < high:
            delay = policy.clamp(dense)
        else:
            delay = policy.clamp(max(dense, OVERDUE_GROWTH * (elapsed - high)))
        delay = min(delay, policy.max_interval)
    if state.hint is not None:
        # Honoured up to max_interval only: the service's word could be anything (a
        # Retry-After of 999999, an estimated_time of 1e308), and the wait must go on.
        delay = max(delay, min(state.hint - now, policy.max_interval))
    if state.expects_callback:
        return safety_net(policy, high, state, now, delay)
    return delay


def safety_net(
    policy: PollPolicy, high: float, state: PollState, now: float, delay: float
) -> float:
    """The gap before the next read of a job whose callback is expected, from the gap
    polling alone would take (``delay``, service seconds).

    The first read after the submission waits until the job should have ended and its
    callback come: ``(1 + CALLBACK_GRACE) × high`` after it (``high``: the end of the task
    type's run-time window, learned or typical). Every later gap is at least
    ``max_interval``. No gap is shorter than polling alone would take, so a job whose
    callbacks are all lost costs no more reads than polling: it is seen late, not dearly.
    """
    if state.last_read_at is None and state.submitted_at is not None:
        due = state.submitted_at + (1 + CALLBACK_GRACE) * high
        return max(delay, due - now)
    return max(delay, policy.max_interval)


def _started_on_client_clock(task: Task, state: PollState, server_offset: float | None) -> float:
    """When the job began running, on the client's clock; the earliest time consistent with
    what was seen when the service's clock is unknown (reading early costs a read, reading
    late costs lag)."""
    started_at = task.meta.started_at
    if started_at is not None and server_offset is not None:
        return started_at.timestamp() - server_offset
    for bound in (state.last_queued_at, state.submitted_at, state.first_running_at):
        if bound is not None:
            return bound
    return 0.0


class PollSchedule(Protocol):
    """One poller's view of its job, as the tenacity strategies below consult it.

    The poll loop passes it as the retry state's ``retry_object``, so the strategies
    themselves hold no per-job state and one instance serves every handle.
    """

    jitter: float

    def delay_for(self, task: Task) -> float:
        """The schedule's gap (service seconds) after reading ``task``."""

    def error_delay(self, exc: BaseException) -> float:
        """The gap after a failed read."""

    def pace(self) -> float:
        """The client-wide stretch factor of poll gaps."""

    def bounds(self) -> tuple[float, float]:
        """The shortest and the longest gap the policy allows between two reads."""

    def remaining(self) -> float:
        """Service seconds until the wait's deadline."""


class ScheduleWait(tenacity.wait.wait_base):
    """Tenacity wait for the poll loop: the ETA schedule after a status, backoff after an error.

    The gap comes from the retry state's :class:`PollSchedule`, then is jittered by its
    ``jitter`` (``1 ± jitter``), stretched by the client's pace factor, and cut so the last
    read lands on the deadline. Jitter and pace never take a gap out of the policy's
    ``min_interval..max_interval`` (one the schedule set outside it, such as the first read
    after a submission, they only move towards it): however many 429s, no job goes unread
    for longer than ``max_interval``.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        schedule: PollSchedule = retry_state.retry_object  # type: ignore[assignment]
        outcome = retry_state.outcome
        if outcome is None:
            return 0.0
        if outcome.failed:
            exc = outcome.exception()
            assert exc is not None
            delay = schedule.error_delay(exc)
        else:
            delay = schedule.delay_for(outcome.result())
        planned = delay
        jitter = schedule.jitter
        if jitter and delay > 0:
            delay *= self._rng.uniform(1 - jitter, 1 + jitter)
        delay *= schedule.pace()
        shortest, longest = schedule.bounds()
        delay = min(max(delay, min(shortest, planned)), max(longest, planned))
        return max(0.0, min(delay, schedule.remaining()))


class StopAtDeadline(tenacity.stop.stop_base):
    """Tenacity stop: the deadline of the retry state's :class:`PollSchedule` has come."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        schedule: PollSchedule = retry_state.retry_object  # type: ignore[assignment]
        return schedule.remaining() <= 0
