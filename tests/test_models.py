"""Parsing the real wire: tolerant of zero timestamps, nulls, unknown values and fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legnext_async import (
    AvailableActions,
    Balance,
    Mask,
    Meta,
    Output,
    Polygon,
    RawJSON,
    Task,
    TaskStatus,
    TaskType,
    Usage,
    ValidationError,
)

SAMPLES = Path(__file__).resolve().parent / "wire_samples"


def sample(name: str) -> dict[str, Any]:
    """A wire sample (copied from the reference: real and documented bodies)."""
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def test_pending_task_has_no_timestamps_and_no_images() -> None:
    """A live pending task: zero timestamps become None and null image_urls an empty tuple."""
    task = Task.from_json(sample("task-pending-diffusion.live.json"))
    assert task.status is TaskStatus.PENDING
    assert task.task_type is TaskType.DIFFUSION
    assert task.meta.created_at == datetime(2025, 12, 17, 11, 8, 36, tzinfo=UTC)
    assert task.meta.started_at is None
    assert task.meta.ended_at is None
    assert task.output.image_urls == ()
    assert task.output.image_url is None
    assert task.output.seed is None
    assert task.error is None
    assert task.meta.usage.frozen == 80
    assert task.meta.usage.consume == 0
    assert not task.is_finished


def test_completed_task_exposes_images_seed_and_actions() -> None:
    """A live completed grid: four URLs, seed, run time and every action."""
    task = Task.from_json(sample("task-completed-diffusion.live.json"))
    assert task.status is TaskStatus.COMPLETED
    assert len(task.output.image_urls) == 4
    assert all(url.endswith(f"_{i}.png") for i, url in enumerate(task.output.image_urls))
    assert task.output.seed == "3736631383"
    assert task.meta.run_seconds == 40.0
    actions = task.output.available_actions
    assert actions.upscale == (0, 1, 2, 3)
    assert actions.edit == (0, 1, 2, 3)
    assert actions.reroll is True
    assert task.callback == "https://legnext.ai/api/backend-proxy/callback"
    assert task.is_finished


def test_completed_inpaint_docs_sample() -> None:
    """The documented finished inpaint parses with its usage charged."""
    task = Task.from_json(sample("task-completed-inpaint.docs.json"))
    assert task.task_type is TaskType.INPAINT
    assert task.meta.usage.consume == 120
    assert task.output.available_actions.inpaint == (0, 1, 2, 3)


def test_error_envelope_parses_as_failed_task_with_error() -> None:
    """The live task-shaped error envelope: null output and meta still give a Task."""
    task = Task.from_json(sample("error-403-task-envelope.live.json"))
    assert task.status is TaskStatus.FAILED
    assert task.job_id == ""
    assert task.output.image_urls == ()
    assert task.meta.created_at is None
    assert task.error is not None
    assert task.error.code == 403
    assert task.error.message.startswith("This feature is only available")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="null"),
        pytest.param([sample("task-completed-diffusion.live.json")], id="array"),
        pytest.param("completed", id="string"),
        pytest.param(0, id="number"),
    ],
)
def test_a_task_that_is_not_an_object_is_refused(data: Any) -> None:
    """A callback body holding a non-object as its task raises ValidationError, not TypeError."""
    with pytest.raises(ValidationError, match="must be a JSON object") as caught:
        Task.from_json(data)
    assert caught.value.field == "data"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="null"),
        pytest.param(["data"], id="array"),
        pytest.param("data", id="string"),
    ],
)
def test_a_balance_that_is_not_an_object_is_refused(data: Any) -> None:
    """A balance that is not a JSON object raises ValidationError naming ``data``."""
    with pytest.raises(ValidationError, match="must be a JSON object") as caught:
        Balance.from_json(data)
    assert caught.value.field == "data"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("pending", TaskStatus.PENDING, id="pending"),
        pytest.param("staged", TaskStatus.STAGED, id="staged"),
        pytest.param("processing", TaskStatus.PROCESSING, id="processing"),
        pytest.param("completed", TaskStatus.COMPLETED, id="completed"),
        pytest.param("failed", TaskStatus.FAILED, id="failed"),
    ],
)
def test_known_statuses(value: str, expected: TaskStatus) -> None:
    """Every documented status parses to its member."""
    assert TaskStatus(value) is expected
    assert TaskStatus(value).is_known


def test_unknown_status_is_kept_and_not_finished() -> None:
    """An undocumented status (``retry``) keeps its value and counts as not finished."""
    task = Task.from_json({**sample("task-pending-diffusion.live.json"), "status": "retry"})
    assert task.status.value == "retry"
    assert not task.status.is_known
    assert not task.status.is_finished
    assert not task.is_finished


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("remove_background", TaskType.REMOVE_BACKGROUND, id="underscore"),
        pytest.param("remove-background", TaskType.REMOVE_BACKGROUND, id="hyphen"),
        pytest.param("video-diffusion", TaskType.VIDEO_DIFFUSION, id="video-hyphen"),
        pytest.param("extend_video", TaskType.EXTEND_VIDEO, id="extend"),
        pytest.param("upload_paint", TaskType.UPLOAD_PAINT, id="upload-underscore"),
        pytest.param("Inpaint", TaskType.INPAINT, id="case"),
    ],
)
def test_task_type_spellings(value: str, expected: TaskType) -> None:
    """``task_type`` with ``-`` or ``_`` (and any case) maps to one member."""
    assert TaskType(value) is expected


def test_unknown_task_type_is_kept() -> None:
    """A task type this client does not know keeps its value and counts as an image job."""
    kind = TaskType("enhance-upscale")
    assert kind.value == "enhance-upscale"
    assert not kind.is_known
    assert kind.family == "image"


def test_unknown_fields_and_wrong_types_are_ignored() -> None:
    """Extra fields, a null output, a string meta and odd lists do not break parsing."""
    task = Task.from_json(
        {
            "job_id": "j1",
            "task_type": "upscale",
            "status": "completed",
            "brand_new_field": {"x": 1},
            "output": {"image_urls": ["https://a/0.png", None, 3], "available_actions": None},
            "meta": "not an object",
            "logs": None,
            "error": {"code": 0, "message": "", "raw_message": ""},
        }
    )
    assert task.output.image_urls == ("https://a/0.png",)
    assert task.output.available_actions == AvailableActions()
    assert task.meta.created_at is None
    assert task.logs == ()
    assert task.error is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2026-01-04T05:54:17Z", datetime(2026, 1, 4, 5, 54, 17, tzinfo=UTC), id="z"),
        pytest.param(
            "2025-11-05T08:22:37.784663288Z",
            datetime(2025, 11, 5, 8, 22, 37, 784663, tzinfo=UTC),
            id="nanoseconds",
        ),
        pytest.param(
            "2026-01-04T07:54:17+02:00", datetime(2026, 1, 4, 5, 54, 17, tzinfo=UTC), id="offset"
        ),
        pytest.param("0001-01-01T00:00:00Z", None, id="zero"),
        pytest.param("", None, id="empty"),
        pytest.param("yesterday", None, id="garbage"),
        pytest.param("9999-12-31T23:59:59-00:01", None, id="past-the-last-utc-datetime"),
    ],
)
def test_timestamps(value: str, expected: datetime | None) -> None:
    """RFC 3339 timestamps become aware UTC datetimes; zero, empty, garbage or too late: None."""
    task = Task.from_json(
        {"job_id": "j", "task_type": "x", "status": "pending", "meta": {"created_at": value}}
    )
    assert task.meta.created_at == expected


def test_a_long_timestamp_text_is_read_every_time_and_never_kept() -> None:
    """A timestamp text past 40 characters (a hostile answer's) is read afresh, so the kept
    readings stay small whatever the service sends."""
    from legnext_async import _models

    _models._kept_timestamp.cache_clear()
    for n in range(50):
        text = f"2026-01-04T05:54:17.{'1' * 30}{n:02d}Z"
        assert _models.parse_timestamp(text) == datetime(2026, 1, 4, 5, 54, 17, 111111, tzinfo=UTC)
    assert _models._kept_timestamp.cache_info().currsize == 0


def test_text_output_fields() -> None:
    """Describe/shorten output uses camelCase keys inside a snake_case response."""
    task = Task.from_json(
        {
            "job_id": "j",
            "task_type": "describe",
            "status": "completed",
            "output": {
                "promptEn": "1. a cat",
                "description": "/describe",
                "finalPrompt": "a cat",
                "prompts": ["a cat", "a dog"],
            },
        }
    )
    assert task.task_type.family == "text"
    assert task.output.prompts == ("a cat", "a dog")
    assert task.output.prompt_en == "1. a cat"
    assert task.output.final_prompt == "a cat"


def test_available_actions_keep_unknown_actions() -> None:
    """An action this client does not model is kept in ``other``."""
    actions = AvailableActions.from_json({"zoom": [1, 2], "reroll": False, "upscale": [0]})
    assert actions.other == {"zoom": (1, 2)}
    assert actions.images_for("zoom") == (1, 2)
    assert actions.images_for("upscale") == (0,)
    assert actions.images_for("nothing") == ()
    assert actions.reroll is False


def test_balance_from_live_sample() -> None:
    """The balance wrapper is unwrapped into a typed Balance."""
    balance = Balance.from_json(sample("balance.live.json"))
    assert balance.balance_usd == 72.048
    assert balance.available_credits == 71000
    assert balance.available_points == 1048
    assert balance.updated_at == datetime(2025, 11, 5, 8, 22, 37, 784663, tzinfo=UTC)


def test_a_balance_too_big_for_a_float_reads_as_zero() -> None:
    """An integer balance past float's range reads as 0.0 rather than raising OverflowError."""
    data = sample("balance.live.json")
    data["data"] |= {"balance_usd": 10**400, "alert_threshold": -(10**400)}
    balance = Balance.from_json(data)
    assert balance.balance_usd == 0.0
    assert balance.alert_threshold == 0.0
    assert balance.available_credits == 71000


# --- Mask and Polygon -----------------------------------------------------------------

SQUARE = [10, 10, 10, 100, 100, 100, 100, 10]


def test_polygon_wire_form() -> None:
    """A polygon serialises to the documented width/height/points object."""
    polygon = Polygon(width=500, height=500, points=SQUARE)
    assert polygon.to_json() == {"width": 500, "height": 500, "points": SQUARE}
    assert polygon.points == tuple(SQUARE)


@pytest.mark.parametrize(
    ("kwargs", "field", "limit"),
    [
        pytest.param({"width": 499}, "Polygon.width", "500 to 4096", id="width-low"),
        pytest.param({"width": 4097}, "Polygon.width", "500 to 4096", id="width-high"),
        pytest.param({"height": 10}, "Polygon.height", "500 to 4096", id="height-low"),
        pytest.param({"width": True}, "Polygon.width", "integer", id="width-bool"),
        pytest.param({"height": 600.0}, "Polygon.height", "integer", id="height-float"),
        pytest.param({"points": [1, 2, 3, 4]}, "Polygon.points", "at least 6", id="too-few"),
        pytest.param({"points": [1, 2, 3, 4, 5, 6, 7]}, "Polygon.points", "even", id="odd"),
        pytest.param({"points": [1, 2, 3, 4, 5, 6.5]}, "Polygon.points[5]", "integer", id="float"),
        pytest.param({"points": [1, 2, 3, 4, 5, True]}, "Polygon.points[5]", "integer", id="bool"),
        pytest.param({"points": [501, 2, 3, 4, 5, 6]}, "Polygon.points[0]", "x", id="x-out"),
        pytest.param({"points": [1, -1, 3, 4, 5, 6]}, "Polygon.points[1]", "y", id="y-neg"),
        pytest.param(
            {"points": [1, 2, 10**5000, 4, 5, 6]},
            "Polygon.points[2]",
            "an integer of 16610 bits",
            id="x-too-long-to-print",
        ),
        pytest.param({"points": "1,2,3"}, "Polygon.points", "list", id="string"),
    ],
)
def test_polygon_limits(kwargs: dict[str, Any], field: str, limit: str) -> None:
    """Each broken polygon limit raises ValidationError naming the field and the limit."""
    arguments: dict[str, Any] = {"width": 500, "height": 500, "points": SQUARE, **kwargs}
    with pytest.raises(ValidationError) as caught:
        Polygon(**arguments)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert limit in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_points_may_touch_the_frame_edges() -> None:
    """Points on the frame's edge (0 and width/height) are inside it."""
    assert Polygon(width=500, height=600, points=[0, 0, 500, 0, 500, 600]).height == 600


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({}, "mask", id="neither"),
        pytest.param(
            {"areas": [Polygon(500, 500, SQUARE)], "url": "https://x/m.png"}, "mask", id="both"
        ),
        pytest.param({"areas": []}, "mask.areas", id="empty-areas"),
        pytest.param({"areas": [{"width": 500}]}, "mask.areas[0]", id="dict-area"),
        pytest.param({"areas": 5}, "mask.areas", id="number-areas"),
        pytest.param({"areas": Polygon(500, 500, SQUARE)}, "mask.areas", id="lone-polygon"),
        pytest.param({"areas": "areas"}, "mask.areas", id="string-areas"),
        pytest.param({"url": "m.png"}, "mask.url", id="relative-url"),
        pytest.param({"url": "ftp://x/m.png"}, "mask.url", id="ftp-url"),
        pytest.param({"url": "https://x/" + "a" * 1100}, "mask.url", id="long-url"),
    ],
)
def test_mask_rules(kwargs: dict[str, Any], field: str) -> None:
    """A mask takes exactly one of non-empty areas or an absolute http(s) URL."""
    with pytest.raises(ValidationError) as caught:
        Mask(**kwargs)
    assert caught.value.field == field


