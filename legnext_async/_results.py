"""What an awaited job gives back, by family: images, videos, or text.

A result is data: :meth:`TaskResult.to_json` gives the job as the service reports it, and
:meth:`TaskResult.from_json` reads that back into an equal result, in this process or
another. Its properties never need a client, so a result stays readable after its client
has closed.

Image and video results carry typed follow-ups (``await result.upscale(0)``). Each has the
name, keywords and defaults of the client method of the same name, minus the job id (the
spec of both is one route of ``_catalog.py``); it checks the result's ``available_actions``
before anything is sent, goes through the client the result came from (or the one given to
:meth:`TaskResult.bind`), and returns a new :class:`TaskHandle`.

They also save their files (``await result.download(directory)``): through their open
client, or, with none (read from JSON, or the client closed), through a short-lived session
of their own, since the files need no API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, Self, cast

import attrs

from . import _catalog as routes
from ._catalog import warn_caller
from ._download import download_without_client
from ._exceptions import ClientClosedError, ValidationError
from ._models import _ACTION_NAMES, AvailableActions, Task, TaskType, UpscaleType, VariationType
from ._validation import check_int

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from ._catalog import Family, Field, Route
    from ._handle import TaskHandle
    from ._models import Canvas, ImagePosition, Mask, PanDirection, RemixMode, VideoType
    from ._polling import PollPolicy

__all__ = ["FollowUpClient", "ImageResult", "TaskResult", "TextResult", "VideoResult"]


class FollowUpClient(Protocol):
    """What a result needs of a client to follow up; a :class:`LegnextClient` is one.

    Declared here so that results, which the client makes, never import the client.
    """

    @property
    def closed(self) -> bool:
        """Whether the client was closed."""

    async def _create(
        self, route: Route, poll: PollPolicy | None, key: str | None, /, **values: object
    ) -> TaskHandle[Any]:
        """Check ``values`` against ``route``, build its body and submit the job."""

    async def download(
        self, target: TaskResult, directory: str | os.PathLike[str], /, *, fsync: bool | None
    ) -> tuple[Path, ...]:
        """Save the result's output files in ``directory``; their paths, in output order."""


