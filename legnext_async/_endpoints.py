"""One short method per Legnext endpoint, each checked against its route in ``_catalog.py``.

Each method checks every documented limit before anything is sent (raising
:class:`ValidationError` that names the field and the limit) and returns a
:class:`TaskHandle`. What names the input is positional (the parent job and the image or
video number, or the prompt, or the source URLs); everything after it is keyword-only, so
``client.pan(job_id, 0, direction=PanDirection.UP, scale=1.5)``. Bodies are the documented
camelCase JSON; optional fields that were not given are left out rather than sent as
``null``. Small integer codes take the enums of :mod:`legnext_async`
(``PanDirection.LEFT``) or the plain ints they stand for (``3``); the wire always gets the
plain int.

Every method also takes, keyword-only:

- ``callback``: an absolute http(s) URL (at most 1024 characters) the service POSTs the
  finished job to;
- ``poll``: a :class:`PollPolicy` for the returned handle (else the client's);
- ``key``: an idempotency key. With a job store (``LegnextClient(store=...)``) the
  submission is recorded under it before it is sent, and a call with a key already
  recorded sends nothing: it returns the recorded job's handle (see ``LegnextClient``).

The methods are written out (typed and documented for readers and type checkers), but each
is one line handing its arguments to its route: a test holds every signature and docstring
to the route, and the results' follow-ups go through the same routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import _catalog as routes
from ._models import UpscaleType, VariationType
from ._results import result_type

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._catalog import Route
    from ._handle import TaskHandle
    from ._models import (
        BlendAspectRatio,
        Canvas,
        ImagePosition,
        Mask,
        PanDirection,
        RemixMode,
        Task,
        VideoType,
    )
    from ._polling import PollPolicy
    from ._results import FollowUpClient, ImageResult, TextResult, VideoResult

__all__ = ["Endpoints"]

R = TypeVar("R")


class Endpoints:
    """The job-creating methods of :class:`LegnextClient`."""

    if TYPE_CHECKING:

        async def _submit(
            self,
            route: Route,
            payload: dict[str, Any],
            make_result: Callable[[Task, FollowUpClient], R],
            poll: PollPolicy | None = None,
            key: str | None = None,
        ) -> TaskHandle[R]: ...

    async def _create(
        self, route: Route, poll: PollPolicy | None, key: str | None, /, **values: object
    ) -> TaskHandle[Any]:
        """Check ``values`` against ``route``, build its body and submit the job.

        ``values``: one per field of the route, by its Python name. ``key``: the
        submission's idempotency key, if any.
        """
        payload = route.body(values)
        return await self._submit(route, payload, result_type(route.family), poll, key)

    # --- images from a prompt or from URLs ------------------------------------------------

    async def diffusion(
        self,
        text: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Generate a grid of four images from a prompt (``POST /v1/diffusion``).

        Midjourney flags go inside ``text`` (``--ar 16:9 --v 7``; ``--draft`` halves the
        cost and allows ``enhance``; image prompts are URLs at the start).

        Args:
            text: the prompt, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(routes.DIFFUSION, poll, key, text=text, callback=callback)

    async def blend(
        self,
        img_urls: Sequence[str],
        *,
        aspect_ratio: BlendAspectRatio | str,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.BLEND, poll, key, img_urls=img_urls, aspect_ratio=aspect_ratio, callback=callback
        )

    async def retexture(
        self,
        img_url: str,
        *,
        remix_prompt: str,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Restyle the textures and materials of an image (``POST /v1/retexture``).

        Args:
            img_url: the source image, an absolute http(s) URL of at most 1024 characters
                (JPG, PNG or WebP of at most 10 MB; the size is not checked here).
            remix_prompt: the desired look, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.RETEXTURE,
            poll,
            key,
            img_url=img_url,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def remove_background(
        self,
        img_url: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Cut the subject of an image out of its background (``POST /v1/remove-background``).

        Args:
            img_url: the source image, an absolute http(s) URL of at most 1024 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with a single image.
        """
        return await self._create(
            routes.REMOVE_BACKGROUND, poll, key, img_url=img_url, callback=callback
        )

    async def upload_paint(
        self,
        img_url: str,
        *,
        canvas: Canvas,
        img_pos: ImagePosition,
        remix_prompt: str,
        mask: Mask,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.UPLOAD_PAINT,
            poll,
            key,
            img_url=img_url,
            canvas=canvas,
            img_pos=img_pos,
            remix_prompt=remix_prompt,
            mask=mask,
            callback=callback,
        )

    # --- follow-ups on an image of a finished grid -----------------------------------------

    async def upscale(
        self,
        job_id: str,
        image_no: int,
        *,
        type: UpscaleType | int = UpscaleType.SUBTLE,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Upscale one image of a finished grid (``POST /v1/upscale``).

        ``type`` 2 (2x) and 3 (4x) are documented as deprecated and only work on v5/niji5
        jobs; they are sent as given, with a :class:`DeprecationWarning`.

        Args:
            job_id: the parent job; its ``available_actions.upscale`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            type: :class:`UpscaleType` ``SUBTLE`` (0, the default) or ``CREATIVE`` (1; costs
                more).
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with a single image.
        """
        return await self._create(
            routes.UPSCALE,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            type=type,
            callback=callback,
        )

    async def variation(
        self,
        job_id: str,
        image_no: int,
        *,
        type: VariationType | int = VariationType.SUBTLE,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Make four variations of one image of a finished grid (``POST /v1/variation``).

        Args:
            job_id: the parent job; its ``available_actions.variation`` must list
                ``image_no``.
            image_no: which image of the grid, 0–3.
            type: :class:`VariationType` ``SUBTLE`` (0, the default) or ``STRONG`` (1).
            remix_prompt: a new prompt to steer the variations, 1–8192 characters; it
                replaces the original prompt, so repeat flags such as ``--ar``.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.VARIATION,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            type=type,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def reroll(
        self,
        job_id: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Run a finished job's prompt again for a new grid (``POST /v1/reroll``).

        Args:
            job_id: the parent job; its ``available_actions.reroll`` must be true.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(routes.REROLL, poll, key, job_id=job_id, callback=callback)

    async def pan(
        self,
        job_id: str,
        image_no: int,
        *,
        direction: PanDirection | int,
        scale: float,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.PAN,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            direction=direction,
            scale=scale,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def outpaint(
        self,
        job_id: str,
        image_no: int,
        *,
        scale: float,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.OUTPAINT,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            scale=scale,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def inpaint(
        self,
        job_id: str,
        image_no: int,
        *,
        mask: Mask,
        remix_prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.INPAINT,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            mask=mask,
            remix_prompt=remix_prompt,
            callback=callback,
        )

    async def remix(
        self,
        job_id: str,
        image_no: int,
        *,
        remix_prompt: str,
        mode: RemixMode | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.REMIX,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            remix_prompt=remix_prompt,
            mode=mode,
            callback=callback,
        )

    async def edit(
        self,
        job_id: str,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.EDIT,
            poll,
            key,
            job_id=job_id,
            image_no=image_no,
            canvas=canvas,
            img_pos=img_pos,
            remix_prompt=remix_prompt,
            mask=mask,
            callback=callback,
        )

    async def enhance(
        self,
        job_id: str,
        image_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[ImageResult]:
        """Re-render one image of a draft grid at full quality (``POST /v1/enhance``).

        Args:
            job_id: the parent job, made in draft mode (``--v 7 --draft``); its
                ``available_actions.enhance`` must list ``image_no``.
            image_no: which image of the grid, 0–3.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is an :class:`ImageResult` with four images.
        """
        return await self._create(
            routes.ENHANCE, poll, key, job_id=job_id, image_no=image_no, callback=callback
        )

    # --- text -------------------------------------------------------------------------------

    async def describe(
        self,
        img_url: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[TextResult]:
        """Suggest prompts that would produce an image (``POST /v1/describe``).

        Sources disagree on the body: the OpenAPI files, the SDK and one version of the docs
        send ``imgUrl``; another version of the docs sends exactly one of ``imageBase64``
        (a data URI) or ``imageLink``. This sends the OpenAPI form.

        Args:
            img_url: the image, an absolute http(s) URL of at most 1024 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is a :class:`TextResult`; ``prompts`` holds the suggestions.
        """
        return await self._create(routes.DESCRIBE, poll, key, img_url=img_url, callback=callback)

    async def shorten(
        self,
        prompt: str,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[TextResult]:
        """Suggest shorter forms of a prompt (``POST /v1/shorten``).

        Args:
            prompt: the prompt to shorten, 1–8192 characters.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is a :class:`TextResult`; ``prompts`` holds the shorter
            prompts.
        """
        return await self._create(routes.SHORTEN, poll, key, prompt=prompt, callback=callback)

    # --- video ------------------------------------------------------------------------------

    @overload
    async def video_diffusion(
        self,
        prompt: str,
        *,
        video_type: VideoType | int | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
        key: str | None = None,
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
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Animate an image into short videos (``POST /v1/video-diffusion``).

        Two documented modes:

        - from a URL: ``video_diffusion("https://.../still.png a woman playing music")``;
          the prompt is required and, per the docs, starts with the image URL (the OpenAPI
          file also describes a text-only prompt, so no URL is enforced here);
        - from an image of a finished job: ``video_diffusion(job_id=..., image_no=...)``,
          where the prompt is optional and guides the motion.
          :meth:`ImageResult.video_diffusion` does the same from a result.

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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is a :class:`VideoResult` (``video_urls``, 4 s each).
        """
        return await self._create(
            routes.VIDEO_DIFFUSION,
            poll,
            key,
            prompt=prompt,
            job_id=job_id,
            image_no=image_no,
            video_type=video_type,
            callback=callback,
        )

    async def extend_video(
        self,
        job_id: str,
        video_no: int,
        *,
        prompt: str | None = None,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
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
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is a :class:`VideoResult`.
        """
        return await self._create(
            routes.EXTEND_VIDEO,
            poll,
            key,
            job_id=job_id,
            video_no=video_no,
            prompt=prompt,
            callback=callback,
        )

    async def video_upscale(
        self,
        job_id: str,
        video_no: int,
        *,
        callback: str | None = None,
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[VideoResult]:
        """Upscale one video of a finished video job (``POST /v1/video-upscale``).

        Args:
            job_id: the parent video job; its ``available_actions.upscale`` must list
                ``video_no``.
            video_no: which video of the job, 0–3.
            callback: an absolute http(s) URL the service POSTs the finished job to.
            poll: a :class:`PollPolicy` for this job's handle.
            key: an idempotency key; with a job store, a key already recorded sends
                nothing and returns the recorded job's handle.

        Returns:
            A handle whose result is a :class:`VideoResult`.
        """
        return await self._create(
            routes.VIDEO_UPSCALE, poll, key, job_id=job_id, video_no=video_no, callback=callback
        )
