"""Job lifecycle and the exact wire shapes of tasks (reference §4, §5, wire samples)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legnext_async.emulator import Emulator

from .conftest import Api, EmulatorFactory

#: Copies of /work/shared/reference/wire-samples, so the suite runs anywhere.
SAMPLES = Path(__file__).parent.parent / "wire_samples"
PENDING_SAMPLE: dict[str, Any] = json.loads(
    (SAMPLES / "task-pending-diffusion.live.json").read_text()
)
RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ZERO_TIME = "0001-01-01T00:00:00Z"


def keys(value: object) -> object:
    """The nested key structure of a JSON value (lists by their first element)."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    if isinstance(value, list) and value:
        return [keys(value[0])]
    return None


def parse(stamp: str) -> datetime:
    """A wire timestamp as an aware datetime."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def test_create_returns_the_live_pending_shape(api: Api) -> None:
    """POST /v1/diffusion answers 200 with exactly the live pending task's fields."""
    task = await api.create("diffusion", {"text": "a lighthouse"})
    assert keys(task) == keys(PENDING_SAMPLE)
    assert task["status"] == "pending"
    assert task["model"] == "midjourney"
    assert task["task_type"] == "diffusion"
    assert task["input"] is None
    assert task["detail"] is None
    assert task["logs"] == []
    assert task["output"] == {"image_url": "", "image_urls": None, "seed": ""}
    assert task["error"] == PENDING_SAMPLE["error"]
    assert task["config"] == PENDING_SAMPLE["config"]
    assert task["meta"]["usage"] == {"type": "point", "frozen": 80, "consume": 0}


async def test_pending_timestamps_are_zero_except_created(api: Api) -> None:
    """A new task has an RFC 3339 ``created_at`` and Go zero times for start and end."""
    meta = (await api.create("diffusion", {"text": "x"}))["meta"]
    assert RFC3339_SECONDS.match(meta["created_at"])
    assert meta["started_at"] == ZERO_TIME
    assert meta["ended_at"] == ZERO_TIME


