"""What an awaited job gives back, by family: images, videos, or text."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._models import AvailableActions, Task, TaskType

if TYPE_CHECKING:
    from ._client import LegnextClient

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


@attrs.frozen
class ImageResult(TaskResult):
    """A completed image job: a grid of four images, or a single image."""

    @property
    def image_urls(self) -> tuple[str, ...]:
        """The separate images (four for a grid; one for upscale or background removal)."""
        return self.task.output.image_urls

    @property
    def image_url(self) -> str | None:
        """The grid image, or the single image; ``None`` when the service left it empty."""
        return self.task.output.image_url


@attrs.frozen
class VideoResult(TaskResult):
    """A completed video job."""

    @property
    def video_urls(self) -> tuple[str, ...]:
        """The videos (mp4), one per batch item."""
        return self.task.output.video_urls


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
