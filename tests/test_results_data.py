"""Results are data: tasks and results go to JSON and back without loss, and need no client.

``Task.to_json()`` is the task as the service sends it, so ``Task.from_json`` reads it back
equal; a result's ``to_json()`` is its task's, and ``TaskResult.from_json`` gives back an
equal result of the same class. A result stays readable after its client has closed; its
follow-ups then raise a ClientClosedError that says how to follow up, until ``bind`` gives
it an open client.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legnext_async import (
    AvailableActions,
    ClientClosedError,
    ImageResult,
    LegnextClient,
    LegnextError,
    PollPolicy,
    Task,
    TaskResult,
    TaskType,
    TextResult,
    ValidationError,
    VideoResult,
)
from legnext_async.emulator import Emulator

from .conftest import API_KEY, FAST_SCALE

SAMPLES = Path(__file__).resolve().parent / "wire_samples"
#: The task-shaped samples: two live, one from the docs, and the live 403 envelope.
TASK_SAMPLES = (
    "task-pending-diffusion.live.json",
    "task-completed-diffusion.live.json",
    "task-completed-inpaint.docs.json",
    "error-403-task-envelope.live.json",
)


def sample(name: str) -> dict[str, Any]:
    """A wire sample as parsed JSON."""
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` written as JSON text and read back, as a store would."""
    again: dict[str, Any] = json.loads(json.dumps(data))
    return again


# --- tasks -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASK_SAMPLES)
def test_a_task_from_the_wire_round_trips(name: str) -> None:
    """A task read from a wire sample reads back equal from its JSON text."""
    task = Task.from_json(sample(name))
    assert Task.from_json(through_json(task.to_json())) == task


def test_to_json_is_the_wire_form() -> None:
    """Unset timestamps are the service's zero time, no error is the all-zero error."""
    data = Task.from_json(sample("task-pending-diffusion.live.json")).to_json()
    assert data["meta"]["started_at"] == "0001-01-01T00:00:00Z"
    assert data["meta"]["created_at"] == "2025-12-17T11:08:36Z"
    assert data["error"] == {"code": 0, "message": "", "raw_message": "", "detail": None}
    assert data["task_type"] == "diffusion"
    assert data["status"] == "pending"


def test_to_json_keeps_what_the_model_does_not_read() -> None:
    """Fields the client does not model stay, so nothing the service sent is lost."""
    wire = sample("task-completed-diffusion.live.json")
    wire["detail"] = {"progress": 100}
    data = Task.from_json(wire).to_json()
    assert data["config"]["service_mode"] == "public"
    assert data["config"]["webhook_config"] == wire["config"]["webhook_config"]
    assert data["detail"] == {"progress": 100}


def test_to_json_writes_the_attributes_over_what_came_in() -> None:
    """A task changed after it was read is written as it is now, not as it came."""
    task = Task.from_json(sample("task-completed-diffusion.live.json"))
    fewer = attrs.evolve(task.output, available_actions=AvailableActions(upscale=(1,)))
    changed = attrs.evolve(task, job_id="job-2", output=fewer, callback=None)
    again = Task.from_json(changed.to_json())
    assert again == changed
    assert again.output.available_actions == AvailableActions(upscale=(1,))


def test_to_json_shares_nothing_with_the_task() -> None:
    """Changing the dict to_json gave changes neither the task nor its next to_json."""
    task = Task.from_json(sample("task-completed-diffusion.live.json"))
    data = task.to_json()
    data["output"]["image_urls"].clear()
    data["config"]["service_mode"] = "changed"
    assert task.to_json()["config"]["service_mode"] == "public"
    assert len(task.to_json()["output"]["image_urls"]) == 4


# A task as the service might send it: a sample with any field swapped for odd values.
texts = st.text(max_size=12)
timestamps = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00Z", "", "2026-01-04T05:54:18.784663288Z"]),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    texts,
)
urls = st.one_of(
    st.sampled_from(["https://cdn.legnext.ai/mj/a_0.png", "http://127.0.0.1/x.mp4"]),
    st.sampled_from(["javascript:alert(1)", "", "/relative.png"]),
    texts,
)
numbers = st.lists(st.one_of(st.integers(0, 3), st.booleans(), texts), max_size=5)
action_names = st.sampled_from(["upscale", "variation", "pan", "extend", "reroll", "zoom", "x"])
strings_or_null = st.one_of(st.none(), texts)
counts = st.one_of(st.integers(-5, 2000), st.floats(allow_nan=False), texts, st.none())


@st.composite
def wire_tasks(draw: st.DrawFn) -> dict[str, Any]:
    """A wire sample with any of its fields replaced by a generated value."""
    data = copy.deepcopy(sample(draw(st.sampled_from(TASK_SAMPLES))))
    known = [t.value for t in TaskType] + ["remove-background", "Video_Upscale"]
    data["task_type"] = draw(st.one_of(st.sampled_from(known), texts))
    data["status"] = draw(st.one_of(st.sampled_from(["completed", "retry", " Failed"]), texts))
    data["job_id"] = draw(st.one_of(st.just(data["job_id"]), texts))
    data["model"] = draw(strings_or_null)
    data["logs"] = draw(st.one_of(st.none(), st.lists(texts, max_size=3)))
    data["config"] = {"webhook_config": {"endpoint": draw(strings_or_null)}}
    data["output"] = {
        "image_url": draw(urls),
        "image_urls": draw(st.one_of(st.none(), st.lists(urls, max_size=5))),
        "video_urls": draw(st.one_of(st.none(), st.lists(urls, max_size=5))),
        "seed": draw(strings_or_null),
        "available_actions": draw(
            st.dictionaries(action_names, st.one_of(numbers, st.booleans()), max_size=5)
        ),
        "promptEn": draw(strings_or_null),
        "finalPrompt": draw(strings_or_null),
        "description": draw(strings_or_null),
        "prompts": draw(st.one_of(st.none(), st.lists(strings_or_null, max_size=4))),
    }
    data["meta"] = {
        "created_at": draw(timestamps),
        "started_at": draw(timestamps),
        "ended_at": draw(timestamps),
        "usage": {"type": draw(strings_or_null), "frozen": draw(counts), "consume": draw(counts)},
    }
    data["error"] = {"code": draw(counts), "message": draw(texts), "raw_message": draw(texts)}
    data[draw(st.sampled_from(["input", "detail", "new_field"]))] = draw(strings_or_null)
    return data


