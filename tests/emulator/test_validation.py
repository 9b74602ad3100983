"""Request validation: documented ranges and types answer 400 naming the field."""

from __future__ import annotations

import copy
from typing import Any, Final

import pytest

from .conftest import Api

PARENT: Final = "<grid>"
DRAFT: Final = "<draft>"
VIDEO: Final = "<video>"
DELETE: Final = object()

POLYGON: Final = {"width": 500, "height": 500, "points": [10, 10, 10, 100, 100, 100, 100, 10]}
CANVAS: Final = {"width": 1024, "height": 1024}
IMG_POS: Final = {"width": 512, "height": 512, "x": 256, "y": 256}
URL: Final = "https://example.com/a.png"

#: One valid body per endpoint; parent placeholders are replaced by real job ids.
VALID: Final[dict[str, dict[str, Any]]] = {
    "diffusion": {"text": "a cat --v 7"},
    "variation": {"jobId": PARENT, "imageNo": 0, "type": 0},
    "upscale": {"jobId": PARENT, "imageNo": 0, "type": 0},
    "reroll": {"jobId": PARENT},
    "blend": {"imgUrls": [URL, URL], "aspect_ratio": "1:1"},
    "describe": {"imgUrl": URL},
    "shorten": {"prompt": "a long prompt"},
    "pan": {"jobId": PARENT, "imageNo": 0, "direction": 1, "scale": 1.5},
    "outpaint": {"jobId": PARENT, "imageNo": 0, "scale": 1.5},
    "inpaint": {"jobId": PARENT, "imageNo": 0, "mask": {"areas": [POLYGON]}},
    "remix": {"jobId": PARENT, "imageNo": 0, "remixPrompt": "watercolor", "mode": 0},
    "edit": {
        "jobId": PARENT,
        "imageNo": 0,
        "canvas": CANVAS,
        "imgPos": IMG_POS,
        "remixPrompt": "mountains",
    },
    "upload-paint": {
        "imgUrl": URL,
        "canvas": CANVAS,
        "imgPos": IMG_POS,
        "remixPrompt": "mountains",
        "mask": {"url": URL},
    },
    "retexture": {"imgUrl": URL, "remixPrompt": "wood"},
    "remove-background": {"imgUrl": URL},
    "enhance": {"jobId": DRAFT, "imageNo": 0},
    "video-diffusion": {"prompt": f"{URL} waves", "videoType": 0},
    "extend-video": {"jobId": VIDEO, "videoNo": 0, "prompt": "more"},
    "video-upscale": {"jobId": VIDEO, "videoNo": 0},
}


def case(route: str, field: str, changes: dict[str, Any], case_id: str) -> Any:
    """A 400 case: ``VALID[route]`` with ``changes``; the message must name ``field``."""
    return pytest.param(route, changes, field, id=f"{route}-{case_id}")


