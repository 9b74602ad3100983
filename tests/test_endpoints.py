"""Every job endpoint: the exact wire body, client-side limits, and a round trip.

Each endpoint has a row in three tables: a valid call and the body the emulator receives
(optional fields that were not given are absent), invalid inputs that raise
:class:`ValidationError` naming the field and the limit without sending anything, and a
round trip to completion checking what the result family produces. A fourth table
replays every request example of the vendor's OpenAPI file through the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from legnext_async import (
    BlendAspectRatio,
    Canvas,
    ImagePosition,
    ImageResult,
    LegnextClient,
    Mask,
    PanDirection,
    Polygon,
    RemixMode,
    TaskHandle,
    TaskType,
    TextResult,
    UpscaleType,
    ValidationError,
    VariationType,
    VideoResult,
    VideoType,
)
from legnext_async._catalog import ROUTES
from legnext_async.emulator import Emulator

from .conftest import API_KEY

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

#: Real seconds per emulated second: a 6-minute video upscale takes 0.36 s.
HOOK = "https://example.com/hooks/legnext"
IMG = "https://example.com/images/source.png"
IMG2 = "https://example.com/images/second.png"
MASK_URL = "https://example.com/images/mask.png"
SQUARE = Polygon(width=500, height=500, points=[10, 10, 10, 100, 100, 100, 100, 10])


@attrs.frozen
class Parents:
    """Completed parent jobs seeded on the emulator, one of each kind follow-ups need."""

    grid: str
    draft: str
    video: str


@pytest.fixture
def parents(emu: Emulator) -> Parents:
    """A finished grid, a finished draft grid and a finished video job."""
    return Parents(
        grid=emu.seed_job("diffusion"),
        draft=emu.seed_job("diffusion", draft=True),
        video=emu.seed_job("video_diffusion"),
    )


def posted(emu: Emulator) -> list[tuple[str, Any]]:
    """The (path, JSON body) of every POST the emulator received, oldest first."""
    return [(r.path, r.body) for r in emu.requests if r.method == "POST"]


Call = Callable[[LegnextClient, Parents], Awaitable[TaskHandle[Any]]]
#: Invalid calls pass arguments of the wrong type on purpose, so the client is untyped.
BadCall = Callable[[Any, Parents], Awaitable[object]]
Body = Callable[[Parents], dict[str, Any]]

#: The 19 job endpoints (the catalogue's paths); each table's case ids start with one of these.
ENDPOINTS = tuple(route.path for route in ROUTES)


def wire(call: Call, path: str, body: Body, id: str) -> ParameterSet:
    """A valid call, the path it POSTs to, and its body given the seeded parents."""
    return pytest.param(call, path, body, id=id)


def bad(call: BadCall, field: str, says: str, id: str) -> ParameterSet:
    """An invalid call, the field its error names, and a piece of the limit it states."""
    return pytest.param(call, field, says, id=id)


# --- 1. valid calls and their exact wire bodies ----------------------------------------

WIRE = [
    wire(
        lambda c, p: c.diffusion("a cat --v 7"),
        "/api/v1/diffusion",
        lambda p: {"text": "a cat --v 7"},
        id="diffusion",
    ),
    wire(
        lambda c, p: c.diffusion("a cat", callback=HOOK),
        "/api/v1/diffusion",
        lambda p: {"text": "a cat", "callback": HOOK},
        id="diffusion-callback",
    ),
    wire(
        lambda c, p: c.variation(p.grid, 2, type=VariationType.STRONG),
        "/api/v1/variation",
        lambda p: {"jobId": p.grid, "imageNo": 2, "type": 1},
        id="variation",
    ),
    wire(
        lambda c, p: c.variation(p.grid, 0, type=0, remix_prompt="in snow", callback=HOOK),
        "/api/v1/variation",
        lambda p: {
            "jobId": p.grid,
            "imageNo": 0,
            "type": 0,
            "remixPrompt": "in snow",
            "callback": HOOK,
        },
        id="variation-plain-int-remix-callback",
    ),
    wire(
        lambda c, p: c.variation(p.grid, 1),
        "/api/v1/variation",
        lambda p: {"jobId": p.grid, "imageNo": 1, "type": 0},
        id="variation-defaults-to-subtle",
    ),
    wire(
        lambda c, p: c.upscale(p.grid, 2),
        "/api/v1/upscale",
        lambda p: {"jobId": p.grid, "imageNo": 2, "type": 0},
        id="upscale-defaults-to-subtle",
    ),
    wire(
        lambda c, p: c.upscale(p.grid, 3, type=UpscaleType.CREATIVE),
        "/api/v1/upscale",
        lambda p: {"jobId": p.grid, "imageNo": 3, "type": 1},
        id="upscale",
    ),
    wire(
        lambda c, p: c.upscale(p.grid, 0, type=0, callback=HOOK),
        "/api/v1/upscale",
        lambda p: {"jobId": p.grid, "imageNo": 0, "type": 0, "callback": HOOK},
        id="upscale-plain-int-callback",
    ),
    wire(
        lambda c, p: c.reroll(p.grid),
        "/api/v1/reroll",
        lambda p: {"jobId": p.grid},
        id="reroll",
    ),
    wire(
        lambda c, p: c.blend([IMG, IMG2], aspect_ratio=BlendAspectRatio.PORTRAIT),
        "/api/v1/blend",
        lambda p: {"imgUrls": [IMG, IMG2], "aspect_ratio": "2:3"},
        id="blend",
    ),
    wire(
        lambda c, p: c.blend((IMG, IMG2, IMG, IMG2, IMG), aspect_ratio="3:2", callback=HOOK),
        "/api/v1/blend",
        lambda p: {
            "imgUrls": [IMG, IMG2, IMG, IMG2, IMG],
            "aspect_ratio": "3:2",
            "callback": HOOK,
        },
        id="blend-five-plain-string",
    ),
    wire(
        lambda c, p: c.describe(IMG),
        "/api/v1/describe",
        lambda p: {"imgUrl": IMG},
        id="describe",
    ),
    wire(
        lambda c, p: c.shorten("a very long prompt --ar 16:9"),
        "/api/v1/shorten",
        lambda p: {"prompt": "a very long prompt --ar 16:9"},
        id="shorten",
    ),
    wire(
        lambda c, p: c.pan(p.grid, 1, direction=PanDirection.LEFT, scale=1.13),
        "/api/v1/pan",
        lambda p: {"jobId": p.grid, "imageNo": 1, "direction": 3, "scale": 1.13},
        id="pan",
    ),
    wire(
        lambda c, p: c.pan(p.grid, 0, direction=0, scale=3, remix_prompt="a lake"),
        "/api/v1/pan",
        lambda p: {
            "jobId": p.grid,
            "imageNo": 0,
            "direction": 0,
            "scale": 3.0,
            "remixPrompt": "a lake",
        },
        id="pan-down-int-scale-remix",
    ),
    wire(
        lambda c, p: c.outpaint(p.grid, 2, scale=2.0),
        "/api/v1/outpaint",
        lambda p: {"jobId": p.grid, "imageNo": 2, "scale": 2.0},
        id="outpaint",
    ),
    wire(
        lambda c, p: c.outpaint(p.grid, 0, scale=1.1, remix_prompt="clouds"),
        "/api/v1/outpaint",
        lambda p: {"jobId": p.grid, "imageNo": 0, "scale": 1.1, "remixPrompt": "clouds"},
        id="outpaint-remix",
    ),
    wire(
        lambda c, p: c.inpaint(p.grid, 1, mask=Mask(url=MASK_URL)),
        "/api/v1/inpaint",
        lambda p: {"jobId": p.grid, "imageNo": 1, "mask": {"url": MASK_URL}},
        id="inpaint-mask-url",
    ),
    wire(
        lambda c, p: c.inpaint(p.grid, 0, mask=Mask(areas=[SQUARE]), remix_prompt="a tree"),
        "/api/v1/inpaint",
        lambda p: {
            "jobId": p.grid,
            "imageNo": 0,
            "mask": {
                "areas": [
                    {"width": 500, "height": 500, "points": [10, 10, 10, 100, 100, 100, 100, 10]}
                ]
            },
            "remixPrompt": "a tree",
        },
        id="inpaint-areas-remix",
    ),
    wire(
        lambda c, p: c.remix(p.grid, 3, remix_prompt="watercolor"),
        "/api/v1/remix",
        lambda p: {"jobId": p.grid, "imageNo": 3, "remixPrompt": "watercolor"},
        id="remix",
    ),
    wire(
        lambda c, p: c.remix(p.grid, 0, remix_prompt="watercolor", mode=RemixMode.SUBTLE),
        "/api/v1/remix",
        lambda p: {"jobId": p.grid, "imageNo": 0, "remixPrompt": "watercolor", "mode": 1},
        id="remix-mode",
    ),
    wire(
        lambda c, p: c.edit(
            p.grid,
            1,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(512, 512, 256, 0),
            remix_prompt="mountains",
        ),
        "/api/v1/edit",
        lambda p: {
            "jobId": p.grid,
            "imageNo": 1,
            "canvas": {"width": 1024, "height": 1024},
            "imgPos": {"width": 512, "height": 512, "x": 256, "y": 0},
            "remixPrompt": "mountains",
        },
        id="edit",
    ),
    wire(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(width=800, height=600),
            img_pos=ImagePosition(width=400, height=300, x=0, y=0),
            remix_prompt="a frame",
            mask=Mask(url=MASK_URL),
        ),
        "/api/v1/edit",
        lambda p: {
            "jobId": p.grid,
            "imageNo": 0,
            "canvas": {"width": 800, "height": 600},
            "imgPos": {"width": 400, "height": 300, "x": 0, "y": 0},
            "remixPrompt": "a frame",
            "mask": {"url": MASK_URL},
        },
        id="edit-mask",
    ),
    wire(
        lambda c, p: c.edit(
            p.grid,
            2,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1024, 1024, -256, -128),
            remix_prompt="a wider view",
        ),
        "/api/v1/edit",
        lambda p: {
            "jobId": p.grid,
            "imageNo": 2,
            "canvas": {"width": 1024, "height": 1024},
            "imgPos": {"width": 1024, "height": 1024, "x": -256, "y": -128},
            "remixPrompt": "a wider view",
        },
        id="edit-image-partly-off-the-canvas",
    ),
    wire(
        lambda c, p: c.upload_paint(
            IMG,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1024, 1024, 0, 0),
            remix_prompt="a hat",
            mask=Mask(areas=[SQUARE]),
        ),
        "/api/v1/upload-paint",
        lambda p: {
            "imgUrl": IMG,
            "canvas": {"width": 1024, "height": 1024},
            "imgPos": {"width": 1024, "height": 1024, "x": 0, "y": 0},
            "remixPrompt": "a hat",
            "mask": {
                "areas": [
                    {"width": 500, "height": 500, "points": [10, 10, 10, 100, 100, 100, 100, 10]}
                ]
            },
        },
        id="upload-paint",
    ),
    wire(
        lambda c, p: c.retexture(IMG, remix_prompt="made of glass"),
        "/api/v1/retexture",
        lambda p: {"imgUrl": IMG, "remixPrompt": "made of glass"},
        id="retexture",
    ),
    wire(
        lambda c, p: c.remove_background(IMG),
        "/api/v1/remove-background",
        lambda p: {"imgUrl": IMG},
        id="remove-background",
    ),
    wire(
        lambda c, p: c.enhance(p.draft, 2),
        "/api/v1/enhance",
        lambda p: {"jobId": p.draft, "imageNo": 2},
        id="enhance",
    ),
    wire(
        lambda c, p: c.video_diffusion(f"{IMG} a cat walks"),
        "/api/v1/video-diffusion",
        lambda p: {"prompt": f"{IMG} a cat walks"},
        id="video-diffusion-url-mode",
    ),
    wire(
        lambda c, p: c.video_diffusion(f"{IMG} a cat walks", video_type=VideoType.HD_720P),
        "/api/v1/video-diffusion",
        lambda p: {"prompt": f"{IMG} a cat walks", "videoType": 1},
        id="video-diffusion-url-mode-720p",
    ),
    wire(
        lambda c, p: c.video_diffusion(job_id=p.grid, image_no=3),
        "/api/v1/video-diffusion",
        lambda p: {"jobId": p.grid, "imageNo": 3},
        id="video-diffusion-image-mode",
    ),
    wire(
        lambda c, p: c.video_diffusion("slow pan", job_id=p.grid, image_no=0, video_type=0),
        "/api/v1/video-diffusion",
        lambda p: {"jobId": p.grid, "imageNo": 0, "prompt": "slow pan", "videoType": 0},
        id="video-diffusion-image-mode-prompt-480p",
    ),
    wire(
        lambda c, p: c.extend_video(p.video, 3),
        "/api/v1/extend-video",
        lambda p: {"jobId": p.video, "videoNo": 3},
        id="extend-video",
    ),
    wire(
        lambda c, p: c.extend_video(p.video, 0, prompt="it starts to rain"),
        "/api/v1/extend-video",
        lambda p: {"jobId": p.video, "videoNo": 0, "prompt": "it starts to rain"},
        id="extend-video-prompt",
    ),
    wire(
        lambda c, p: c.video_upscale(p.video, 1),
        "/api/v1/video-upscale",
        lambda p: {"jobId": p.video, "videoNo": 1},
        id="video-upscale",
    ),
]


@pytest.mark.parametrize(("call", "path", "body"), WIRE)
async def test_wire_body(
    emu: Emulator, legnext: LegnextClient, parents: Parents, call: Call, path: str, body: Body
) -> None:
    """A valid call POSTs once, exactly the documented body, without the optionals not given."""
    await call(legnext, parents)
    assert posted(emu) == [(path, body(parents))]


async def test_deprecated_upscale_types_are_sent_with_a_warning(
    emu: Emulator, legnext: LegnextClient, parents: Parents
) -> None:
    """Upscale type 3 (4x, v5 only) is sent as given, with a DeprecationWarning at the call."""
    with pytest.warns(DeprecationWarning, match=r"type 3 \(4x\) is deprecated") as record:
        await legnext.upscale(parents.grid, 0, type=3)
    assert record[0].filename == __file__
    assert posted(emu)[-1] == ("/api/v1/upscale", {"jobId": parents.grid, "imageNo": 0, "type": 3})


# --- 2. invalid inputs: ValidationError, named field, nothing sent ------------------------

LONG = "x" * 8193
LONG_URL = "https://example.com/" + "a" * 1005

INVALID = [
    # diffusion
    bad(lambda c, p: c.diffusion(""), "text", "1 to 8192", id="diffusion-empty"),
    bad(lambda c, p: c.diffusion(LONG), "text", "1 to 8192", id="diffusion-too-long"),
    bad(lambda c, p: c.diffusion(7), "text", "string", id="diffusion-not-str"),
    bad(
        lambda c, p: c.diffusion("a", callback="ftp://example.com/h"),
        "callback",
        "http(s)",
        id="diffusion-callback-ftp",
    ),
    bad(
        lambda c, p: c.diffusion("a", callback="/relative"),
        "callback",
        "absolute",
        id="diffusion-callback-relative",
    ),
    bad(lambda c, p: c.diffusion("   "), "text", "blank", id="diffusion-spaces"),
    bad(lambda c, p: c.diffusion("\t\n\u3000"), "text", "blank", id="diffusion-whitespace"),
    bad(lambda c, p: c.diffusion("a \ud800 cat"), "text", "surrogate", id="diffusion-surrogate"),
    bad(
        lambda c, p: c.diffusion("a", callback="https://example.com/\udcff"),
        "callback",
        "surrogate",
        id="diffusion-callback-surrogate",
    ),
    bad(
        lambda c, p: c.diffusion("a", callback="https://example.com:65536/h"),
        "callback",
        "absolute",
        id="diffusion-callback-port-too-big",
    ),
    # variation
    bad(
        lambda c, p: c.variation("", 0, type=0),
        "job_id",
        "1 to 128 characters",
        id="variation-job-id",
    ),
    bad(lambda c, p: c.variation(p.grid, 4, type=0), "image_no", "0 to 3", id="variation-4"),
    bad(lambda c, p: c.variation(p.grid, -1, type=0), "image_no", "0 to 3", id="variation-neg"),
    bad(
        lambda c, p: c.variation(p.grid, True, type=0),
        "image_no",
        "integer",
        id="variation-bool-no",
    ),
    bad(
        lambda c, p: c.variation(p.grid, "0", type=0), "image_no", "integer", id="variation-str-no"
    ),
    bad(lambda c, p: c.variation(p.grid, 0, type=2), "type", "0 to 1", id="variation-type-2"),
    bad(
        lambda c, p: c.variation(p.grid, 0, type=1.0), "type", "integer", id="variation-type-float"
    ),
    bad(
        lambda c, p: c.variation(p.grid, 0, type=0, remix_prompt=""),
        "remix_prompt",
        "1 to 8192",
        id="variation-remix-empty",
    ),
    bad(
        lambda c, p: c.variation(p.grid, 0, type=0, remix_prompt=LONG),
        "remix_prompt",
        "1 to 8192",
        id="variation-remix-too-long",
    ),
    bad(
        lambda c, p: c.variation(p.grid, 0, type=0, remix_prompt=" "),
        "remix_prompt",
        "blank",
        id="variation-remix-blank",
    ),
    # upscale
    bad(lambda c, p: c.upscale(p.grid, 4, type=0), "image_no", "0 to 3", id="upscale-no-4"),
    bad(lambda c, p: c.upscale(p.grid, 0, type=4), "type", "deprecated", id="upscale-type-4"),
    bad(lambda c, p: c.upscale(p.grid, 0, type=-1), "type", "0 (subtle)", id="upscale-neg"),
    bad(
        lambda c, p: c.upscale(p.grid, 0, type="subtle"),
        "type",
        "SUBTLE (0)",
        id="upscale-type-str",
    ),
    bad(
        lambda c, p: c.upscale(p.grid, 0, type=-(10**5000)),
        "type",
        "an integer of 16610 bits",
        id="upscale-type-too-long-to-print",
    ),
    bad(
        lambda c, p: c.upscale(p.grid, 10**5000, type=0),
        "image_no",
        "an integer of 16610 bits",
        id="upscale-no-too-long-to-print",
    ),
    bad(
        lambda c, p: c.upscale(p.grid, 0, type=False), "type", "SUBTLE (0)", id="upscale-type-bool"
    ),
    # reroll
    bad(lambda c, p: c.reroll("a b"), "job_id", "1 to 128 characters", id="reroll-space"),
    bad(lambda c, p: c.reroll("a/b"), "job_id", "1 to 128 characters", id="reroll-slash"),
    bad(lambda c, p: c.reroll(None), "job_id", "string", id="reroll-none"),
    # blend
    bad(lambda c, p: c.blend([IMG], aspect_ratio="1:1"), "img_urls", "2 to 5", id="blend-one-url"),
    bad(
        lambda c, p: c.blend([IMG] * 6, aspect_ratio="1:1"),
        "img_urls",
        "2 to 5",
        id="blend-six-urls",
    ),
    bad(lambda c, p: c.blend(IMG, aspect_ratio="1:1"), "img_urls", "list", id="blend-lone-string"),
    bad(
        lambda c, p: c.blend([IMG, "not a url"], aspect_ratio="1:1"),
        "img_urls[1]",
        "http(s)",
        id="blend-bad-url",
    ),
    bad(
        lambda c, p: c.blend(["data:image/png;base64,iVBORw0KGgo=", IMG], aspect_ratio="1:1"),
        "img_urls[0]",
        "http(s)",
        id="blend-data-uri",
    ),
    bad(
        lambda c, p: c.blend([IMG, IMG2], aspect_ratio="16:9"),
        "aspect_ratio",
        "'2:3'",
        id="blend-ratio-16-9",
    ),
    bad(
        lambda c, p: c.blend([IMG, IMG2], aspect_ratio=None),
        "aspect_ratio",
        "'1:1'",
        id="blend-ratio-none",
    ),
    # describe
    bad(
        lambda c, p: c.describe("data:image/png;base64,iVBORw0KGgo="),
        "img_url",
        "http(s)",
        id="describe-data-uri",
    ),
    bad(lambda c, p: c.describe(LONG_URL), "img_url", "1024", id="describe-long-url"),
    bad(lambda c, p: c.describe(None), "img_url", "http(s)", id="describe-none"),
    bad(
        lambda c, p: c.describe("https://example.com:A/a.png"),
        "img_url",
        "absolute",
        id="describe-port-not-a-number",
    ),
    bad(
        lambda c, p: c.describe("https://example.com/\ud83d.png"),
        "img_url",
        "surrogate",
        id="describe-surrogate",
    ),
    # shorten
    bad(lambda c, p: c.shorten(""), "prompt", "1 to 8192", id="shorten-empty"),
    bad(lambda c, p: c.shorten(LONG), "prompt", "1 to 8192", id="shorten-too-long"),
    bad(lambda c, p: c.shorten(" \n"), "prompt", "blank", id="shorten-blank"),
    # pan
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale=10**400),
        "scale",
        "1.1 to 3.0, got an integer of 1329 bits",
        id="pan-scale-past-float",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=4, scale=1.5),
        "direction",
        "0 to 3",
        id="pan-direction-4",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction="left", scale=1.5),
        "direction",
        "integer",
        id="pan-direction-str",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale=1.0),
        "scale",
        "1.1 to 3.0",
        id="pan-scale-1",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale=3.01),
        "scale",
        "1.1 to 3.0",
        id="pan-scale-3.01",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale=float("nan")),
        "scale",
        "1.1 to 3.0",
        id="pan-scale-nan",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale="1.5"),
        "scale",
        "number",
        id="pan-scale-str",
    ),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale=True),
        "scale",
        "number",
        id="pan-scale-bool",
    ),
    bad(lambda c, p: c.pan(p.grid, 4, direction=1, scale=1.5), "image_no", "0 to 3", id="pan-no-4"),
    bad(
        lambda c, p: c.pan(p.grid, 0, direction=1, scale=1.5, remix_prompt=""),
        "remix_prompt",
        "1 to 8192",
        id="pan-remix-empty",
    ),
    # outpaint
    bad(
        lambda c, p: c.outpaint(p.grid, 0, scale=2.1),
        "scale",
        "1.1 to 2.0",
        id="outpaint-scale-2.1",
    ),
    bad(
        lambda c, p: c.outpaint(p.grid, 0, scale=1.09),
        "scale",
        "1.1 to 2.0",
        id="outpaint-scale-1.09",
    ),
    bad(
        lambda c, p: c.outpaint(p.grid, 0, scale=float("inf")),
        "scale",
        "1.1 to 2.0",
        id="outpaint-scale-inf",
    ),
    bad(lambda c, p: c.outpaint(p.grid, 4, scale=1.5), "image_no", "0 to 3", id="outpaint-4"),
    # inpaint
    bad(lambda c, p: c.inpaint(p.grid, 0, mask=None), "mask", "Mask(", id="inpaint-no-mask"),
    bad(
        lambda c, p: c.inpaint(p.grid, 0, mask={"url": MASK_URL}),
        "mask",
        "Mask(",
        id="inpaint-dict",
    ),
    bad(
        lambda c, p: c.inpaint(p.grid, 0, mask=Mask(url=MASK_URL, areas=[SQUARE])),
        "mask",
        "exactly one",
        id="inpaint-mask-both",
    ),
    bad(
        lambda c, p: c.inpaint(p.grid, 4, mask=Mask(url=MASK_URL)),
        "image_no",
        "0 to 3",
        id="inpaint-4",
    ),
    bad(
        lambda c, p: c.inpaint(p.grid, 0, mask=Mask(url=MASK_URL), remix_prompt=LONG),
        "remix_prompt",
        "1 to 8192",
        id="inpaint-remix-too-long",
    ),
    # remix
    bad(
        lambda c, p: c.remix(p.grid, 0, remix_prompt=""),
        "remix_prompt",
        "1 to 8192",
        id="remix-prompt-empty",
    ),
    bad(
        lambda c, p: c.remix(p.grid, 0, remix_prompt=None),
        "remix_prompt",
        "string",
        id="remix-prompt-none",
    ),
    bad(
        lambda c, p: c.remix(p.grid, 0, remix_prompt="a", mode=2),
        "mode",
        "0 to 1",
        id="remix-mode-2",
    ),
    bad(
        lambda c, p: c.remix(p.grid, 0, remix_prompt="a", mode=True),
        "mode",
        "integer",
        id="remix-mode-bool",
    ),
    bad(lambda c, p: c.remix(p.grid, 4, remix_prompt="a"), "image_no", "0 to 3", id="remix-no-4"),
    bad(
        lambda c, p: c.remix(p.grid, 0, remix_prompt="  "),
        "remix_prompt",
        "blank",
        id="remix-prompt-blank",
    ),
    # edit
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas={"width": 1024, "height": 1024},
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
        ),
        "canvas",
        "Canvas(",
        id="edit-canvas-dict",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid, 0, canvas=Canvas(1024, 1024), img_pos=(512, 512, 0, 0), remix_prompt="a"
        ),
        "img_pos",
        "ImagePosition(",
        id="edit-img-pos-tuple",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid, 0, canvas=Canvas(0, 1024), img_pos=ImagePosition(1, 1, 0, 0), remix_prompt="a"
        ),
        "Canvas.width",
        "at least 1",
        id="edit-canvas-zero",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, True),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
        ),
        "Canvas.height",
        "integer",
        id="edit-canvas-bool",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(2**63, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
        ),
        "Canvas.width",
        "64-bit",
        id="edit-canvas-past-int64",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 10**5000, 0),
            remix_prompt="a",
        ),
        "ImagePosition.x",
        "64-bit",
        id="edit-img-pos-too-long-to-send",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(512, 512, 0.5, 0),  # type: ignore[arg-type]
            remix_prompt="a",
        ),
        "ImagePosition.x",
        "integer",
        id="edit-img-pos-fractional-x",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(512.0, 512, 0, 0),  # type: ignore[arg-type]
            remix_prompt="a",
        ),
        "ImagePosition.width",
        "integer",
        id="edit-img-pos-float",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt=None,
        ),
        "remix_prompt",
        "string",
        id="edit-remix-required",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
            mask="x",
        ),
        "mask",
        "Mask(",
        id="edit-mask-str",
    ),
    bad(
        lambda c, p: c.edit(
            p.grid,
            4,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
        ),
        "image_no",
        "0 to 3",
        id="edit-no-4",
    ),
    # upload-paint
    bad(
        lambda c, p: c.upload_paint(
            "image.png",
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
            mask=Mask(url=MASK_URL),
        ),
        "img_url",
        "absolute",
        id="upload-paint-relative-url",
    ),
    bad(
        lambda c, p: c.upload_paint(
            IMG,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
            mask=None,
        ),
        "mask",
        "Mask(",
        id="upload-paint-mask-required",
    ),
    bad(
        lambda c, p: c.upload_paint(
            IMG,
            canvas=None,
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="a",
            mask=Mask(url=MASK_URL),
        ),
        "canvas",
        "Canvas(",
        id="upload-paint-canvas-required",
    ),
    bad(
        lambda c, p: c.upload_paint(
            IMG,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(1, 1, 0, 0),
            remix_prompt="",
            mask=Mask(url=MASK_URL),
        ),
        "remix_prompt",
        "1 to 8192",
        id="upload-paint-remix-empty",
    ),
    # retexture
    bad(
        lambda c, p: c.retexture("", remix_prompt="glass"), "img_url", "http(s)", id="retexture-url"
    ),
    bad(
        lambda c, p: c.retexture(LONG_URL, remix_prompt="glass"),
        "img_url",
        "1024",
        id="retexture-long-url",
    ),
    bad(
        lambda c, p: c.retexture(IMG, remix_prompt=""),
        "remix_prompt",
        "1 to 8192",
        id="retexture-prompt",
    ),
    bad(
        lambda c, p: c.retexture(IMG, remix_prompt="\t"),
        "remix_prompt",
        "blank",
        id="retexture-blank",
    ),
    # remove-background
    bad(
        lambda c, p: c.remove_background("ftp://example.com/a.png"),
        "img_url",
        "http(s)",
        id="remove-background-ftp",
    ),
    bad(lambda c, p: c.remove_background(LONG_URL), "img_url", "1024", id="remove-background-long"),
    # enhance
    bad(lambda c, p: c.enhance(p.draft, 4), "image_no", "0 to 3", id="enhance-no-4"),
    bad(lambda c, p: c.enhance("", 0), "job_id", "1 to 128 characters", id="enhance-job-id"),
    # video-diffusion
    bad(lambda c, p: c.video_diffusion(), "prompt", "required", id="video-diffusion-nothing"),
    bad(
        lambda c, p: c.video_diffusion(f"{IMG} go", image_no=0),
        "image_no",
        "job_id",
        id="video-diffusion-image-no-without-job",
    ),
    bad(
        lambda c, p: c.video_diffusion(job_id=p.grid),
        "image_no",
        "required with job_id",
        id="video-diffusion-job-without-image-no",
    ),
    bad(
        lambda c, p: c.video_diffusion(job_id=p.grid, image_no=4),
        "image_no",
        "0 to 3",
        id="video-diffusion-image-no-4",
    ),
    bad(
        lambda c, p: c.video_diffusion(f"{IMG} go", video_type=2),
        "video_type",
        "0 to 1",
        id="video-diffusion-type-2",
    ),
    bad(
        lambda c, p: c.video_diffusion(f"{IMG} go", video_type=True),
        "video_type",
        "integer",
        id="video-diffusion-type-bool",
    ),
    bad(lambda c, p: c.video_diffusion(""), "prompt", "1 to 8192", id="video-diffusion-empty"),
    bad(lambda c, p: c.video_diffusion(LONG), "prompt", "1 to 8192", id="video-diffusion-long"),
    bad(lambda c, p: c.video_diffusion("  "), "prompt", "blank", id="video-diffusion-blank"),
    # extend-video
    bad(lambda c, p: c.extend_video(p.video, 4), "video_no", "0 to 3", id="extend-video-no-4"),
    bad(lambda c, p: c.extend_video(p.video, -1), "video_no", "0 to 3", id="extend-video-neg"),
    bad(
        lambda c, p: c.extend_video(p.video, 0, prompt=""),
        "prompt",
        "1 to 8192",
        id="extend-video-prompt-empty",
    ),
    # video-upscale
    bad(lambda c, p: c.video_upscale(p.video, 4), "video_no", "0 to 3", id="video-upscale-no-4"),
    bad(
        lambda c, p: c.video_upscale(p.video, False),
        "video_no",
        "integer",
        id="video-upscale-bool",
    ),
    bad(
        lambda c, p: c.video_upscale(" x", 0),
        "job_id",
        "1 to 128 characters",
        id="video-upscale-job",
    ),
]


@pytest.mark.parametrize(("call", "field", "says"), INVALID)
async def test_invalid_input_raises_and_sends_nothing(
    emu: Emulator, legnext: LegnextClient, parents: Parents, call: Call, field: str, says: str
) -> None:
    """A broken limit raises ValidationError naming the field and the limit; nothing is sent."""
    with pytest.raises(ValidationError) as caught:
        await call(legnext, parents)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert emu.requests == []


# --- 3. round trips to completion ------------------------------------------------------


@attrs.frozen
class Expect:
    """What a finished job of one endpoint produces."""

    kind: type[ImageResult] | type[VideoResult] | type[TextResult]
    task_type: TaskType
    count: int


def trip(call: Call, expect: Expect, id: str) -> ParameterSet:
    """A valid call and what its finished job produces."""
    return pytest.param(call, expect, id=id)


ROUND_TRIPS = [
    trip(
        lambda c, p: c.diffusion("a cat"),
        Expect(ImageResult, TaskType.DIFFUSION, 4),
        id="diffusion",
    ),
    trip(
        lambda c, p: c.variation(p.grid, 0, type=VariationType.SUBTLE),
        Expect(ImageResult, TaskType.VARIATION, 4),
        id="variation",
    ),
    trip(
        lambda c, p: c.upscale(p.grid, 1, type=UpscaleType.SUBTLE),
        Expect(ImageResult, TaskType.UPSCALE, 1),
        id="upscale",
    ),
    trip(lambda c, p: c.reroll(p.grid), Expect(ImageResult, TaskType.REROLL, 4), id="reroll"),
    trip(
        lambda c, p: c.blend([IMG, IMG2], aspect_ratio="1:1"),
        Expect(ImageResult, TaskType.BLEND, 4),
        id="blend",
    ),
    trip(lambda c, p: c.describe(IMG), Expect(TextResult, TaskType.DESCRIBE, 4), id="describe"),
    trip(
        lambda c, p: c.shorten("a long prompt about a quiet lake at dawn"),
        Expect(TextResult, TaskType.SHORTEN, 5),
        id="shorten",
    ),
    trip(
        lambda c, p: c.pan(p.grid, 2, direction=PanDirection.UP, scale=1.5),
        Expect(ImageResult, TaskType.PAN, 4),
        id="pan",
    ),
    trip(
        lambda c, p: c.outpaint(p.grid, 0, scale=1.5),
        Expect(ImageResult, TaskType.OUTPAINT, 4),
        id="outpaint",
    ),
    trip(
        lambda c, p: c.inpaint(p.grid, 3, mask=Mask(areas=[SQUARE]), remix_prompt="a tree"),
        Expect(ImageResult, TaskType.INPAINT, 4),
        id="inpaint",
    ),
    trip(
        lambda c, p: c.remix(p.grid, 1, remix_prompt="as a watercolor", mode=RemixMode.STRONG),
        Expect(ImageResult, TaskType.REMIX, 4),
        id="remix",
    ),
    trip(
        lambda c, p: c.edit(
            p.grid,
            0,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(512, 512, 256, 256),
            remix_prompt="a",
        ),
        Expect(ImageResult, TaskType.EDIT, 4),
        id="edit",
    ),
    trip(
        lambda c, p: c.upload_paint(
            IMG,
            canvas=Canvas(1024, 1024),
            img_pos=ImagePosition(512, 512, 0, 0),
            remix_prompt="a hat",
            mask=Mask(url=MASK_URL),
        ),
        Expect(ImageResult, TaskType.UPLOAD_PAINT, 4),
        id="upload-paint",
    ),
    trip(
        lambda c, p: c.retexture(IMG, remix_prompt="made of glass"),
        Expect(ImageResult, TaskType.RETEXTURE, 4),
        id="retexture",
    ),
    trip(
        lambda c, p: c.remove_background(IMG),
        Expect(ImageResult, TaskType.REMOVE_BACKGROUND, 1),
        id="remove-background",
    ),
    trip(
        lambda c, p: c.enhance(p.draft, 1), Expect(ImageResult, TaskType.ENHANCE, 4), id="enhance"
    ),
    trip(
        lambda c, p: c.video_diffusion(f"{IMG} a cat walks --bs 2"),
        Expect(VideoResult, TaskType.VIDEO_DIFFUSION, 2),
        id="video-diffusion-url-mode",
    ),
    trip(
        lambda c, p: c.video_diffusion(job_id=p.grid, image_no=2, video_type=VideoType.HD_720P),
        Expect(VideoResult, TaskType.VIDEO_DIFFUSION, 4),
        id="video-diffusion-image-mode",
    ),
    trip(
        lambda c, p: c.extend_video(p.video, 0, prompt="rain"),
        Expect(VideoResult, TaskType.EXTEND_VIDEO, 4),
        id="extend-video",
    ),
    trip(
        lambda c, p: c.video_upscale(p.video, 3),
        Expect(VideoResult, TaskType.VIDEO_UPSCALE, 1),
        id="video-upscale",
    ),
]


@pytest.mark.parametrize(("call", "expect"), ROUND_TRIPS)
async def test_round_trip(
    legnext: LegnextClient, parents: Parents, call: Call, expect: Expect
) -> None:
    """A submitted job completes and its result exposes what its family produces."""
    handle = await call(legnext, parents)
    result = await handle
    assert type(result) is expect.kind
    assert result.job_id == handle.job_id
    assert result.task_type is expect.task_type
    if isinstance(result, ImageResult):
        assert len(result.image_urls) == expect.count
        assert all(url.startswith("http") for url in result.image_urls)
        assert result.image_url
    elif isinstance(result, VideoResult):
        assert len(result.video_urls) == expect.count
        assert all(url.endswith(".mp4") for url in result.video_urls)
    else:
        assert len(result.prompts) == expect.count
        assert result.final_prompt == result.prompts[0]


async def test_balance_is_typed(emu: Emulator, legnext: LegnextClient) -> None:
    """balance() reads the account's wallet as a typed Balance."""
    emu.set_balance(API_KEY, credits=3000, points=1068)
    balance = await legnext.balance()
    assert balance.available_credits == 3000
    assert balance.available_points == 1068
    assert balance.balance_usd == pytest.approx(4.068)