def test_mask_wire_forms() -> None:
    """Areas and URL masks serialise to the documented shapes."""
    assert Mask(areas=[Polygon(500, 500, SQUARE)]).to_json() == {
        "areas": [{"width": 500, "height": 500, "points": SQUARE}]
    }
    assert Mask(url="https://example.com/m.png").to_json() == {"url": "https://example.com/m.png"}


def test_identical_action_maps_share_one_value() -> None:
    """Equal ``available_actions`` maps give the same frozen value; different ones do not."""
    data = sample("task-completed-diffusion.live.json")["output"]["available_actions"]
    first = AvailableActions.from_json(data)
    assert AvailableActions.from_json(json.loads(json.dumps(data))) is first
    changed = AvailableActions.from_json({**data, "reroll": False})
    assert changed.reroll is False
    assert first.reroll is True
    odd = AvailableActions.from_json({"zoom": [{"x": 1}], "upscale": [1]})
    assert odd.upscale == (1,)


@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param({"upscale": [1.0]}, {"upscale": [1]}, id="float-then-int"),
        pytest.param({"upscale": [True]}, {"upscale": [1]}, id="bool-then-int"),
        pytest.param({"reroll": 1}, {"reroll": True}, id="int-then-bool"),
    ],
)
def test_a_look_alike_action_map_does_not_answer_for_another(
    first: dict[str, Any], then: dict[str, Any]
) -> None:
    """Maps equal under ``==`` but not alike (``[1.0]``, ``[1]``) each read as themselves."""
    AvailableActions.from_json(first)
    assert AvailableActions.from_json(then) == AvailableActions._build(then)
    assert AvailableActions.from_json(then) != AvailableActions()