@attrs.frozen
class TaskResult:
    """A completed job. ``task`` is the whole final :class:`Task`.

    ``client`` is the client follow-ups go through: the one that awaited the job, or
    ``None`` for a result read with :meth:`from_json` (see :meth:`TaskResult.bind`).
    """

    task: Task
    _client: FollowUpClient | None = attrs.field(alias="client", default=None, repr=False, eq=False)

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

    # --- as data --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The job as the service reports it (see :meth:`Task.to_json`), for storing.

        ``from_json`` reads it back into an equal result of the same class.
        """
        return self.task.to_json()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, client: FollowUpClient | None = None) -> Self:
        """The result for a task object: the output of :meth:`to_json`, or any the API sent.

        On :class:`TaskResult` the class follows the job's task type (image, video or
        text); on a subclass it is that subclass. ``client``: the client follow-ups go
        through; without one they raise until :meth:`TaskResult.bind` gives one.

        Raises:
            ValidationError: ``data`` is not a JSON object.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                "data", f"must be a task as a JSON object (a dict), got {type(data).__name__}"
            )
        task = Task.from_json(data)
        kind = _RESULT_TYPES[task.task_type.family] if cls is TaskResult else cls
        return cast("Self", kind(task, client=client))

    def bind(self, client: FollowUpClient) -> Self:
        """This result, with its follow-ups going through ``client`` (an open client).

        For a result read with :meth:`from_json`, or one whose client has closed.
        """
        return attrs.evolve(self, client=client)

    # --- follow-ups -----------------------------------------------------------------------

    async def _follow_up(
        self, route: Route, poll: PollPolicy | None, key: str | None, /, **values: object
    ) -> TaskHandle[Any]:
        """Submit ``route`` with this job as the parent, once ``available_actions`` allows it.

        ``values``: the follow-up's arguments, by name (all of the route's fields but the
        parent job id).
        """
        client = self._open_client(route)
        index = route.index
        if index is not None:
            values[index.name] = self._offered(route, index, values[index.name])
        elif route.parent_action == "reroll" and not self.available_actions.reroll:
            raise ValidationError(
                "reroll",
                f"is not offered for job {self.job_id}: available_actions.reroll is false"
                f" ({self._offers()})",
            )
        parent = route.parent
        if parent is None:  # pragma: no cover - every route with `follows` names a parent
            raise TypeError(f"{route.name} is not a follow-up")
        values[parent.name] = self.job_id
        return await client._create(route, poll, key, **values)

    async def _download(
        self, directory: str | os.PathLike[str], fsync: bool | None
    ) -> tuple[Path, ...]:
        """Save the files through the open client, or through a session of its own."""
        client = self._client
        if client is not None and not client.closed:
            return await client.download(self, directory, fsync=fsync)
        if fsync is not None and not isinstance(fsync, bool):
            raise ValidationError("fsync", f"must be True, False or None, got {fsync!r}")
        # Default retries and limits: a result read from JSON knows no client's settings.
        return await download_without_client(self.task, directory, fsync=bool(fsync))

    def _open_client(self, route: Route) -> FollowUpClient:
        """The client to follow up through, or ClientClosedError saying how to get one."""
        client = self._client
        if client is not None and not client.closed:
            return client
        why = "was read from JSON" if client is None else "belongs to a closed client"
        parent = route.parent
        first = "result.job_id"
        if parent is not None and not parent.positional:
            first = f"{parent.name}=result.job_id"
        raise ClientClosedError(
            f"{type(self).__name__}.{route.name}() needs an open client, and this result {why};"
            f" follow up with client.{route.name}({first}, ...) or with"
            f" result.bind(client).{route.name}(...)"
        )

    def _offered(self, route: Route, field: Field, number: object) -> int:
        """``number`` if the parent allows ``route`` for it, else ValidationError."""
        low, high = int(field.low or 0), int(field.high or 0)
        index = check_int(number, field.name, low, high)
        action = route.parent_action
        if action is None:
            # No available_actions key names this (animation): the image must exist.
            images = len(self.task.output.image_urls)
            if index >= images:
                raise ValidationError(
                    field.name,
                    f"job {self.job_id} has {images} image(s), so there is no image {index}",
                )
            return index
        offered = self.available_actions.images_for(action)
        if index not in offered:
            listed = ", ".join(map(str, offered)) or "no numbers"
            raise ValidationError(
                field.name,
                f"{action} is not offered for {field.name} {index} of job {self.job_id}:"
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

    async def download(
        self, directory: str | os.PathLike[str], *, fsync: bool | None = None
    ) -> tuple[Path, ...]:
        """Save the images in ``directory`` (made if missing); their paths, in order.

        The images are ``image_urls`` (the grid image is not one of them). Each is named
        ``<job_id>_<index><ext>``; a file saved before is not fetched again. Goes through
        the result's client (its retries, limits and request budget) when it is open, else
        through a short-lived session with the default settings. ``fsync=True`` flushes
        each file to disk before its rename (``None``: the client's ``fsync_downloads``;
        without a client, off). See :meth:`LegnextClient.download` for the checks.

        Raises:
            DownloadExpiredError: a signed URL is past its ``Expires`` (nothing is sent).
            DownloadError: a file could not be saved (the job, file number and reason are
                named).
        """
        return await self._download(directory, fsync)

    async def upscale(
        self,
        image_no: int,
        *,
        type: UpscaleType | int = UpscaleType.SUBTLE,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Upscale image ``image_no`` of this result (see :meth:`LegnextClient.upscale`).

        Raises:
            ValidationError: ``available_actions.upscale`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.UPSCALE, poll, key, image_no=image_no, type=type, callback=callback
        )

    async def variation(
        self,
        image_no: int,
        *,
        type: VariationType | int = VariationType.SUBTLE,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Vary image ``image_no`` of this result (see :meth:`LegnextClient.variation`).

        Raises:
            ValidationError: ``available_actions.variation`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.VARIATION,
            poll,
            key,
            image_no=image_no,
            type=type,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def reroll(
        self,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Run this job's prompt again (see :meth:`LegnextClient.reroll`).

        Raises:
            ValidationError: ``available_actions.reroll`` is not true.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(routes.REROLL, poll, key, callback=callback)

    async def pan(
        self,
        image_no: int,
        *,
        direction: PanDirection | int,
        scale: float,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Extend image ``image_no`` in one direction (see :meth:`LegnextClient.pan`).

        Raises:
            ValidationError: ``available_actions.pan`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.PAN,
            poll,
            key,
            image_no=image_no,
            direction=direction,
            scale=scale,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def outpaint(
        self,
        image_no: int,
        *,
        scale: float,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Zoom out of image ``image_no`` (see :meth:`LegnextClient.outpaint`).

        Raises:
            ValidationError: ``available_actions.outpaint`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.OUTPAINT,
            poll,
            key,
            image_no=image_no,
            scale=scale,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def inpaint(
        self,
        image_no: int,
        *,
        mask: Mask,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Repaint a region of image ``image_no`` (see :meth:`LegnextClient.inpaint`).

        Raises:
            ValidationError: ``available_actions.inpaint`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.INPAINT,
            poll,
            key,
            image_no=image_no,
            mask=mask,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def remix(
        self,
        image_no: int,
        *,
        remix_prompt: str,
        mode: RemixMode | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Redraw image ``image_no`` with a new prompt (see :meth:`LegnextClient.remix`).

        Raises:
            ValidationError: ``available_actions.remix`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.REMIX,
            poll,
            key,
            image_no=image_no,
            remix_prompt=remix_prompt,
            mode=mode,
            callback=callback,
        )

    async def edit(
        self,
        image_no: int,
        *,
        canvas: Canvas,
        img_pos: ImagePosition,
        remix_prompt: str,
        mask: Mask | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Place image ``image_no`` on a canvas and repaint (see :meth:`LegnextClient.edit`).

        Raises:
            ValidationError: ``available_actions.edit`` does not list ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.EDIT,
            poll,
            key,
            image_no=image_no,
            canvas=canvas,
            img_pos=img_pos,
            remix_prompt=remix_prompt,
            mask=mask,
            callback=callback,
        )

    async def enhance(
        self,
        image_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Re-render image ``image_no`` of a draft grid (see :meth:`LegnextClient.enhance`).

        Raises:
            ValidationError: ``available_actions.enhance`` does not list ``image_no`` (only
                draft grids offer it).
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.ENHANCE, poll, key, image_no=image_no, callback=callback
        )

    async def video_diffusion(
        self,
        image_no: int,
        *,
        prompt: str | None = None,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Animate image ``image_no`` (see :meth:`LegnextClient.video_diffusion`).

        No ``available_actions`` key names animation, so the check is that the result
        has an image ``image_no``.

        Raises:
            ValidationError: this result has no image ``image_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.VIDEO_DIFFUSION,
            poll,
            key,
            image_no=image_no,
            prompt=prompt,
            video_type=video_type,
            callback=callback,
        )

    async def video(
        self,
        image_no: int,
        *,
        prompt: str | None = None,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Deprecated: :meth:`video_diffusion`, named like the client method."""
        warn_caller("ImageResult.video() is deprecated; use ImageResult.video_diffusion()")
        return await self.video_diffusion(
            image_no, prompt=prompt, video_type=video_type, callback=callback, poll=poll, key=key
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

    async def download(
        self, directory: str | os.PathLike[str], *, fsync: bool | None = None
    ) -> tuple[Path, ...]:
        """Save the videos in ``directory`` (made if missing); their paths, in order.

        The videos are ``video_urls``. Each is named ``<job_id>_<index><ext>``; a
        file saved before is not fetched again. Goes through the result's client (its
        retries, limits and request budget) when it is open, else through a short-lived
        session with the default settings. ``fsync=True`` flushes each file to disk before
        its rename (``None``: the client's ``fsync_downloads``; without a client, off). See
        :meth:`LegnextClient.download` for the checks.

        Raises:
            DownloadExpiredError: a signed URL is past its ``Expires`` (nothing is sent).
            DownloadError: a file could not be saved (the job, file number and reason are
                named).
        """
        return await self._download(directory, fsync)

    async def extend_video(
        self,
        video_no: int,
        *,
        prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Make video ``video_no`` 4 s longer (see :meth:`LegnextClient.extend_video`).

        Raises:
            ValidationError: ``available_actions.extend`` does not list ``video_no`` (a
                video extended four times, or an upscaled one, offers no more).
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.EXTEND_VIDEO, poll, key, video_no=video_no, prompt=prompt, callback=callback
        )

    async def video_upscale(
        self,
        video_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Upscale video ``video_no`` (see :meth:`LegnextClient.video_upscale`).

        Raises:
            ValidationError: ``available_actions.upscale`` does not list ``video_no``.
            ClientClosedError: the result has no open client (see :meth:`TaskResult.bind`).
        """
        return await self._follow_up(
            routes.VIDEO_UPSCALE, poll, key, video_no=video_no, callback=callback
        )

    async def extend(
        self,
        video_no: int,
        *,
        prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Deprecated: :meth:`extend_video`, named like the client method."""
        warn_caller("VideoResult.extend() is deprecated; use VideoResult.extend_video()")
        return await self.extend_video(
            video_no, prompt=prompt, callback=callback, poll=poll, key=key
        )

    async def upscale(
        self,
        video_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Deprecated: :meth:`video_upscale`, named like the client method."""
        warn_caller("VideoResult.upscale() is deprecated; use VideoResult.video_upscale()")
        return await self.video_upscale(video_no, callback=callback, poll=poll, key=key)


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


#: The result class of each output family (see :attr:`TaskType.family`).
_RESULT_TYPES: dict[str, type[TaskResult]] = {
    "image": ImageResult,
    "video": VideoResult,
    "text": TextResult,
}


def result_type(family: Family) -> type[TaskResult]:
    """The result class of a route's output family."""
    return _RESULT_TYPES[family]


def result_for(task: Task, client: FollowUpClient) -> TaskResult:
    """The result type that fits the job's task type (for handles of jobs made elsewhere)."""
    return _RESULT_TYPES[task.task_type.family](task, client=client)
