"""The client-wide poll scheduler: one timer and a bounded set of reads for every waiting job.

Ten thousand awaited handles must not mean ten thousand poller tasks, sleeps and timer
handles: the event loop would pay for them in one burst when a gather starts, and the
garbage collector would walk them on every full collection. Instead each client keeps

- a queue of runs to set up, worked through a few hundred per event-loop iteration, so a
  gather of any size costs the loop little at once;
- a heap of runs by the time of their next read, and one timer for the earliest;
- at most ``max_in_flight`` reads running, each a short task; due runs wait in the heap
  (not as tasks parked on a semaphore) until a read finishes.

A run (a job's watch, see ``_engine.py``) decides its own schedule; the scheduler only keeps
time and starts reads. Time comes from the engine's :class:`Clock`, so a test can move it.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._clock import Clock, Timer

__all__ = ["PollScheduler", "Run"]

#: Runs set up per event-loop iteration when many handles are awaited at once.
START_BATCH = 256
#: A read due within this many seconds is started now rather than after another wake-up.
DUE_SLACK = 0.001
#: Heap entries of ended runs tolerated before the heap is rebuilt without them.
STALE_MIN = 64


class Run(Protocol):
    """What the scheduler needs of one handle's poll run."""

    ended: bool
    queued: bool
    reading: asyncio.Task[None] | None

    @property
    def name(self) -> str:
        """A name for the run's read tasks."""

    def begin(self) -> float | None:
        """Set up; the clock time of the first read, or ``None`` if the run ended already."""

    async def poll(self) -> float | None:
        """Read once; the clock time of the next read, or ``None`` if the run ended."""

    def end(self, error: BaseException) -> None:
        """End the run with ``error`` for its waiters (the scheduler is closing)."""


class PollScheduler:
    """Times and starts the status reads of every run of one client."""

    __slots__ = (
        "_due",
        "_in_flight",
        "_loop",
        "_max_in_flight",
        "_reads",
        "_runs",
        "_seq",
        "_stale",
        "_start_handle",
        "_starting",
        "_timer",
        "clock",
    )

    def __init__(self, max_in_flight: int, clock: Clock) -> None:
        #: What times the reads; the engine's (a test may give the engine a fake one).
        self.clock = clock
        self._max_in_flight = max_in_flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runs: set[Run] = set()
        self._starting: collections.deque[Run] = collections.deque()
        self._start_handle: asyncio.Handle | None = None
        self._due: list[tuple[float, int, Run]] = []
        self._seq = itertools.count()
        self._stale = 0
        self._timer: Timer | None = None
        self._reads: set[asyncio.Task[None]] = set()
        self._in_flight = 0

    def __len__(self) -> int:
        """Runs started and not ended."""
        return len(self._runs)

    def start(self, run: Run) -> None:
        """Take on ``run``: it is set up within a few loop iterations, then read on time."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop: the old one's callbacks will never run.
            self._loop = loop
            self._start_handle = self._timer = None
        self._runs.add(run)
        self._starting.append(run)
        if self._start_handle is None:
            self._start_handle = loop.call_soon(self._start_some)

    def forget(self, run: Run) -> None:
        """``run`` ended: drop it (its heap entry, if any, is skipped and later swept)."""
        self._runs.discard(run)
        if run.queued:
            run.queued = False
            self._stale += 1
            if self._stale > STALE_MIN and self._stale * 2 > len(self._due):
                self._due = [entry for entry in self._due if not entry[2].ended]
                heapq.heapify(self._due)
                self._stale = 0

    async def aclose(self, error: Callable[[Run], BaseException]) -> None:
        """End every run (its waiters get ``error(run)``) and wait for running reads to stop."""
        for run in list(self._runs):
            run.end(error(run))
        self._starting.clear()
        self._due.clear()
        self._stale = 0
        for handle in (self._start_handle, self._timer):
            if handle is not None:
                handle.cancel()
        self._start_handle = self._timer = None
        reads = list(self._reads)
        for read in reads:
            read.cancel()
        if reads:
            await asyncio.gather(*reads, return_exceptions=True)

    # --- internals -----------------------------------------------------------------------

    def _start_some(self) -> None:
        self._start_handle = None
        starting = self._starting
        for _ in range(min(START_BATCH, len(starting))):
            run = starting.popleft()
            if run.ended:
                continue
            try:
                at = run.begin()
            except Exception as exc:  # a fault of ours: the run's waiters hear of it
                run.end(exc)
            else:
                self._schedule(run, at)
        if starting:
            assert self._loop is not None
            self._start_handle = self._loop.call_soon(self._start_some)
        self._arm()

    def _schedule(self, run: Run, at: float | None) -> None:
        if at is None or run.ended:
            return
        run.queued = True
        heapq.heappush(self._due, (at, next(self._seq), run))

    def _arm(self) -> None:
        """Set the one timer for the earliest read, if a read may start."""
        due = self._due
        timer = self._timer
        if not due or self._in_flight >= self._max_in_flight:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        at = due[0][0]
        if timer is not None:
            if timer.when() <= at:
                return
            timer.cancel()
        self._timer = self.clock.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = self.clock.now() + DUE_SLACK
        due = self._due
        while due and self._in_flight < self._max_in_flight and due[0][0] <= now:
            run = heapq.heappop(due)[2]
            if not run.queued:  # ended while it waited
                self._stale -= 1
                continue
            run.queued = False
            self._in_flight += 1
            read = run.reading = loop.create_task(self._read(run), name=f"legnext-poll-{run.name}")
            self._reads.add(read)
            read.add_done_callback(self._reads.discard)
        self._arm()

    async def _read(self, run: Run) -> None:
        at: float | None = None
        try:
            at = await run.poll()
        except Exception as exc:  # a fault of ours: the run's waiters hear of it
            run.end(exc)
        finally:
            self._in_flight -= 1
            self._schedule(run, at)
            self._arm()
