"""The client's side of its webhook receiver: which token is whose job, what a delivery does.

A submission of a ``LegnextClient(webhook=receiver)`` gets a fresh token (its callback URL
is the receiver's URL of it). The :class:`CallbackDesk` knows every token this client
issued: of a submission still being sent, of a live job (weakly), or, through the job
store, of any record (another process's, a restored one, one whose answer was lost).

A delivery the receiver accepted is worked on in a task of the desk's own:

- a signed one is as good as a status read: the job (live) or its record (stored) takes it;
- an unsigned one is a hint: a finished status is confirmed by one status read, whose
  echoed callback URL must name the token, before anything is taken; others are ignored;
- a finish learned so reaches the receiver's ``on_finished`` hooks, once per job.

A submission whose answer was lost is settled here: its record (found by the token) takes
the job id and status, and nothing is sent again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from typing import TYPE_CHECKING, Final

from ._engine import CallbackReceived, progress_of
from ._exceptions import LegnextError
from ._store import RecordState, state_of, task_bytes
from .webhooks import FinishedJob, names_token

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from ._coordination import Membership
    from ._engine import Job
    from ._keeper import JobKeeper
    from ._models import Task
    from ._store import JobRecord
    from .webhooks import WebhookReceiver

__all__ = ["CallbackDesk"]

logger = logging.getLogger("legnext_async")

#: Job ids whose finish reached the hooks, remembered so that a duplicate does not again.
TOLD_MEMORY: Final = 10_000
#: Tokens a client without a store issued lately, with their job ids (``None``: the
#: submission's outcome is unknown): a callback for one whose handle was dropped, or whose
#: answer was lost, still reaches the hooks. A store remembers every token instead.
ISSUED_MEMORY: Final = 10_000


class _Early:
    """The most advanced delivery for a submission still being sent, if any."""

    __slots__ = ("signed", "task")

    def __init__(self) -> None:
        self.task: Task | None = None
        self.signed = False

    def keep(self, task: Task, *, signed: bool) -> None:
        known = self.task
        if known is None or progress_of(task) >= progress_of(known):
            self.task, self.signed = task, signed


class CallbackDesk:
    """Tokens issued by one client and the work their deliveries cause (see the module
    docstring). ``read(job_id)`` is one status read (retried as reads are)."""

    __slots__ = (
        "_confirming",
        "_issued",
        "_jobs",
        "_keeper",
        "_membership",
        "_read",
        "_sending",
        "_told",
        "_work",
        "receiver",
    )

    def __init__(
        self,
        receiver: WebhookReceiver,
        *,
        read: Callable[[str], Awaitable[Task]],
        keeper: JobKeeper | None,
        membership: Membership | None = None,
    ) -> None:
        self.receiver = receiver
        self._membership = membership
        self._read = read
        self._keeper = keeper
        self._sending: dict[str, _Early] = {}
        self._jobs: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        self._issued: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._confirming: set[str] = set()
        self._told: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._work: set[asyncio.Task[None]] = set()

    # --- tokens -------------------------------------------------------------------------

    def issue(self) -> tuple[str, str]:
        """A token for a submission about to be sent, and its callback URL."""
        token, url = self.receiver.issue()
        self._sending[token] = _Early()
        if self._membership is not None:
            self._membership.issued(token)
        return token, url

    def sent(self, token: str, job: Job) -> None:
        """The submission of ``token`` made ``job``: deliveries that came early are taken."""
        early = self._sending.pop(token, None)
        self._jobs[token] = job
        self._remember(token, job.job_id)
        if early is not None and early.task is not None:
            self._start(self._on_job(token, job, early.task, signed=early.signed))

    def unsent(self, token: str, *, unknown: bool) -> None:
        """The submission of ``token`` ended without a job id (``unknown``: a job may exist)."""
        early = self._sending.pop(token, None)
        if not unknown:
            return
        self._remember(token, None)
        if early is not None and early.task is not None:
            self._start(self._lookup_later(token, early.task, signed=early.signed))

    def _remember(self, token: str, job_id: str | None) -> None:
        """Keep a token of a client without a store (see :data:`ISSUED_MEMORY`)."""
        if self._keeper is not None:
            return
        issued = self._issued
        issued[token] = job_id
        while len(issued) > ISSUED_MEMORY:
            issued.popitem(last=False)

    def adopt(self, token: str, job: Job) -> None:
        """``job`` (restored from its record) is the one of ``token``."""
        self._jobs[token] = job

    # --- deliveries -----------------------------------------------------------------------

    async def delivered(
        self, token: str, task: Task, *, signed: bool, routed: bool = False
    ) -> bool:
        """The receiver's call for an accepted delivery (see ``CallbackListener``), or the
        coordinator's for one another worker received (``routed``)."""
        early = self._sending.get(token)
        if early is not None:
            early.keep(task, signed=signed)
            return True
        job = self._jobs.get(token)
        if job is not None:
            self._start(self._on_job(token, job, task, signed=signed))
            return True
        if token in self._issued:
            self._start(self._on_orphan(token, self._issued[token], task, signed=signed))
            return True
        membership = self._membership
        if (
            membership is not None
            and not routed
            and await membership.route(token, task_bytes(task) or b"", signed=signed)
        ):
            return True  # another worker of the group issued it, and took it
        record = await self._record_of(token)
        if record is None:
            return False
        self._take_record(token, record, task, signed=signed)
        return True

    async def _record_of(self, token: str) -> JobRecord | None:
        """The live record of ``token`` in the store, if the client has one."""
        keeper = self._keeper
        if keeper is None:
            return None
        try:
            await keeper.ready()
            record = await keeper.store.find_token(token)
        except Exception as exc:  # a store of the user's may raise anything: said, refused
            logger.error("webhook: job store lookup failed; delivery refused", exc_info=exc)
            return None
        if record is None or record.state is RecordState.FORGOTTEN:
            return None
        return record

    def _take_record(self, token: str, record: JobRecord, task: Task, *, signed: bool) -> None:
        keeper = self._keeper
        assert keeper is not None
        live = keeper.live.get(record.key)
        if live is not None and live.record is not None and live.record.attempt == record.attempt:
            self._jobs[token] = live
            self._start(self._on_job(token, live, task, signed=signed))
        else:
            self._start(self._on_record(token, record, task, signed=signed))

    async def _lookup_later(self, token: str, task: Task, *, signed: bool) -> None:
        """An early delivery of a submission whose answer was then lost: by its record."""
        keeper = self._keeper
        if keeper is None:
            await self._on_orphan(token, None, task, signed=signed)
            return
        await keeper.flush()
        record = await self._record_of(token)
        if record is not None:
            await self._on_record(token, record, task, signed=signed)

    # --- the work of a delivery -------------------------------------------------------------

    async def _on_job(self, token: str, job: Job, task: Task, *, signed: bool) -> None:
        """A delivery for a live job: taken as a read (confirmed first when unsigned)."""
        known = job.task
        if known is not None and known.is_finished:
            return  # a duplicate, or polling was first
        if job.job_id and task.job_id != job.job_id:
            logger.debug("webhook: a delivery to job %s named another job", job.job_id)
            return
        confirmed = task if signed else await self._confirm(token, job.job_id or task.job_id)
        if confirmed is None:
            return
        job.on(CallbackReceived(confirmed))
        finished = job.task
        if finished is not None and finished.is_finished:
            record = job.record
            self._tell(FinishedJob(finished, record.key if record is not None else None))

    async def _on_record(self, token: str, record: JobRecord, task: Task, *, signed: bool) -> None:
        """A delivery for a job no live handle holds: its record takes it."""
        keeper = self._keeper
        assert keeper is not None
        if record.state.is_finished:
            return
        if record.job_id is not None and task.job_id != record.job_id:
            logger.debug("webhook: a delivery to job %s named another job", record.job_id)
            return
        if not signed or (record.job_id is None and not task.callback):
            # A hint; or a signed body adopting a job without echoing our URL: read it.
            confirmed = await self._confirm(token, record.job_id or task.job_id)
        else:
            confirmed = task
        if confirmed is None:
            return
        stored = record.task
        if stored is not None and progress_of(confirmed) < progress_of(stored):
            return  # out of order
        updated = record.with_task(confirmed, state_of(confirmed))
        if record.state.outcome_unknown:
            logger.info(
                "webhook: the submission under key %r, whose answer was lost, made job %s",
                record.key,
                confirmed.job_id,
            )
        try:
            await keeper.durable(updated)
        except LegnextError:
            return  # the keeper logged it
        if confirmed.is_finished:
            self._tell(FinishedJob(confirmed, record.key))

    async def _on_orphan(self, token: str, job_id: str | None, task: Task, *, signed: bool) -> None:
        """A delivery for a job of a client without a store whose handle is gone (``job_id``
        ``None``: its submission's answer was lost): it reaches the hooks only."""
        if job_id is not None and task.job_id != job_id:
            return
        if job_id is not None and job_id in self._told:
            return  # a duplicate
        adopting = job_id is None and not task.callback
        confirmed = task if signed and not adopting else await self._confirm(token, task.job_id)
        if confirmed is not None and confirmed.is_finished:
            self._tell(FinishedJob(confirmed))

    async def _confirm(self, token: str, job_id: str) -> Task | None:
        """One status read of ``job_id`` for an unsigned hint: the task if it is finished
        and echoes the token's URL, else ``None``. One read per token at a time; a hint
        that is not a finish is not worth one."""
        if token in self._confirming:
            return None
        self._confirming.add(token)
        try:
            task = await self._read(job_id)
        except LegnextError as exc:
            logger.debug("webhook: could not confirm a delivery for job %s: %s", job_id, exc)
            return None
        finally:
            self._confirming.discard(token)
        if not task.callback or not names_token(task.callback, token):
            logger.warning("webhook: job %s was not submitted with this callback URL", job_id)
            return None
        return task if task.is_finished else None

    def _tell(self, job: FinishedJob) -> None:
        """Hand a finish to the receiver's hooks, once per job."""
        told = self._told
        if job.job_id in told:
            return
        told[job.job_id] = None
        while len(told) > TOLD_MEMORY:
            told.popitem(last=False)
        self.receiver.finished(job)

    # --- tasks ----------------------------------------------------------------------------

    def _start(self, work: Coroutine[object, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name="legnext-webhook-delivery")
        self._work.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._work.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("webhook: a delivery's work failed", exc_info=error)

    async def settle(self) -> None:
        """Wait until the work of every delivery so far is done."""
        while self._work:
            await asyncio.wait(list(self._work))

    async def stop(self) -> None:
        """Cancel the work of deliveries (the client is closing) and wait for it to end."""
        work = list(self._work)
        for task in work:
            task.cancel()
        if work:
            await asyncio.wait(work)
