"""One declarative spec per job endpoint: its path, fields, limits, result and parent action.

A :class:`Route` says everything the client knows about one ``POST /v1/<path>``: the
Python name of the method, the output family of the job it creates, the
``available_actions`` key a parent must list for the follow-up, and its :class:`Field`\\ s
in signature order (the Python name and the wire name, the kind of value with its
documented limits, whether it is required or has a default, whether it is positional).

:meth:`Route.body` checks the values a caller gave against these and builds the JSON body;
the client's methods (``_endpoints.py``) and the results' follow-ups (``_results.py``) both
go through it, and the tests hold each method's signature and docstring to its route and
compare every limit with the emulator's.

The rule for positions: what names the input is positional (the parent job and the image
or video number, or the prompt, or the source URLs); everything after it is keyword-only.
"""

from __future__ import annotations

import enum
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, Protocol, cast

import attrs

from ._exceptions import ValidationError
from ._models import (
    BlendAspectRatio,
    Canvas,
    ImagePosition,
    Mask,
    PanDirection,
    RemixMode,
    UpscaleType,
    VariationType,
    VideoType,
)
from ._validation import (
    PROMPT_MAX,
    URL_MAX,
    check_choice,
    check_code,
    check_float,
    check_int,
    check_job_id,
    check_text,
    check_url,
    check_url_list,
    shown,
)

__all__ = ["ROUTES", "Field", "Kind", "Price", "Route"]

#: What a job produces; the result class follows from it.
Family = Literal["image", "video", "text"]

#: Turbo mode costs this many times the fast price (reference §2).
TURBO_FACTOR: Final = 2

#: Image numbers of a grid, and video numbers of a video batch.
INDEX_MAX: Final = 3
PAN_SCALE: Final = (1.1, 3.0)
OUTPAINT_SCALE: Final = (1.1, 2.0)
BLEND_IMAGES: Final = (2, 5)


class Kind(enum.Enum):
    """What kind of value a field takes; ``low`` and ``high`` of the field bound it."""

    #: A prompt: a string of ``low..high`` characters.
    TEXT = "text"
    #: An absolute http(s) URL of at most ``high`` characters.
    URL = "url"
    #: A list of ``low..high`` absolute http(s) URLs, each of at most ``URL_MAX`` characters.
    URLS = "urls"
    #: A job id (it goes into request paths, so its characters are checked).
    JOB_ID = "job_id"
    #: An image or video number, ``low..high``.
    INDEX = "index"
    #: A small integer code: a member of ``cls`` (an IntEnum) or the int it stands for.
    CODE = "code"
    #: A string code: a member of ``cls`` (a StrEnum) or the string it stands for.
    CHOICE = "choice"
    #: A finite number, ``low..high``.
    NUMBER = "number"
    #: An instance of ``cls`` (a model that checks itself), sent as its ``to_json()``.
    OBJECT = "object"


