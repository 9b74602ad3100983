"""The emulator's virtual clock and the timestamp formats of the wire."""

from __future__ import annotations

import time

#: How the real service (a Go backend) spells an unset ``time.Time``.
ZERO_TIME = "0001-01-01T00:00:00Z"


class VirtualClock:
    """Wall-clock time that runs ``1 / time_scale`` times faster than real time.

    ``now()`` is ``start + elapsed_real / time_scale + offset`` in Unix seconds, so a
    job that takes 100 virtual seconds finishes after ``100 * time_scale`` real seconds
    while its wire timestamps still look 100 s apart. ``advance()`` adds to the offset.
    """

    __slots__ = ("_offset", "_scale", "_start_mono", "_start_wall")

    def __init__(self, time_scale: float, *, start: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {time_scale!r}")
        self._scale = float(time_scale)
        self._start_wall = time.time() if start is None else float(start)
        self._start_mono = time.monotonic()
        self._offset = 0.0

    @property
    def time_scale(self) -> float:
        """Real seconds per virtual second."""
        return self._scale

    def now(self) -> float:
        """The current virtual time, Unix seconds."""
        return self._start_wall + (time.monotonic() - self._start_mono) / self._scale + self._offset

    def advance(self, seconds: float) -> None:
        """Jump the virtual clock forward; negative values raise ``ValueError``."""
        if seconds < 0:
            raise ValueError("the virtual clock only moves forward")
        self._offset += seconds

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long (real seconds) until ``virtual_seconds`` of virtual time have passed."""
        return max(0.0, virtual_seconds) * self._scale


def format_seconds(t: float) -> str:
    """RFC 3339 UTC with whole seconds and ``Z``, as in ``meta.created_at``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def format_nanoseconds(t: float) -> str:
    """RFC 3339 UTC with nine fractional digits, as in the balance ``updated_at``."""
    whole = int(t)
    nanos = round((t - whole) * 1e9)
    if nanos >= 1_000_000_000:  # rounding carried into the next second
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{nanos:09d}Z"