async def test_job_goes_pending_processing_completed(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """A job is pending, then processing with started_at set, then completed."""
    # Phases of 1,000 virtual seconds (a real second each): a busy machine cannot skip one.
    emu = await make_emulator(pending_seconds=1000, durations={"diffusion": (1000.0, 1000.0)})
    api.emulator = emu
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    assert (await api.job(job_id))["status"] == "pending"
    emu.advance(1000)
    running = await api.job(job_id)
    assert running["status"] == "processing"
    assert running["meta"]["started_at"] != ZERO_TIME
    assert running["meta"]["ended_at"] == ZERO_TIME
    emu.advance(1000)
    done = await api.job(job_id)
    assert done["status"] == "completed"
    assert done["meta"]["usage"] == {"type": "point", "frozen": 80, "consume": 80}


async def test_staged_phase_is_optional(make_emulator: EmulatorFactory, api: Api) -> None:
    """With ``staged_seconds`` a job shows ``staged`` between pending and processing."""
    emu = await make_emulator(pending_seconds=1000, staged_seconds=1000)
    api.emulator = emu
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    emu.advance(1500)  # mid-way through staged, a real half second from either edge
    staged = await api.job(job_id)
    assert staged["status"] == "staged"
    assert staged["meta"]["started_at"] == ZERO_TIME


async def test_completed_grid_matches_live_capture(api: Api) -> None:
    """A finished diffusion has the live completed output: 4 images, grid, seed, actions."""
    done = await api.finished("diffusion", {"text": "x"})
    sample = json.loads((SAMPLES / "task-completed-diffusion.live.json").read_text())
    assert keys(done["output"]) == keys(sample["output"])
    assert done["output"]["available_actions"] == sample["output"]["available_actions"]
    assert len(done["output"]["image_urls"]) == 4
    assert done["output"]["image_url"].endswith("_grid.png")
    assert done["output"]["seed"].isdigit()
    inpaint_sample = json.loads((SAMPLES / "task-completed-inpaint.docs.json").read_text())
    assert keys(done) == keys(inpaint_sample)


async def test_wire_durations_are_virtual(api: Api) -> None:
    """``ended_at - started_at`` shows realistic seconds though the job ran in milliseconds."""
    parent = await api.finished("diffusion", {"text": "x"})
    meta = (
        await api.finished(
            "inpaint",
            {"jobId": parent["job_id"], "imageNo": 0, "mask": {"url": "https://e.x/m.png"}},
        )
    )["meta"]
    seconds = (parse(meta["ended_at"]) - parse(meta["started_at"])).total_seconds()
    assert 89 <= seconds <= 121
    assert 0 <= (parse(meta["started_at"]) - parse(meta["created_at"])).total_seconds() <= 2


async def test_jobs_finish_in_real_time_when_scaled(api: Api, emulator: Emulator) -> None:
    """At time_scale 0.001 a 90 s diffusion completes within a fraction of a real second.

    This one is about the real clock, so it waits on it: up to 5 s, fifty times what the job
    needs, so a busy machine cannot fail it.
    """
    import asyncio

    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    for _ in range(500):
        if (await api.job(job_id))["status"] == "completed":
            break
        await asyncio.sleep(0.01)
    assert (await api.job(job_id))["status"] == "completed"


async def test_upscale_is_a_single_image(api: Api) -> None:
    """An upscale lists one image equal to image_url and single-image actions."""
    parent = await api.finished("diffusion", {"text": "x"})
    out = (await api.finished("upscale", {"jobId": parent["job_id"], "imageNo": 2, "type": 1}))[
        "output"
    ]
    assert out["image_urls"] == [out["image_url"]]
    assert out["available_actions"]["upscale"] == [0]
    assert out["available_actions"]["reroll"] is False


async def test_remove_background_is_single_with_zero_seed(api: Api) -> None:
    """remove-background answers task_type remove_background, one image, seed "0"."""
    done = await api.finished("remove-background", {"imgUrl": "https://e.x/a.png"})
    assert done["task_type"] == "remove_background"
    assert done["output"]["image_urls"] == [done["output"]["image_url"]]
    assert done["output"]["seed"] == "0"
    assert done["output"]["available_actions"] == {}


async def test_draft_diffusion_lists_enhance(api: Api) -> None:
    """A ``--draft`` diffusion costs 40 and lists ``enhance`` among its actions."""
    done = await api.finished("diffusion", {"text": "x --v 7 --draft"})
    assert done["output"]["available_actions"]["enhance"] == [0, 1, 2, 3]
    assert done["meta"]["usage"]["frozen"] == 40


async def test_video_output_shape(api: Api) -> None:
    """A video job starts with the video zero output and ends with 4 mp4 URLs and actions."""
    task = await api.create("video-diffusion", {"prompt": "https://e.x/a.png waves"})
    assert task["task_type"] == "video_diffusion"
    assert task["output"] == {"video_urls": None, "seed": ""}
    api.emulator.advance(3600)
    out = (await api.job(task["job_id"]))["output"]
    assert len(out["video_urls"]) == 4
    assert all(url.endswith(".mp4") for url in out["video_urls"])
    assert out["available_actions"] == {"extend": [0, 1, 2, 3], "upscale": [0, 1, 2, 3]}


@pytest.mark.parametrize(("flag", "count"), [("--bs 1", 1), ("--bs 2", 2), ("", 4)])
async def test_video_batch_size_flag(api: Api, flag: str, count: int) -> None:
    """``--bs`` in the prompt sets how many videos a job returns."""
    done = await api.finished("video-diffusion", {"prompt": f"https://e.x/a.png waves {flag}"})
    assert len(done["output"]["video_urls"]) == count


async def test_describe_fills_text_output(api: Api) -> None:
    """describe starts with the text zero output and ends with four prompts."""
    task = await api.create("describe", {"imgUrl": "https://e.x/a.png"})
    assert task["output"] == {"promptEn": "", "description": "", "finalPrompt": "", "prompts": []}
    api.emulator.advance(3600)
    out = (await api.job(task["job_id"]))["output"]
    assert len(out["prompts"]) == 4
    assert out["finalPrompt"] == out["prompts"][0]


async def test_shorten_echoes_the_prompt(api: Api) -> None:
    """shorten keeps the original in promptEn and describes itself as /shorten."""
    out = (await api.finished("shorten", {"prompt": "a very long and ornate prompt text"}))[
        "output"
    ]
    assert out["promptEn"] == "a very long and ornate prompt text"
    assert out["description"].startswith("/shorten ")
    assert out["prompts"]


@pytest.mark.parametrize(
    ("route", "task_type"),
    [
        pytest.param("remove-background", "remove_background", id="remove_background"),
        pytest.param("video-diffusion", "video_diffusion", id="video_diffusion"),
        pytest.param("retexture", "retexture", id="retexture"),
        pytest.param("blend", "blend", id="blend"),
        pytest.param("shorten", "shorten", id="shorten"),
    ],
)
async def test_task_type_spelling(api: Api, route: str, task_type: str) -> None:
    """task_type is spelled as the real service does (underscores for some)."""
    bodies: dict[str, object] = {
        "remove-background": {"imgUrl": "https://e.x/a.png"},
        "video-diffusion": {"prompt": "https://e.x/a.png go"},
        "retexture": {"imgUrl": "https://e.x/a.png", "remixPrompt": "wood"},
        "blend": {"imgUrls": ["https://e.x/a.png", "https://e.x/b.png"], "aspect_ratio": "1:1"},
        "shorten": {"prompt": "long prompt"},
    }
    assert (await api.create(route, bodies[route]))["task_type"] == task_type


async def test_failed_job_shape(api: Api, emulator: Emulator) -> None:
    """fail_next makes a job end failed with the error set, zero output and consume 0."""
    emulator.fail_next(code=4001, message="moderation", raw_message="banned prompt")
    done = await api.finished("diffusion", {"text": "x"})
    assert done["status"] == "failed"
    assert done["error"] == {
        "code": 4001,
        "raw_message": "banned prompt",
        "message": "moderation",
        "detail": None,
    }
    assert done["output"] == {"image_url": "", "image_urls": None, "seed": ""}
    assert done["meta"]["usage"]["consume"] == 0
    assert done["meta"]["ended_at"] != ZERO_TIME


async def test_fail_next_filters_by_task_type(api: Api, emulator: Emulator) -> None:
    """A task-type failure plan skips other task types."""
    emulator.fail_next(task_type="shorten")
    assert (await api.finished("diffusion", {"text": "x"}))["status"] == "completed"
    assert (await api.finished("shorten", {"prompt": "x"}))["status"] == "failed"
    assert (await api.finished("shorten", {"prompt": "x"}))["status"] == "completed"


async def test_failure_rate_one_fails_everything(make_emulator: EmulatorFactory, api: Api) -> None:
    """failure_rate=1 fails every job."""
    api.emulator = await make_emulator(failure_rate=1.0)
    assert (await api.finished("diffusion", {"text": "x"}))["status"] == "failed"


async def test_seed_makes_runs_reproducible(make_emulator: EmulatorFactory, api: Api) -> None:
    """Two emulators with the same seed hand out the same job ids."""
    ids = []
    for _ in range(2):
        api.emulator = await make_emulator(seed=42)
        ids.append((await api.create("diffusion", {"text": "x"}))["job_id"])
    assert ids[0] == ids[1]


async def test_jobs_lists_created_jobs(make_emulator: EmulatorFactory, api: Api) -> None:
    """``emu.jobs`` lists each created job once with its task type and account."""
    emulator = api.emulator = await make_emulator(pending_seconds=1000)  # pending for 1 s
    created = await api.create("diffusion", {"text": "x"})
    (info,) = emulator.jobs
    assert info.job_id == created["job_id"]
    assert info.task_type == "diffusion"
    assert info.status == "pending"
    assert info.account_id == emulator.account_id(api.key or "")


async def test_custom_durations(make_emulator: EmulatorFactory, api: Api) -> None:
    """``durations`` overrides the processing time of a task type."""
    api.emulator = await make_emulator(durations={"diffusion": (500.0, 500.0)})
    meta = (await api.finished("diffusion", {"text": "x"}))["meta"]
    assert (parse(meta["ended_at"]) - parse(meta["started_at"])).total_seconds() in (499, 500, 501)
