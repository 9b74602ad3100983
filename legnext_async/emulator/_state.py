"""Accounts, billing, concurrency and the job book, advanced lazily to "now".

Nothing here runs on a timer. Each account keeps a heap of its active jobs by end
time; every request first *settles* its account up to the virtual now (bill or refund
finished jobs, start queued ones in the freed slots, at the moment the slot freed).
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import deque
from typing import TYPE_CHECKING

import attrs

from ._catalog import (
    DEFAULT_DURATIONS,
    DRAFT_DIFFUSION_PRICE,
    UPSCALE_PRICES,
    VIDEO_PRICES,
    Family,
)
from ._jobs import DEFAULT_FAILURE, Job, JobError
from ._validation import Submission, batch_size, is_draft, is_turbo

if TYPE_CHECKING:
    from ._options import CallbackOptions, JobRules

#: Balance alerts fire below this many USD (the live sample shows 10).
ALERT_THRESHOLD_USD = 10


@attrs.define(eq=False)
class Account:
    """One API key's wallet, concurrency slots and jobs."""

    account_id: int
    credits: int
    points: int
    whitelisted: bool
    updated_at: float
    frozen: int = 0
    used: int = 0
    #: (ended_at, sequence, job) of jobs holding a concurrency slot.
    active: list[tuple[float, int, Job]] = attrs.field(factory=list)
    #: The most jobs that held a concurrency slot at once.
    peak_active: int = 0
    #: Jobs waiting for a slot in "queue" mode, FIFO.
    queue: deque[Job] = attrs.field(factory=deque)
    #: How many queued jobs have a callback (their end time is still unknown).
    queued_callbacks: int = 0
    jobs: dict[str, Job] = attrs.field(factory=dict)

    @property
    def available(self) -> int:
        """Credits plus points not reserved by unfinished jobs."""
        return self.credits + self.points

    def reserve(self, cost: int) -> tuple[int, int]:
        """Take ``cost`` from points first, then credits; return (points, credits) taken."""
        from_points = min(self.points, cost)
        from_credits = cost - from_points
        self.points -= from_points
        self.credits -= from_credits
        self.frozen += cost
        return from_points, from_credits


@attrs.frozen
class FailurePlan:
    """Make the next ``remaining`` matching jobs fail with ``error``."""

    error: JobError
    task_type: str | None


@attrs.define
class _PlanCounter:
    plan: FailurePlan
    remaining: int


def price(sub: Submission, parent: Job | None) -> int:
    """Points to freeze for ``sub`` (reference §2 table; ``--turbo`` doubles)."""
    op = sub.operation
    cost = op.cost
    prompt = sub.prompt
    if op.route == "diffusion" and is_draft(prompt):
        cost = DRAFT_DIFFUSION_PRICE
    elif op.route == "reroll" and parent is not None:
        prompt = parent.prompt
        cost = DRAFT_DIFFUSION_PRICE if parent.draft else op.cost
    elif op.route == "upscale" and sub.upscale_type is not None:
        cost = UPSCALE_PRICES[sub.upscale_type]
    elif op.route == "video-diffusion":
        cost = VIDEO_PRICES[sub.video_type or 0]
    elif op.route == "extend-video" and parent is not None:
        cost = VIDEO_PRICES[parent.video_type]
    return cost * 2 if is_turbo(prompt) else cost


