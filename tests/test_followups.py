"""Typed follow-ups on finished results: the request each sends, and the ones refused.

A follow-up takes the client method's arguments minus the job id, checks the result's
``available_actions`` first, and returns a new :class:`TaskHandle`. Parents are seeded on
the emulator: a draft grid offers every image action (and ``enhance``), an upscaled image
only image 0 and no reroll, a background removal nothing, an upscaled video nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from legnext_async import (
    Canvas,
    ImagePosition,
    ImageResult,
    LegnextClient,
    Mask,
    PanDirection,
    RemixMode,
    TaskHandle,
    UpscaleType,
    ValidationError,
    VariationType,
    VideoResult,
    VideoType,
)
from legnext_async.emulator import Emulator

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

HOOK = "https://example.com/hooks/legnext"
MASK_URL = "https://example.com/images/mask.png"


async def image_result(client: LegnextClient, job_id: str) -> ImageResult:
    """The finished image job ``job_id`` as a result."""
    result = await client.task(job_id)
    assert isinstance(result, ImageResult)
    return result


async def video_result(client: LegnextClient, job_id: str) -> VideoResult:
    """The finished video job ``job_id`` as a result."""
    result = await client.task(job_id)
    assert isinstance(result, VideoResult)
    return result


def posted(emu: Emulator) -> list[tuple[str, Any]]:
    """The (path, JSON body) of every POST the emulator received, oldest first."""
    return [(r.path, r.body) for r in emu.requests if r.method == "POST"]


# --- what each follow-up sends -----------------------------------------------------------

ImageFollowUp = Callable[[ImageResult], Awaitable[TaskHandle[Any]]]
VideoFollowUp = Callable[[VideoResult], Awaitable[TaskHandle[Any]]]


def sends(call: ImageFollowUp, path: str, body: dict[str, Any], id: str) -> ParameterSet:
    """An image follow-up, the path it POSTs to, and its body minus ``jobId``."""
    return pytest.param(call, path, body, id=id)


def video_sends(call: VideoFollowUp, path: str, body: dict[str, Any], id: str) -> ParameterSet:
    """A video follow-up, the path it POSTs to, and its body minus ``jobId``."""
    return pytest.param(call, path, body, id=id)


IMAGE_FOLLOW_UPS = [
    sends(
        lambda r: r.upscale(0),
        "/api/v1/upscale",
        {"imageNo": 0, "type": 0},
        id="upscale-defaults-to-subtle",
    ),
    sends(
        lambda r: r.upscale(3, type=UpscaleType.CREATIVE, callback=HOOK),
        "/api/v1/upscale",
        {"imageNo": 3, "type": 1, "callback": HOOK},
        id="upscale-creative-callback",
    ),
    sends(
        lambda r: r.variation(1),
        "/api/v1/variation",
        {"imageNo": 1, "type": 0},
        id="variation-defaults-to-subtle",
    ),
    sends(
        lambda r: r.variation(2, type=VariationType.STRONG, remix_prompt="in snow"),
        "/api/v1/variation",
        {"imageNo": 2, "type": 1, "remixPrompt": "in snow"},
        id="variation-strong-remix",
    ),
    sends(
        lambda r: r.inpaint(0, mask=Mask(url=MASK_URL), remix_prompt="a tree"),
        "/api/v1/inpaint",
        {"imageNo": 0, "mask": {"url": MASK_URL}, "remixPrompt": "a tree"},
        id="inpaint",
    ),
    sends(
        lambda r: r.outpaint(1, scale=1.5),
        "/api/v1/outpaint",
        {"imageNo": 1, "scale": 1.5},
        id="outpaint",
    ),
    sends(
        lambda r: r.pan(2, direction=PanDirection.UP, scale=2.0, remix_prompt="sky"),
        "/api/v1/pan",
        {"imageNo": 2, "direction": 2, "scale": 2.0, "remixPrompt": "sky"},
        id="pan",
    ),
    sends(
        lambda r: r.remix(3, remix_prompt="watercolor", mode=RemixMode.SUBTLE),
        "/api/v1/remix",
        {"imageNo": 3, "remixPrompt": "watercolor", "mode": 1},
        id="remix",
    ),
    sends(
        lambda r: r.edit(
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(512, 512, 256, 256),
            remix_prompt="a frame",
        ),
        "/api/v1/edit",
        {
            "imageNo": 0,
            "canvas": {"width": 1024, "height": 1024},
            "imgPos": {"width": 512, "height": 512, "x": 256, "y": 256},
            "remixPrompt": "a frame",
        },
        id="edit",
    ),
    sends(
        lambda r: r.enhance(2),
        "/api/v1/enhance",
        {"imageNo": 2},
        id="enhance",
    ),
    sends(
        lambda r: r.reroll(),
        "/api/v1/reroll",
        {},
        id="reroll",
    ),
    sends(
        lambda r: r.video_diffusion(1, prompt="it walks", video_type=VideoType.HD_720P),
        "/api/v1/video-diffusion",
        {"imageNo": 1, "prompt": "it walks", "videoType": 1},
        id="video-diffusion",
    ),
]


@pytest.mark.parametrize(("call", "path", "body"), IMAGE_FOLLOW_UPS)
async def test_image_follow_up_request(
    emu: Emulator, legnext: LegnextClient, call: ImageFollowUp, path: str, body: dict[str, Any]
) -> None:
    """An image follow-up POSTs the client method's body with this result's job id."""
    parent = await image_result(legnext, emu.seed_job("diffusion", draft=True))
    handle = await call(parent)
    assert posted(emu) == [(path, {"jobId": parent.job_id, **body})]
    assert handle.job_id != parent.job_id


VIDEO_FOLLOW_UPS = [
    video_sends(
        lambda r: r.extend_video(0),
        "/api/v1/extend-video",
        {"videoNo": 0},
        id="extend-video",
    ),
    video_sends(
        lambda r: r.extend_video(3, prompt="rain starts", callback=HOOK),
        "/api/v1/extend-video",
        {"videoNo": 3, "prompt": "rain starts", "callback": HOOK},
        id="extend-video-prompt-callback",
    ),
    video_sends(
        lambda r: r.video_upscale(2),
        "/api/v1/video-upscale",
        {"videoNo": 2},
        id="video-upscale",
    ),
]


@pytest.mark.parametrize(("call", "path", "body"), VIDEO_FOLLOW_UPS)
async def test_video_follow_up_request(
    emu: Emulator, legnext: LegnextClient, call: VideoFollowUp, path: str, body: dict[str, Any]
) -> None:
    """A video follow-up POSTs the client method's body with this result's job id."""
    parent = await video_result(legnext, emu.seed_job("video_diffusion"))
    handle = await call(parent)
    assert posted(emu) == [(path, {"jobId": parent.job_id, **body})]
    assert handle.job_id != parent.job_id


async def test_image_follow_ups_chain(legnext: LegnextClient) -> None:
    """A follow-up's handle resolves to a result that offers its own follow-ups."""
    grid = await (await legnext.diffusion("a lighthouse --v 7"))
    upscaled = await (await grid.upscale(1))
    assert len(upscaled.image_urls) == 1
    assert upscaled.available_actions.upscale == (0,)
    varied = await (await upscaled.variation(0, type=VariationType.STRONG))
    assert len(varied.image_urls) == 4


