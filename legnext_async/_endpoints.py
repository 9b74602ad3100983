"""One short method per Legnext endpoint: check the arguments, build the body, submit.

Each method checks every documented limit before anything is sent (raising
:class:`ValidationError` that names the field and the limit) and returns a
:class:`TaskHandle`. Required fields are positional in the documented order; optional ones
are keyword-only. Bodies are the documented camelCase JSON; optional fields that were not
given are left out rather than sent as ``null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import ValidationError
from ._models import Mask
from ._results import ImageResult, image_result
from ._validation import (
    check_int,
    check_job_id,
    check_optional_text,
    check_optional_url,
    check_text,
    compact,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._client import LegnextClient
    from ._handle import TaskHandle
    from ._models import Task
    from ._polling import PollPolicy

__all__ = ["Endpoints"]

R = TypeVar("R")


def _check_mask(mask: object) -> Mask:
    if not isinstance(mask, Mask):
        raise ValidationError(
            "mask",
            f"must be a Mask(areas=[Polygon(...)]) or Mask(url=...), got {type(mask).__name__}",
        )
    return mask


class Endpoints:
    """The job-creating methods of :class:`LegnextClient`."""

    if TYPE_CHECKING:

        async def _submit(
            self,
            endpoint: str,
            payload: dict[str, Any],
            make_result: Callable[[Task, LegnextClient], R],
            poll: PollPolicy | None = None,
        ) -> TaskHandle[R]: ...

    async def diffusion(
        self,
        text: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Generate a grid of four images from a prompt (``POST /v1/diffusion``).

        Midjourney flags go inside ``text`` (``--ar 16:9 --v 7``; ``--draft`` halves the
        cost and allows ``enhance``; image prompts are URLs at the start).

        Args:
            text: the prompt, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
        """
        payload = compact(
            text=check_text(text, "text"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("diffusion", payload, image_result, poll)

    async def inpaint(
        self,
        job_id: str,
        image_no: int,
        mask: Mask,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Repaint a region of one image of a finished grid (``POST /v1/inpaint``, Vary Region).

        Args:
            job_id: the parent job (a completed grid whose ``available_actions.inpaint``
                lists ``image_no``).
            image_no: which image of the grid, 0–3.
            mask: ``Mask(areas=[Polygon(...), ...])`` or ``Mask(url=...)`` (white = repaint).
            remix_prompt: what to paint in the region, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=check_int(image_no, "image_no", 0, 3),
            mask=_check_mask(mask).to_json(),
            remixPrompt=check_optional_text(remix_prompt, "remix_prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("inpaint", payload, image_result, poll)
