"""Live displays on a terminal: one job while it waits, a batch while it runs.

The live displays are drawn with ``rich`` (the ``legnext-async[cli]`` extra); without it,
``legnext`` says once how to get it and prints plain lines instead. What is shown (time
left, rate, counts) is worked out here by pure functions, tested on their own.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

if TYPE_CHECKING:
    from legnext_async._models import Task

__all__ = [
    "BatchStats",
    "JobView",
    "LiveDisplay",
    "duration",
    "expected_left",
    "open_live",
]

#: What ``legnext`` says when the live display's library is missing.
RICH_MISSING: Final = (
    "legnext: the live display needs the 'rich' package: pip install 'legnext-async[cli]'"
    " (or '.[cli]' in a checkout; showing plain lines meanwhile)"
)


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``42 s``, ``3m05s``, ``1h02m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def expected_left(
    window: tuple[float, float], time_scale: float, running_for: float | None
) -> tuple[float, float]:
    """Real seconds left until a job finishes, at least and at most.

    ``window`` is the task type's learned run time ``(low, high)`` in service seconds,
    ``time_scale`` real seconds per service second, ``running_for`` the real seconds since
    the job was first seen running (``None``: it has not started, so all of it is left).
    """
    low, high = (bound * time_scale for bound in window)
    ran = running_for or 0.0
    return max(0.0, low - ran), max(0.0, high - ran)


@attrs.define
class JobView:
    """What the live display of one job shows; updated as snapshots come."""

    label: str
    job_id: str
    window: tuple[float, float]
    time_scale: float
    started: float = attrs.field(factory=time.monotonic)
    status: str = "submitted"
    running_since: float | None = None
    finished: bool = False

    def update(self, task: Task, now: float | None = None) -> None:
        """Take in a new snapshot of the job."""
        now = time.monotonic() if now is None else now
        self.status = task.status.value
        if not task.status.is_queued and self.running_since is None:
            self.running_since = now
        self.finished = task.is_finished

    def line(self, now: float | None = None) -> str:
        """The display's one line: what, status, elapsed, and the time expected left."""
        now = time.monotonic() if now is None else now
        text = f"{self.label} {self.job_id}  {self.status:<10} {duration(now - self.started)}"
        if self.finished:
            return text
        running_for = now - self.running_since if self.running_since is not None else None
        low, high = expected_left(self.window, self.time_scale, running_for)
        if running_for is None:
            return f"{text}  queued; runs {duration(low)}–{duration(high)} once started"
        if high <= 0:
            return f"{text}  finishing (past its usual time)"
        return f"{text}  about {duration(low)}–{duration(high)} left"


@attrs.define
class BatchStats:
    """The counts of a running batch, and what follows from them (rate, time left)."""

    total: int
    started: float = attrs.field(factory=time.monotonic)
    completed: int = 0
    failed: int = 0
    unknown: int = 0
    refused: int = 0
    #: Lines that ended in an error of the client, the network or the service (no job, or
    #: one whose wait or download failed): a run again takes them up.
    errors: int = 0
    #: Lines that ended in this run after waiting (not answered at once from the store).
    waited: int = 0
    points: int = 0

    @property
    def finished(self) -> int:
        """Lines ended, whichever way."""
        return self.completed + self.failed + self.unknown + self.refused + self.errors

    def rate(self, now: float | None = None) -> float | None:
        """Lines ended per minute in this run (``None`` until one has)."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.started
        if self.waited == 0 or elapsed <= 0:
            return None
        return self.waited / elapsed * 60

    def left(self, now: float | None = None) -> float | None:
        """Seconds until the last line ends at the current rate (``None``: not known yet)."""
        rate = self.rate(now)
        if rate is None:
            return None
        return (self.total - self.finished) / rate * 60

    def line(self, now: float | None = None) -> str:
        """One line: counts, rate, time left, points spent."""
        rate = self.rate(now)
        left = self.left(now)
        parts = [
            f"{self.finished}/{self.total} done",
            f"{self.completed} completed",
            f"{self.failed} failed",
            f"{self.unknown} unknown",
        ]
        if self.refused:
            parts.append(f"{self.refused} refused")
        if self.errors:
            parts.append(f"{self.errors} errors")
        parts.append(f"{rate:.1f}/min" if rate is not None else "rate –")
        parts.append(f"~{duration(left)} left" if left is not None else "time left –")
        parts.append(f"{self.points} points")
        return ", ".join(parts)


class LiveDisplay:
    """A line redrawn in place on a terminal (``rich``) from a callable, four times a second."""

    def __init__(self, render: Any, stream: TextIO) -> None:
        from rich.console import Console  # noqa: PLC0415 (optional: the cli extra)
        from rich.live import Live  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        class _Renderable:
            def __rich__(self) -> Text:
                # Plain text: a prompt or a bar's brackets must not read as markup.
                return Text(str(render()))

        console = Console(file=stream, highlight=False)
        self._live = Live(_Renderable(), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveDisplay:
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.refresh()
        self._live.stop()


_warned = False


def open_live(render: Any, stream: TextIO) -> LiveDisplay | None:
    """A live display of ``render()`` on ``stream``, or ``None`` without ``rich`` (said once)."""
    global _warned  # noqa: PLW0603 (one hint per process, whatever the command)
    try:
        return LiveDisplay(render, stream)
    except ImportError:
        if not _warned:
            _warned = True
            sys.stderr.write(RICH_MISSING + "\n")
        return None
