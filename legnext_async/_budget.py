"""Client-wide limits: job slots, concurrent requests, a request rate, and the poll pace.

An account runs only a few jobs at once (about 6). :class:`JobSlots` holds submissions
beyond that in this process, first come first served, instead of sending them to be
refused; with no limit given it learns the account's from the first 429 on a submission.
:class:`RequestBudget` caps the HTTP requests in flight and, optionally, their rate; its
:class:`Pace` stretches every poll gap after a 429 on a status read (AIMD).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__: list[str] = []

#: The most a run of 429s on status reads can stretch poll gaps.
MAX_PACE: Final = 16.0
#: How much each successful read raises the poll rate back (as a share of the full rate).
PACE_RECOVERY: Final = 0.02


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
    the service is full, so its limit is the number of jobs this client knows are running.
    Granted tickets that were not sent yet are taken back when the limit falls, so a burst of
    submissions causes one 429, not one per submission.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.discoveries = 0
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

    async def acquire(self) -> SlotTicket:
        """Wait (first come, first served) until a slot is free, and take it."""
        ticket = SlotTicket(next(self._orders))
        heapq.heappush(self._queue, ticket)
        self._waiting += 1
        self._pump()
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

    def unsend(self, ticket: SlotTicket) -> None:
        """The submission was not accepted but keeps its slot, to be sent again after a wait."""
        if ticket.state == "sent":
            ticket.state = "granted"
            self._sent -= 1
            self._granted.add(ticket)

    def mark_running(self, ticket: SlotTicket) -> None:
        """Record that the service created the job."""
        if ticket.state == "sent":
            ticket.state = "running"
            self._sent -= 1
            self._running += 1

    def occupy(self) -> SlotTicket:
        """Count a job that already runs (created elsewhere) without waiting for a slot."""
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
            self._running -= 1
        elif state == "sent":
            self._sent -= 1
        elif state == "waiting":
            self._waiting -= 1
        if state in ("granted", "sent", "running"):
            self._held -= 1
        self._pump()

    def refused(self, ticket: SlotTicket) -> bool:
        """A submission got 429: learn the limit and queue the ticket again at its place.

        The service was full when it answered, so its limit is at most the jobs we know run
        plus our other submissions still in flight (those may have been counted already).
        Returns ``False`` when nothing can be learned (no job of ours runs or may run, so the
        429 is about something else): the caller then backs off instead.
        """
        bound = self._running + self._sent - (1 if ticket.state == "sent" else 0)
        if bound == 0:
            return False
        if self.limit is None or bound < self.limit:
            self.limit = bound
            self.discoveries += 1
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

    def throttled(self) -> None:
        """A status read got 429: halve the poll rate of every handle."""
        self.throttles += 1
        self.factor = min(MAX_PACE, self.factor * 2)

    def succeeded(self) -> None:
        """A status read worked: raise the poll rate a little (additively)."""
        if self.factor > 1.0:
            self.factor = max(1.0, 1.0 / (1.0 / self.factor + PACE_RECOVERY))


class RequestBudget:
    """At most ``max_concurrent`` requests in flight and, optionally, ``per_second`` started.

    Waiting here happens before aiohttp's timeout starts, so a queued request never times
    out for having waited. The rate uses a generic cell rate algorithm: requests are spaced
    ``1 / per_second`` apart, with bursts of up to ``burst``.
    """

    def __init__(
        self, max_concurrent: int, per_second: float | None = None, burst: int = 1
    ) -> None:
        self.max_concurrent = max_concurrent
        self.per_second = per_second
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._interval = 1.0 / per_second if per_second else 0.0
        self._burst = max(1, burst)
        self._tat = 0.0  # theoretical arrival time of the next request
        self.pace = Pace()

    async def __aenter__(self) -> None:
        if self._interval:
            now = time.monotonic()
            tat = max(self._tat, now)
            allowed_at = tat - (self._burst - 1) * self._interval
            self._tat = tat + self._interval
            if allowed_at > now:
                await asyncio.sleep(allowed_at - now)
        await self._semaphore.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._semaphore.release()

    def renew(self) -> None:
        """Start afresh in a new event loop: a semaphore binds to the loop it first waits in."""
        self._semaphore = asyncio.Semaphore(self.max_concurrent)
