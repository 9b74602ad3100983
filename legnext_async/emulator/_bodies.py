"""What each endpoint's request body may hold, as data: one table per route (reference §3).

A :class:`Body` lists its fields, each with its wire name, kind, whether it is required and
its limits, and, where the sources document alternative shapes of one body, the forms it may
take. :func:`~._validation.validate` reads them. These rules are written from the reference,
independently of the client's catalogue: the emulator is the witness the client's limits are
tested against.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Literal

import attrs

PROMPT_MAX: Final = 8192
URL_MAX: Final = 1024
CALLBACK_MAX: Final = 4096
JOB_ID_MAX: Final = 256
DATA_URI_MAX: Final = 50_000_000
POLYGON_MIN: Final = 500
POLYGON_MAX: Final = 4096
POLYGON_MIN_POINTS: Final = 6


class Kind(enum.Enum):
    """What a field holds on the wire, and so how it is checked."""

    #: A string of 1 to ``high`` characters.
    TEXT = "text"
    #: An absolute http(s) URL of at most ``high`` characters.
    URL = "url"
    #: A JSON integer within ``low``..``high`` (either may be open).
    INT = "int"
    #: Any JSON number within ``low``..``high``.
    NUMBER = "number"
    #: One of ``choices``.
    CHOICE = "choice"
    #: ``low`` to ``high`` absolute http(s) URLs.
    URLS = "urls"
    #: A base64 image data URI (``data:image/png;base64,...``) of at most ``high`` characters.
    DATA_URI = "data-uri"
    #: ``low`` to ``high`` base64 image data URIs.
    DATA_URIS = "data-uris"
    #: A JSON object whose members are ``fields``.
    OBJECT = "object"
    #: A mask: exactly one of ``areas`` (polygons) or ``url``.
    MASK = "mask"
    #: A polygon: ``width`` and ``height`` in 500..4096, and ``points`` inside them.
    POLYGON = "polygon"


#: Kinds whose empty string is Go's zero value: the field is not given.
TEXTUAL: Final = frozenset({Kind.TEXT, Kind.URL, Kind.CHOICE, Kind.DATA_URI})

#: The attribute of the validated ``Submission`` that a field's value fills.
Target = Literal["callback", "parent_id", "index", "prompt", "upscale_type", "video_type"]


@attrs.frozen
class Field:
    """One member of a request body."""

    wire: str
    kind: Kind
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    #: The members of an ``OBJECT``.
    fields: tuple[Field, ...] = ()
    #: Where the value goes in the validated ``Submission``, if anywhere.
    to: Target | None = None


@attrs.frozen
class Form:
    """One documented shape of a body, chosen when its first field is given."""

    fields: tuple[Field, ...]
    #: Fields that must not be given with this form.
    excludes: tuple[str, ...] = ()

    @property
    def key(self) -> Field:
        """The field whose presence selects this form."""
        return self.fields[0]


@attrs.frozen
class Body:
    """What one endpoint's body may hold."""

    fields: tuple[Field, ...] = ()
    #: Alternative shapes; the first whose key is given applies, and one must.
    forms: tuple[Form, ...] = ()
    #: The refusal when no form's key is given, or a field its form excludes is.
    forms_message: str = ""


def text(wire: str, *, required: bool = False, to: Target | None = None) -> Field:
    """A prompt-like string of 1 to 8192 characters."""
    return Field(wire, Kind.TEXT, required, high=PROMPT_MAX, to=to)


def url(wire: str, *, required: bool = True) -> Field:
    """An image URL of at most 1024 characters."""
    return Field(wire, Kind.URL, required, high=URL_MAX)


def integer(
    wire: str, low: int | None, high: int | None, *, required: bool, to: Target | None = None
) -> Field:
    """A JSON integer within ``low``..``high`` (``None``: open)."""
    return Field(wire, Kind.INT, required, low, high, to=to)


def number(wire: str, low: float, high: float) -> Field:
    """A required JSON number within ``low``..``high``."""
    return Field(wire, Kind.NUMBER, True, low, high)


