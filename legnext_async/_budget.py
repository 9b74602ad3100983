"""Client-wide limits: job slots, concurrent requests, a request rate, and the poll pace.

An account runs only a few jobs at once (about 6). :class:`JobSlots` holds submissions
beyond that in this process, first come first served, instead of sending them to be
refused; with no limit given it learns the account's from 429s on submissions, and raises
a learned limit again after enough jobs finish without one.
:class:`RequestBudget` caps the HTTP requests in flight and, optionally, their rate; its
:class:`Pace` stretches every poll gap after a 429 on a status read (AIMD).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._clock import LOOP_CLOCK

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._clock import Clock
    from ._exceptions import RateLimitKind

__all__: list[str] = []

logger = logging.getLogger("legnext_async")

#: The most a run of 429s on status reads can stretch poll gaps.
MAX_PACE: Final = 16.0
#: How much each successful read raises the poll rate back (as a share of the full rate).
PACE_RECOVERY: Final = 0.02
#: The most times refused raises double the wait before the next raise of a learned
#: limit: at most 2**5 = 32 turnovers between probes of a level the service refuses.
MAX_DOUBLINGS: Final = 5
#: The attributes of :class:`JobSlots` that make up what it learned (with ``_refusals``).
_LEARNED: Final = (
    "limit",
    "proven",
    "discoveries",
    "recoveries",
    "probes",
    "failed_probes",
    "_quiet",
    "_setbacks",
    "_just_raised",
)


class SlotTicket:
    """One job's claim on a client job slot: waiting, granted, sent, running, or done."""

    __slots__ = ("__weakref__", "future", "order", "state")

    def __init__(self, order: int) -> None:
        self.order = order
        self.state = "waiting"
        self.future: asyncio.Future[None] | None = None

    def __lt__(self, other: SlotTicket) -> bool:
        return self.order < other.order