LONG = "x" * 8193
BAD_CASES: Final = [
    case("diffusion", "text", {"text": DELETE}, "text-missing"),
    case("diffusion", "text", {"text": ""}, "text-empty"),
    case("diffusion", "text", {"text": LONG}, "text-too-long"),
    case("diffusion", "text", {"text": 5}, "text-not-string"),
    case("diffusion", "text", {"text": None}, "text-null"),
    case("diffusion", "callback", {"callback": 7}, "callback-not-string"),
    case("diffusion", "callback", {"callback": "ftp://x/y"}, "callback-not-http"),
    case("variation", "imageNo", {"imageNo": 4}, "imageNo-4"),
    case("variation", "imageNo", {"imageNo": -1}, "imageNo-negative"),
    case("variation", "imageNo", {"imageNo": "0"}, "imageNo-string"),
    case("variation", "imageNo", {"imageNo": True}, "imageNo-bool"),
    case("variation", "imageNo", {"imageNo": 1.0}, "imageNo-float"),
    case("variation", "imageNo", {"imageNo": DELETE}, "imageNo-missing"),
    case("variation", "type", {"type": 2}, "type-2"),
    case("variation", "type", {"type": DELETE}, "type-missing"),
    case("variation", "jobId", {"jobId": DELETE}, "jobId-missing"),
    case("variation", "jobId", {"jobId": 12}, "jobId-not-string"),
    case("variation", "remixPrompt", {"remixPrompt": LONG}, "remix-too-long"),
    case("upscale", "type", {"type": 4}, "type-4"),
    case("upscale", "type", {"type": -1}, "type-negative"),
    case("upscale", "imageNo", {"imageNo": 9}, "imageNo-9"),
    case("reroll", "jobId", {"jobId": DELETE}, "jobId-missing"),
    case("blend", "imgUrls", {"imgUrls": [URL]}, "one-url"),
    case("blend", "imgUrls", {"imgUrls": [URL] * 6}, "six-urls"),
    case("blend", "imgUrls", {"imgUrls": "https://a.b/c"}, "urls-not-list"),
    case("blend", "imgUrls", {"imgUrls": [URL, "not a url"]}, "bad-url"),
    case("blend", "aspect_ratio", {"aspect_ratio": "16:9"}, "bad-ratio"),
    case("blend", "aspect_ratio", {"aspect_ratio": DELETE}, "no-ratio"),
    case("blend", "aspect_ratio", {"aspect_ratio": ""}, "empty-ratio"),
    case("blend", "imgUrls", {"imgUrls": DELETE}, "no-images"),
    case("blend", "base64Array", {"base64Array": ["data:image/png;base64,AAAA"] * 2}, "both"),
    case(
        "blend", "base64Array", {"imgUrls": DELETE, "base64Array": ["abc", "def"]}, "not-data-uri"
    ),
    case(
        "blend",
        "dimension",
        {"imgUrls": DELETE, "base64Array": ["data:image/png;base64,AAAA"] * 2, "dimension": "WIDE"},
        "bad-dimension",
    ),
    case("describe", "imgUrl", {"imgUrl": DELETE}, "nothing"),
    case("describe", "imgUrl", {"imgUrl": "example.com/a.png"}, "no-scheme"),
    case("describe", "imgUrl", {"imgUrl": "https://e.x/" + "a" * 1020}, "url-too-long"),
    case("describe", "imgUrl", {"imgUrl": "http://xn--/a.png"}, "invalid-idna-host"),
    case("diffusion", "callback", {"callback": "http://xn--/hook"}, "callback-invalid-idna-host"),
    case("blend", "imgUrls[1]", {"imgUrls": [URL, "https://xn--/b.png"]}, "item-invalid-idna"),
    case("inpaint", "mask.url", {"mask": {"url": "https://a.xn--/m.png"}}, "mask-url-bad-idna"),
    case(
        "describe",
        "imageLink",
        {"imgUrl": DELETE, "imageLink": URL, "imageBase64": "data:image/png;base64,AA"},
        "link-and-base64",
    ),
    case("shorten", "prompt", {"prompt": DELETE}, "prompt-missing"),
    case("shorten", "prompt", {"prompt": LONG}, "prompt-too-long"),
    case("pan", "direction", {"direction": "left"}, "direction-string"),
    case("pan", "direction", {"direction": 4}, "direction-4"),
    case("pan", "scale", {"scale": DELETE}, "scale-missing"),
    case("pan", "scale", {"scale": 1.0}, "scale-low"),
    case("pan", "scale", {"scale": 3.1}, "scale-high"),
    case("pan", "scale", {"scale": "1.5"}, "scale-string"),
    case("outpaint", "scale", {"scale": 2.5}, "scale-high"),
    case("outpaint", "scale", {"scale": 1.05}, "scale-low"),
    case("inpaint", "mask", {"mask": DELETE}, "mask-missing"),
    case("inpaint", "mask", {"mask": {}}, "mask-empty"),
    case("inpaint", "mask", {"mask": {"areas": [POLYGON], "url": URL}}, "mask-both"),
    case("inpaint", "mask", {"mask": {"areas": []}}, "mask-areas-empty"),
    case("inpaint", "mask", {"mask": "x"}, "mask-not-object"),
    case("inpaint", "mask.url", {"mask": {"url": "nope"}}, "mask-url-bad"),
    case("inpaint", "width", {"mask": {"areas": [{**POLYGON, "width": 499}]}}, "width-low"),
    case("inpaint", "height", {"mask": {"areas": [{**POLYGON, "height": 4097}]}}, "height-high"),
    case("inpaint", "points", {"mask": {"areas": [{**POLYGON, "points": [1, 2, 3, 4]}]}}, "2pt"),
    case("inpaint", "points", {"mask": {"areas": [{**POLYGON, "points": [1, 2, 3, 4, 5]}]}}, "odd"),
    case(
        "inpaint",
        "points",
        {"mask": {"areas": [{**POLYGON, "points": [1, 2, 3, 4, 5, 6.5]}]}},
        "float-point",
    ),
    case(
        "inpaint",
        "points",
        {"mask": {"areas": [{**POLYGON, "points": [1, 2, 3, 4, 501, 6]}]}},
        "x-outside",
    ),
    case(
        "inpaint",
        "points",
        {"mask": {"areas": [{**POLYGON, "points": [1, 2, 3, -4, 5, 6]}]}},
        "y-negative",
    ),
    case("inpaint", "points", {"mask": {"areas": [{"width": 500, "height": 500}]}}, "no-points"),
    case("remix", "remixPrompt", {"remixPrompt": DELETE}, "prompt-missing"),
    case("remix", "mode", {"mode": 2}, "mode-2"),
    case("edit", "canvas", {"canvas": DELETE}, "canvas-missing"),
    case("edit", "imgPos", {"imgPos": DELETE}, "imgPos-missing"),
    case("edit", "canvas.width", {"canvas": {"width": "1024", "height": 1024}}, "canvas-string"),
    case("edit", "imgPos.x", {"imgPos": {**IMG_POS, "x": 1.5}}, "imgPos-float"),
    case("edit", "imgPos.y", {"imgPos": {"width": 1, "height": 1, "x": 0}}, "imgPos-no-y"),
    case("edit", "remixPrompt", {"remixPrompt": DELETE}, "prompt-missing"),
    case("edit", "mask", {"mask": {}}, "mask-empty"),
    case("upload-paint", "mask", {"mask": DELETE}, "mask-missing"),
    case("upload-paint", "imgUrl", {"imgUrl": "x" * 1025}, "url-too-long"),
    case("upload-paint", "imgUrl", {"imgUrl": DELETE}, "url-missing"),
    case("retexture", "remixPrompt", {"remixPrompt": DELETE}, "prompt-missing"),
    case("retexture", "imgUrl", {"imgUrl": "file:///etc/passwd"}, "url-scheme"),
    case("remove-background", "imgUrl", {"imgUrl": DELETE}, "url-missing"),
    case("remove-background", "imgUrl", {"imgUrl": "https://e.x/" + "a" * 1020}, "url-long"),
    case("enhance", "imageNo", {"imageNo": 4}, "imageNo-4"),
    case("video-diffusion", "prompt", {"prompt": DELETE}, "nothing"),
    case("video-diffusion", "videoType", {"videoType": 2}, "videoType-2"),
    case("video-diffusion", "imageNo", {"jobId": PARENT, "imageNo": DELETE}, "jobId-no-imageNo"),
    case("video-diffusion", "imageNo", {"jobId": PARENT, "imageNo": 7}, "imageNo-7"),
    case("extend-video", "videoNo", {"videoNo": 4}, "videoNo-4"),
    case("extend-video", "videoNo", {"videoNo": DELETE}, "videoNo-missing"),
    case("extend-video", "prompt", {"prompt": LONG}, "prompt-too-long"),
    case("video-upscale", "videoNo", {"videoNo": "0"}, "videoNo-string"),
    case("video-upscale", "jobId", {"jobId": DELETE}, "jobId-missing"),
]


