"""inpaint: the exact wire body, client-side limits (nothing sent), and a round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from legnext_async import ImageResult, Mask, Polygon, TaskStatus, ValidationError

if TYPE_CHECKING:
    from legnext_async import LegnextClient
    from legnext_async.emulator import Emulator

SQUARE = [10, 10, 10, 100, 100, 100, 100, 10]
AREA_MASK = Mask(areas=[Polygon(width=500, height=500, points=SQUARE)])


def posts(emulator: Emulator) -> list[Any]:
    """The JSON bodies of the job-creating requests the emulator received."""
    return [r.body for r in emulator.requests if r.method == "POST"]


async def test_wire_body_is_the_documented_camel_case(
    client: LegnextClient, emulator: Emulator
) -> None:
    """A full inpaint call sends exactly the documented JSON body."""
    parent = emulator.seed_job("diffusion")
    await client.inpaint(
        parent,
        2,
        mask=AREA_MASK,
        remix_prompt="Add a tree in the center",
        callback="http://127.0.0.1:9/hook",
    )
    assert posts(emulator) == [
        {
            "jobId": parent,
            "imageNo": 2,
            "mask": {"areas": [{"width": 500, "height": 500, "points": SQUARE}]},
            "remixPrompt": "Add a tree in the center",
            "callback": "http://127.0.0.1:9/hook",
        }
    ]


async def test_optional_fields_are_left_out(client: LegnextClient, emulator: Emulator) -> None:
    """Optional fields that were not given are absent, not null."""
    parent = emulator.seed_job("diffusion")
    await client.inpaint(parent, 0, mask=Mask(url="https://example.com/mask.png"))
    assert posts(emulator) == [
        {"jobId": parent, "imageNo": 0, "mask": {"url": "https://example.com/mask.png"}}
    ]


async def test_several_polygons_in_one_mask(client: LegnextClient, emulator: Emulator) -> None:
    """A mask with several areas sends them all, in order."""
    parent = emulator.seed_job("diffusion")
    second = Polygon(width=1024, height=1024, points=[288, 288, 408, 288, 408, 408, 288, 408])
    await client.inpaint(parent, 1, mask=Mask(areas=[AREA_MASK.areas[0], second]))  # type: ignore[index]
    body = posts(emulator)[0]
    assert [area["width"] for area in body["mask"]["areas"]] == [500, 1024]


@pytest.mark.parametrize(
    ("args", "kwargs", "field", "limit"),  # args: job_id, image_no, mask
    [
        pytest.param(("", 0, AREA_MASK), {}, "job_id", "1 to 128 characters", id="empty-job-id"),
        pytest.param(("a b", 0, AREA_MASK), {}, "job_id", "1 to 128 characters", id="space-job-id"),
        pytest.param((7, 0, AREA_MASK), {}, "job_id", "string", id="int-job-id"),
        pytest.param(("j", -1, AREA_MASK), {}, "image_no", "0 to 3", id="image-no-low"),
        pytest.param(("j", 4, AREA_MASK), {}, "image_no", "0 to 3", id="image-no-high"),
        pytest.param(("j", True, AREA_MASK), {}, "image_no", "integer", id="image-no-bool"),
        pytest.param(("j", 1.0, AREA_MASK), {}, "image_no", "integer", id="image-no-float"),
        pytest.param(("j", 0, None), {}, "mask", "Mask", id="no-mask"),
        pytest.param(("j", 0, {"url": "https://x"}), {}, "mask", "Mask", id="dict-mask"),
        pytest.param(
            ("j", 0, AREA_MASK),
            {"remix_prompt": ""},
            "remix_prompt",
            "1 to 8192",
            id="empty-prompt",
        ),
        pytest.param(
            ("j", 0, AREA_MASK),
            {"remix_prompt": "x" * 8193},
            "remix_prompt",
            "1 to 8192",
            id="long-prompt",
        ),
        pytest.param(
            ("j", 0, AREA_MASK),
            {"callback": "/hook"},
            "callback",
            "absolute",
            id="relative-callback",
        ),
        pytest.param(
            ("j", 0, AREA_MASK),
            {"callback": "ftp://example.com/x"},
            "callback",
            "http(s)",
            id="ftp-callback",
        ),
    ],
)
async def test_bad_arguments_raise_before_sending(
    client: LegnextClient,
    emulator: Emulator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    field: str,
    limit: str,
) -> None:
    """Each broken limit raises ValidationError naming the field and limit; nothing is sent."""
    job_id, image_no, mask = args
    with pytest.raises(ValidationError) as caught:
        await client.inpaint(job_id, image_no, mask=mask, **kwargs)
    assert caught.value.field == field
    assert limit in str(caught.value)
    assert emulator.requests == []


async def test_round_trip_returns_four_images_and_actions(
    client: LegnextClient, emulator: Emulator
) -> None:
    """Awaiting an inpaint handle gives four image URLs and the follow-ups allowed."""
    parent = emulator.seed_job("diffusion")
    handle = await client.inpaint(parent, 0, mask=AREA_MASK, remix_prompt="a tree")
    assert handle.last_task is not None
    assert handle.last_task.status is TaskStatus.PENDING
    result = await handle
    assert isinstance(result, ImageResult)
    assert isinstance(result.image_urls, tuple)
    assert len(result.image_urls) == 4
    assert all(url.startswith("http://127.0.0.1") for url in result.image_urls)
    assert result.available_actions.upscale == (0, 1, 2, 3)
    assert result.available_actions.reroll is True
    assert result.task.status is TaskStatus.COMPLETED
    assert result.job_id == handle.job_id
    assert emulator.job(handle.job_id).task_type == "inpaint"