class JobSlots:
    """A FIFO limit on this client's active jobs (submitted and not yet seen finished).

    ``limit`` ``None`` means unlimited until a 429 on a submission teaches it: at that moment
    the service is full, so its limit is at most the number of jobs this client knows are
    running plus its other submissions in flight. Granted tickets that were not sent yet are
    taken back when the limit falls, so a burst of submissions causes one 429, not one per
    submission. A 429 about the request rate (``kind="rate"``) teaches nothing.

    A limit lowered by a 429 is raised again by one after *quiet* finishes: jobs seen finished
    while every slot was in use and submissions waited, with no 429 in between. ``proven`` is
    the highest limit that held for a full turnover (``limit`` quiet finishes). Below it the
    limit climbs back one step per quiet finish; at or above it, a step (a probe) comes after
    ``limit * 2**f`` quiet finishes, where ``f`` (at most ``MAX_DOUBLINGS``) counts the failed
    raises to that very level (``limit + 1``) since it last held: each level keeps its own
    count, so a level refused many times is not tried again soon just because a lower one held,
    and a lower one that held before is not kept waiting for the failures of a higher one. A
    raise *fails* when it is refused before any job finished at the new level, or by a 429
    naming the job limit; an ambiguous 429 that comes later may be noise, so it lowers the limit
    but lengthens no wait. Failed climbs back below ``proven`` double their wait too, until a
    raise holds; after more than ``MAX_DOUBLINGS`` of them in a row, ``proven`` drops to what
    the last 429 taught (and the level is probed from then on as rarely as one refused at every
    probe). A ``"jobs"`` 429 also lowers ``proven`` at once. A limit given by the user is a
    ceiling: a 429 may lower the limit below it for a while, but no probe goes above it.

    Counters, for logs and benchmarks: ``discoveries`` (429s that lowered the limit),
    ``recoveries`` (raises back to a level that had worked), ``probes`` (raises above
    ``proven``), ``failed_probes`` (429s at a level above ``proven``) and ``rate_limited``
    (request-rate 429s on submissions, which change nothing here).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.ceiling = limit
        self.proven = limit or 0
        self.discoveries = 0
        self.recoveries = 0
        self.probes = 0
        self.failed_probes = 0
        self.rate_limited = 0
        self._quiet = 0  # finishes, all slots in use and submissions waiting, since a change
        #: Failed raises to each level above ``proven`` since that level last held.
        self._refusals: dict[int, int] = {}
        self._setbacks = 0  # raises towards ``proven`` refused since it last held
        self._just_raised = False  # raised, and no job finished since
        self._held = 0  # granted + sent + running
        self._waiting = 0
        self._sent = 0
        self._running = 0
        self._queue: list[SlotTicket] = []  # a heap, by submission order
        self._granted: set[SlotTicket] = set()  # granted, not sent yet
        self._orders = itertools.count()
        #: Called when a submission starts waiting, so running jobs get watched.
        self.on_wait: Callable[[], object] | None = None

    @property
    def active(self) -> int:
        """Jobs known to be running on the service (created and not seen finished)."""
        return self._running

    @property
    def waiting(self) -> int:
        """Submissions waiting for a slot."""
        return self._waiting

    def enqueue(self) -> SlotTicket:
        """Join the line for a slot; the ticket is granted at once if one is free."""
        ticket = SlotTicket(next(self._orders))
        heapq.heappush(self._queue, ticket)
        self._waiting += 1
        self._pump()
        return ticket

    async def acquire(self) -> SlotTicket:
        """Wait (first come, first served) until a slot is free, and take it."""
        ticket = self.enqueue()
        await self.wait_granted(ticket)
        return ticket

    async def wait_granted(self, ticket: SlotTicket) -> None:
        """Wait until ``ticket`` is granted (again, after being taken back)."""
        while ticket.state == "waiting":
            if self.on_wait is not None:
                self.on_wait()
            loop = asyncio.get_running_loop()
            ticket.future = future = loop.create_future()
            try:
                await future
            except asyncio.CancelledError:
                # Give the slot on if it was granted in the meantime.
                self.release(ticket)
                raise

    def mark_sent(self, ticket: SlotTicket) -> bool:
        """Record that the submission is about to be sent; ``False`` if its slot was taken back."""
        if ticket.state != "granted":
            return False
        ticket.state = "sent"
        self._sent += 1
        self._granted.discard(ticket)
        return True

    async def send_turn(self, ticket: SlotTicket) -> bool:
        """:meth:`mark_sent`, where slots shared with other processes must ask first."""
        return self.mark_sent(ticket)

    def unsend(self, ticket: SlotTicket) -> None:
        """The submission was not accepted but keeps its slot, to be sent again after a wait."""
        if ticket.state == "sent":
            ticket.state = "granted"
            self._sent -= 1
            self._granted.add(ticket)

    def mark_running(self, ticket: SlotTicket, job_id: str = "") -> None:
        """Record that the service created the job (``job_id``)."""
        if ticket.state == "sent":
            ticket.state = "running"
            self._sent -= 1
            self._running += 1

    def occupy(self, job_id: str = "") -> SlotTicket:
        """Count a job that already runs (``job_id``, created elsewhere) without waiting for
        a slot."""
        ticket = SlotTicket(next(self._orders))
        ticket.state = "running"
        self._held += 1
        self._running += 1
        return ticket

    def release(self, ticket: SlotTicket) -> None:
        """Free the ticket's slot (the job finished, or its submission failed); idempotent."""
        state = ticket.state
        ticket.state = "done"
        self._granted.discard(ticket)
        if state == "running":
            if self.limit is not None and self._waiting and self._held >= self.limit:
                self._quiet_finish()
            self._running -= 1
        elif state == "sent":
            self._sent -= 1
        elif state == "waiting":
            self._waiting -= 1
        if state in ("granted", "sent", "running"):
            self._held -= 1
        self._pump()

    async def refuse(self, ticket: SlotTicket, kind: RateLimitKind = "unknown") -> bool:
        """:meth:`refused`, where slots shared with other processes must ask first."""
        return self.refused(ticket, kind)

    def refused(self, ticket: SlotTicket, kind: RateLimitKind = "unknown") -> bool:
        """A submission got 429: learn the limit and queue the ticket again at its place.

        The service was full when it answered, so its limit is at most the jobs we know run
        plus our other submissions still in flight (those may have been counted already).
        ``kind`` is what the 429's body said it limits (:func:`rate_limit_kind`); a
        ``"jobs"`` 429 is trusted to be the account's limit, so it also lowers ``proven``.
        Returns ``False`` when nothing can be learned (the 429 is about the request rate,
        or no job of ours runs or may run): the caller then backs off instead.
        """
        if kind == "rate":
            self.rate_limited += 1
            return False
        running = self._running
        others = self._sent - (1 if ticket.state == "sent" else 0)
        bound = running + others
        if bound == 0:
            return False
        if self.limit is None or bound < self.limit:
            self._learn(bound, kind, running, others)
        else:
            logger.debug(
                "a 429 on a submission while %d jobs ran and %d other submissions were in"
                " flight: the active-job limit stays %d",
                running,
                others,
                self.limit,
            )
        # Granted but unsent submissions would be refused too: take them back.
        for other in [ticket, *self._granted]:
            if other.state in ("granted", "sent"):
                self._held -= 1
            if other.state == "sent":
                self._sent -= 1
            if other.state != "waiting":
                self._waiting += 1
            other.state = "waiting"
            other.future = None
            heapq.heappush(self._queue, other)
        self._granted.clear()
        self._pump()
        return True

    def learning(self) -> dict[str, Any]:
        """What this limit has learned, as JSON values (for slots shared between processes:
        the learning of every process's 429s and finishes is one)."""
        state: dict[str, Any] = {name: getattr(self, name) for name in _LEARNED}
        state["refusals"] = {str(level): n for level, n in self._refusals.items()}
        return state

    def adopt_learning(self, state: Mapping[str, Any]) -> None:
        """Take over what :meth:`learning` gave (of this process or another); values of the
        wrong type are ignored, as from any stored state."""
        for name in _LEARNED:
            value = state.get(name)
            if name == "_just_raised":
                if isinstance(value, bool):
                    self._just_raised = value
            elif name == "limit":
                if value is None or (isinstance(value, int) and value >= 1):
                    self.limit = value
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(self, name, value)
        refusals = state.get("refusals")
        if isinstance(refusals, Mapping):
            self._refusals = {
                int(level): min(int(n), MAX_DOUBLINGS)
                for level, n in refusals.items()
                if str(level).isdigit() and isinstance(n, int) and n >= 0
            }

    def learn(self, bound: int, kind: RateLimitKind, running: int, others: int) -> bool:
        """A submission was refused while ``running`` jobs ran and ``others`` submissions
        were in flight (``bound``, their sum): lower the limit if that teaches anything."""
        if self.limit is None or bound < self.limit:
            self._learn(bound, kind, running, others)
            return True
        return False

    def quiet_finish(self) -> None:
        """A job finished while every slot was in use and submissions waited."""
        self._quiet_finish()

    def _learn(self, bound: int, kind: RateLimitKind, running: int, others: int) -> None:
        """Lower the limit to ``bound``: the service refused a job beyond it."""
        before = self.limit
        refused_level = bound + 1
        if kind == "jobs":
            self.proven = min(self.proven, bound)
        # A raise refused before any job finished at the new level failed: the service does
        # not run that many. A later ambiguous refusal may be noise: it lowers the limit but
        # leaves the waits before the next raises alone.
        failed_raise = kind == "jobs" or self._just_raised or before is None
        if refused_level > self.proven:
            self.failed_probes += 1
            if failed_raise:
                self._refusals[refused_level] = min(
                    self._refusals.get(refused_level, 0) + 1, MAX_DOUBLINGS
                )
        elif failed_raise:
            # Climbing back to a level that worked failed: another program may have taken
            # the room, so back off, and after a run of such failures forget that level.
            self._setbacks += 1
            if self._setbacks > MAX_DOUBLINGS:
                # Refused that often in a row, the level is only probed from now on, and
                # as rarely as a level that failed every probe.
                self.proven = bound
                self._setbacks = 0
                self._refusals[refused_level] = MAX_DOUBLINGS
        self._just_raised = False
        self.limit = bound
        self.discoveries += 1
        self._quiet = 0
        cause = "naming the active-job limit" if kind == "jobs" else "not saying which limit"
        known = f"{self.proven} at once worked" if self.proven else "no level has held yet"
        logger.info(
            "active-job limit %s -> %d: a 429 %s answered a submission while %d jobs ran and"
            " %d other submissions were in flight (%s; next raise after %d more finished"
            " jobs)",
            "unknown" if before is None else before,
            bound,
            cause,
            running,
            others,
            known,
            self._raise_after(),
        )

    def _raise_after(self) -> int:
        """Quiet finishes before the limit is raised by one."""
        limit = self.limit or 0
        if limit < self.proven:
            return 1 << self._setbacks
        return max(limit, 1) << self._refusals.get(limit + 1, 0)

    def _quiet_finish(self) -> None:
        """A job finished while every slot was in use and submissions waited."""
        limit = self.limit
        if limit is None:
            return
        self._quiet += 1
        if self._just_raised:
            self._setbacks = 0  # the last raise held until a job finished
            self._just_raised = False
        if self._quiet == limit:
            # A full turnover at this level with no 429: it works.
            self.proven = max(self.proven, limit)
            for level in [level for level in self._refusals if level <= limit]:
                del self._refusals[level]  # it holds now: its failures are history
            if limit >= self.proven:
                self._setbacks = 0
        if self.ceiling is not None and limit >= self.ceiling:
            return
        if self._quiet < self._raise_after():
            return
        probing = limit >= self.proven
        if probing:
            self.probes += 1
        else:
            self.recoveries += 1
        quiet, self._quiet = self._quiet, 0
        self.limit = limit + 1
        self._just_raised = True
        logger.info(
            "active-job limit %d -> %d: %d jobs finished with every slot in use and no 429"
            " since the limit last changed (%s)",
            limit,
            limit + 1,
            quiet,
            f"probing: {limit + 1} at once is untested"
            if probing
            else f"up to {self.proven} at once worked before",
        )

    def _pump(self) -> None:
        queue = self._queue
        while queue and (self.limit is None or self._held < self.limit):
            ticket = heapq.heappop(queue)
            if ticket.state != "waiting":
                continue  # cancelled while waiting
            ticket.state = "granted"
            self._waiting -= 1
            self._held += 1
            self._granted.add(ticket)
            if ticket.future is not None and not ticket.future.done():
                ticket.future.set_result(None)


