"""What the emulator's controls report: frozen snapshots of a job and of a wallet."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._jobs import COMPLETED, FAILED

if TYPE_CHECKING:
    from ._jobs import Job
    from ._state import Account


@attrs.frozen
class JobInfo:
    """A snapshot of one job, as the emulator sees it at the time of the call."""

    job_id: str
    task_type: str
    status: str
    #: 0 for a job seeded for every account (``seed_job`` on an emulator taking any key).
    account_id: int
    parent_id: str | None
    callback: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    frozen: int
    consume: int
    error_code: int
    #: Made by ``seed_job`` rather than by a request.
    seeded: bool


@attrs.frozen
class Balance:
    """An account's wallet: available amounts exclude what unfinished jobs froze."""

    credits: int
    points: int
    frozen: int
    used: int


def job_info(job: Job, now: float) -> JobInfo:
    """``job`` at virtual time ``now`` (its account settled up to ``now``)."""
    status = job.status_at(now)
    return JobInfo(
        job_id=job.job_id,
        task_type=job.task_type,
        status=status,
        account_id=job.account_id,
        parent_id=job.parent_id,
        callback=job.callback,
        created_at=job.created_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        frozen=job.frozen,
        consume=job.frozen if status == COMPLETED else 0,
        error_code=job.failure.code if job.failure and status == FAILED else 0,
        seeded=job.seeded,
    )


def balance_of(account: Account) -> Balance:
    """``account``'s wallet (settled by the caller)."""
    return Balance(account.credits, account.points, account.frozen, account.used)