@attrs.define(eq=False)
class State:
    """Every account and job of one emulator, and the callback outbox."""

    rules: JobRules
    callbacks: CallbackOptions
    #: Draws job ids, run times, output seeds and ``failure_rate`` failures.
    rng: random.Random
    #: Accounts by API key.
    accounts: dict[str, Account] = attrs.field(factory=dict)
    jobs: dict[str, Job] = attrs.field(factory=dict)
    #: Draws callback jitter and losses (its own stream: job ids and run times stay put).
    delivery_rng: random.Random = attrs.field(factory=random.Random)
    #: (due, sequence, job, delivery number, the time whose status it posts) of callbacks
    #: not yet sent.
    outbox: list[tuple[float, int, Job, int, float]] = attrs.field(factory=list)
    #: Jobs seeded for every account (``seed_job`` without a key on an emulator that
    #: accepts any): each account, opened before or after, holds them among its jobs.
    shared: dict[str, Job] = attrs.field(factory=dict)
    _plans: list[_PlanCounter] = attrs.field(factory=list)
    #: Accounts by ``account_id - 1``.
    _owners: list[Account] = attrs.field(factory=list)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count)

    # -- accounts ------------------------------------------------------------------

    def account(self, key: str, now: float, *, whitelisted: bool) -> Account:
        """The account of ``key``, opened with the initial balance on first use."""
        account = self.accounts.get(key)
        if account is None:
            account = Account(
                account_id=len(self.accounts) + 1,
                credits=self.rules.initial_credits,
                points=self.rules.initial_points,
                whitelisted=whitelisted,
                updated_at=now,
                jobs=dict(self.shared),
            )
            self.accounts[key] = account
            self._owners.append(account)
        return account

    def owner(self, job: Job) -> Account | None:
        """The account ``job`` belongs to (``None``: a job seeded for every account)."""
        return self._owners[job.account_id - 1] if job.account_id else None

    def settle_all(self, now: float) -> None:
        """Settle every account up to ``now``."""
        for account in self.accounts.values():
            self.settle(account, now)

    def settle(self, account: Account, now: float) -> None:
        """Bill or refund jobs that ended by ``now`` and start queued jobs in freed slots."""
        active = account.active
        while active and active[0][0] <= now:
            ended, _, job = heapq.heappop(active)
            self._finish(account, job, ended)
            if account.queue:
                queued = account.queue.popleft()
                if queued.callback is not None:
                    account.queued_callbacks -= 1
                self._start(account, queued, ended)

    def _finish(self, account: Account, job: Job, ended: float) -> None:
        job.settled = True
        account.frozen -= job.frozen
        if job.failure is None:
            account.used += job.frozen
        else:  # a failed job releases its reservation (consume stays 0)
            account.points += job.from_points
            account.credits += job.from_credits
        account.updated_at = max(account.updated_at, ended)

    def _start(self, account: Account, job: Job, start: float) -> None:
        job.schedule(start, self.rules.pending_seconds, self.rules.staged_seconds)
        assert job.ended_at is not None
        heapq.heappush(account.active, (job.ended_at, next(self._seq), job))
        account.peak_active = max(account.peak_active, len(account.active))
        callbacks = self.callbacks
        if job.callback is not None and callbacks.enabled:
            events = [job.ended_at]
            if callbacks.intermediate:
                assert job.started_at is not None
                events.append(job.started_at)
            n = 0
            for at in events:
                for _ in range(callbacks.duplicates):
                    n += 1
                    due = at + callbacks.delay
                    if callbacks.jitter > 0:
                        due += self.delivery_rng.uniform(0.0, callbacks.jitter)
                    heapq.heappush(self.outbox, (due, next(self._seq), job, n, at))

    def busy(self, account: Account) -> bool:
        """Whether every concurrency slot is taken (call after ``settle``)."""
        return len(account.active) >= self.rules.concurrency_limit

    def _signed_until(self, created_at: float) -> int | None:
        """The ``Expires`` of the output URLs of a job created then, if they are signed."""
        rules = self.rules
        return int(created_at + rules.file_retention) if rules.signed_urls else None

    def expired(self, job: Job, now: float) -> bool:
        """Whether ``job`` is past retention: unknown to status reads and follow-ups."""
        return now - job.created_at > self.rules.retention

    # -- jobs ------------------------------------------------------------------------

    def new_id(self) -> str:
        """A UUID v4 string, drawn from the seeded generator."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _seed_for(self, task_type: str) -> str:
        if task_type == "remove_background":
            return "0"  # as in the vendor's remove-background example
        if task_type == "blend":
            return self.new_id()  # the blend example carries a UUID-like seed
        return str(self.rng.randrange(1_000_000_000, 4_294_967_296))

    def _duration(self, task_type: str, turbo: bool) -> float:
        default = DEFAULT_DURATIONS.get(task_type, (60.0, 90.0))
        low, high = self.rules.durations.get(task_type, default)
        seconds = self.rng.uniform(low, high)
        return seconds / 2 if turbo else seconds  # turbo ~2x faster (legnext.ai/turbo)

    def plan_failures(self, n: int, plan: FailurePlan) -> None:
        """Make the next ``n`` created jobs matching ``plan`` fail."""
        if n > 0:
            self._plans.append(_PlanCounter(plan, n))

    def _failure_for(self, task_type: str) -> JobError | None:
        for counter in self._plans:
            if counter.plan.task_type in (None, task_type):
                counter.remaining -= 1
                if counter.remaining <= 0:
                    self._plans.remove(counter)
                return counter.plan.error
        rate = self.rules.failure_rate
        if rate > 0 and self.rng.random() < rate:
            return DEFAULT_FAILURE
        return None

    def create(
        self,
        account: Account,
        *,
        sub: Submission,
        parent: Job | None,
        cost: int,
        origin: str,
        now: float,
    ) -> Job:
        """Freeze ``cost`` and create the job; it starts now or waits for a slot."""
        op = sub.operation
        prompt = parent.prompt if op.route == "reroll" and parent is not None else sub.prompt
        from_points, from_credits = account.reserve(cost)
        account.updated_at = now
        video_type = sub.video_type or 0
        extend_depth = 0
        if parent is not None and op.route == "extend-video":
            video_type, extend_depth = parent.video_type, parent.extend_depth + 1
        count = 1 if op.route == "video-upscale" else batch_size(prompt)
        job = Job(
            job_id=self.new_id(),
            task_type=op.task_type,
            family=op.family,
            account_id=account.account_id,
            callback=sub.callback,
            origin=origin,
            created_at=now,
            frozen=cost,
            from_points=from_points,
            from_credits=from_credits,
            seed=self._seed_for(op.task_type),
            failure=self._failure_for(op.task_type),
            parent_id=sub.parent_id,
            prompt=prompt,
            draft=op.route in ("diffusion", "reroll") and is_draft(prompt),
            turbo=is_turbo(prompt),
            video_type=video_type,
            video_count=count,
            extend_depth=extend_depth,
            duration=self._duration(op.task_type, is_turbo(prompt)),
            signed_until=self._signed_until(now),
        )
        self.jobs[job.job_id] = job
        account.jobs[job.job_id] = job
        if self.busy(account):
            account.queue.append(job)  # only reachable in "queue" mode
            if job.callback is not None:
                account.queued_callbacks += 1
        else:
            self._start(account, job, now)
        return job

    def seed(
        self,
        account: Account | None,
        *,
        task_type: str,
        family: Family,
        origin: str,
        created_at: float,
        draft: bool,
        video_type: int,
        video_count: int,
        prompt: str,
        failure: JobError | None,
    ) -> Job:
        """Record a job that finished at ``created_at``, without billing or callbacks, for
        ``account`` (``None``: for every account, those opened later too; its
        ``account_id`` is 0)."""
        job = Job(
            job_id=self.new_id(),
            task_type=task_type,
            family=family,
            account_id=account.account_id if account is not None else 0,
            callback=None,
            origin=origin,
            created_at=created_at,
            frozen=0,
            from_points=0,
            from_credits=0,
            seed=self._seed_for(task_type),
            failure=failure,
            prompt=prompt,
            draft=draft,
            video_type=video_type,
            video_count=video_count,
            settled=True,
            seeded=True,
            signed_until=self._signed_until(created_at),
        )
        job.schedule(created_at, 0.0, 0.0)
        self.jobs[job.job_id] = job
        if account is not None:
            account.jobs[job.job_id] = job
            return job
        self.shared[job.job_id] = job
        for each in self.accounts.values():
            each.jobs[job.job_id] = job
        return job

    def next_event(self) -> float | None:
        """The earliest virtual time at which the callback worker has work."""
        times = [self.outbox[0][0]] if self.outbox else []
        # A queued job's callback time is unknown until its slot frees, so wake then.
        times.extend(
            a.active[0][0] for a in self.accounts.values() if a.queued_callbacks and a.active
        )
        return min(times, default=None)

    def due_callbacks(self, now: float) -> list[tuple[Job, int, float]]:
        """Pop every callback due by ``now`` (settling queues first)."""
        for account in self.accounts.values():
            if account.queued_callbacks:
                self.settle(account, now)
        due = []
        while self.outbox and self.outbox[0][0] <= now:
            _, _, job, n, at = heapq.heappop(self.outbox)
            due.append((job, n, at))
        return due
