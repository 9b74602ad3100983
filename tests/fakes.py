"""A clock for tests of decisions about time: it moves only when the test moves it.

Give it to a client's job engine (``client._engine.use_clock(clock)``) and every poll
read, deadline and retry wait of that client is timed by it: nothing happens until
:meth:`FakeClock.advance` (or :meth:`FakeClock.run`) moves time, and then timers fire in
time order, each one's work (real requests to a loopback server included) finishing before
the next fires. No sleeps, no bounds that depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")

#: Reads started by a client's poll scheduler are tasks named so.
READ_TASK_PREFIX = "legnext-poll"
#: Loop iterations given to woken coroutines after each step: a future set in one
#: iteration wakes its waiter in the next, which may set another, and so on.
WAKE_ROUNDS = 8
#: Steps after which :meth:`FakeClock.run` gives up (a wait that never ends).
RUN_STEPS = 100_000


class FakeTimer:
    """A callback set for a time on a :class:`FakeClock`."""

    __slots__ = ("_when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self._when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True

    def when(self) -> float:
        """The time the callback is set for."""
        return self._when


class FakeClock:
    """Monotonic seconds that pass only in :meth:`advance`; a ``Clock`` for the engine.

    ``also`` is told every step time takes (in seconds), so that another clock can move in
    step: ``Emulator.advance``, for one, makes the emulator's jobs age exactly as the
    client's time passes.
    """

    def __init__(
        self, start: float = 10_000.0, *, also: Callable[[float], object] | None = None
    ) -> None:
        self._now = start
        self._also = also
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """The current time."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> FakeTimer:
        """Run ``callback`` when time reaches ``when`` (at once on the next step if past)."""
        timer = FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        done = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.call_at(self._now + seconds, wake)
        await done

    def next_due(self) -> float | None:
        """When the earliest timer is set for, if any."""
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    async def advance(self, seconds: float, *, settle: bool = True) -> None:
        """Move time forward by ``seconds``, firing each timer due on the way in time order.

        With ``settle``, what each timer started (a poll read, a woken waiter) finishes
        before time moves on, and before this returns.
        """
        assert seconds >= 0, "time only moves forward"
        end = self._now + seconds
        while True:
            if settle:
                await self.settle()
            due = self.next_due()
            if due is not None and due <= end:
                _, _, timer = heapq.heappop(self._timers)
                self._move_to(max(self._now, due))
                timer.callback()
            elif self._now < end:
                self._move_to(end)
            else:
                return

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` while time jumps to each next timer once all else is done.

        Use it for waits made only of timed steps (a handle's polling, a retry's sleeps),
        not for a submission, whose request time does not see this clock.
        """
        task = asyncio.ensure_future(awaitable)
        try:
            for _ in range(RUN_STEPS):
                await self.settle()
                if task.done():
                    return task.result()
                due = self.next_due()
                assert due is not None, "nothing is set to happen, and the wait goes on"
                await self.advance(max(0.0, due - self._now))
            raise AssertionError("the wait did not end")
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def settle(self) -> None:
        """Let what was started finish: reads in flight, then the coroutines they woke.

        Time stands still meanwhile; reads are real requests, awaited to their end.
        """
        while True:
            for _ in range(WAKE_ROUNDS):
                await asyncio.sleep(0)
            reads = [
                task
                for task in asyncio.all_tasks()
                if task.get_name().startswith(READ_TASK_PREFIX) and not task.done()
            ]
            if not reads:
                return
            await asyncio.wait(reads)

    def _move_to(self, when: float) -> None:
        step = when - self._now
        self._now = when
        if step > 0 and self._also is not None:
            self._also(step)
