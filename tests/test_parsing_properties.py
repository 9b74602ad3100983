"""Properties of the parsers: any JSON value gives the typed model or a LegnextError.

Random JSON rarely spells a task's field names, so besides arbitrary values the tests
mutate the real wire samples field by field: a known key gets an arbitrary value, loses
it, or a known field name turns up where it does not belong.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from legnext_async import (
    APIStatusError,
    AvailableActions,
    Balance,
    Meta,
    Output,
    RateLimitError,
    RawJSON,
    Task,
    TaskError,
    TaskFailedError,
    Usage,
    ValidationError,
)
from legnext_async._client import LegnextClient, _error_fields
from legnext_async._models import _ACTIONS_CACHE, parse_timestamp
from legnext_async._wire import loads

SAMPLES = Path(__file__).resolve().parent / "wire_samples"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


TASK_SAMPLES = [
    _load(name)
    for name in (
        "task-pending-diffusion.live.json",
        "task-completed-diffusion.live.json",
        "task-completed-inpaint.docs.json",
        "error-403-task-envelope.live.json",
    )
]
ERROR_SAMPLES = [
    _load(name)
    for name in (
        "error-400-flat.docs.json",
        "error-nested.docs.json",
        "error-403-task-envelope.live.json",
    )
]
BALANCE_SAMPLE = _load("balance.live.json")


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*map(_keys, value.values()))
    if isinstance(value, list):
        return set().union(*map(_keys, value))
    return set()


#: Every field name of the samples, plus those the models read that no sample shows.
FIELD_NAMES = sorted(
    _keys([*TASK_SAMPLES, *ERROR_SAMPLES, BALANCE_SAMPLE])
    | {"video_urls", "promptEn", "prompt_en", "description", "finalPrompt", "final_prompt"}
    | {"prompts", "enhance", "extend", "estimated_time"}
)

#: Lone surrogates cannot be encoded as UTF-8, yet a decoder may hand them over.
_CHARS = st.characters(codec=None) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_WIRE_WORDS = st.sampled_from(
    [
        "",
        " ",
        "0001-01-01T00:00:00Z",
        "2025-11-05T08:22:37.784663288Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        "completed",
        "failed",
        " Pending ",
        "retry",
        "diffusion",
        "video-diffusion",
        "upload_paint",
        "https://cdn.legnext.ai/mj/x_0.png",
        "42",
        "1e400",
        "-0",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**400)])
    | st.floats()
    | st.text(_CHARS, max_size=20)
    | _WIRE_WORDS
)
KEYS = st.sampled_from(FIELD_NAMES) | st.text(_CHARS, max_size=10)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 text as the service writes it, at any instant, offset and precision."""
    instant = draw(st.datetimes() | st.sampled_from([datetime.min, datetime.max]))
    moment = instant.isoformat(timespec="seconds")
    digits = draw(st.text("0123456789", max_size=12))
    hours, minutes = draw(st.integers(-23, 23)), draw(st.integers(0, 59))
    offset = draw(st.sampled_from(["Z", "", f"{hours:+03d}:{minutes:02d}"]))
    return moment + (f".{digits}" if digits else "") + offset


NUMBERS = (
    st.integers()
    | st.sampled_from([2**63, 10**400, -(10**400)])
    | st.floats()
    | st.booleans()
    | st.integers().map(str)
)
#: What a mutation puts in a known field: a value of the field's own kind, or any JSON.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(["created_at", "started_at", "ended_at", "updated_at"], timestamps()),
    **dict.fromkeys(
        ["code", "frozen", "consume", "account_id", "available_credits", "available_points"],
        NUMBERS,
    ),
    **dict.fromkeys(["balance_usd", "alert_threshold"], NUMBERS),
}


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place inside ``value``: keys of objects and indexes of arrays, depth first."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [(*prefix, key), *_paths(item, (*prefix, key))]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += [(*prefix, index), *_paths(item, (*prefix, index))]
    return found


