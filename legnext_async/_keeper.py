"""What a client does with its job store: claims and updates, grouped, off the event loop.

The engine tells the client of every new snapshot of a job synchronously; the keeper turns
that into a write queued for the store. One writer task per event loop takes every claim
and update queued since its last turn and hands them to the store together
(``JobStore.write``: for an :class:`SQLiteJobStore`, claims, updates and the learned run
times in one transaction), so a thousand jobs changing at once cost a few transactions,
not a thousand fsyncs. Updates of one job coalesce: only its latest record is written.

A caller that must know its write is durable (a claim, before its POST; the job id, before
the submission returns) awaits it, and the writer takes its turn at once. Status updates are
not awaited by anyone: queued alone, they wait up to :data:`GATHER_SECONDS` for others to
share their transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import TYPE_CHECKING, Final

from ._exceptions import LegnextError, StoreError

if TYPE_CHECKING:
    from ._engine import Job
    from ._polling import DurationModel
    from ._store import JobRecord, JobStore

__all__ = ["JobKeeper"]

logger = logging.getLogger("legnext_async")

#: Where the learned run times are kept beside the records.
DURATIONS: Final = "durations"
#: How long news that nobody awaits (status updates, learned run times) waits for more to
#: share its transaction and fsync: a crash loses at most this much of it, which is news a
#: resumed job reads again at once anyway. Claims, durable writes and flushes do not wait.
GATHER_SECONDS: Final = 0.05


class JobKeeper:
    """A client's side of its :class:`JobStore` (see the module docstring)."""

    __slots__ = (
        "_claims",
        "_discarding",
        "_discards",
        "_durations",
        "_hurry",
        "_learned",
        "_opened",
        "_waiters",
        "_woken",
        "_writer",
        "_writes",
        "counting",
        "gather",
        "live",
        "store",
        "submitting",
    )

    def __init__(
        self, store: JobStore, durations: DurationModel, *, gather: float = GATHER_SECONDS
    ) -> None:
        self.store = store
        #: How long news nobody awaits waits for company (seconds).
        self.gather = gather
        self._durations = durations
        #: Jobs of this client by key, while something holds them.
        self.live: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        #: Keys being submitted by this client now: a second call with one waits.
        self.submitting: dict[str, asyncio.Future[None]] = {}
        self._claims: list[tuple[JobRecord, asyncio.Future[JobRecord]]] = []
        self._writes: dict[str, JobRecord] = {}
        self._discards: list[JobRecord] = []
        #: Keys whose discard is not written yet (a failed one stays: flush() tries again).
        self._discarding: set[str] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._learned = False
        self._writer: asyncio.Task[None] | None = None
        self._opened: asyncio.Future[None] | None = None
        #: The store's points being handed to the client's spending ledger (once).
        self.counting: asyncio.Future[None] | None = None
        #: Resolved to end the writer's wait for more news (something is awaited).
        self._woken: asyncio.Future[None] | None = None
        #: Whether someone waits for everything queued (a flush): the writer does not wait.
        self._hurry = False

    @property
    def opened(self) -> bool:
        """Whether the store was opened (and its learned run times taken in)."""
        opened = self._opened
        return (
            opened is not None
            and opened.done()
            and not opened.cancelled()
            and opened.exception() is None
        )

    async def ready(self) -> None:
        """Open the store once, and take in what earlier runs learned (run times)."""
        opened = self._opened
        if opened is None or (opened.done() and not self.opened):
            opened = self._opened = asyncio.ensure_future(self._open())
        await asyncio.shield(opened)

    async def _open(self) -> None:
        await self.store.open()
        saved = await self.store.load(DURATIONS)
        if saved:
            try:
                self._durations.restore(json.loads(saved))
            except (ValueError, TypeError):
                logger.warning("job store: ignored unreadable learned run times")

    def renew(self) -> None:
        """The client moved to a new event loop: futures of the old one are nobody's."""
        self._writer = None
        self._woken = None
        # Done once is done for good (a second opening would take in the same run times
        # again, a second count carry the same points twice); unfinished is restarted.
        if self._opened is not None and not self._opened.done():
            self._opened = None
        if self.counting is not None and not self.counting.done():
            self.counting = None

    # --- writes ---------------------------------------------------------------------------

    def claim(self, record: JobRecord) -> asyncio.Future[JobRecord]:
        """Claim ``record``'s key (durably): resolves to the record that holds it."""
        claimed: asyncio.Future[JobRecord] = asyncio.get_running_loop().create_future()
        self._claims.append((record, claimed))
        self._wake(urgent=True)
        return claimed

    def abandon(self, record: JobRecord, claimed: asyncio.Future[JobRecord]) -> None:
        """Give back the key of ``record``, whose claim ``claimed`` its submission stopped
        waiting for (it was cancelled before sending): at once if the claim is written and
        held, else when the writer writes it."""
        if not claimed.done():
            claimed.cancel()
            return
        if (
            not claimed.cancelled()
            and claimed.exception() is None
            and claimed.result().attempt == record.attempt
        ):
            self.discard(record)

    def write(self, record: JobRecord) -> None:
        """Queue ``record`` (a new version of a claimed one) for writing."""
        self._writes[record.key] = record
        self._wake()

    def durable(self, record: JobRecord) -> asyncio.Future[None]:
        """Queue ``record`` for writing: resolves once it (or a later version) is written."""
        self._writes[record.key] = record
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(written)
        self._wake(urgent=True)
        return written

    def discard(self, record: JobRecord) -> None:
        """Give back the key of a claimed submission that provably made no job."""
        self._discards.append(record)
        self._discarding.add(record.key)
        self._wake(urgent=True)

    def learned(self) -> None:
        """A job finished and taught the run times something: save them with the next turn."""
        self._learned = True
        self._wake()

    async def flush(self) -> None:
        """Wait until everything queued so far is written.

        Also when the writer is gone: ``asyncio.run()`` cancels every task, the writer
        included, before the client's loop guard closes the client, and what was still
        queued then is written here.
        """
        writer = self._writer
        if writer is not None and not writer.done():
            self._hurry = True
            self._wake(urgent=True)
            await asyncio.shield(writer)
        elif self._claims or self._writes or self._discards or self._learned:
            self._hurry = True
            await self._write_turns()

    def discarding(self, key: str) -> bool:
        """Whether a discard of ``key`` is queued or being written, and not done yet."""
        return key in self._discarding

    async def close(self) -> None:
        """Write what is queued, then close the store (it opens again when used)."""
        try:
            await self.flush()
        finally:
            self._opened = None
            await self.store.close()

    def _wake(self, *, urgent: bool = False) -> None:
        writer = self._writer
        if writer is None or writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        elif urgent:
            woken = self._woken
            if woken is not None and not woken.done():
                woken.set_result(None)

    async def _gather(self) -> None:
        """Wait ``gather`` seconds for more news, or until something is awaited."""
        loop = asyncio.get_running_loop()
        woken = self._woken = loop.create_future()
        timer = loop.call_later(self.gather, _resolve, woken)
        try:
            await woken
        finally:
            timer.cancel()
            self._woken = None

    async def _write_all(self) -> None:
        """The writer: a turn per batch of what was queued, until nothing is."""
        try:
            await self._write_turns()
        finally:
            self._hurry = False

    async def _write_turns(self) -> None:
        while self._claims or self._writes or self._discards or self._learned:
            if not (self._hurry or self._claims or self._waiters or self._discards):
                await self._gather()
            else:
                # One turn of the event loop: the other answers that came with this one
                # queue their writes too, and share the transaction.
                await asyncio.sleep(0)
            claims, self._claims = self._claims, []
            writes, self._writes = self._writes, {}
            discards, self._discards = self._discards, []
            waiters, self._waiters = self._waiters, []
            learned, self._learned = self._learned, False
            try:
                await self._write_together(claims, writes, learned)
                for record in discards:
                    await self.store.discard(record.key, record.attempt)
                    self._discarding.discard(record.key)
            except asyncio.CancelledError:
                # The loop is going away: nobody will wait for these any more.
                for waiter in waiters:
                    waiter.cancel()
                raise
            except Exception as exc:  # a store of the user's may raise anything: say so
                error = _store_error(exc)
                logger.error(
                    "job store: %d updates not written: the store misses the latest status of"
                    " these jobs",
                    len(writes),
                    exc_info=exc,
                )
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
            else:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    async def _write_together(
        self,
        claims: list[tuple[JobRecord, asyncio.Future[JobRecord]]],
        writes: dict[str, JobRecord],
        learned: bool,
    ) -> None:
        """A turn's claims, updates and learned run times in one transaction (one fsync,
        one trip to the store's thread); a failure fails the claims and is raised."""
        values = [(DURATIONS, json.dumps(self._durations.to_json()))] if learned else []
        try:
            held = await self.store.write(
                [record for record, _ in claims], list(writes.values()), values
            )
        except asyncio.CancelledError:
            for _, claimed in claims:
                claimed.cancel()
            raise
        except Exception as exc:
            error = _store_error(exc)
            for _, claimed in claims:
                if not claimed.done():
                    claimed.set_exception(error)
            raise
        for (mine, claimed), record in zip(claims, held, strict=True):
            if claimed.cancelled():
                # Its submission was cancelled while this was written (see abandon): nothing
                # was sent, so the key is given back in the writer's next turn.
                if record.attempt == mine.attempt:
                    self._discards.append(mine)
            elif not claimed.done():
                claimed.set_result(record)


def _store_error(exc: Exception) -> LegnextError:
    """``exc`` as the error of a store: itself if it is one of ours, else a StoreError."""
    if isinstance(exc, LegnextError):
        return exc
    error = StoreError(f"job store failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
