"""Request-body validation: the documented ranges of reference §3, as HTTP 400s.

One checker (:func:`validate`) reads each endpoint's table from ``_bodies.py``.

The backend looks like Go (reference §1), so the rules follow Go's JSON decoding:
integers must be JSON integers (``1.0`` and ``true`` are not ints), floats accept any
JSON number, ``null`` for an optional field and ``""`` for an optional text field mean
"not given", unknown fields are ignored. Every message names the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
from yarl import URL

from ._bodies import (
    BODIES,
    CALLBACK,
    POLYGON_FRAME,
    POLYGON_MIN_POINTS,
    PROMPT_MAX,
    TEXTUAL,
    URL_MAX,
    Body,
    Field,
    Form,
    Kind,
    url,
)

if TYPE_CHECKING:
    from ._catalog import Operation

_DATA_URI: Final = re.compile(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+")


class InvalidRequest(Exception):
    """The body breaks a documented rule; ``str(exc)`` names the field."""


@attrs.frozen
class Submission:
    """What a valid create request asks for, independent of its endpoint's spelling."""

    operation: Operation
    callback: str | None
    parent_id: str | None = None
    #: ``imageNo`` or ``videoNo``.
    index: int | None = None
    #: The request's own prompt text (``text``, ``prompt`` or ``remixPrompt``), whose
    #: Midjourney flags (``--draft``, ``--turbo``, ``--bs``) affect price and output.
    prompt: str = ""
    upscale_type: int | None = None
    video_type: int | None = None


def _flag(prompt: str, name: str) -> bool:
    return re.search(rf"(?:^|\s)--{name}(?:\s|$)", prompt) is not None


def is_draft(prompt: str) -> bool:
    """Whether ``prompt`` asks for Midjourney draft mode."""
    return _flag(prompt, "draft")


def is_turbo(prompt: str) -> bool:
    """Whether ``prompt`` asks for turbo mode (double price, shorter run)."""
    return _flag(prompt, "turbo")


def batch_size(prompt: str, default: int = 4) -> int:
    """The ``--bs 1|2|4`` video batch size in ``prompt``, else ``default``."""
    match = re.search(r"(?:^|\s)--bs\s+([124])(?:\s|$)", prompt)
    return int(match.group(1)) if match else default


def validate(op: Operation, body: object) -> Submission:
    """Check ``body`` against ``op``'s table and say what it asks for.

    Raises :class:`InvalidRequest` naming the first field found wrong.
    """
    obj = _Object(body)
    rules = BODIES[op.route]
    found: dict[str, Any] = {"callback": None}

    def take(fields: tuple[Field, ...]) -> None:
        for field in fields:
            value = _check(field, obj)
            if field.to is not None and value is not None:
                found[field.to] = value

    take((CALLBACK, *rules.fields))
    if rules.forms:
        take(_form(rules, obj).fields)
    return Submission(op, **found)


class _Object:
    """One JSON object of the body, and the path that names its members in messages."""

    def __init__(self, value: object, path: str = "") -> None:
        if not isinstance(value, Mapping):
            raise InvalidRequest(f"{path or 'request body'} must be a JSON object")
        self.members: Mapping[str, Any] = value
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


def _absent(value: object, kind: Kind) -> bool:
    """Not given: ``null``, or Go's zero value ``""`` for a text field."""
    return value is None or (value == "" and kind in TEXTUAL)


def _form(rules: Body, obj: _Object) -> Form:
    kinds = {form.key.wire: form.key.kind for form in rules.forms}

    def given(wire: str) -> bool:
        return not _absent(obj.members.get(wire), kinds[wire])

    for form in rules.forms:
        if given(form.key.wire):
            if any(given(wire) for wire in form.excludes):
                raise InvalidRequest(rules.forms_message)
            return form
    raise InvalidRequest(rules.forms_message)