@st.composite
def mutated(draw: st.DrawFn, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A wire sample with one to six fields replaced, removed or added."""
    data: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 6))):
        places = _paths(data)
        if not places:  # every field is gone: give one back
            data[draw(st.sampled_from(FIELD_NAMES))] = draw(JSON)
            continue
        path = draw(st.sampled_from(places))
        parent: Any = data
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELD_NAMES))] = draw(JSON)
        else:
            kind = FIELD_VALUES.get(last) if isinstance(last, str) else None
            parent[last] = draw(JSON if kind is None else kind | JSON)
    return data


TASKS = mutated(TASK_SAMPLES) | JSON
ERRORS = mutated(ERROR_SAMPLES) | JSON
BALANCES = mutated([BALANCE_SAMPLE]) | JSON


def _use(task: Task) -> None:
    """Touch what a caller reads of a task; any of it raising fails the property."""
    repr(task)
    str(task.status)
    assert isinstance(task.is_finished, bool)
    assert task.status.is_finished is task.is_finished
    task.status.is_queued  # noqa: B018  # reading the property is the test
    task.task_type.family  # noqa: B018
    task.meta.run_seconds  # noqa: B018
    actions = task.output.available_actions
    for name in ("upscale", "reroll", "extend", "something-new"):
        actions.images_for(name)
    dict(task.raw)
    repr(task.raw)
    str(TaskFailedError(task))


@given(TASKS)
def test_a_task_is_read_from_any_object_and_refused_from_anything_else(data: Any) -> None:
    """Task.from_json reads any JSON object as a usable Task, and refuses anything else."""
    if not isinstance(data, dict):
        with pytest.raises(ValidationError):
            Task.from_json(data)
        return
    _use(Task.from_json(data))


@given(TASKS.filter(lambda data: isinstance(data, dict)))
def test_a_task_read_with_its_body_keeps_the_bytes(data: dict[str, Any]) -> None:
    """Task.from_json with the body's bytes keeps them as raw, which reads back as a mapping."""
    body = json.dumps(data).encode()
    task = Task.from_json(data, body=body)
    _use(task)
    assert RawJSON.came_as(task.raw, body)


@given(JSON)
def test_nested_models_parse_any_json(data: Any) -> None:
    """The nested parsers read any JSON value as their model (a non-object means empty)."""
    assert isinstance(Output.from_json(data), Output)
    assert isinstance(Meta.from_json(data), Meta)
    assert isinstance(Usage.from_json(data), Usage)
    assert isinstance(AvailableActions.from_json(data), AvailableActions)
    error = TaskError.from_json(data)
    assert error is None or isinstance(error, TaskError)
    repr((Output.from_json(data), Meta.from_json(data), error))


#: What a service may leave in a field it does not set.
UNSET: st.SearchStrategy[object] = st.sampled_from([None, "", 0, 0.0, False, [], {}])


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param({"code": 0, "message": "", "raw_message": ""}, None, id="all zero"),
        pytest.param(None, None, id="null"),
        pytest.param({"code": "0", "message": []}, None, id="zero as text"),
        pytest.param({"code": 1.5}, None, id="a fraction reads as 0"),
        pytest.param({"raw_message": "upstream"}, TaskError(0, "", "upstream"), id="raw only"),
        pytest.param({"message": "banned"}, TaskError(0, "banned"), id="message only"),
        pytest.param({"code": "7"}, TaskError(7, ""), id="code as text"),
        pytest.param({"code": True}, TaskError(1, ""), id="code true"),
    ],
)
def test_a_task_error_reads_as_none_only_when_all_zero(
    error: object, expected: TaskError | None
) -> None:
    """TaskError.from_json gives None exactly when code reads as 0 and both messages as ""."""
    assert TaskError.from_json(error) == expected


TEXT_FIELDS = ["promptEn", "prompt_en", "description", "finalPrompt", "final_prompt", "prompts"]