def test_raw_json_keeps_the_bytes_and_decodes_on_first_read() -> None:
    """``Task.raw`` from bytes: the same mapping as the parsed dict, decoded only when read."""
    body = (SAMPLES / "task-completed-diffusion.live.json").read_bytes()
    data = json.loads(body)
    task = Task.from_json(data, body=body)
    raw = task.raw
    assert isinstance(raw, RawJSON)
    assert raw.body == body
    assert raw._data is None  # nothing decoded yet
    assert raw["job_id"] == data["job_id"]
    assert raw.get("no such field") is None
    assert "output" in raw
    assert len(raw) == len(data)
    assert dict(raw) == data
    assert raw == data
    assert data == raw
    assert raw == RawJSON(body)
    assert RawJSON.came_as(raw, body)
    assert not RawJSON.came_as(data, body)  # a dict, however equal
    assert raw != RawJSON(b'{"job_id": "other"}')
    assert repr(raw) == repr(data)
    assert json.loads(json.dumps(dict(raw))) == data
    with pytest.raises(TypeError):
        hash(raw)
    assert task == Task.from_json(data)  # raw takes no part in equality


def test_raw_json_of_a_non_object_is_empty() -> None:
    """Bytes that are not a JSON object read as an empty mapping."""
    assert dict(RawJSON(b"[1, 2]")) == {}