async def parents(api: Api) -> dict[str, str]:
    """Completed parents: a grid, a draft grid and a video."""
    emu = api.emulator
    return {
        PARENT: emu.seed_job("diffusion"),
        DRAFT: emu.seed_job("diffusion", draft=True),
        VIDEO: emu.seed_job("video_diffusion"),
    }


def build(route: str, changes: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """``VALID[route]`` with ``changes`` applied and parent placeholders filled in."""
    body = copy.deepcopy(VALID[route])
    for key, value in changes.items():
        if value is DELETE:
            body.pop(key, None)
        else:
            body[key] = value
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}


@pytest.mark.parametrize("route", sorted(VALID))
async def test_valid_body_is_accepted(make_emulator: Any, api: Api, route: str) -> None:
    """Each endpoint's valid body creates a pending job."""
    api.emulator = await make_emulator(whitelisted=True)
    task = await api.create(route, build(route, {}, await parents(api)))
    assert task["status"] == "pending"


@pytest.mark.parametrize(("route", "changes", "field"), BAD_CASES)
async def test_invalid_body_is_400(
    make_emulator: Any, api: Api, route: str, changes: dict[str, Any], field: str
) -> None:
    """A body breaking a documented rule answers 400 naming the field, and creates no job."""
    api.emulator = await make_emulator(whitelisted=True)
    ids = await parents(api)
    status, body = await api.post(route, build(route, changes, ids))
    assert status == 400, body
    assert body["status"] == "failed"
    assert body["error"]["code"] == 400
    assert field in body["error"]["message"]
    assert len(api.emulator.jobs) == len(ids)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        pytest.param("upscale", {"type": 2}, id="upscale-deprecated-2x"),
        pytest.param("upscale", {"type": 3}, id="upscale-deprecated-4x"),
        pytest.param("diffusion", {"callback": None}, id="null-callback"),
        pytest.param("diffusion", {"callback": ""}, id="empty-callback"),
        pytest.param("diffusion", {"aspectRatio": "16:9", "extra": [1]}, id="unknown-fields"),
        pytest.param("variation", {"remixPrompt": None}, id="null-remixPrompt"),
        pytest.param("pan", {"scale": 2}, id="pan-integer-scale"),
        pytest.param("pan", {"direction": 3, "scale": 3.0}, id="pan-max"),
        pytest.param("outpaint", {"scale": 1.1}, id="outpaint-min"),
        pytest.param("remix", {"mode": None}, id="remix-null-mode"),
        pytest.param("inpaint", {"mask": {"url": URL}}, id="inpaint-mask-url"),
        pytest.param("inpaint", {"mask": {"areas": [POLYGON, POLYGON]}}, id="inpaint-two-areas"),
        pytest.param("inpaint", {"mask": DELETE, "area": POLYGON}, id="inpaint-deprecated-area"),
        pytest.param(
            "inpaint",
            {
                "mask": {
                    "areas": [
                        {
                            "width": 1024,
                            "height": 1024,
                            "points": [288, 288, 408, 288, 408, 408, 288, 408],
                        }
                    ]
                }
            },
            id="inpaint-frontend-example",
        ),
        pytest.param(
            "blend",
            {
                "imgUrls": DELETE,
                "base64Array": ["data:image/png;base64,iVBORw0KGgo="] * 5,
                "dimension": "PORTRAIT",
            },
            id="blend-base64",
        ),
        pytest.param("describe", {"imgUrl": DELETE, "imageLink": URL}, id="describe-link"),
        pytest.param(
            "describe",
            {"imgUrl": DELETE, "imageBase64": "data:image/jpeg;base64,/9j/4AAQ"},
            id="describe-base64",
        ),
        pytest.param("video-diffusion", {"jobId": PARENT, "imageNo": 2}, id="video-from-job"),
        pytest.param(
            "video-diffusion", {"jobId": PARENT, "imageNo": 1, "prompt": DELETE}, id="video-no-text"
        ),
        pytest.param("video-diffusion", {"videoType": 1}, id="video-720p"),
        pytest.param("extend-video", {"prompt": DELETE}, id="extend-no-prompt"),
        pytest.param("edit", {"mask": {"areas": [POLYGON]}}, id="edit-with-mask"),
    ],
)
async def test_documented_variants_are_accepted(
    make_emulator: Any, api: Api, route: str, body: dict[str, Any]
) -> None:
    """Every documented variant of a request is accepted."""
    api.emulator = await make_emulator(whitelisted=True)
    await api.create(route, build(route, body, await parents(api)))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"{not json", id="malformed"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"null", id="null"),
    ],
)
async def test_non_object_body_is_400(api: Api, raw: bytes) -> None:
    """A body that is not a JSON object answers 400."""
    status, body = await api.post("diffusion", None, raw=raw)
    assert status == 400
    assert body["error"]["code"] == 400
    assert api.emulator.jobs == []