async def test_video_follow_ups_chain(emu: Emulator, legnext: LegnextClient) -> None:
    """An image animates into a video result whose extend follow-up gives another video."""
    grid = await image_result(legnext, emu.seed_job("diffusion"))
    video = await (await grid.video_diffusion(0, prompt="waves roll in"))
    assert len(video.video_urls) == 4
    extended = await (await video.extend_video(2))
    assert extended.video_urls
    assert extended.task_type.family == "video"


# --- follow-ups refused before sending: not offered, or a broken limit -------------------

Refused = Callable[[Any], Awaitable[object]]


def refused(kind: str, call: Refused, field: str, says: str, id: str) -> ParameterSet:
    """A parent task type, a follow-up it does not offer, the field named, and the reason."""
    return pytest.param(kind, call, field, says, id=id)


NOT_OFFERED = [
    refused(
        "upscale",
        lambda r: r.upscale(1),
        "image_no",
        "available_actions.upscale lists 0",
        id="upscaled-image-upscale-1",
    ),
    refused(
        "upscale",
        lambda r: r.variation(3, type=VariationType.STRONG),
        "image_no",
        "offered: upscale [0]",
        id="upscaled-image-variation-3",
    ),
    refused(
        "upscale",
        lambda r: r.reroll(),
        "reroll",
        "available_actions.reroll is false",
        id="upscaled-image-reroll",
    ),
    refused(
        "upscale",
        lambda r: r.video_diffusion(1),
        "image_no",
        "no image 1",
        id="upscaled-image-video-1",
    ),
    refused(
        "diffusion",
        lambda r: r.enhance(0),
        "image_no",
        "available_actions.enhance lists no numbers",
        id="non-draft-grid-enhance",
    ),
    refused(
        "remove_background",
        lambda r: r.upscale(0),
        "image_no",
        "this job offers no follow-ups",
        id="background-removal-upscale",
    ),
    refused(
        "remove_background",
        lambda r: r.inpaint(0, mask=Mask(url=MASK_URL)),
        "image_no",
        "available_actions.inpaint",
        id="background-removal-inpaint",
    ),
    refused(
        "video_upscale",
        lambda r: r.extend_video(0),
        "video_no",
        "available_actions.extend lists no numbers",
        id="upscaled-video-extend",
    ),
    refused(
        "video_upscale",
        lambda r: r.video_upscale(0),
        "video_no",
        "available_actions.upscale",
        id="upscaled-video-upscale",
    ),
    refused(
        "diffusion",
        lambda r: r.upscale(4),
        "image_no",
        "0 to 3",
        id="grid-upscale-4",
    ),
    refused(
        "diffusion",
        lambda r: r.pan(0, direction=PanDirection.LEFT, scale=3.5),
        "scale",
        "1.1 to 3.0",
        id="grid-pan-scale-3.5",
    ),
    refused(
        "video_diffusion",
        lambda r: r.extend_video(True),
        "video_no",
        "integer",
        id="video-extend-bool",
    ),
]


