"""What several clients on one account share, and the interface of a coordinator that shares it.

A ``LegnextClient(coordinator=...)`` is one *member* of a group of clients (worker
processes, often on several machines) that use one Legnext account. The coordinator gives
each member:

- job slots drawn from one account-wide pool (a :class:`~legnext_async._budget.JobSlots`
  whose grants come from the coordinator), with what 429s teach about the account's limit
  shared by all;
- the poll pace after 429s on status reads, and the learned run times, shared;
- callback routing: a delivery that reached one member for a job another member awaits is
  handed to that member;
- adoption: the unfinished stored jobs of a member that died are taken over by another.

The core package knows coordinators only through :class:`Coordinator` and
:class:`Membership`; ``legnext_async.redis.RedisCoordinator`` is the one this package ships.
"""

from __future__ import annotations

import abc
import hashlib
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._budget import JobSlots, Pace
    from ._models import Task
    from ._polling import DurationModel

__all__ = ["Coordinator", "Member", "Membership", "account_of"]


def account_of(api_key: str) -> str:
    """A name for the account of ``api_key`` that tells nothing about the key: the members
    of one account find each other by it."""
    return hashlib.sha256(b"legnext-account\0" + api_key.encode()).hexdigest()[:16]


@attrs.frozen(kw_only=True)
class Member:
    """What a coordinator may use of the client it serves."""

    #: :func:`account_of` the client's key.
    account: str
    #: The client's ``max_active_jobs`` (``None``: learned).
    max_active_jobs: int | None
    #: The client's learned run times (restored from and saved to the group).
    durations: DurationModel
    #: The client's poll pace after 429s.
    pace: Pace
    #: Take a delivery another member received for a token this client issued:
    #: ``deliver(token, task, signed)``; ``None`` if the client has no webhook receiver.
    deliver: Callable[[str, Task, bool], Awaitable[bool]] | None = None
    #: Take over the unfinished stored jobs no live member watches; ``None`` without a store.
    adopt_orphans: Callable[[], Awaitable[object]] | None = None


class Membership(abc.ABC):
    """One client's part in a group: made by :meth:`Coordinator.join`."""

    #: The job slots the client draws from.
    slots: JobSlots

    @abc.abstractmethod
    def enter(self) -> None:
        """The client starts in the running event loop: take part from now on (renew its
        leases, reap lost members, adopt their jobs), whether or not it submits."""

    @abc.abstractmethod
    def issued(self, token: str) -> None:
        """The client gave a submission the callback token ``token``: deliveries for it
        that reach another member are to be handed here."""

    @abc.abstractmethod
    async def route(self, token: str, body: bytes, *, signed: bool) -> bool:
        """Hand a delivery this client received for a token it did not issue to the member
        that did; whether one took it."""

    @abc.abstractmethod
    async def adopt(self, job_ids: list[str]) -> set[str]:
        """Of ``job_ids`` (unfinished stored jobs), the ones no live member watches, now
        this client's to watch."""

    @abc.abstractmethod
    async def leave(self) -> None:
        """The client's event loop ends, or it closes: stop, and give back what can be."""


class Coordinator(abc.ABC):
    """Shares job slots, learning and callbacks between the clients of one account.

    Given to each client as ``LegnextClient(coordinator=...)``, one per client. The one
    this package ships is ``legnext_async.redis.RedisCoordinator``; the methods here are
    the client's side of the contract, not for calling directly.
    """

    @abc.abstractmethod
    def join(self, member: Member) -> Membership:
        """Make ``member`` (one client) part of the group; one client per coordinator."""