class Pace:
    """A client-wide stretch factor for poll gaps: doubled by a 429, eased back by successes."""

    def __init__(self) -> None:
        self.factor = 1.0
        self.throttles = 0
        #: Told each new factor after a 429 (a coordinator shares it with other processes).
        self.on_throttle: Callable[[float], object] | None = None

    def throttled(self) -> None:
        """A status read got 429: halve the poll rate of every handle."""
        self.throttles += 1
        self.factor = min(MAX_PACE, self.factor * 2)
        if self.on_throttle is not None:
            self.on_throttle(self.factor)

    def share(self, factor: float) -> None:
        """Another process of the account was throttled to ``factor``: go no faster."""
        if factor > self.factor:
            self.factor = min(MAX_PACE, factor)

    def succeeded(self) -> None:
        """A status read worked: raise the poll rate a little (additively)."""
        if self.factor > 1.0:
            self.factor = max(1.0, 1.0 / (1.0 / self.factor + PACE_RECOVERY))


class RequestBudget:
    """At most ``max_concurrent`` requests in flight and, optionally, ``per_second`` started.

    Waiting here happens before aiohttp's timeout starts, so a queued request never times
    out for having waited. The rate uses a generic cell rate algorithm: requests are spaced
    ``1 / per_second`` apart, with bursts of up to ``burst``.

    The concurrency cap is a counter of free places and a FIFO line of waiters rather than
    an ``asyncio.Semaphore``: nearly every request finds a place free and nobody waiting,
    and then taking and giving it back are two integer updates, where the semaphore's
    acquire and release run five Python functions per request. A place given back while
    requests wait goes straight to the first in line, so nobody overtakes a waiter.
    """

    def __init__(
        self, max_concurrent: int, per_second: float | None = None, burst: int = 1
    ) -> None:
        self.max_concurrent = max_concurrent
        self.per_second = per_second
        self._free = max_concurrent
        #: Requests waiting for a place, first come first served; while any wait, ``_free``
        #: is 0 (a place given back is handed on, not counted).
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._interval = 1.0 / per_second if per_second else 0.0
        self._burst = max(1, burst)
        self._tat: float | None = None  # theoretical arrival time of the next request
        self.pace = Pace()
        #: What spaces requests under ``per_second`` (a test may give a fake one).
        self.clock: Clock = LOOP_CLOCK

    async def __aenter__(self) -> None:
        if self._interval:
            now = self.clock.now()
            tat = now if self._tat is None else max(self._tat, now)
            allowed_at = tat - (self._burst - 1) * self._interval
            self._tat = tat + self._interval
            if allowed_at > now:
                await self.clock.sleep(allowed_at - now)
        if self._free and not self._waiters:
            self._free -= 1
            return
        await self._wait_for_place()

    async def _wait_for_place(self) -> None:
        """Join the line; return holding a place handed on by :meth:`_give_back`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._give_back()  # handed a place just as it was cancelled: pass it on
            else:
                # Leave the line now: holding the dead future until a place is given back
                # (which would skip it) keeps it alive for no use.
                with contextlib.suppress(ValueError):  # _give_back skipped it already
                    self._waiters.remove(future)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        if self._waiters:
            self._give_back()
        else:
            self._free += 1

    def _give_back(self) -> None:
        """A place is free again: hand it to the first live waiter, else count it free."""
        waiters = self._waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():  # a cancelled waiter's future is done: skip it
                future.set_result(None)
                return
        self._free += 1

    def renew(self) -> None:
        """Start afresh in a new event loop: waiters of the old one can never be woken."""
        self._free = self.max_concurrent
        self._waiters = collections.deque()
        self._tat = None