@given(st.sampled_from(TASK_SAMPLES), st.dictionaries(st.sampled_from(TEXT_FIELDS), UNSET))
def test_unset_texts_of_an_output_read_as_absent(
    sample: dict[str, Any], texts: dict[str, Any]
) -> None:
    """An output's text fields left null, empty or zero read as if they were absent."""
    output = {"image_url": "https://cdn.example/a.png", **(sample.get("output") or {})}
    for name in TEXT_FIELDS:
        output.pop(name, None)
    assert Output.from_json({**output, **texts}) == Output.from_json(output)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        pytest.param({"prompt_en": "a cat"}, {"prompt_en": "a cat"}, id="prompt_en"),
        pytest.param({"promptEn": "", "prompt_en": "a cat"}, {}, id="promptEn wins, unset"),
        pytest.param({"description": "a cat"}, {"description": "a cat"}, id="description"),
        pytest.param({"final_prompt": "x"}, {"final_prompt": "x"}, id="final_prompt"),
        pytest.param({"prompts": ["a", ""]}, {"prompts": ("a",)}, id="prompts"),
        pytest.param({"prompts": [], "description": 0}, {}, id="all unset"),
    ],
)
def test_the_texts_of_an_output_are_read_when_one_is_set(
    texts: dict[str, Any], expected: dict[str, Any]
) -> None:
    """A describe or shorten job's texts are read whichever of them is set."""
    output = Output.from_json({"image_url": "https://cdn.example/a.png", **texts})
    assert output == Output(image_url="https://cdn.example/a.png", **expected)


#: Action maps as the service sends them: lists of image numbers, and ``reroll``.
ACTION_MAPS = st.dictionaries(
    st.sampled_from(["upscale", "variation", "pan", "zoom", "reroll"]),
    st.lists(st.integers(0, 3), max_size=4) | st.booleans(),
    max_size=4,
)


def _look_alike(value: object, draw: st.DrawFn) -> object:
    """A value of another type that compares equal to ``value`` (1, 1.0 and True)."""
    if isinstance(value, list):
        return [_look_alike(item, draw) for item in value]
    if isinstance(value, bool):
        return draw(st.sampled_from([value, int(value), float(value)]))
    if isinstance(value, int):
        return draw(st.sampled_from([value, float(value), *([bool(value)] if value < 2 else [])]))
    return value