#: No source limits callback's length; 4096 refuses nothing the live service may accept.
CALLBACK: Final = Field("callback", Kind.URL, high=CALLBACK_MAX, to="callback")
JOB_ID: Final = Field("jobId", Kind.TEXT, True, high=JOB_ID_MAX, to="parent_id")
IMAGE_NO: Final = integer("imageNo", 0, 3, required=True, to="index")
VIDEO_NO: Final = integer("videoNo", 0, 3, required=True, to="index")
REMIX: Final = text("remixPrompt", to="prompt")
REMIX_REQUIRED: Final = text("remixPrompt", required=True, to="prompt")
CANVAS: Final = Field(
    "canvas",
    Kind.OBJECT,
    True,
    fields=(integer("width", 1, None, required=True), integer("height", 1, None, required=True)),
)
IMG_POS: Final = Field(
    "imgPos",
    Kind.OBJECT,
    True,
    fields=(
        integer("width", 1, None, required=True),
        integer("height", 1, None, required=True),
        integer("x", None, None, required=True),
        integer("y", None, None, required=True),
    ),
)
MASK: Final = Field("mask", Kind.MASK, True)
#: The members of a polygon other than ``points``, which must lie inside them.
POLYGON_FRAME: Final = (
    integer("width", POLYGON_MIN, POLYGON_MAX, required=True),
    integer("height", POLYGON_MIN, POLYGON_MAX, required=True),
)


def follow_up(*fields: Field) -> Body:
    """The body of a follow-up on one image of a parent job: ``fields``, ``jobId``, ``imageNo``."""
    return Body((*fields, JOB_ID, IMAGE_NO))


#: Every endpoint's body, by route (reference §3). Each may also carry ``callback``
#: (:data:`CALLBACK`), checked first.
BODIES: Final[Mapping[str, Body]] = {
    "diffusion": Body((text("text", required=True, to="prompt"),)),
    "variation": follow_up(integer("type", 0, 1, required=True), REMIX),
    # 2 (2x) and 3 (4x) are deprecated but documented, and N8N still sends them.
    "upscale": follow_up(integer("type", 0, 3, required=True, to="upscale_type")),
    "reroll": Body((JOB_ID,)),
    # Two documented shapes (reference §3.5): OpenAPI's URLs with a required aspect_ratio,
    # the docs' data URIs with an optional dimension. Either is accepted, never both.
    "blend": Body(
        forms=(
            Form(
                (
                    Field("imgUrls", Kind.URLS, True, 2, 5),
                    Field("aspect_ratio", Kind.CHOICE, True, choices=("2:3", "1:1", "3:2")),
                ),
                excludes=("base64Array",),
            ),
            Form(
                (
                    Field("base64Array", Kind.DATA_URIS, True, 2, 5),
                    Field("dimension", Kind.CHOICE, choices=("PORTRAIT", "SQUARE", "LANDSCAPE")),
                ),
                excludes=("imgUrls",),
            ),
        ),
        forms_message="blend needs exactly one of imgUrls or base64Array",
    ),
    # The documented imgUrl, or (one docs version) exactly one of imageBase64, imageLink.
    "describe": Body(
        forms=(
            Form((url("imgUrl"),)),
            Form(
                (Field("imageBase64", Kind.DATA_URI, True, high=DATA_URI_MAX),),
                excludes=("imageLink",),
            ),
            Form((url("imageLink"),), excludes=("imageBase64",)),
        ),
        forms_message="imgUrl is required (or exactly one of imageBase64, imageLink)",
    ),
    "shorten": Body((text("prompt", required=True, to="prompt"),)),
    "pan": follow_up(integer("direction", 0, 3, required=True), number("scale", 1.1, 3.0), REMIX),
    "outpaint": follow_up(number("scale", 1.1, 2.0), REMIX),
    # ``area`` is the deprecated single polygon, still accepted, alone or beside a mask.
    "inpaint": Body(
        forms=(
            Form((MASK, Field("area", Kind.POLYGON), REMIX, JOB_ID, IMAGE_NO)),
            Form((Field("area", Kind.POLYGON, True), REMIX, JOB_ID, IMAGE_NO)),
        ),
        forms_message="mask is required",
    ),
    "remix": follow_up(integer("mode", 0, 1, required=False), REMIX_REQUIRED),
    "edit": follow_up(CANVAS, IMG_POS, Field("mask", Kind.MASK), REMIX_REQUIRED),
    "upload-paint": Body((url("imgUrl"), CANVAS, IMG_POS, MASK, REMIX_REQUIRED)),
    "retexture": Body((url("imgUrl"), REMIX_REQUIRED)),
    "remove-background": Body((url("imgUrl"),)),
    "enhance": follow_up(),
    # From a parent's image, or from a prompt (which holds the image URL) alone; an imageNo
    # without a jobId is checked, then ignored.
    "video-diffusion": Body(
        (integer("videoType", 0, 1, required=False, to="video_type"), text("prompt", to="prompt")),
        forms=(
            Form((JOB_ID, IMAGE_NO)),
            Form((text("prompt", required=True), integer("imageNo", 0, 3, required=False))),
        ),
        forms_message="prompt is required (or jobId and imageNo)",
    ),
    "extend-video": Body((text("prompt", to="prompt"), JOB_ID, VIDEO_NO)),
    "video-upscale": Body((JOB_ID, VIDEO_NO)),
}