class _Wire(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@attrs.frozen
class Field:
    """One argument of an endpoint and the body field it becomes.

    ``required``: the method has no default for it. Otherwise ``default`` is the method's
    default; a ``None`` (given or defaulted) leaves the field out of the body.
    ``deprecated``: codes of a ``CODE`` field beyond ``cls`` that are still sent, with a
    :class:`DeprecationWarning` that gives ``deprecation`` as the reason.
    """

    name: str
    wire: str
    kind: Kind
    required: bool = True
    default: object = None
    positional: bool = False
    low: float | None = None
    high: float | None = None
    cls: type | None = None
    #: How an ``OBJECT`` is written, for the message when something else is given.
    shape: str = ""
    deprecated: tuple[tuple[int, str], ...] = ()
    deprecation: str = ""

    @property
    def annotation(self) -> str:
        """The type annotation the method gives this parameter (as source text)."""
        kind = self.kind
        cls_name = self.cls.__name__ if self.cls is not None else ""
        if kind is Kind.CODE:
            text = f"{cls_name} | int"
        elif kind is Kind.CHOICE:
            text = f"{cls_name} | str"
        elif kind is Kind.OBJECT:
            text = cls_name
        else:
            text = _ANNOTATIONS[kind]
        return text if self.required or self.default is not None else f"{text} | None"

    @property
    def members(self) -> tuple[enum.Enum, ...]:
        """The codes a ``CODE`` or ``CHOICE`` field takes: the members of ``cls``."""
        if self.kind is Kind.CODE or self.kind is Kind.CHOICE:
            return tuple(cast("type[enum.Enum]", self.cls))
        return ()

    @property
    def always_sent(self) -> bool:
        """Whether every body has this field (required, or with a default that is not None)."""
        return self.required or self.default is not None

    def to_wire(self, value: object) -> object:
        """The body value for ``value``; ValidationError if ``value`` breaks a limit.

        ``None`` leaves the field out where the method's default is ``None``; elsewhere it is
        refused like any other value of the wrong type.
        """
        if value is None and not self.required and self.default is None:
            return None
        return _CHECKS[self.kind](self, value)


def _low(field: Field) -> int:
    return int(field.low if field.low is not None else 0)


def _high(field: Field) -> int:
    return int(field.high if field.high is not None else 0)


def _check_text(field: Field, value: object) -> object:
    return check_text(value, field.name, _low(field), _high(field))


def _check_url(field: Field, value: object) -> object:
    return check_url(value, field.name, _high(field))


def _check_urls(field: Field, value: object) -> object:
    return check_url_list(value, field.name, _low(field), _high(field))


def _check_job_id(field: Field, value: object) -> object:
    return check_job_id(value, field.name)


def _check_index(field: Field, value: object) -> object:
    return check_int(value, field.name, _low(field), _high(field))


def _check_code(field: Field, value: object) -> object:
    kind = cast("type[enum.IntEnum]", field.cls)
    if not field.deprecated:
        return int(check_code(value, field.name, kind))
    return _check_code_with_deprecated(field, kind, value)


def _check_code_with_deprecated(field: Field, kind: type[enum.IntEnum], value: object) -> int:
    members = list(kind)
    if isinstance(value, kind):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        named = " or ".join(f"{m.name} ({int(m)})" for m in members)
        raise ValidationError(
            field.name, f"must be {kind.__name__}.{named}, got {type(value).__name__}"
        )
    deprecated = dict(field.deprecated)
    if value in deprecated:
        current = " or ".join(f"{kind.__name__}.{m.name}" for m in members)
        warn_caller(
            f"{field.name} {value} ({deprecated[value]}) is deprecated and {field.deprecation};"
            f" use {current}"
        )
        return int(value)
    if value not in {int(m) for m in members}:
        allowed = " or ".join(f"{int(m)} ({m.name.lower()})" for m in members)
        old = " and ".join(str(code) for code in deprecated)
        raise ValidationError(
            field.name,
            f"must be {allowed}; {old} are deprecated ({field.deprecation}), got {shown(value)}",
        )
    return int(value)


def _check_choice(field: Field, value: object) -> object:
    kind = cast("type[enum.StrEnum]", field.cls)
    return str(check_choice(value, field.name, kind).value)


def _check_number(field: Field, value: object) -> object:
    low = field.low if field.low is not None else float("-inf")
    high = field.high if field.high is not None else float("inf")
    return check_float(value, field.name, low, high)


def _check_object(field: Field, value: object) -> object:
    if field.cls is None or not isinstance(value, field.cls):
        raise ValidationError(field.name, f"must be {field.shape}, got {type(value).__name__}")
    return cast("_Wire", value).to_json()


_CHECKS: Final[dict[Kind, Callable[[Field, object], object]]] = {
    Kind.TEXT: _check_text,
    Kind.URL: _check_url,
    Kind.URLS: _check_urls,
    Kind.JOB_ID: _check_job_id,
    Kind.INDEX: _check_index,
    Kind.CODE: _check_code,
    Kind.CHOICE: _check_choice,
    Kind.NUMBER: _check_number,
    Kind.OBJECT: _check_object,
}

_ANNOTATIONS: Final = {
    Kind.TEXT: "str",
    Kind.URL: "str",
    Kind.URLS: "Sequence[str]",
    Kind.JOB_ID: "str",
    Kind.INDEX: "int",
    Kind.NUMBER: "float",
}


@attrs.frozen
class Price:
    """What a job of a route costs in fast mode, in points (reference §2); turbo is twice that.

    ``fast`` is the price unless ``by`` (a wire field) picks another from ``choices``
    (``(value, points)`` pairs; a value not listed costs ``fast``). ``draft`` is the price of a
    prompt with ``--draft``. ``prompt`` is the wire field whose Midjourney flags (``--turbo``,
    ``--fast``, ``--relax``, ``--draft``) say the mode; ``None``: the request has no prompt
    of its own, so its mode is never known. ``documented`` is False where the reference
    gives no price and ``fast`` is an assumption (``basis`` says which).
    """

    fast: int
    prompt: str | None = None
    by: str | None = None
    choices: tuple[tuple[object, int], ...] = ()
    draft: int | None = None
    documented: bool = True
    basis: str = "the vendor's pricing table"

    def fast_price(self, body: Mapping[str, object]) -> tuple[str, int]:
        """The variant of a job with ``body`` (``""``, ``"draft"`` or the ``by`` field's value
        as text) and its fast-mode price."""
        if self.draft is not None and self.prompt is not None:
            text = body.get(self.prompt)
            if isinstance(text, str) and has_flag(text, "draft"):
                return "draft", self.draft
        if self.by is not None:
            value = body.get(self.by)
            for choice, points in self.choices:
                if value == choice:
                    return str(value), points
            return str(value), self.fast
        return "", self.fast


def has_flag(text: str, name: str) -> bool:
    """Whether the prompt ``text`` carries the Midjourney flag ``--name`` as a word of its own."""
    return any(word.lower() == f"--{name}" for word in text.split())


@attrs.frozen
class Route:
    """One job-creating endpoint, ``POST /v1/<path>``.

    ``name`` is the method's name on the client, and on the result of ``follows`` (the
    family of the parent job) if the route is a follow-up. ``parent_action`` is the
    ``available_actions`` key the parent must list for the image or video number
    (``"reroll"``: the parent's ``reroll`` must be true); ``None`` on a follow-up means
    only that the parent must have that image. ``modes``, if set, checks combinations
    of fields before each field is checked on its own.
    """

    name: str
    path: str
    family: Family
    fields: tuple[Field, ...]
    parent_action: str | None = None
    follows: Family | None = None
    modes: Callable[[Mapping[str, object]], None] | None = None
    #: What a job of this route is expected to cost (see :class:`Price`).
    price: Price = Price(0)

    @property
    def parent(self) -> Field | None:
        """The field that names the parent job, if the route has one."""
        return next((f for f in self.fields if f.kind is Kind.JOB_ID), None)

    @property
    def index(self) -> Field | None:
        """The field that names the parent's image or video, if the route has one."""
        return next((f for f in self.fields if f.kind is Kind.INDEX), None)

    def field(self, name: str) -> Field:
        """The field whose Python name is ``name``."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    def body(self, values: Mapping[str, object]) -> dict[str, Any]:
        """The JSON body for ``values`` (one per field, by Python name).

        Fields whose value is ``None`` are left out rather than sent as ``null``.

        Raises:
            ValidationError: a value breaks a limit (the first one found, in signature
                order); nothing is built.
        """
        names = {f.name for f in self.fields}
        if values.keys() != names:
            # A method and its route disagree: a bug here, not the caller's mistake.
            odd = sorted(names ^ set(values))
            raise TypeError(f"{self.name}: values do not match the route's fields: {odd}")
        if self.modes is not None:
            self.modes(values)
        body: dict[str, Any] = {}
        for field in self.fields:
            wire = field.to_wire(values[field.name])
            if wire is not None:
                body[field.wire] = wire
        return body


# --- warnings at the caller ------------------------------------------------------------

_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_caller(message: str) -> None:
    """Emit a :class:`DeprecationWarning` attributed to the first caller outside this package.

    Calls reach a check through a method, a follow-up, the catalogue and more, so a fixed
    ``stacklevel`` would point inside the package whichever way it came.
    """
    level = 2
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


# --- the fields ------------------------------------------------------------------------


def _text(name: str, wire: str, *, required: bool = True, positional: bool = False) -> Field:
    return Field(
        name, wire, Kind.TEXT, required=required, positional=positional, low=1, high=PROMPT_MAX
    )


def _url(name: str, wire: str, *, required: bool = True, positional: bool = False) -> Field:
    return Field(name, wire, Kind.URL, required=required, positional=positional, high=URL_MAX)


def _index(name: str, wire: str, *, required: bool = True, positional: bool = True) -> Field:
    return Field(
        name, wire, Kind.INDEX, required=required, positional=positional, low=0, high=INDEX_MAX
    )


def _code(name: str, wire: str, cls: type[enum.IntEnum], *, default: object = None) -> Field:
    members = [int(m) for m in cls]
    return Field(
        name,
        wire,
        Kind.CODE,
        required=False,
        default=default,
        low=min(members),
        high=max(members),
        cls=cls,
    )


def _object(name: str, cls: type, shape: str, wire: str = "", *, required: bool = True) -> Field:
    return Field(name, wire or name, Kind.OBJECT, required=required, cls=cls, shape=shape)


JOB_ID: Final = Field("job_id", "jobId", Kind.JOB_ID, positional=True)
IMAGE_NO: Final = _index("image_no", "imageNo")
VIDEO_NO: Final = _index("video_no", "videoNo")
REMIX_PROMPT: Final = _text("remix_prompt", "remixPrompt")
OPTIONAL_REMIX_PROMPT: Final = _text("remix_prompt", "remixPrompt", required=False)
IMG_URL: Final = _url("img_url", "imgUrl", positional=True)
MASK: Final = _object("mask", Mask, "a Mask(areas=[Polygon(...)]) or Mask(url=...)")
CANVAS: Final = _object("canvas", Canvas, "a Canvas(width=..., height=...)")
IMG_POS: Final = _object(
    "img_pos", ImagePosition, "an ImagePosition(width=..., height=..., x=..., y=...)", "imgPos"
)
#: Every route ends with it: the URL the service POSTs the finished job to.
CALLBACK: Final = _url("callback", "callback", required=False)


def _video_modes(values: Mapping[str, object]) -> None:
    """A video comes from a prompt that starts with an image URL, or from a parent image."""
    if values["job_id"] is None:
        if values["image_no"] is not None:
            raise ValidationError("image_no", "is only valid together with job_id")
        if values["prompt"] is None:
            raise ValidationError(
                "prompt", "is required (an image URL then text) unless job_id is given"
            )
    elif values["image_no"] is None:
        raise ValidationError("image_no", f"is required with job_id (0 to {INDEX_MAX})")


def _route(
    name: str,
    path: str,
    family: Family,
    *fields: Field,
    price: Price,
    parent_action: str | None = None,
    follows: Family | None = None,
    modes: Callable[[Mapping[str, object]], None] | None = None,
) -> Route:
    return Route(
        name,
        path,
        family,
        (*fields, CALLBACK),
        parent_action=parent_action,
        follows=follows,
        modes=modes,
        price=price,
    )


# --- the prices (reference §2: fast mode; turbo twice; draft diffusion its own) ---------

DIFFUSION_PRICE: Final = 80
DRAFT_PRICE: Final = 40
#: Video prices by ``videoType``: 480p, 720p.
VIDEO_PRICES: Final = ((0, 480), (1, 1536))
#: The most a video job costs when its resolution is not in the request (an extension
#: takes its parent's): the 720p price.
VIDEO_MAX: Final = 1536
#: Upscale prices by ``type``: subtle, creative. The deprecated 2x/4x types are not priced
#: by the vendor: they count as the dearest (creative).
UPSCALE_PRICES: Final = ((0, 120), (1, 160))
UPSCALE_MAX: Final = 160
#: Text jobs, unpriced by the vendor: the ``meta.usage.frozen`` of the docs' examples.
TEXT_PRICE: Final = 20
#: The wire field of a follow-up's prompt, whose flags say its mode.
REMIX_FLAGS: Final = "remixPrompt"


# --- the routes, in the order of the reference (§3) -------------------------------------

DIFFUSION: Final = _route(
    "diffusion",
    "diffusion",
    "image",
    _text("text", "text", positional=True),
    price=Price(DIFFUSION_PRICE, prompt="text", draft=DRAFT_PRICE),
)
VARIATION: Final = _route(
    "variation",
    "variation",
    "image",
    JOB_ID,
    IMAGE_NO,
    _code("type", "type", VariationType, default=VariationType.SUBTLE),
    OPTIONAL_REMIX_PROMPT,
    price=Price(120, prompt=REMIX_FLAGS),
    parent_action="variation",
    follows="image",
)
UPSCALE: Final = _route(
    "upscale",
    "upscale",
    "image",
    JOB_ID,
    IMAGE_NO,
    attrs.evolve(
        _code("type", "type", UpscaleType, default=UpscaleType.SUBTLE),
        deprecated=((2, "2x"), (3, "4x")),
        deprecation="works only on Midjourney v5/niji5 jobs",
    ),
    price=Price(UPSCALE_MAX, by="type", choices=UPSCALE_PRICES),
    parent_action="upscale",
    follows="image",
)
REROLL: Final = _route(
    "reroll",
    "reroll",
    "image",
    JOB_ID,
    price=Price(DIFFUSION_PRICE, documented=False, basis="assumed: a reroll re-runs a diffusion"),
    parent_action="reroll",
    follows="image",
)
BLEND: Final = _route(
    "blend",
    "blend",
    "image",
    Field(
        "img_urls",
        "imgUrls",
        Kind.URLS,
        positional=True,
        low=BLEND_IMAGES[0],
        high=BLEND_IMAGES[1],
    ),
    Field("aspect_ratio", "aspect_ratio", Kind.CHOICE, cls=BlendAspectRatio),
    price=Price(
        DIFFUSION_PRICE, documented=False, basis="assumed: a blend makes a grid like a diffusion"
    ),
)
DESCRIBE: Final = _route(
    "describe",
    "describe",
    "text",
    IMG_URL,
    price=Price(TEXT_PRICE, documented=False, basis="the frozen points of the docs' example"),
)
# The prompt of a shorten is what it reads, not what it runs: its flags set no mode.
SHORTEN: Final = _route(
    "shorten",
    "shorten",
    "text",
    _text("prompt", "prompt", positional=True),
    price=Price(TEXT_PRICE, documented=False, basis="the frozen points of the docs' example"),
)
PAN: Final = _route(
    "pan",
    "pan",
    "image",
    JOB_ID,
    IMAGE_NO,
    attrs.evolve(_code("direction", "direction", PanDirection), required=True),
    Field("scale", "scale", Kind.NUMBER, low=PAN_SCALE[0], high=PAN_SCALE[1]),
    OPTIONAL_REMIX_PROMPT,
    price=Price(80, prompt=REMIX_FLAGS),
    parent_action="pan",
    follows="image",
)
OUTPAINT: Final = _route(
    "outpaint",
    "outpaint",
    "image",
    JOB_ID,
    IMAGE_NO,
    Field("scale", "scale", Kind.NUMBER, low=OUTPAINT_SCALE[0], high=OUTPAINT_SCALE[1]),
    OPTIONAL_REMIX_PROMPT,
    price=Price(80, prompt=REMIX_FLAGS),
    parent_action="outpaint",
    follows="image",
)
INPAINT: Final = _route(
    "inpaint",
    "inpaint",
    "image",
    JOB_ID,
    IMAGE_NO,
    MASK,
    OPTIONAL_REMIX_PROMPT,
    price=Price(120, prompt=REMIX_FLAGS),
    parent_action="inpaint",
    follows="image",
)
REMIX: Final = _route(
    "remix",
    "remix",
    "image",
    JOB_ID,
    IMAGE_NO,
    REMIX_PROMPT,
    _code("mode", "mode", RemixMode),
    price=Price(120, prompt=REMIX_FLAGS),
    parent_action="remix",
    follows="image",
)
EDIT: Final = _route(
    "edit",
    "edit",
    "image",
    JOB_ID,
    IMAGE_NO,
    CANVAS,
    IMG_POS,
    REMIX_PROMPT,
    attrs.evolve(MASK, required=False),
    price=Price(120, prompt=REMIX_FLAGS),
    parent_action="edit",
    follows="image",
)
UPLOAD_PAINT: Final = _route(
    "upload_paint",
    "upload-paint",
    "image",
    IMG_URL,
    CANVAS,
    IMG_POS,
    REMIX_PROMPT,
    MASK,
    price=Price(120, prompt=REMIX_FLAGS),
)
RETEXTURE: Final = _route(
    "retexture", "retexture", "image", IMG_URL, REMIX_PROMPT, price=Price(120, prompt=REMIX_FLAGS)
)
REMOVE_BACKGROUND: Final = _route(
    "remove_background", "remove-background", "image", IMG_URL, price=Price(80)
)
ENHANCE: Final = _route(
    "enhance",
    "enhance",
    "image",
    JOB_ID,
    IMAGE_NO,
    price=Price(80),
    parent_action="enhance",
    follows="image",
)
VIDEO_DIFFUSION: Final = _route(
    "video_diffusion",
    "video-diffusion",
    "video",
    _text("prompt", "prompt", required=False, positional=True),
    attrs.evolve(JOB_ID, required=False, positional=False),
    _index("image_no", "imageNo", required=False, positional=False),
    _code("video_type", "videoType", VideoType),
    # Without videoType the video is 480p, the documented default.
    price=Price(VIDEO_MAX, prompt="prompt", by="videoType", choices=((None, 480), *VIDEO_PRICES)),
    # No available_actions key names animation: the parent only needs the image.
    follows="image",
    modes=_video_modes,
)
EXTEND_VIDEO: Final = _route(
    "extend_video",
    "extend-video",
    "video",
    JOB_ID,
    VIDEO_NO,
    _text("prompt", "prompt", required=False),
    # The resolution is the parent's, not in the request: the dearer one is assumed.
    price=Price(VIDEO_MAX, prompt="prompt"),
    parent_action="extend",
    follows="video",
)
VIDEO_UPSCALE: Final = _route(
    "video_upscale",
    "video-upscale",
    "video",
    JOB_ID,
    VIDEO_NO,
    price=Price(480),
    parent_action="upscale",
    follows="video",
)

#: Every job-creating endpoint, once each.
ROUTES: Final = (
    DIFFUSION,
    VARIATION,
    UPSCALE,
    REROLL,
    BLEND,
    DESCRIBE,
    SHORTEN,
    PAN,
    OUTPAINT,
    INPAINT,
    REMIX,
    EDIT,
    UPLOAD_PAINT,
    RETEXTURE,
    REMOVE_BACKGROUND,
    ENHANCE,
    VIDEO_DIFFUSION,
    EXTEND_VIDEO,
    VIDEO_UPSCALE,
)