# --- 4. the vendor's OpenAPI request examples -------------------------------------------

#: The example ids in legnext-openapi.yaml: every "jobId" there is replaced by a seeded
#: parent of the right kind before comparing.
DOC_GRID = "5dd94ec3-7282-4f04-9445-59e850ef1822"
DOC_EDIT = "c6821434-5e41-408f-b42b-2562306b109c"
DOC_VIDEO = "b24ffa07-7b76-49a2-963e-f6c527f7cec7"
HOOK_C98 = "https://webhook.site/c98cb890-fb92-439f-8d60-42c8a51eb52d"
HOOK_D0C = "https://webhook.site/d0ca59bc-35a6-4a1e-b1b1-aea7faeb7f67"
SHORTEN_PROMPT = (
    "A cyberpunk hacker workspace filled with holographic screens, glowing code streams,"
    " mechanical keyboards, neon reflections, cables and circuit boards everywhere,"
    " volumetric lighting, ultra-detailed sci-fi aesthetic, cinematic atmosphere, inspired"
    " by Ghost in the Shell and Blade Runner, rendered in octane, 8k resolution --ar 21:9"
    " --v 7 --style raw --q 2"
)


# Each body is copied from the `requestBody ... example:` of one path in
# /work/shared/reference/legnext-openapi.yaml (vendor repo legnext-ai/sdks, commit 02b7629);
# the line is where that example starts. YAML folding (>-) is joined with single spaces.
def example(body: dict[str, Any], call: Call, id: str) -> ParameterSet:
    """A documented example body and the client call that should send it."""
    return pytest.param(body, call, id=id)


