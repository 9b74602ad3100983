"""The clock that times a job's reads and a retry's waits: the event loop's, or a test's.

Nothing in the job engine, the poll scheduler or the retry engine reads the time or sleeps
except through a :class:`Clock`, so that their decisions about time can be checked on a
clock that moves only when a test says so.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LOOP_CLOCK", "Clock", "LoopClock", "Timer"]


class Timer(Protocol):
    """A callback set to run at a time (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None:
        """Do not run the callback (a no-op once it ran)."""

    def when(self) -> float:
        """The clock time the callback is set for."""


class Clock(Protocol):
    """Monotonic seconds, timers and sleeps."""

    def now(self) -> float:
        """The current time, in seconds (only differences mean anything)."""

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` (in the running event loop) once ``now()`` reaches ``when``."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""


class LoopClock:
    """The running event loop's clock: ``loop.time()``, ``loop.call_at``, ``asyncio.sleep``.

    It asks for the running loop on each call, so one client can be used from one event
    loop and then another.
    """

    __slots__ = ()

    def now(self) -> float:
        """The running loop's time."""
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        """``loop.call_at`` on the running loop."""
        return asyncio.get_running_loop().call_at(when, callback)

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


#: The clock of every client, unless a test gives its engine another.
LOOP_CLOCK: Final = LoopClock()
