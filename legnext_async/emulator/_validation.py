"""Request-body validation: the documented ranges of reference §3, as HTTP 400s.

The backend looks like Go (reference §1), so the rules follow Go's JSON decoding:
integers must be JSON integers (``1.0`` and ``true`` are not ints), floats accept any
JSON number, ``null`` and ``""`` for an optional field mean "not given", unknown fields
are ignored. Every message names the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
from yarl import URL

if TYPE_CHECKING:
    from ._catalog import Operation

PROMPT_MAX: Final = 8192
URL_MAX: Final = 1024
POLYGON_MIN: Final = 500
POLYGON_MAX: Final = 4096
BLEND_ASPECT_RATIOS: Final = frozenset({"2:3", "1:1", "3:2"})
BLEND_DIMENSIONS: Final = frozenset({"PORTRAIT", "SQUARE", "LANDSCAPE"})


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


class _Fields:
    """Typed access to one JSON object, raising ``InvalidRequest`` with the field path."""

    def __init__(self, body: object, path: str = "") -> None:
        if not isinstance(body, Mapping):
            raise InvalidRequest(f"{path or 'request body'} must be a JSON object")
        self._body: Mapping[str, Any] = body
        self.path = path or "request body"
        self._prefix = f"{path}." if path else ""

    def name(self, key: str) -> str:
        return self._prefix + key

    def raw(self, key: str) -> object:
        return self._body.get(key)

    def given(self, key: str) -> bool:
        """Present and not a Go zero value (``null`` or ``""``)."""
        value = self._body.get(key)
        return value is not None and value != ""

    def _missing(self, key: str) -> InvalidRequest:
        return InvalidRequest(f"{self.name(key)} is required")

    def string(self, key: str, *, required: bool, max_len: int = PROMPT_MAX) -> str | None:
        value = self._body.get(key)
        if value is None or value == "":
            if required:
                raise self._missing(key)
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"{self.name(key)} must be a string")
        if len(value) > max_len:
            raise InvalidRequest(f"{self.name(key)} must be between 1 and {max_len} characters")
        return value

    def integer(self, key: str, low: int | None, high: int | None, *, required: bool) -> int | None:
        value = self._body.get(key)
        if value is None:
            if required:
                raise self._missing(key)
            return None
        return self._check_int(self.name(key), value, low, high)

    @staticmethod
    def _check_int(name: str, value: object, low: int | None, high: int | None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"{name} must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise InvalidRequest(f"{name} must be an integer between {low} and {high}")
            bound = f">= {low}" if low is not None else f"<= {high}"
            raise InvalidRequest(f"{name} must be an integer {bound}")
        return value

    def number(self, key: str, low: float, high: float, *, required: bool) -> float | None:
        value = self._body.get(key)
        if value is None:
            if required:
                raise self._missing(key)
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{self.name(key)} must be a number")
        if not low <= value <= high:
            raise InvalidRequest(f"{self.name(key)} must be between {low} and {high}")
        return float(value)

    def url(self, key: str, *, required: bool, max_len: int = URL_MAX) -> str | None:
        value = self.string(key, required=required, max_len=max_len)
        if value is not None:
            check_url(self.name(key), value, max_len)
        return value

    def obj(self, key: str, *, required: bool) -> _Fields | None:
        value = self._body.get(key)
        if value is None:
            if required:
                raise self._missing(key)
            return None
        return _Fields(value, self.name(key))

    def int_list(self, key: str) -> list[int]:
        value = self._body.get(key)
        if value is None:
            raise self._missing(key)
        if not isinstance(value, list):
            raise InvalidRequest(f"{self.name(key)} must be an array of integers")
        return [
            self._check_int(f"{self.name(key)}[{i}]", v, None, None) for i, v in enumerate(value)
        ]

    def string_list(self, key: str, low: int, high: int) -> list[str] | None:
        value = self._body.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"{self.name(key)} must be an array of strings")
        if not low <= len(value) <= high:
            raise InvalidRequest(f"{self.name(key)} must contain {low} to {high} items")
        return value


def check_url(name: str, value: str, max_len: int = URL_MAX) -> None:
    """Raise unless ``value`` is an absolute http(s) URL of at most ``max_len`` chars."""
    if len(value) > max_len:
        raise InvalidRequest(f"{name} must be at most {max_len} characters")
    try:
        url = URL(value)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{name} must be a valid http(s) URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidRequest(f"{name} must start with http:// or https://")


def _callback(fields: _Fields) -> str | None:
    # An empty string is Go's zero value: no callback, as when the field is absent.
    return fields.url("callback", required=False, max_len=4096)


def _polygon(fields: _Fields) -> None:
    width = fields.integer("width", POLYGON_MIN, POLYGON_MAX, required=True)
    height = fields.integer("height", POLYGON_MIN, POLYGON_MAX, required=True)
    assert width is not None
    assert height is not None
    points = fields.int_list("points")
    name = fields.name("points")
    if len(points) < 6 or len(points) % 2:
        raise InvalidRequest(f"{name} must be an even-length list of at least 6 integers")
    for i in range(0, len(points), 2):
        x, y = points[i], points[i + 1]
        if not 0 <= x <= width:
            raise InvalidRequest(f"{name}[{i}] (x) must be between 0 and {width}")
        if not 0 <= y <= height:
            raise InvalidRequest(f"{name}[{i + 1}] (y) must be between 0 and {height}")


def _mask(fields: _Fields) -> None:
    areas = fields.raw("areas")
    has_areas = areas is not None and areas != []
    has_url = fields.given("url")
    if has_areas == has_url:
        raise InvalidRequest(f"{fields.path} must have exactly one of areas or url")
    if has_url:
        fields.url("url", required=True)
        return
    if not isinstance(areas, list):
        raise InvalidRequest(f"{fields.name('areas')} must be an array of polygons")
    for i, area in enumerate(areas):
        _polygon(_Fields(area, f"{fields.name('areas')}[{i}]"))


def _canvas(fields: _Fields) -> None:
    canvas = fields.obj("canvas", required=True)
    assert canvas is not None
    canvas.integer("width", 1, None, required=True)
    canvas.integer("height", 1, None, required=True)
    pos = fields.obj("imgPos", required=True)
    assert pos is not None
    pos.integer("width", 1, None, required=True)
    pos.integer("height", 1, None, required=True)
    pos.integer("x", None, None, required=True)
    pos.integer("y", None, None, required=True)


def _image_no(fields: _Fields, *, required: bool = True) -> int | None:
    return fields.integer("imageNo", 0, 3, required=required)


def validate(op: Operation, body: object) -> Submission:
    """Check ``body`` against ``op``'s documented rules and say what it asks for."""
    f = _Fields(body)
    callback = _callback(f)
    route = op.route

    def follow_up(*, prompt: str | None = None, **extra: Any) -> Submission:
        return Submission(
            op,
            callback,
            parent_id=f.string("jobId", required=True, max_len=256),
            index=_image_no(f),
            prompt=prompt or "",
            **extra,
        )

    if route == "diffusion":
        return Submission(op, callback, prompt=f.string("text", required=True) or "")
    if route == "variation":
        f.integer("type", 0, 1, required=True)
        return follow_up(prompt=f.string("remixPrompt", required=False))
    if route == "upscale":
        # 2 (2x) and 3 (4x) are deprecated but documented, and N8N still sends them.
        kind = f.integer("type", 0, 3, required=True)
        return follow_up(upscale_type=kind)
    if route == "reroll":
        return Submission(op, callback, parent_id=f.string("jobId", required=True, max_len=256))
    if route == "blend":
        _blend(f)
        return Submission(op, callback)
    if route == "describe":
        _describe(f)
        return Submission(op, callback)
    if route == "shorten":
        return Submission(op, callback, prompt=f.string("prompt", required=True) or "")
    if route == "pan":
        f.integer("direction", 0, 3, required=True)
        f.number("scale", 1.1, 3.0, required=True)
        return follow_up(prompt=f.string("remixPrompt", required=False))
    if route == "outpaint":
        f.number("scale", 1.1, 2.0, required=True)
        return follow_up(prompt=f.string("remixPrompt", required=False))
    if route == "inpaint":
        mask = f.obj("mask", required=False)
        area = f.obj("area", required=False)  # deprecated single polygon, still accepted
        if mask is None and area is None:
            raise InvalidRequest("mask is required")
        if mask is not None:
            _mask(mask)
        if area is not None:
            _polygon(area)
        return follow_up(prompt=f.string("remixPrompt", required=False))
    if route == "remix":
        f.integer("mode", 0, 1, required=False)
        return follow_up(prompt=f.string("remixPrompt", required=True))
    if route == "edit":
        _canvas(f)
        mask = f.obj("mask", required=False)
        if mask is not None:
            _mask(mask)
        return follow_up(prompt=f.string("remixPrompt", required=True))
    if route == "upload-paint":
        f.url("imgUrl", required=True)
        _canvas(f)
        mask = f.obj("mask", required=True)
        assert mask is not None
        _mask(mask)
        return Submission(op, callback, prompt=f.string("remixPrompt", required=True) or "")
    if route == "retexture":
        f.url("imgUrl", required=True)
        return Submission(op, callback, prompt=f.string("remixPrompt", required=True) or "")
    if route == "remove-background":
        f.url("imgUrl", required=True)
        return Submission(op, callback)
    if route == "enhance":
        return follow_up()
    if route == "video-diffusion":
        return _video_diffusion(op, f, callback)
    if route in ("extend-video", "video-upscale"):
        prompt = f.string("prompt", required=False) if route == "extend-video" else None
        return Submission(
            op,
            callback,
            parent_id=f.string("jobId", required=True, max_len=256),
            index=f.integer("videoNo", 0, 3, required=True),
            prompt=prompt or "",
        )
    raise AssertionError(f"no validator for {route}")


