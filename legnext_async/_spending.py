"""The spending limit: points committed by a client's jobs, counted against ``max_points``.

A :class:`Ledger` holds one :class:`Charge` per submission. Its life::

    admit ─▶ reserved (the expected cost) ─POST answered─▶ frozen (meta.usage.frozen)
                  │                                           │
                  ├─ refused, or never sent ─▶ released (0)   └─ finished ─▶ spent
                  └─ outcome unknown ─▶ kept reserved (it may have been charged)

``committed`` counts every point reserved, frozen or spent; a submission is admitted only if
its expected cost fits under the limit with them. Checking and reserving is one synchronous
step, so submissions running concurrently on one event loop never pass the limit together.

The expected cost of a job comes from its route's :class:`~._catalog.Price` and the mode
its prompt names, until the service has answered one job of the same kind (route, variant
and mode): from then on that answer's ``meta.usage.frozen`` is the expected cost.

A prompt that names no mode may run in turbo (an account's default), so it is priced as
turbo until learned. Such a price is a *guess*: a submission that does not fit only
because of guesses not yet answered waits for their answers (which set the price of their
kind and so of every other guess of it), rather than being refused for a price the service
may not ask. One that cannot fit whatever the guesses turn out to be is refused at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, TypeAlias

import attrs

from ._catalog import TURBO_FACTOR, has_flag
from ._exceptions import SpendingLimitError
from ._models import TaskStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._catalog import Route
    from ._models import Task

__all__ = ["Charge", "Ledger", "PointTotals", "expected_cost"]

#: A kind of job for learning its price: route path, variant, mode.
Kind: TypeAlias = tuple[str, str, str]

#: What a mode flag makes of the fast price. ``--relax`` is not offered by the service
#: (reference §2: it falls back to fast), so it is priced as fast.
_MODES: Final = (("turbo", TURBO_FACTOR), ("fast", 1), ("relax", 1))
#: The mode of a prompt that names none: priced as turbo, the dearer, until learned.
UNNAMED: Final = "unnamed"


@attrs.frozen
class PointTotals:
    """Points of a client's jobs (and its store's, if it has one), and its limit.

    ``committed``: every point frozen by jobs not finished yet, consumed by finished ones,
    or reserved for submissions whose answer has not come (or never will: an unknown
    outcome keeps its reservation). ``spent``: the part consumed by finished jobs.
    ``limit``: the client's ``max_points``.
    """

    limit: int
    committed: int
    spent: int

    @property
    def remaining(self) -> int:
        """Points still free under the limit (never below 0)."""
        return max(0, self.limit - self.committed)


def expected_cost(route: Route, body: Mapping[str, object]) -> tuple[Kind, int]:
    """The kind of job ``body`` makes on ``route`` and its price from the catalogue alone."""
    price = route.price
    variant, points = price.fast_price(body)
    mode = UNNAMED
    factor = TURBO_FACTOR
    text = body.get(price.prompt) if price.prompt is not None else None
    if isinstance(text, str):
        for name, times in _MODES:
            if has_flag(text, name):
                # Turbo comes first: a prompt naming two modes is priced at the dearer.
                mode, factor = name, times
                break
    return (route.path, variant, mode), points * factor


class Charge:
    """The points of one submission. Only its :class:`Ledger` changes it."""

    __slots__ = ("endpoint", "guess", "job_id", "kind", "points", "state")

    def __init__(self, kind: Kind, points: int, *, guess: bool) -> None:
        self.kind = kind
        self.endpoint = kind[0]
        #: Points this charge holds in the ledger's ``committed``.
        self.points = points
        #: The price is the catalogue's guess, not yet answered or learned.
        self.guess = guess
        self.job_id = ""
        self.state = "reserved"

    def __repr__(self) -> str:
        return f"<Charge {self.endpoint} {self.points} {self.state}>"


class Ledger:
    """The points committed and spent by one client's jobs, held under ``limit``."""

    __slots__ = ("_by_job", "_guessing", "_learned", "_waiters", "committed", "limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.committed = 0
        self.spent = 0
        #: Prices answered by the service, by kind.
        self._learned: dict[Kind, int] = {}
        #: Charges priced by a guess whose POST is not answered yet, by kind.
        self._guessing: dict[Kind, set[Charge]] = {}
        #: Charges of jobs created and not seen finished, by job id.
        self._by_job: dict[str, Charge] = {}
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def totals(self) -> PointTotals:
        """The totals now."""
        return PointTotals(self.limit, self.committed, self.spent)

    def carry(self, committed: int, spent: int) -> None:
        """Count points committed and spent elsewhere (a job store's earlier jobs) too.

        ``spent`` is part of ``committed``. Jobs among them that are not finished may be
        handed to :meth:`follow`, so that their end is counted when it is seen.
        """
        if committed < 0 or spent < 0 or spent > committed:
            raise ValueError(f"cannot carry {committed} committed with {spent} spent")
        self.committed += committed
        self.spent += spent

    def follow(self, job_id: str, frozen: int) -> None:
        """Settle the job ``job_id`` when it is seen finished; its ``frozen`` points are in
        the totals already (see :meth:`carry`)."""
        charge = Charge(("", "", ""), frozen, guess=False)
        charge.state = "frozen"
        charge.job_id = job_id
        self._by_job[job_id] = charge

    # --- a submission's life -------------------------------------------------------------

    def price(self, route: Route, body: Mapping[str, object]) -> tuple[Kind, int, bool]:
        """The kind of the job, its expected cost, and whether that is a guess."""
        kind, points = expected_cost(route, body)
        learned = self._learned.get(kind)
        if learned is not None:
            return kind, learned, False
        return kind, points, kind[2] == UNNAMED

    async def admit(self, route: Route, body: Mapping[str, object]) -> Charge:
        """Reserve the expected cost of a job, or refuse it.

        Returns at once (without suspending) when the job fits. When it fits only if guesses
        not yet answered come out lower, it waits for their answers first.

        Raises:
            SpendingLimitError: the job cannot fit under the limit.
        """
        while True:
            kind, points, guess = self.price(route, body)
            if self.committed + points <= self.limit:
                charge = Charge(kind, points, guess=guess)
                self.committed += points
                if guess:
                    self._guessing.setdefault(kind, set()).add(charge)
                return charge
            guessed = sum(c.points for charges in self._guessing.values() for c in charges)
            if guessed == 0 or self.committed - guessed + points > self.limit:
                raise SpendingLimitError(
                    endpoint=route.path,
                    limit=self.limit,
                    committed=self.committed,
                    cost=points,
                    basis=self._basis(kind),
                )
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def answered(self, charge: Charge, task: Task) -> None:
        """The POST was answered with ``task``: hold its frozen points from now on, and
        price the next jobs of its kind (and the guesses of it still waiting) with them."""
        self._unguess(charge)
        charge.job_id = task.job_id
        charge.state = "frozen"
        frozen = task.meta.usage.frozen
        if frozen > 0:
            self._learn(charge.kind, frozen)
            self._move(charge, frozen)
        self._by_job[task.job_id] = charge
        self.observe(task.job_id, task)
        self._wake()

    def failed(self, charge: Charge, *, unknown: bool) -> None:
        """The submission ended without a job id. ``unknown``: a job may exist (and be
        charged), so its reservation stays; else nothing was made and it is released."""
        if charge.state != "reserved":
            return
        self._unguess(charge)
        if unknown:
            charge.state = "unknown"
        else:
            charge.state = "released"
            self._move(charge, 0)
        self._wake()

    def observe(self, job_id: str, task: Task) -> None:
        """A new snapshot of a job: a finished one settles its charge.

        Completed: ``consume`` is spent (``frozen`` where it is 0 or missing, and the held
        points where both are). Failed: ``consume`` is spent (0 if missing, as the
        reference presumes: the frozen points are released).
        """
        charge = self._by_job.get(job_id)
        if charge is None:
            return
        usage = task.meta.usage
        status = task.status
        if status is TaskStatus.COMPLETED:
            final = usage.consume if usage.consume > 0 else usage.frozen
            if final <= 0:
                final = charge.points
        elif status is TaskStatus.FAILED:
            final = max(usage.consume, 0)
        else:
            if usage.frozen > 0 and usage.frozen != charge.points:
                self._move(charge, usage.frozen)
            return
        del self._by_job[job_id]
        charge.state = "spent"
        self._move(charge, final)
        self.spent += final
        self._wake()

    # --- bookkeeping ---------------------------------------------------------------------

    def _basis(self, kind: Kind) -> str:
        """Where the expected cost of ``kind`` comes from, for a refusal's message."""
        if kind in self._learned:
            return "frozen by the service for the last job of this kind"
        if kind[2] == UNNAMED:
            return "the turbo price: the request names no mode such as --fast"
        return f"the catalogue's {kind[2]} price"

    def _move(self, charge: Charge, points: int) -> None:
        self.committed += points - charge.points
        charge.points = points

    def _unguess(self, charge: Charge) -> None:
        if charge.guess:
            charge.guess = False
            guessing = self._guessing.get(charge.kind)
            if guessing is not None:
                guessing.discard(charge)
                if not guessing:
                    del self._guessing[charge.kind]

    def _learn(self, kind: Kind, points: int) -> None:
        """The service priced a job of ``kind`` at ``points``: so are the guesses of it."""
        self._learned[kind] = points
        for charge in self._guessing.pop(kind, ()):
            charge.guess = False
            self._move(charge, points)

    def _wake(self) -> None:
        """Let every waiting submission look again (the totals or the guesses changed)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
