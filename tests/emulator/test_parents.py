"""Follow-up rules: the parent must exist, be finished, be young and allow the action."""

from __future__ import annotations

import pytest

from .conftest import Api, EmulatorFactory

DAY = 86_400.0


async def test_unknown_parent_is_404(api: Api) -> None:
    """A jobId that does not exist answers 404."""
    status, body = await api.post("upscale", {"jobId": "nope", "imageNo": 0, "type": 0})
    assert status == 404
    assert "nope" in body["error"]["message"]


async def test_unfinished_parent_is_400(api: Api) -> None:
    """Following up a job that is still pending answers 400."""
    parent = (await api.create("diffusion", {"text": "x"}))["job_id"]
    status, body = await api.post("upscale", {"jobId": parent, "imageNo": 0, "type": 0})
    assert status == 400
    assert "not completed" in body["error"]["message"]


async def test_failed_parent_is_400(api: Api) -> None:
    """Following up a failed job answers 400."""
    parent = api.emulator.seed_job(failed=True)
    status, _ = await api.post("variation", {"jobId": parent, "imageNo": 0, "type": 0})
    assert status == 400


async def test_image_no_must_be_listed(api: Api) -> None:
    """An upscaled image only offers image 0, so imageNo 1 answers 400."""
    parent = api.emulator.seed_job("upscale")
    status, body = await api.post("variation", {"jobId": parent, "imageNo": 1, "type": 0})
    assert status == 400
    assert "available_actions.variation" in body["error"]["message"]
    assert (await api.post("variation", {"jobId": parent, "imageNo": 0, "type": 0}))[0] == 200


async def test_reroll_needs_reroll_true(api: Api) -> None:
    """An upscale lists reroll false, so rerolling it answers 400."""
    status, _ = await api.post("reroll", {"jobId": api.emulator.seed_job("upscale")})
    assert status == 400


async def test_remove_background_result_offers_nothing(api: Api) -> None:
    """A remove-background result lists no actions, so upscaling it answers 400."""
    parent = api.emulator.seed_job("remove_background")
    assert (await api.post("upscale", {"jobId": parent, "imageNo": 0, "type": 0}))[0] == 400


async def test_enhance_needs_a_draft_parent(api: Api) -> None:
    """enhance answers 400 for a non-draft parent and 200 for a draft one."""
    emu = api.emulator
    status, body = await api.post("enhance", {"jobId": emu.seed_job(), "imageNo": 0})
    assert status == 400
    assert "draft" in body["error"]["message"]
    assert (await api.post("enhance", {"jobId": emu.seed_job(draft=True), "imageNo": 3}))[0] == 200


async def test_draft_created_through_the_api_can_be_enhanced(api: Api) -> None:
    """A diffusion with ``--draft`` in its text is an enhance-able parent."""
    parent = (await api.finished("diffusion", {"text": "a cat --v 7 --draft"}))["job_id"]
    assert (await api.create("enhance", {"jobId": parent, "imageNo": 1}))["task_type"] == "enhance"


@pytest.mark.parametrize("route", ["extend-video", "video-upscale"])
async def test_video_follow_ups_need_a_video_parent(api: Api, route: str) -> None:
    """extend-video and video-upscale answer 400 for an image parent."""
    status, body = await api.post(route, {"jobId": api.emulator.seed_job(), "videoNo": 0})
    assert status == 400
    assert "video" in body["error"]["message"]


async def test_video_no_must_exist(api: Api) -> None:
    """videoNo 2 of a one-video batch answers 400."""
    parent = api.emulator.seed_job("video_diffusion", video_count=1)
    status, body = await api.post("extend-video", {"jobId": parent, "videoNo": 2})
    assert status == 400
    assert "videoNo" in body["error"]["message"]


async def test_video_diffusion_needs_an_image_parent(api: Api) -> None:
    """video-diffusion in jobId mode answers 400 for a video parent."""
    parent = api.emulator.seed_job("video_diffusion")
    assert (await api.post("video-diffusion", {"jobId": parent, "imageNo": 0}))[0] == 400


async def test_upscaled_video_cannot_be_extended(api: Api) -> None:
    """A video_upscale result lists no actions."""
    parent = api.emulator.seed_job("video_upscale", video_count=1)
    assert (await api.post("extend-video", {"jobId": parent, "videoNo": 0}))[0] == 400


async def test_extensions_stop_after_four(api: Api) -> None:
    """A video can be extended four times; the fourth extension lists no ``extend``."""
    job_id = api.emulator.seed_job("video_diffusion")
    for _ in range(4):
        done = await api.finished("extend-video", {"jobId": job_id, "videoNo": 0})
        job_id = done["job_id"]
    assert "extend" not in done["output"]["available_actions"]
    assert (await api.post("extend-video", {"jobId": job_id, "videoNo": 0}))[0] == 400
    assert (await api.post("video-upscale", {"jobId": job_id, "videoNo": 0}))[0] == 200


async def test_follow_up_records_its_parent(api: Api) -> None:
    """``emu.jobs`` records the parent of a follow-up."""
    parent = api.emulator.seed_job()
    child = (await api.create("pan", {"jobId": parent, "imageNo": 0, "direction": 0, "scale": 2}))[
        "job_id"
    ]
    assert api.emulator.job(child).parent_id == parent


async def test_old_job_is_404(api: Api) -> None:
    """A job older than the 3-day retention answers 404 on GET."""
    job_id = (await api.finished("diffusion", {"text": "x"}))["job_id"]
    api.emulator.advance(3 * DAY)
    assert (await api.get(f"/v1/job/{job_id}"))[0] == 404


async def test_old_parent_is_404(api: Api) -> None:
    """A follow-up on a parent past retention answers 404."""
    parent = api.emulator.seed_job(age_seconds=3 * DAY + 1)
    status, _ = await api.post("upscale", {"jobId": parent, "imageNo": 0, "type": 0})
    assert status == 404


async def test_young_parent_is_fine(api: Api) -> None:
    """A parent just inside retention can still be followed up."""
    parent = api.emulator.seed_job(age_seconds=3 * DAY - 60)
    assert (await api.post("upscale", {"jobId": parent, "imageNo": 0, "type": 0}))[0] == 200


async def test_retention_is_configurable(make_emulator: EmulatorFactory, api: Api) -> None:
    """``retention`` sets the 404 horizon."""
    api.emulator = await make_emulator(retention=60)
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    api.emulator.advance(61)
    assert (await api.get(f"/v1/job/{job_id}"))[0] == 404
