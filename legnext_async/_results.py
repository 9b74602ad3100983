"""What an awaited job gives back, by family: images, videos, or text.

Image and video results carry typed follow-ups (``await result.upscale(0)``): each takes
the client method's arguments minus the job id, checks the result's
``available_actions`` before anything is sent, and returns a new :class:`TaskHandle`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._exceptions import ValidationError
from ._models import _ACTION_NAMES, AvailableActions, Task, TaskType, UpscaleType, VariationType
from ._validation import check_int

if TYPE_CHECKING:
    from ._client import LegnextClient
    from ._handle import TaskHandle
    from ._models import Canvas, ImagePosition, Mask, PanDirection, RemixMode, VideoType
    from ._polling import PollPolicy

__all__ = ["ImageResult", "TaskResult", "TextResult", "VideoResult"]


@attrs.frozen
class TaskResult:
    """A completed job. ``task`` is the whole final :class:`Task`."""

    task: Task
    _client: LegnextClient = attrs.field(alias="client", repr=False, eq=False)

    @property
    def job_id(self) -> str:
        """The job's id (the parent id for follow-ups)."""
        return self.task.job_id

    @property
    def task_type(self) -> TaskType:
        """What the job did."""
        return self.task.task_type

    @property
    def seed(self) -> str | None:
        """The generation seed, if the service reported one."""
        return self.task.output.seed

    @property
    def available_actions(self) -> AvailableActions:
        """Follow-ups the service allows on this result, with the image numbers for each."""
        return self.task.output.available_actions

    def _offered(self, action: str, number: object, field: str) -> int:
        """``number`` if ``available_actions`` lists it for ``action``, else ValidationError."""
        index = check_int(number, field, 0, 3)
        images = self.available_actions.images_for(action)
        if index not in images:
            listed = ", ".join(map(str, images)) or "no numbers"
            raise ValidationError(
                field,
                f"{action} is not offered for {field} {index} of job {self.job_id}:"
                f" available_actions.{action} lists {listed} ({self._offers()})",
            )
        return index

    def _offers(self) -> str:
        actions = self.available_actions
        offered = [
            f"{name} {list(images)}"
            for name in (*_ACTION_NAMES, *actions.other)
            if (images := actions.images_for(name))
        ]
        if actions.reroll:
            offered.append("reroll")
        return "offered: " + "; ".join(offered) if offered else "this job offers no follow-ups"


