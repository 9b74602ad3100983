"""One short method per Legnext endpoint: check the arguments, build the body, submit.

Each method checks every documented limit before anything is sent (raising
:class:`ValidationError` that names the field and the limit) and returns a
:class:`TaskHandle`. Required fields are positional in the documented order; optional ones
are keyword-only. Bodies are the documented camelCase JSON; optional fields that were not
given are left out rather than sent as ``null``. Small integer codes take the enums of
:mod:`legnext_async` (``PanDirection.LEFT``) or the plain ints they stand for (``3``); the
wire always gets the plain int.

Every method also takes, keyword-only:

- ``callback``: an absolute http(s) URL (at most 1024 characters) the service POSTs the
  finished job to;
- ``poll``: a :class:`PollPolicy` for the returned handle (else the client's).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from ._exceptions import ValidationError
from ._models import (
    BlendAspectRatio,
    Canvas,
    ImagePosition,
    Mask,
    PanDirection,
    RemixMode,
    UpscaleType,
    VariationType,
    VideoType,
)
from ._results import ImageResult, TextResult, VideoResult, image_result, text_result, video_result
from ._validation import (
    check_choice,
    check_code,
    check_float,
    check_int,
    check_job_id,
    check_optional_text,
    check_optional_url,
    check_text,
    check_url,
    check_url_list,
    compact,
    shown,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._client import LegnextClient
    from ._handle import TaskHandle
    from ._models import Task
    from ._polling import PollPolicy

__all__ = ["Endpoints"]

R = TypeVar("R")

#: Image numbers of a grid, and video numbers of a video batch.
INDEX_MAX: Final = 3
PAN_SCALE: Final = (1.1, 3.0)
OUTPAINT_SCALE: Final = (1.1, 2.0)
BLEND_IMAGES: Final = (2, 5)
#: ``type`` of /v1/upscale that the docs keep as deprecated: 2 = 2x, 3 = 4x (v5/niji5 only).
DEPRECATED_UPSCALE_TYPES: Final = {2: "2x", 3: "4x"}


def _check_index(value: object, field: str = "image_no") -> int:
    return check_int(value, field, 0, INDEX_MAX)


def _check_mask(mask: object, field: str = "mask") -> Mask:
    if not isinstance(mask, Mask):
        raise ValidationError(
            field,
            f"must be a Mask(areas=[Polygon(...)]) or Mask(url=...), got {type(mask).__name__}",
        )
    return mask


def _check_canvas(canvas: object) -> dict[str, Any]:
    if not isinstance(canvas, Canvas):
        raise ValidationError(
            "canvas", f"must be a Canvas(width=..., height=...), got {type(canvas).__name__}"
        )
    return canvas.to_json()


def _check_img_pos(img_pos: object) -> dict[str, Any]:
    if not isinstance(img_pos, ImagePosition):
        raise ValidationError(
            "img_pos",
            "must be an ImagePosition(width=..., height=..., x=..., y=...),"
            f" got {type(img_pos).__name__}",
        )
    return img_pos.to_json()


def _check_upscale_type(value: object) -> int:
    if isinstance(value, UpscaleType):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            "type", f"must be UpscaleType.SUBTLE (0) or CREATIVE (1), got {type(value).__name__}"
        )
    if value in DEPRECATED_UPSCALE_TYPES:
        warnings.warn(
            f"upscale type {value} ({DEPRECATED_UPSCALE_TYPES[value]}) is deprecated and works"
            " only on Midjourney v5/niji5 jobs; use UpscaleType.SUBTLE or UpscaleType.CREATIVE",
            DeprecationWarning,
            stacklevel=3,  # the caller of upscale(), past this helper and the method
        )
        return int(value)
    if value not in (0, 1):
        raise ValidationError(
            "type",
            "must be 0 (subtle) or 1 (creative); 2 and 3 are deprecated (v5 only),"
            f" got {shown(value)}",
        )
    return int(value)


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

    # --- images from a prompt or from URLs ------------------------------------------------

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

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            text=check_text(text, "text"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("diffusion", payload, image_result, poll)

    async def blend(
        self,
        img_urls: Sequence[str],
        aspect_ratio: BlendAspectRatio | str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Blend two to five images into a grid of four (``POST /v1/blend``).

        Sources disagree on the body: the OpenAPI files send ``imgUrls`` and a snake_case
        ``aspect_ratio``; one version of the docs sends ``base64Array`` (data URIs) and
        ``dimension`` (``PORTRAIT``/``SQUARE``/``LANDSCAPE``). This sends the OpenAPI form.

        Args:
            img_urls: 2–5 absolute http(s) image URLs, each at most 1024 characters.
            aspect_ratio: a :class:`BlendAspectRatio` or one of ``"2:3"``, ``"1:1"``,
                ``"3:2"``.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        low, high = BLEND_IMAGES
        payload = compact(
            imgUrls=check_url_list(img_urls, "img_urls", low, high),
            aspect_ratio=str(check_choice(aspect_ratio, "aspect_ratio", BlendAspectRatio).value),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("blend", payload, image_result, poll)

    async def retexture(
        self,
        img_url: str,
        remix_prompt: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Restyle the textures and materials of an image (``POST /v1/retexture``).

        Args:
            img_url: the source image, an absolute http(s) URL of at most 1024 characters
                (JPG, PNG or WebP of at most 10 MB; the size is not checked here).
            remix_prompt: the desired look, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            imgUrl=check_url(img_url, "img_url"),
            remixPrompt=check_text(remix_prompt, "remix_prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("retexture", payload, image_result, poll)

    async def remove_background(
        self,
        img_url: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Cut the subject of an image out of its background (``POST /v1/remove-background``).

        Args:
            img_url: the source image, an absolute http(s) URL of at most 1024 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with a single image.
        """
        payload = compact(
            imgUrl=check_url(img_url, "img_url"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("remove-background", payload, image_result, poll)

    async def upload_paint(
        self,
        img_url: str,
        canvas: Canvas,
        img_pos: ImagePosition,
        remix_prompt: str,
        mask: Mask,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Repaint parts of any image placed on a canvas (``POST /v1/upload-paint``).

        Sent as JSON, as the docs' example and the SDK do (the OpenAPI "complete" file
        declares multipart form fields instead). Like ``edit``, the service may answer 403
        unless the account is whitelisted.

        Args:
            img_url: the source image, an absolute http(s) URL of at most 1024 characters.
            canvas: the canvas size, a :class:`Canvas`.
            img_pos: where the image sits on the canvas, an :class:`ImagePosition`.
            remix_prompt: what to paint, 1–8192 characters.
            mask: the region to repaint, ``Mask(areas=[...])`` or ``Mask(url=...)``.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            imgUrl=check_url(img_url, "img_url"),
            canvas=_check_canvas(canvas),
            imgPos=_check_img_pos(img_pos),
            remixPrompt=check_text(remix_prompt, "remix_prompt"),
            mask=_check_mask(mask).to_json(),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("upload-paint", payload, image_result, poll)

    # --- follow-ups on an image of a finished grid -----------------------------------------

    async def upscale(
        self,
        job_id: str,
        image_no: int,
        type: UpscaleType | int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Upscale one image of a finished grid (``POST /v1/upscale``).

        ``type`` 2 (2x) and 3 (4x) are documented as deprecated and only work on v5/niji5
        jobs; they are sent as given, with a :class:`DeprecationWarning`.

        Args:
            job_id: the parent job; its ``available_actions.upscale`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            type: :class:`UpscaleType` ``SUBTLE`` (0) or ``CREATIVE`` (1; costs more).
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with a single image.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            type=_check_upscale_type(type),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("upscale", payload, image_result, poll)

    async def variation(
        self,
        job_id: str,
        image_no: int,
        type: VariationType | int,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Make four variations of one image of a finished grid (``POST /v1/variation``).

        Args:
            job_id: the parent job; its ``available_actions.variation`` must list
                ``image_no``.
            image_no: which image of the grid, 0–3.
            type: :class:`VariationType` ``SUBTLE`` (0) or ``STRONG`` (1).
            remix_prompt: a new prompt to steer the variations, 1–8192 characters; it
                replaces the original prompt, so repeat flags such as ``--ar``.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            type=int(check_code(type, "type", VariationType)),
            remixPrompt=check_optional_text(remix_prompt, "remix_prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("variation", payload, image_result, poll)

    async def reroll(
        self,
        job_id: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Run a finished job's prompt again for a new grid (``POST /v1/reroll``).

        Args:
            job_id: the parent job; its ``available_actions.reroll`` must be true.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("reroll", payload, image_result, poll)

    async def pan(
        self,
        job_id: str,
        image_no: int,
        direction: PanDirection | int,
        scale: float,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Extend one image of a finished grid in one direction (``POST /v1/pan``).

        Args:
            job_id: the parent job; its ``available_actions.pan`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            direction: :class:`PanDirection` ``DOWN`` (0), ``RIGHT`` (1), ``UP`` (2) or
                ``LEFT`` (3), the vendor docs' order (the official SDK's differs).
            scale: how far to extend, 1.1–3.0 (1.13 makes the image 13 % larger that way).
            remix_prompt: what to paint in the new area, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        low, high = PAN_SCALE
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            direction=int(check_code(direction, "direction", PanDirection)),
            scale=check_float(scale, "scale", low, high),
            remixPrompt=check_optional_text(remix_prompt, "remix_prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("pan", payload, image_result, poll)

    async def outpaint(
        self,
        job_id: str,
        image_no: int,
        scale: float,
        *,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Zoom out of one image of a finished grid on every side (``POST /v1/outpaint``).

        Args:
            job_id: the parent job; its ``available_actions.outpaint`` must list
                ``image_no``.
            image_no: which image of the grid, 0–3.
            scale: the zoom factor, 1.1–2.0 (2.0 leaves the original at half the size).
            remix_prompt: what to paint around it, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        low, high = OUTPAINT_SCALE
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            scale=check_float(scale, "scale", low, high),
            remixPrompt=check_optional_text(remix_prompt, "remix_prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("outpaint", payload, image_result, poll)

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

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            mask=_check_mask(mask).to_json(),
            remixPrompt=check_optional_text(remix_prompt, "remix_prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("inpaint", payload, image_result, poll)

    async def remix(
        self,
        job_id: str,
        image_no: int,
        remix_prompt: str,
        *,
        mode: RemixMode | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Redraw one image of a finished grid with a new prompt (``POST /v1/remix``).

        Args:
            job_id: the parent job; its ``available_actions.remix`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            remix_prompt: the new prompt, 1–8192 characters; it replaces the original, so
                repeat flags such as ``--ar``.
            mode: :class:`RemixMode` ``STRONG`` (0) or ``SUBTLE`` (1); ``None`` leaves it
                out, and the service uses strong.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            remixPrompt=check_text(remix_prompt, "remix_prompt"),
            mode=None if mode is None else int(check_code(mode, "mode", RemixMode)),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("remix", payload, image_result, poll)

    async def edit(
        self,
        job_id: str,
        image_no: int,
        canvas: Canvas,
        img_pos: ImagePosition,
        remix_prompt: str,
        *,
        mask: Mask | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Place one image of a finished grid on a canvas and repaint (``POST /v1/edit``).

        The live service answers 403 (:class:`PermissionDeniedError`) unless the account
        is whitelisted for this feature.

        Args:
            job_id: the parent job; its ``available_actions.edit`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            canvas: the canvas size, a :class:`Canvas`.
            img_pos: where the image sits on the canvas, an :class:`ImagePosition`.
            remix_prompt: what to paint, 1–8192 characters.
            mask: the region to repaint; ``None`` leaves it out.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            canvas=_check_canvas(canvas),
            imgPos=_check_img_pos(img_pos),
            remixPrompt=check_text(remix_prompt, "remix_prompt"),
            mask=None if mask is None else _check_mask(mask).to_json(),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("edit", payload, image_result, poll)

    async def enhance(
        self,
        job_id: str,
        image_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[ImageResult]:
        """Re-render one image of a draft grid at full quality (``POST /v1/enhance``).

        Args:
            job_id: the parent job, made in draft mode (``--v 7 --draft``); its
                ``available_actions.enhance`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            imageNo=_check_index(image_no),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("enhance", payload, image_result, poll)

    # --- text -------------------------------------------------------------------------------

    async def describe(
        self,
        img_url: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[TextResult]:
        """Suggest prompts that would produce an image (``POST /v1/describe``).

        Sources disagree on the body: the OpenAPI files, the SDK and one version of the docs
        send ``imgUrl``; another version of the docs sends exactly one of ``imageBase64``
        (a data URI) or ``imageLink``. This sends the OpenAPI form.

        Args:
            img_url: the image, an absolute http(s) URL of at most 1024 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is a :class:`TextResult`; ``prompts`` holds the suggestions.
        """
        payload = compact(
            imgUrl=check_url(img_url, "img_url"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("describe", payload, text_result, poll)

    async def shorten(
        self,
        prompt: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[TextResult]:
        """Suggest shorter forms of a prompt (``POST /v1/shorten``).

        Args:
            prompt: the prompt to shorten, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is a :class:`TextResult`; ``prompts`` holds the shorter
            prompts.
        """
        payload = compact(
            prompt=check_text(prompt, "prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("shorten", payload, text_result, poll)

    # --- video ------------------------------------------------------------------------------

    @overload
    async def video_diffusion(
        self,
        prompt: str,
        *,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]: ...

    @overload
    async def video_diffusion(
        self,
        prompt: str | None = None,
        *,
        job_id: str,
        image_no: int,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]: ...

    async def video_diffusion(
        self,
        prompt: str | None = None,
        *,
        job_id: str | None = None,
        image_no: int | None = None,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]:
        """Animate an image into short videos (``POST /v1/video-diffusion``).

        Two documented modes:

        - from a URL: ``video_diffusion("https://.../still.png a woman playing music")``;
          the prompt is required and, per the docs, starts with the image URL (the OpenAPI
          file also describes a text-only prompt, so no URL is enforced here);
        - from an image of a finished job: ``video_diffusion(job_id=..., image_no=...)``,
          where the prompt is optional and guides the motion.
          :meth:`ImageResult.video` does the same from a result.

        Flags such as ``--motion high``, ``--loop``, ``--end <url>`` and ``--bs 1|2|4``
        (how many videos) go inside the prompt.

        Args:
            prompt: 1–8192 characters; required unless ``job_id`` is given.
            job_id: the parent image job (image mode; needs ``image_no``).
            image_no: which image of that job, 0–3 (only with ``job_id``).
            video_type: :class:`VideoType` ``SD_480P`` (0) or ``HD_720P`` (1; costs more);
                ``None`` leaves it out, and the service makes 480p.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is a :class:`VideoResult` (``video_urls``, 4 s each).
        """
        if job_id is None:
            if image_no is not None:
                raise ValidationError("image_no", "is only valid together with job_id")
            if prompt is None:
                raise ValidationError(
                    "prompt", "is required (an image URL then text) unless job_id is given"
                )
        elif image_no is None:
            raise ValidationError("image_no", "is required with job_id (0 to 3)")
        payload = compact(
            jobId=None if job_id is None else check_job_id(job_id),
            imageNo=None if image_no is None else _check_index(image_no),
            prompt=check_optional_text(prompt, "prompt"),
            videoType=None
            if video_type is None
            else int(check_code(video_type, "video_type", VideoType)),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("video-diffusion", payload, video_result, poll)

    async def extend_video(
        self,
        job_id: str,
        video_no: int,
        *,
        prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]:
        """Make one video of a finished video job 4 s longer (``POST /v1/extend-video``).

        A video can be extended at most four times (sources say 20 or 21 s in all).

        Args:
            job_id: the parent video job; its ``available_actions.extend`` must list
                ``video_no``.
            video_no: which video of the job, 0–3.
            prompt: what happens next, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is a :class:`VideoResult`.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            videoNo=_check_index(video_no, "video_no"),
            prompt=check_optional_text(prompt, "prompt"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("extend-video", payload, video_result, poll)

    async def video_upscale(
        self,
        job_id: str,
        video_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
    ) -> TaskHandle[VideoResult]:
        """Upscale one video of a finished video job (``POST /v1/video-upscale``).

        Args:
            job_id: the parent video job; its ``available_actions.upscale`` must list
                ``video_no``.
            video_no: which video of the job, 0–3.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.

        Returns:
            A handle whose result is a :class:`VideoResult`.
        """
        payload = compact(
            jobId=check_job_id(job_id),
            videoNo=_check_index(video_no, "video_no"),
            callback=check_optional_url(callback, "callback"),
        )
        return await self._submit("video-upscale", payload, video_result, poll)
