"""Which job a follow-up may name as its parent, and with which image or video number.

The parent must belong to the caller's account, be within retention and completed, and
offer the follow-up in its ``available_actions`` for that number. Unknown parents answer
404, every other refusal 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import Reject
from ._jobs import COMPLETED

if TYPE_CHECKING:
    from ._jobs import Job
    from ._state import Account, State
    from ._validation import Submission


def find_parent(state: State, account: Account, sub: Submission, now: float) -> Job:
    """The job ``sub`` follows up (``sub.parent_id`` is set); :class:`Reject` if it may not."""
    op = sub.operation
    parent_id = sub.parent_id
    parent = account.jobs.get(parent_id or "")
    if parent is None or state.expired(parent, now):
        raise Reject(404, f"job {parent_id} not found")
    if parent.started_at is None:
        state.settle(account, now)
    status = parent.status_at(now)
    if status != COMPLETED:
        raise Reject(400, f"job {parent_id} is {status}, not completed")
    actions = parent.available_actions()
    index = sub.index
    if op.route == "reroll":
        if actions.get("reroll") is not True:
            raise Reject(400, f"job {parent_id} cannot be rerolled")
        return parent
    if op.route == "video-diffusion":
        # Any image of an image job can be animated; there is no action key for it.
        if parent.family not in ("grid", "single"):
            raise Reject(400, f"jobId {parent_id} is not an image job")
        images = 4 if parent.family == "grid" else 1
        if index is None or index >= images:
            raise Reject(400, f"imageNo {index} is not an image of job {parent_id}")
        return parent
    if op.family == "video" and parent.family != "video":
        raise Reject(400, f"jobId {parent_id} is not a video job")
    if op.route == "enhance" and not parent.draft:
        raise Reject(400, f"job {parent_id} was not created in draft mode")
    key = op.parent_action or ""
    allowed = actions.get(key)
    field = "videoNo" if op.family == "video" else "imageNo"
    if not isinstance(allowed, list) or index not in allowed:
        raise Reject(400, f"{field} {index} is not in available_actions.{key} of job {parent_id}")
    return parent