@attrs.frozen
class ImageResult(TaskResult):
    """A completed image job: a grid of four images, or a single image."""

    @property
    def image_urls(self) -> tuple[str, ...]:
        """The separate images (four for a grid; one for upscale or background removal).

        ``image_urls[i]`` is image number ``i``. Only absolute http(s) URLs: the tuple ends
        before the first URL the service sent that is not one (see :class:`Output`).
        """
        return self.task.output.image_urls

    @property
    def image_url(self) -> str | None:
        """The grid image, or the single image; ``None`` when the service left it empty
        (or sent something that is not an absolute http(s) URL)."""
        return self.task.output.image_url

    async def upscale(
        self,
        image_no: int,
        type: UpscaleType | int = UpscaleType.SUBTLE,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Upscale image ``image_no`` of this result (see :meth:`LegnextClient.upscale`).

        Raises:
            ValidationError: ``available_actions.upscale`` does not list ``image_no``.
        """
        index = self._offered("upscale", image_no, "image_no")
        return await self._client.upscale(self.job_id, index, type, callback=callback, poll=poll)

    async def variation(
        self,
        image_no: int,
        type: VariationType | int = VariationType.SUBTLE,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Vary image ``image_no`` of this result (see :meth:`LegnextClient.variation`).

        Raises:
            ValidationError: ``available_actions.variation`` does not list ``image_no``.
        """
        index = self._offered("variation", image_no, "image_no")
        return await self._client.variation(
            self.job_id, index, type, remix_prompt=remix_prompt, callback=callback, poll=poll
        )

    async def inpaint(
        self,
        image_no: int,
        mask: Mask,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Repaint a region of image ``image_no`` (see :meth:`LegnextClient.inpaint`).

        Raises:
            ValidationError: ``available_actions.inpaint`` does not list ``image_no``.
        """
        index = self._offered("inpaint", image_no, "image_no")
        return await self._client.inpaint(
            self.job_id, index, mask, remix_prompt=remix_prompt, callback=callback, poll=poll
        )

    async def outpaint(
        self,
        image_no: int,
        scale: float,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Zoom out of image ``image_no`` (see :meth:`LegnextClient.outpaint`).

        Raises:
            ValidationError: ``available_actions.outpaint`` does not list ``image_no``.
        """
        index = self._offered("outpaint", image_no, "image_no")
        return await self._client.outpaint(
            self.job_id, index, scale, remix_prompt=remix_prompt, callback=callback, poll=poll
        )

    async def pan(
        self,
        image_no: int,
        direction: PanDirection | int,
        scale: float,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Extend image ``image_no`` in one direction (see :meth:`LegnextClient.pan`).

        Raises:
            ValidationError: ``available_actions.pan`` does not list ``image_no``.
        """
        index = self._offered("pan", image_no, "image_no")
        return await self._client.pan(
            self.job_id,
            index,
            direction,
            scale,
            remix_prompt=remix_prompt,
            callback=callback,
            poll=poll,
        )

    async def remix(
        self,
        image_no: int,
        remix_prompt: str,
        *,
        mode: RemixMode | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Redraw image ``image_no`` with a new prompt (see :meth:`LegnextClient.remix`).

        Raises:
            ValidationError: ``available_actions.remix`` does not list ``image_no``.
        """
        index = self._offered("remix", image_no, "image_no")
        return await self._client.remix(
            self.job_id, index, remix_prompt, mode=mode, callback=callback, poll=poll
        )

    async def edit(
        self,
        image_no: int,
        canvas: Canvas,
        img_pos: ImagePosition,
        remix_prompt: str,
        *,
        mask: Mask | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Place image ``image_no`` on a canvas and repaint (see :meth:`LegnextClient.edit`).

        Raises:
            ValidationError: ``available_actions.edit`` does not list ``image_no``.
        """
        index = self._offered("edit", image_no, "image_no")
        return await self._client.edit(
            self.job_id,
            index,
            canvas,
            img_pos,
            remix_prompt,
            mask=mask,
            callback=callback,
            poll=poll,
        )

    async def enhance(
        self,
        image_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Re-render image ``image_no`` of a draft grid (see :meth:`LegnextClient.enhance`).

        Raises:
            ValidationError: ``available_actions.enhance`` does not list ``image_no`` (only
                draft grids offer it).
        """
        index = self._offered("enhance", image_no, "image_no")
        return await self._client.enhance(self.job_id, index, callback=callback, poll=poll)

    async def reroll(
        self,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Run this job's prompt again (see :meth:`LegnextClient.reroll`).

        Raises:
            ValidationError: ``available_actions.reroll`` is not true.
        """
        if not self.available_actions.reroll:
            raise ValidationError(
                "reroll",
                f"is not offered for job {self.job_id}: available_actions.reroll is false"
                f" ({self._offers()})",
            )
        return await self._client.reroll(self.job_id, callback=callback, poll=poll)

    async def video(
        self,
        image_no: int,
        *,
        prompt: str | None = None,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]:
        """Animate image ``image_no`` (see :meth:`LegnextClient.video_diffusion`).

        No ``available_actions`` key names animation, so the check is that the result
        has an image ``image_no``.

        Raises:
            ValidationError: this result has no image ``image_no``.
        """
        index = check_int(image_no, "image_no", 0, 3)
        if index >= len(self.image_urls):
            raise ValidationError(
                "image_no",
                f"job {self.job_id} has {len(self.image_urls)} image(s), so there is no"
                f" image {index} to animate",
            )
        return await self._client.video_diffusion(
            prompt,
            job_id=self.job_id,
            image_no=index,
            video_type=video_type,
            callback=callback,
            poll=poll,
        )


@attrs.frozen
class VideoResult(TaskResult):
    """A completed video job."""

    @property
    def video_urls(self) -> tuple[str, ...]:
        """The videos (mp4), one per batch item; ``video_urls[i]`` is video number ``i``.

        Only absolute http(s) URLs, as with :attr:`ImageResult.image_urls`.
        """
        return self.task.output.video_urls

    async def extend(
        self,
        video_no: int,
        *,
        prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]:
        """Make video ``video_no`` 4 s longer (see :meth:`LegnextClient.extend_video`).

        Raises:
            ValidationError: ``available_actions.extend`` does not list ``video_no`` (a
                video extended four times, or an upscaled one, offers no more).
        """
        index = self._offered("extend", video_no, "video_no")
        return await self._client.extend_video(
            self.job_id, index, prompt=prompt, callback=callback, poll=poll
        )

    async def upscale(
        self,
        video_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]:
        """Upscale video ``video_no`` (see :meth:`LegnextClient.video_upscale`).

        Raises:
            ValidationError: ``available_actions.upscale`` does not list ``video_no``.
        """
        index = self._offered("upscale", video_no, "video_no")
        return await self._client.video_upscale(self.job_id, index, callback=callback, poll=poll)


@attrs.frozen
class TextResult(TaskResult):
    """A completed describe or shorten job."""

    @property
    def prompts(self) -> tuple[str, ...]:
        """The suggested prompts."""
        return self.task.output.prompts

    @property
    def prompt_en(self) -> str | None:
        """The prompt text the service reports (``promptEn``)."""
        return self.task.output.prompt_en

    @property
    def description(self) -> str | None:
        """The service's description of what it did."""
        return self.task.output.description

    @property
    def final_prompt(self) -> str | None:
        """The service's ``finalPrompt``."""
        return self.task.output.final_prompt


def image_result(task: Task, client: LegnextClient) -> ImageResult:
    """The result of an image job."""
    return ImageResult(task, client=client)


def video_result(task: Task, client: LegnextClient) -> VideoResult:
    """The result of a video job."""
    return VideoResult(task, client=client)


def text_result(task: Task, client: LegnextClient) -> TextResult:
    """The result of a describe or shorten job."""
    return TextResult(task, client=client)


def result_for(task: Task, client: LegnextClient) -> TaskResult:
    """The result type that fits the job's task type (for handles of jobs made elsewhere)."""
    family = task.task_type.family
    if family == "video":
        return video_result(task, client)
    if family == "text":
        return text_result(task, client)
    return image_result(task, client)