def test_blank_outputs_and_equal_usages_are_shared() -> None:
    """A queued job's blank output is the shared empty one; equal usages are one object."""
    first = Task.from_json(sample("task-pending-diffusion.live.json"))
    second = Task.from_json(sample("task-pending-diffusion.live.json"))
    assert first.output is second.output
    assert first.output == Output()
    assert first.meta.usage is second.meta.usage
    assert first.meta.usage == Usage(type="point", frozen=80, consume=0)


def test_equal_metas_are_shared_and_big_ones_never_kept() -> None:
    """A meta read again is the same object; one past 512 bytes of key (a hostile answer's)
    is read afresh every time and never kept."""
    from legnext_async import _models

    meta = {"created_at": "2026-01-04T05:54:17Z", "usage": {"frozen": 80, "consume": 0}}
    assert Meta.from_json(dict(meta)) is Meta.from_json(dict(meta))
    _models._META_CACHE.clear()
    for n in range(50):
        big = {**meta, "started_at": f"2026-01-04T05:54:17.{'1' * 600}{n}Z"}
        assert Meta.from_json(big).started_at == datetime(2026, 1, 4, 5, 54, 17, 111111, tzinfo=UTC)
    assert _models._META_CACHE == {}


def test_big_available_actions_maps_are_read_but_never_cached() -> None:
    """A hostile answer's huge ``available_actions`` maps are parsed, and none is kept in the
    cache of common maps, so its memory stays small whatever the service sends."""
    from legnext_async import _models

    before = dict(_models._ACTIONS_CACHE)
    numbers = list(range(10_000))
    for n in range(300):
        actions = AvailableActions.from_json({"upscale": [*numbers, n], f"op{n}": [0]})
        assert len(actions.upscale) == 10_001
        actions = AvailableActions.from_json({("x" * 5_000) + str(n): [0, 1]})
        assert actions.other
        actions = AvailableActions.from_json({"upscale": [0, 1], "reroll": "x" * n})
        assert actions.upscale == (0, 1)
        assert not actions.reroll
    assert before == _models._ACTIONS_CACHE