OPENAPI_EXAMPLES = [
    example(  # /api/v1/diffusion, line 146
        {
            "text": "A beautiful sunset over the snow mountains --v 7 --draft",
            "callback": HOOK_D0C,
        },
        lambda c, p: c.diffusion(
            "A beautiful sunset over the snow mountains --v 7 --draft", callback=HOOK_D0C
        ),
        id="diffusion",
    ),
    example(  # /api/v1/upscale, line 291
        {"jobId": DOC_GRID, "imageNo": 0, "type": 0, "callback": HOOK_C98},
        lambda c, p: c.upscale(p.grid, 0, type=UpscaleType.SUBTLE, callback=HOOK_C98),
        id="upscale",
    ),
    example(  # /api/v1/reroll, line 381
        {"jobId": DOC_GRID, "callback": HOOK_C98},
        lambda c, p: c.reroll(p.grid, callback=HOOK_C98),
        id="reroll",
    ),
    example(  # /api/v1/variation, line 480
        {
            "jobId": DOC_GRID,
            "imageNo": 1,
            "type": 1,
            "remixPrompt": "A beautiful sunset over the snow mountains",
            "callback": HOOK_C98,
        },
        lambda c, p: c.variation(
            p.grid,
            1,
            type=VariationType.STRONG,
            remix_prompt="A beautiful sunset over the snow mountains",
            callback=HOOK_C98,
        ),
        id="variation",
    ),
    example(  # /api/v1/inpaint, line 586
        {
            "jobId": DOC_GRID,
            "imageNo": 0,
            "mask": {
                "areas": [
                    {"width": 500, "height": 500, "points": [10, 10, 10, 100, 100, 100, 100, 10]}
                ]
            },
            "remixPrompt": "Add a tree in the center",
            "callback": HOOK_C98,
        },
        lambda c, p: c.inpaint(
            p.grid,
            0,
            mask=Mask(
                areas=[Polygon(width=500, height=500, points=[10, 10, 10, 100, 100, 100, 100, 10])]
            ),
            remix_prompt="Add a tree in the center",
            callback=HOOK_C98,
        ),
        id="inpaint",
    ),
    example(  # /api/v1/outpaint, line 699
        {
            "jobId": DOC_GRID,
            "imageNo": 0,
            "scale": 1.5,
            "remixPrompt": "clouds over the sky",
            "callback": HOOK_C98,
        },
        lambda c, p: c.outpaint(
            p.grid, 0, scale=1.5, remix_prompt="clouds over the sky", callback=HOOK_C98
        ),
        id="outpaint",
    ),
    example(  # /api/v1/pan, line 802
        {
            "jobId": DOC_GRID,
            "imageNo": 0,
            "direction": 1,
            "scale": 1.5,
            "remixPrompt": "a lake near the mountain",
            "callback": HOOK_C98,
        },
        lambda c, p: c.pan(
            p.grid,
            0,
            direction=PanDirection.RIGHT,
            scale=1.5,
            remix_prompt="a lake near the mountain",
            callback=HOOK_C98,
        ),
        id="pan",
    ),
    example(  # /api/v1/remix, line 955
        {
            "jobId": DOC_GRID,
            "imageNo": 0,
            "mode": 0,
            "remixPrompt": "Change style to watercolor painting",
            "callback": HOOK_C98,
        },
        lambda c, p: c.remix(
            p.grid,
            0,
            remix_prompt="Change style to watercolor painting",
            mode=RemixMode.STRONG,
            callback=HOOK_C98,
        ),
        id="remix",
    ),
    example(  # /api/v1/edit, line 1069
        {
            "jobId": DOC_EDIT,
            "imageNo": 1,
            "canvas": {"width": 1024, "height": 1024},
            "imgPos": {"width": 512, "height": 512, "x": 256, "y": 256},
            "remixPrompt": "A beautiful landscape with mountains",
        },
        lambda c, p: c.edit(
            p.grid,
            1,
            canvas=Canvas(width=1024, height=1024),
            img_pos=ImagePosition(width=512, height=512, x=256, y=256),
            remix_prompt="A beautiful landscape with mountains",
        ),
        id="edit",
    ),
    example(  # /api/v1/shorten, line 1217
        {"prompt": SHORTEN_PROMPT},
        lambda c, p: c.shorten(SHORTEN_PROMPT),
        id="shorten",
    ),
    example(  # /api/v1/describe, line 1313
        {
            "imgUrl": "https://i.ibb.co/GQLwfvYV/aiony-haust-3-TLl-97-HNJo-unsplash.jpg",
            "callback": HOOK_D0C,
        },
        lambda c, p: c.describe(
            "https://i.ibb.co/GQLwfvYV/aiony-haust-3-TLl-97-HNJo-unsplash.jpg", callback=HOOK_D0C
        ),
        id="describe",
    ),
    example(  # /api/v1/blend, line 1407 (a JSON string in a `*/*` body, decoded here)
        {
            "imgUrls": ["https://example.com/image1.png", "https://example.com/image2.png"],
            "aspect_ratio": "1:1",
            "callback": HOOK_D0C,
        },
        lambda c, p: c.blend(
            ["https://example.com/image1.png", "https://example.com/image2.png"],
            aspect_ratio=BlendAspectRatio.SQUARE,
            callback=HOOK_D0C,
        ),
        id="blend",
    ),
    example(  # /api/v1/video-diffusion, line 1750
        {
            "prompt": "https://i.ibb.co/yc7NvSqH/kling.jpg A beautiful woman playing music",
            "callback": HOOK_C98,
            "videoType": 1,
        },
        lambda c, p: c.video_diffusion(
            "https://i.ibb.co/yc7NvSqH/kling.jpg A beautiful woman playing music",
            video_type=VideoType.HD_720P,
            callback=HOOK_C98,
        ),
        id="video-diffusion",
    ),
    example(  # /api/v1/extend-video, line 1848
        {
            "jobId": DOC_VIDEO,
            "videoNo": 0,
            "prompt": "Continue with more dynamic movement and effects",
            "callback": HOOK_C98,
        },
        lambda c, p: c.extend_video(
            p.video,
            0,
            prompt="Continue with more dynamic movement and effects",
            callback=HOOK_C98,
        ),
        id="extend-video",
    ),
    example(  # /api/v1/video-upscale, line 1942
        {"jobId": DOC_VIDEO, "videoNo": 0, "callback": HOOK_C98},
        lambda c, p: c.video_upscale(p.video, 0, callback=HOOK_C98),
        id="video-upscale",
    ),
]