async def test_upload_paint_accepts_multipart(make_emulator: Any, api: Api) -> None:
    """upload-paint also accepts multipart/form-data with JSON-encoded fields (OAC)."""
    import json

    import aiohttp

    emu = await make_emulator(whitelisted=True)
    form = aiohttp.FormData(default_to_multipart=True)
    for key, value in VALID["upload-paint"].items():
        form.add_field(key, value if isinstance(value, str) else json.dumps(value))
    async with api.session.post(
        f"{emu.base_url}/v1/upload-paint", data=form, headers={"x-api-key": api.key or ""}
    ) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["task_type"] == "upload-paint"


async def test_multipart_upload_paint_is_logged_as_its_fields(make_emulator: Any, api: Api) -> None:
    """The request log keeps a multipart form's decoded fields, JSON ones decoded."""
    import aiohttp

    emu = await make_emulator(whitelisted=True)
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("imgUrl", URL)
    form.add_field("canvas", '{"width": 1024, "height": 1024}')
    async with api.session.post(
        f"{emu.base_url}/v1/upload-paint", data=form, headers={"x-api-key": api.key or ""}
    ) as response:
        assert response.status == 400  # imgPos and the rest are missing
    (record,) = emu.requests
    assert record.body == {"imgUrl": URL, "canvas": {"width": 1024, "height": 1024}}
    assert record.body_prefix.startswith(b"--")


async def test_multipart_file_part_is_400(make_emulator: Any, api: Api) -> None:
    """A file part in the upload-paint form answers 400 naming the field."""
    import aiohttp

    emu = await make_emulator(whitelisted=True)
    form = aiohttp.FormData()
    form.add_field("mask", b"\x89PNG", filename="mask.png", content_type="image/png")
    async with api.session.post(
        f"{emu.base_url}/v1/upload-paint", data=form, headers={"x-api-key": api.key or ""}
    ) as response:
        assert response.status == 400
        assert "mask must be a form field" in (await response.json())["error"]["message"]


def test_every_endpoint_has_a_body_table() -> None:
    """Each emulated POST route has a table of the body it accepts, and no table is spare."""
    from legnext_async.emulator._bodies import BODIES
    from legnext_async.emulator._catalog import OPERATIONS

    assert set(BODIES) == set(OPERATIONS)