def _check(field: Field, obj: _Object) -> object:
    """The value of ``field`` in ``obj`` if it keeps the rules, ``None`` if not given."""
    value = obj.members.get(field.wire)
    name = obj.name(field.wire)
    kind = field.kind
    if _absent(value, kind):
        if field.required:
            raise InvalidRequest(f"{name} is required")
        return None
    if kind in TEXTUAL:
        return _check_text(field, name, value)
    if kind is Kind.INT:
        return _check_int(name, value, field.low, field.high)
    if kind is Kind.NUMBER:
        return _check_number(name, value, field.low, field.high)
    if kind in (Kind.URLS, Kind.DATA_URIS):
        return _check_list(field, name, value)
    member = _Object(value, name)
    if kind is Kind.OBJECT:
        for inner in field.fields:
            _check(inner, member)
    elif kind is Kind.MASK:
        _check_mask(member)
    else:
        _check_polygon(member)
    return value


def _check_text(field: Field, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    if field.kind is Kind.CHOICE:
        if value not in field.choices:
            raise InvalidRequest(f"{name} must be one of {', '.join(field.choices)}")
        return value
    high = int(field.high or PROMPT_MAX)
    if len(value) > high:
        raise InvalidRequest(f"{name} must be between 1 and {high} characters")
    if field.kind is Kind.URL:
        check_url(name, value, high)
    elif field.kind is Kind.DATA_URI:
        _check_data_uri(name, value)
    return value


def _check_int(name: str, value: object, low: float | None, high: float | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            raise InvalidRequest(f"{name} must be an integer between {low} and {high}")
        bound = f">= {low}" if low is not None else f"<= {high}"
        raise InvalidRequest(f"{name} must be an integer {bound}")
    return value


def _check_number(name: str, value: object, low: float | None, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name} must be a number")
    assert low is not None
    assert high is not None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}")
    return float(value)


def _check_list(field: Field, name: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{name} must be an array of strings")
    low, high = int(field.low or 0), int(field.high or 0)
    if not low <= len(value) <= high:
        raise InvalidRequest(f"{name} must contain {low} to {high} items")
    for i, item in enumerate(value):
        if field.kind is Kind.URLS:
            check_url(f"{name}[{i}]", item)
        else:
            _check_data_uri(f"{name}[{i}]", item)
    return value


def _check_data_uri(name: str, value: str) -> None:
    if not _DATA_URI.fullmatch(value):
        raise InvalidRequest(f"{name} must be a base64 image data URI")


def check_url(name: str, value: str, max_len: int = URL_MAX) -> None:
    """Raise unless ``value`` is an absolute http(s) URL of at most ``max_len`` chars."""
    if len(value) > max_len:
        raise InvalidRequest(f"{name} must be at most {max_len} characters")
    try:
        parsed = URL(value)
        host = parsed.host  # decoding an IDNA host may raise UnicodeError (a ValueError)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{name} must be a valid http(s) URL") from exc
    if parsed.scheme not in ("http", "https") or not host:
        raise InvalidRequest(f"{name} must start with http:// or https://")


def _check_mask(mask: _Object) -> None:
    areas = mask.members.get("areas")
    has_areas = areas is not None and areas != []
    has_url = not _absent(mask.members.get("url"), Kind.URL)
    if has_areas == has_url:
        raise InvalidRequest(f"{mask.path} must have exactly one of areas or url")
    if has_url:
        _check(url("url"), mask)
        return
    name = mask.name("areas")
    if not isinstance(areas, list):
        raise InvalidRequest(f"{name} must be an array of polygons")
    for i, area in enumerate(areas):
        _check_polygon(_Object(area, f"{name}[{i}]"))


def _check_polygon(polygon: _Object) -> None:
    width, height = (_check(field, polygon) for field in POLYGON_FRAME)
    assert isinstance(width, int)
    assert isinstance(height, int)
    name = polygon.name("points")
    points = polygon.members.get("points")
    if points is None:
        raise InvalidRequest(f"{name} is required")
    if not isinstance(points, list):
        raise InvalidRequest(f"{name} must be an array of integers")
    for i, point in enumerate(points):
        _check_int(f"{name}[{i}]", point, None, None)
    if len(points) < POLYGON_MIN_POINTS or len(points) % 2:
        raise InvalidRequest(
            f"{name} must be an even-length list of at least {POLYGON_MIN_POINTS} integers"
        )
    for i in range(0, len(points), 2):
        x, y = points[i], points[i + 1]
        if not 0 <= x <= width:
            raise InvalidRequest(f"{name}[{i}] (x) must be between 0 and {width}")
        if not 0 <= y <= height:
            raise InvalidRequest(f"{name}[{i + 1}] (y) must be between 0 and {height}")