@st.composite
def look_alike_maps(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """An action map and a twin equal to it under ``==``, though not of the same types."""
    actions = draw(ACTION_MAPS)
    return actions, {key: _look_alike(value, draw) for key, value in actions.items()}


@given(look_alike_maps())
def test_reused_available_actions_equal_freshly_read_ones(
    maps: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The cache of available_actions maps never answers for a different map."""
    _ACTIONS_CACHE.clear()  # each example starts cold, so it fails or passes on its own
    for raw in (*maps[::-1], *maps):
        assert AvailableActions.from_json(raw) == AvailableActions._build(raw)


@given(timestamps() | st.text(_CHARS, max_size=40))
def test_any_timestamp_text_reads_as_utc_or_none(text: str) -> None:
    """parse_timestamp of any text gives an aware UTC datetime, or None when unreadable."""
    parsed = parse_timestamp(text)
    assert parsed is None or parsed.utcoffset() == timedelta(0)


@given(BALANCES)
def test_a_balance_is_read_from_any_object_and_refused_from_anything_else(data: Any) -> None:
    """Balance.from_json reads any JSON object as a Balance, and refuses anything else."""
    if not isinstance(data, dict):
        with pytest.raises(ValidationError):
            Balance.from_json(data)
        return
    balance = Balance.from_json(data)
    repr(balance)
    assert isinstance(balance.balance_usd, float)
    assert isinstance(balance.available_credits, int)


@given(ERRORS)
def test_any_json_error_body_gives_its_fields(data: Any) -> None:
    """_error_fields reads (code, message, raw_message) of the right types from any JSON."""
    code, message, raw_message = _error_fields(data)
    assert not isinstance(code, bool)  # a JSON true is not a code
    assert isinstance(message, str)
    assert isinstance(raw_message, str)


#: What may stand in Location and Retry-After: the forms documented, and noise.
HEADER_TEXT = st.text(_CHARS.filter(lambda c: c not in "\r\n"), max_size=30) | st.sampled_from(
    [
        "https://api.legnext.ai.evil.example/api/v1/job/x",
        "/relative/path",
        "120",
        "-5",
        "1e400",
        "nan",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Mon, 01 Jan 0001 00:00:00 +2359",
        "Fri, 31 Dec 9999 23:59:59 -2359",
    ]
)
ERROR_BODIES = (
    ERRORS.map(lambda data: json.dumps(data).encode())
    | st.binary(max_size=40)
    | st.sampled_from([b"[" * 100_000, b'{"error":' * 50_000, b"[" * 33 + b"]" * 33])
)
#: A client to build errors with; it opens no session until it sends something.
ERROR_CLIENT = LegnextClient(api_key="k" * 16, base_url="http://127.0.0.1:9/api")


@given(
    st.integers(300, 599),
    ERROR_BODIES,
    HEADER_TEXT | st.sampled_from(["http://[::1", "http://[", "//]x", "http://127.0.0.2:99999/"]),
    HEADER_TEXT,
)
def test_any_error_answer_becomes_an_api_status_error(
    status: int, body: bytes, location: str, retry_after: str
) -> None:
    """An error status with any body and headers gives the APIStatusError for that status."""
    headers = CIMultiDict({"Location": location, "Retry-After": retry_after})
    error = ERROR_CLIENT._status_error("POST", "/v1/diffusion", status, body, headers)
    assert isinstance(error, APIStatusError)
    assert error.status == status
    assert isinstance(error.message, str)
    assert error.message
    str(error)
    if status == 429:
        assert isinstance(error, RateLimitError)
        assert error.retry_after is None or error.retry_after >= 0


#: Bodies around the shape of an answer: JSON text in an encoding json reads, with
#: whitespace or junk around it, cut short, or random bytes after a ``{``.
JSON_BODIES = (
    st.tuples(
        st.dictionaries(st.text(max_size=3), JSON, max_size=3) | JSON,
        st.sampled_from(["", "", " "]),
        st.sampled_from(["", " ", "\r\n", "\t", "\x0c", "\u00a0", " x", "{}", "]"]),
        st.sampled_from(["utf-8", "utf-8", "utf-16-le", "utf-16", "utf-32", "utf-8-sig"]),
        st.booleans(),
    ).map(
        lambda parts: (parts[1] + json.dumps(parts[0]) + parts[2]).encode(parts[3])[
            : -1
            if parts[4]
            else None  # a body cut short, now and then
        ]
    )
    | st.binary(max_size=40).map(lambda tail: b"{" + tail)
)


def _read(body: bytes, reader: Any) -> tuple[str, str]:
    """What ``reader(body)`` gives, as text: its value (NaN is not equal to itself), or the
    name and text of the ``ValueError`` it raises."""
    try:
        return "value", repr(reader(body))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return type(exc).__name__, str(exc)


@given(JSON_BODIES)
def test_loads_reads_any_body_as_json_loads_does(body: bytes) -> None:
    """``_wire.loads`` gives json.loads's value or error for any body within the depth limit."""
    assert _read(body, loads) == _read(body, json.loads)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"a": 1} \r\n\t', id="JSON whitespace after"),
        pytest.param(b'{"a": 1}\x0c', id="form feed after"),
        pytest.param('{"a": 1}\u00a0'.encode(), id="no-break space after"),
        pytest.param(b'{"a": 1}{}', id="a second object"),
        pytest.param(b"{", id="cut short"),
        pytest.param('{"a": "\u00e9"}'.encode("utf-16-le"), id="UTF-16-LE"),
        pytest.param('{"a": "\u00e9"}'.encode("utf-32-le"), id="UTF-32-LE"),
        pytest.param(b'{"a": "\xff"}', id="not UTF-8"),
        pytest.param(b'{"a": "\xed\xa0\x80"}', id="UTF-8 of a lone surrogate"),
        pytest.param(b'{"a": NaN, "b": -Infinity}', id="NaN"),
    ],
)
def test_loads_reads_edge_bodies_as_json_loads_does(body: bytes) -> None:
    """``_wire.loads`` agrees with json.loads where its shortcut for objects stops."""
    assert _read(body, loads) == _read(body, json.loads)