@pytest.mark.parametrize(("kind", "call", "field", "says"), NOT_OFFERED)
async def test_refused_follow_up_sends_nothing(
    emu: Emulator, legnext: LegnextClient, kind: str, call: Refused, field: str, says: str
) -> None:
    """A follow-up not offered, or with a broken limit, raises ValidationError; nothing is sent."""
    result = await legnext.task(emu.seed_job(kind))
    with pytest.raises(ValidationError) as caught:
        await call(result)
    assert caught.value.field == field
    assert says in str(caught.value)
    assert posted(emu) == []


async def test_refusal_names_the_job_and_what_is_offered(
    emu: Emulator, legnext: LegnextClient
) -> None:
    """The refusal message names the job, the number asked for, and every action offered."""
    parent = await image_result(legnext, emu.seed_job("upscale"))
    with pytest.raises(ValidationError) as caught:
        await parent.pan(2, direction=PanDirection.RIGHT, scale=1.5)
    assert str(caught.value) == (
        f"image_no: pan is not offered for image_no 2 of job {parent.job_id}:"
        " available_actions.pan lists 0 (offered: upscale [0]; variation [0]; inpaint [0];"
        " outpaint [0]; pan [0]; remix [0]; edit [0])"
    )


async def test_results_stay_frozen(emu: Emulator, legnext: LegnextClient) -> None:
    """A result cannot be changed after the fact, so its follow-ups always use its job id."""
    result = await image_result(legnext, emu.seed_job("diffusion"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.task = result.task  # type: ignore[misc]


# --- follow-ups renamed to their client method's name ------------------------------------


def renamed(kind: str, call: Refused, new: str, path: str, body: dict[str, Any]) -> ParameterSet:
    """A parent task type, a call by the old name, the new name, and the request it sends."""
    return pytest.param(kind, call, new, path, body, id=new)


RENAMED = [
    renamed(
        "diffusion",
        lambda r: r.video(1, prompt="it walks"),
        "video_diffusion",
        "/api/v1/video-diffusion",
        {"imageNo": 1, "prompt": "it walks"},
    ),
    renamed(
        "video_diffusion",
        lambda r: r.extend(2, prompt="rain"),
        "extend_video",
        "/api/v1/extend-video",
        {"videoNo": 2, "prompt": "rain"},
    ),
    renamed(
        "video_diffusion",
        lambda r: r.upscale(1),
        "video_upscale",
        "/api/v1/video-upscale",
        {"videoNo": 1},
    ),
]


@pytest.mark.parametrize(("kind", "call", "new", "path", "body"), RENAMED)
async def test_a_renamed_follow_up_warns_and_sends_the_same_request(
    emu: Emulator,
    legnext: LegnextClient,
    kind: str,
    call: Refused,
    new: str,
    path: str,
    body: dict[str, Any],
) -> None:
    """The old name still works, with a DeprecationWarning at the caller naming the new one."""
    result = await legnext.task(emu.seed_job(kind))
    with pytest.warns(DeprecationWarning, match=f"use [A-Za-z]+Result.{new}") as record:
        await call(result)
    assert record[0].filename == __file__
    assert posted(emu) == [(path, {"jobId": result.job_id, **body})]