_DOC_IDS = {DOC_GRID: "grid", DOC_EDIT: "grid", DOC_VIDEO: "video"}


@pytest.mark.parametrize(("example", "call"), OPENAPI_EXAMPLES)
async def test_openapi_example_is_expressible(
    emu: Emulator, legnext: LegnextClient, parents: Parents, example: dict[str, Any], call: Call
) -> None:
    """The client sends the vendor's example body exactly (its jobId swapped for a parent)."""
    expected = dict(example)
    if "jobId" in expected:
        expected["jobId"] = getattr(parents, _DOC_IDS[expected["jobId"]])
    await call(legnext, parents)
    assert [body for _, body in posted(emu)] == [expected]


def test_openapi_table_covers_every_example() -> None:
    """The table has one row per request example in the vendor's OpenAPI file."""
    spec = Path(__file__).parent / "reference" / "legnext-openapi.yaml"
    bodies = [line for line in spec.read_text().splitlines() if line.strip() == "requestBody:"]
    assert len(bodies) == len(OPENAPI_EXAMPLES)


@pytest.mark.parametrize(
    "table",
    [WIRE, INVALID, ROUND_TRIPS],
    ids=["wire", "invalid", "round-trip"],
)
def test_table_covers_every_endpoint(table: list[ParameterSet]) -> None:
    """Each table has at least one case for each of the 19 job endpoints."""
    ids = [param.id for param in table if isinstance(param.id, str)]
    missing = [
        name for name in ENDPOINTS if not any(i == name or i.startswith(f"{name}-") for i in ids)
    ]
    assert missing == []