def _blend(f: _Fields) -> None:
    # Two documented shapes (reference §3.5); accept either, never both.
    urls = f.string_list("imgUrls", 2, 5)
    data = f.string_list("base64Array", 2, 5)
    if (urls is None) == (data is None):
        raise InvalidRequest("blend needs exactly one of imgUrls or base64Array")
    if urls is not None:
        for i, url in enumerate(urls):
            check_url(f"imgUrls[{i}]", url)
        ratio = f.string("aspect_ratio", required=False)
        if ratio is not None and ratio not in BLEND_ASPECT_RATIOS:
            raise InvalidRequest("aspect_ratio must be one of 2:3, 1:1, 3:2")
    if data is not None:
        for i, item in enumerate(data):
            if not re.fullmatch(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+", item):
                raise InvalidRequest(f"base64Array[{i}] must be a base64 image data URI")
        dimension = f.string("dimension", required=False)
        if dimension is not None and dimension not in BLEND_DIMENSIONS:
            raise InvalidRequest("dimension must be one of PORTRAIT, SQUARE, LANDSCAPE")


def _describe(f: _Fields) -> None:
    # Either the documented ``imgUrl`` or exactly one of ``imageBase64``/``imageLink``.
    if f.given("imgUrl"):
        f.url("imgUrl", required=True)
        return
    has_data, has_link = f.given("imageBase64"), f.given("imageLink")
    if has_data == has_link:
        raise InvalidRequest("imgUrl is required (or exactly one of imageBase64, imageLink)")
    if has_link:
        f.url("imageLink", required=True)
    else:
        data = f.string("imageBase64", required=True, max_len=50_000_000)
        if data is None or not re.fullmatch(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+", data):
            raise InvalidRequest("imageBase64 must be a base64 image data URI")


def _video_diffusion(op: Operation, f: _Fields, callback: str | None) -> Submission:
    video_type = f.integer("videoType", 0, 1, required=False)
    prompt = f.string("prompt", required=False)
    if f.raw("jobId") is not None:
        return Submission(
            op,
            callback,
            parent_id=f.string("jobId", required=True, max_len=256),
            index=_image_no(f),
            prompt=prompt or "",
            video_type=video_type,
        )
    _image_no(f, required=False)
    if prompt is None:
        raise InvalidRequest("prompt is required (or jobId and imageNo)")
    return Submission(op, callback, prompt=prompt, video_type=video_type)