@settings(max_examples=300, deadline=None)
@given(wire_tasks())
def test_any_task_round_trips_through_json(data: dict[str, Any]) -> None:
    """Whatever a task holds, its JSON reads back equal, and writes the same JSON again."""
    task = Task.from_json(data)
    written = through_json(task.to_json())
    again = Task.from_json(written)
    assert again == task
    assert again.to_json() == written


# --- results -----------------------------------------------------------------------------


@pytest.fixture
async def results(emu: Emulator, legnext: LegnextClient) -> list[TaskResult]:
    """One finished result of each family: a grid, a video and a describe."""
    jobs = [
        emu.seed_job("diffusion"),
        emu.seed_job("video_diffusion"),
        emu.seed_job("describe"),
    ]
    return [await legnext.task(job_id) for job_id in jobs]


async def test_a_result_round_trips_through_json(results: list[TaskResult]) -> None:
    """A result of each family reads back from its JSON text as an equal result of its class."""
    assert [type(r) for r in results] == [ImageResult, VideoResult, TextResult]
    for result in results:
        again = TaskResult.from_json(through_json(result.to_json()))
        assert type(again) is type(result)
        assert again == result
        assert type(result).from_json(result.to_json()) == result


async def test_a_result_stays_readable_after_its_client_closed(
    results: list[TaskResult], legnext: LegnextClient
) -> None:
    """Everything a result shows comes from its task, so closing the client changes nothing."""
    grid, video, text = results
    before = [grid.to_json(), video.to_json(), text.to_json()]
    await legnext.aclose()
    assert isinstance(grid, ImageResult)
    assert len(grid.image_urls) == 4
    assert grid.available_actions.upscale == (0, 1, 2, 3)
    assert isinstance(video, VideoResult)
    assert len(video.video_urls) == 4
    assert isinstance(text, TextResult)
    assert text.prompts
    assert [grid.to_json(), video.to_json(), text.to_json()] == before
    assert "client" not in repr(grid)


async def test_a_follow_up_without_a_client_says_how_to_follow_up(
    emu: Emulator, results: list[TaskResult]
) -> None:
    """A result read from JSON has no client: its follow-up raises and names both ways on."""
    restored = ImageResult.from_json(results[0].to_json())
    before = len(emu.requests)
    with pytest.raises(ClientClosedError) as caught:
        await restored.upscale(0)
    assert isinstance(caught.value, LegnextError)
    message = str(caught.value)
    assert "ImageResult.upscale() needs an open client" in message
    assert "was read from JSON" in message
    assert "client.upscale(result.job_id, ...)" in message
    assert "result.bind(client).upscale(...)" in message
    assert len(emu.requests) == before


async def test_a_follow_up_after_the_client_closed_raises(
    emu: Emulator, legnext: LegnextClient, results: list[TaskResult]
) -> None:
    """A result whose client has closed raises the same error, and sends nothing."""
    video = results[1]
    assert isinstance(video, VideoResult)
    await legnext.aclose()
    before = len(emu.requests)
    with pytest.raises(ClientClosedError, match="belongs to a closed client") as caught:
        await video.extend_video(0)
    assert "client.extend_video(result.job_id, ...)" in str(caught.value)
    assert len(emu.requests) == before


async def test_a_keyword_parent_is_named_in_the_hint(results: list[TaskResult]) -> None:
    """Where the client method takes the parent by keyword, the hint shows it so."""
    restored = ImageResult.from_json(results[0].to_json())
    with pytest.raises(ClientClosedError, match=r"client\.video_diffusion\(job_id=result\.job_id"):
        await restored.video_diffusion(0)


async def test_bind_gives_a_result_that_follows_up(
    emu: Emulator, results: list[TaskResult]
) -> None:
    """A restored result bound to an open client follows up through it."""
    restored = ImageResult.from_json(through_json(results[0].to_json()))
    async with LegnextClient(
        api_key=API_KEY, base_url=emu.base_url, poll=PollPolicy(time_scale=FAST_SCALE)
    ) as other:
        bound = restored.bind(other)
        assert bound == restored
        handle = await bound.upscale(2)
    posted = [r.body for r in emu.requests if r.method == "POST"]
    assert posted == [{"jobId": restored.job_id, "imageNo": 2, "type": 0}]
    assert handle.job_id != restored.job_id


@pytest.mark.parametrize(
    "data",
    [pytest.param([], id="list"), pytest.param("{}", id="str"), pytest.param(None, id="none")],
)
def test_from_json_refuses_what_is_not_an_object(data: Any) -> None:
    """Anything but a JSON object is a ValidationError naming ``data``."""
    with pytest.raises(ValidationError) as caught:
        TaskResult.from_json(data)
    assert caught.value.field == "data"
