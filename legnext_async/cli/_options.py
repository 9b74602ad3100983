"""Each endpoint's arguments as command-line options and as batch-file fields, from its route.

The routes of ``_catalog.py`` say every field of every endpoint; this module turns them into
``argparse`` options (``legnext inpaint JOB_ID --image 0 --polygon ...``) and reads a
batch line's JSON object into the same values, so that no endpoint is written out twice.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from legnext_async._catalog import ROUTES, Field, Kind, Route
from legnext_async._exceptions import ValidationError
from legnext_async._models import Canvas, ImagePosition, Mask, Polygon
from legnext_async._validation import shown

if TYPE_CHECKING:
    from legnext_async._client import LegnextClient
    from legnext_async._handle import TaskHandle

__all__ = [
    "ROUTES_BY_OP",
    "add_route_options",
    "option_label",
    "submit",
    "values_from_args",
    "values_from_json",
]

#: Every route, by its path (``upload-paint``) and by its Python name (``upload_paint``).
ROUTES_BY_OP: Final = {
    **{route.path: route for route in ROUTES},
    **{route.name: route for route in ROUTES},
}

#: Options spelled as a user of the API says them rather than as the field is named.
_FLAGS: Final = {
    "image_no": "--image",
    "video_no": "--video",
    "remix_prompt": "--prompt",
    "img_pos": "--image-position",
}
#: Names of positional arguments in the usage line.
_METAVARS: Final = {"text": "PROMPT", "img_urls": "IMG_URL"}

_OPTION_METAVARS: Final = {Kind.TEXT: "TEXT", Kind.URL: "URL", Kind.INDEX: "N", Kind.NUMBER: "X"}

_SIZE: Final = re.compile(r"(\d+)x(\d+)")
_POLYGON: Final = re.compile(r"(\d+)x(\d+):(-?\d+(?:,-?\d+)*)")
_POSITION: Final = re.compile(r"(\d+)x(\d+):(-?\d+),(-?\d+)")


def is_positional(field: Field) -> bool:
    """Whether ``field`` is a positional argument: what names the input (a job, a prompt,
    URLs). Image and video numbers are options (``--image 0``), as people say them."""
    return field.positional and field.kind not in (Kind.INDEX, Kind.OBJECT)


def option_label(field: Field) -> str:
    """How the command line names ``field``: its flag, or its positional's metavar."""
    if is_positional(field):
        return _METAVARS.get(field.name, field.name.upper())
    if field.name == "mask":
        return "--polygon/--mask-url"
    return _FLAGS.get(field.name, "--" + field.name.replace("_", "-"))


def _dest(field: Field) -> str:
    return f"field_{field.name}"


def _code(field: Field, value: object) -> object:
    """A code given by its member's name (``up``, ``SUBTLE``, ``left``), its number, or (a
    string code) its value (``2:3``).

    Raises:
        ValidationError: a value that is none of these, with the values the field takes in
            the API's words (the client's own check would name its Python enum).
    """
    if isinstance(value, str):
        text = value.strip()
        if field.kind is Kind.CODE and re.fullmatch(r"-?\d+", text):
            return int(text)  # its range: the route's check says it, deprecated codes too
        name = text.lower().replace("-", "_")
        for member in field.members:
            if member.name.lower() == name or member.value == text:
                return member
    elif value is None or isinstance(value, enum.Enum) or _is_code_number(field, value):
        return value
    # A batch line's value is JSON: say it as JSON (``true``, not ``True``).
    got = shown(value) if isinstance(value, str) else _json_text(value)
    raise ValidationError(field.name, f"must be one of {_names(field)}, got {got}")


def _is_code_number(field: Field, value: object) -> bool:
    """Whether ``value`` is a number an integer code may be (its range: the route's check)."""
    return field.kind is Kind.CODE and isinstance(value, int) and not isinstance(value, bool)


def _json_text(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _names(field: Field) -> str:
    members = field.members
    if field.kind is Kind.CHOICE:
        return ", ".join(f"{m.value} ({m.name.lower()})" for m in members)
    return ", ".join(f"{m.name.lower()} ({int(m.value)})" for m in members)


def _polygon(text: str) -> Polygon:
    match = _POLYGON.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not WIDTHxHEIGHT:X1,Y1,X2,Y2,... (e.g. 500x500:10,10,10,100,100,100)"
        )
    width, height, points = match.groups()
    try:
        return Polygon(
            width=int(width), height=int(height), points=[int(p) for p in points.split(",")]
        )
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _canvas(text: str) -> Canvas:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 1024x1024)")
    try:
        return Canvas(width=int(match[1]), height=int(match[2]))
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _position(text: str) -> ImagePosition:
    match = _POSITION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT:X,Y (e.g. 512x512:256,0)")
    width, height, x, y = (int(part) for part in match.groups())
    try:
        return ImagePosition(width=width, height=height, x=x, y=y)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(kind: type[int] | type[float], what: str) -> Any:
    def convert(text: str) -> int | float:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

    return convert


def _add_field(parser: argparse.ArgumentParser, field: Field) -> None:
    kind = field.kind
    if kind is Kind.OBJECT:
        _add_object(parser, field)
        return
    options: dict[str, Any] = {"dest": _dest(field)}
    if kind is Kind.URLS:
        options["nargs"] = "+"
    elif kind is Kind.INDEX:
        options["type"] = _number(int, "a whole number")
        options["help"] = f"{int(field.low or 0)} to {int(field.high or 0)}"
    elif kind is Kind.NUMBER:
        options["type"] = _number(float, "a number")
        options["help"] = f"{field.low:g} to {field.high:g}"
    elif kind is Kind.CODE or kind is Kind.CHOICE:
        options["help"] = _names(field)
    elif kind is Kind.TEXT:
        options["help"] = f"{int(field.low or 0)} to {int(field.high or 0)} characters"
    if is_positional(field):
        options["metavar"] = option_label(field)
        if not field.required:
            options["nargs"] = "?"
        parser.add_argument(**options)
        return
    options["required"] = field.required
    if "nargs" not in options:
        options["metavar"] = _OPTION_METAVARS.get(kind, field.name.upper())
    parser.add_argument(option_label(field), **options)


def _add_object(parser: argparse.ArgumentParser, field: Field) -> None:
    if field.cls is Mask:
        group = parser.add_mutually_exclusive_group(required=field.required)
        group.add_argument(
            "--polygon",
            dest="mask_polygons",
            action="append",
            type=_polygon,
            metavar="WxH:X1,Y1,...",
            help="an area to repaint, in a WIDTHxHEIGHT frame (repeatable)",
        )
        group.add_argument(
            "--mask-url", dest="mask_url", metavar="URL", help="a black-and-white mask image"
        )
        return
    convert: Callable[[str], object]
    if field.cls is Canvas:
        convert, metavar, what = _canvas, "WxH", "the canvas size"
    else:
        convert, metavar, what = _position, "WxH:X,Y", "the image's size and place on the canvas"
    parser.add_argument(
        option_label(field),
        dest=_dest(field),
        type=convert,
        required=field.required,
        metavar=metavar,
        help=what,
    )


def add_route_options(parser: argparse.ArgumentParser, route: Route) -> None:
    """Add an argument or option for each field of ``route`` to ``parser``."""
    for field in route.fields:
        _add_field(parser, field)


def values_from_args(route: Route, args: argparse.Namespace) -> dict[str, object]:
    """The route's values (by field name) from parsed options; not yet checked."""
    values: dict[str, object] = {}
    for field in route.fields:
        if field.cls is Mask:
            polygons = args.mask_polygons
            url = args.mask_url
            values[field.name] = (
                Mask(areas=polygons) if polygons else Mask(url=url) if url is not None else None
            )
            continue
        value = getattr(args, _dest(field))
        if value is None and not field.required:
            value = field.default
        if field.kind is Kind.CODE or field.kind is Kind.CHOICE:
            value = _code(field, value)
        values[field.name] = value
    return values


def _object_from_json(field: Field, value: object) -> object:
    """A mask, canvas or image position from its JSON object (the wire form)."""
    if not isinstance(value, Mapping):
        return value  # the route's check says what it takes
    if field.cls is Mask:
        areas = value.get("areas")
        if areas is not None:
            if not isinstance(areas, list):
                raise ValidationError("mask.areas", "must be a list of polygons")
            polygons = []
            for index, area in enumerate(areas):
                if not isinstance(area, Mapping) or set(area) != {"width", "height", "points"}:
                    raise ValidationError(f"mask.areas[{index}]", "must be {width, height, points}")
                try:
                    polygons.append(Polygon(**area))
                except ValidationError as exc:
                    where = f"mask.areas[{index}].{exc.field.removeprefix('Polygon.')}"
                    raise ValidationError(where, str(exc).removeprefix(f"{exc.field}: ")) from None
            return Mask(areas=polygons, url=value.get("url"))
        return Mask(url=value.get("url"))
    cls = field.cls
    assert cls is not None
    try:
        made: object = cls(**value)
    except TypeError:
        wanted = ", ".join(a.name for a in cls.__attrs_attrs__)  # type: ignore[attr-defined]
        raise ValidationError(field.name, f"must be an object of {wanted}") from None
    return made


def values_from_json(route: Route, line: Mapping[str, object]) -> dict[str, object]:
    """The route's values from a batch line (fields by their Python names); not yet checked.

    Raises:
        ValidationError: a field is unknown, or a required one is missing.
    """
    names = {field.name for field in route.fields}
    for name in line:
        if name != "op" and name not in names:
            raise ValidationError(
                name, f"is not a field of {route.name} (fields: {', '.join(sorted(names))})"
            )
    values: dict[str, object] = {}
    for field in route.fields:
        if field.name not in line:
            if field.required:
                raise ValidationError(field.name, "is required")
            values[field.name] = field.default
            continue
        value = line[field.name]
        if field.kind is Kind.OBJECT:
            value = _object_from_json(field, value)
        elif field.kind is Kind.CODE or field.kind is Kind.CHOICE:
            value = _code(field, value)
        values[field.name] = value
    return values


async def submit(
    client: LegnextClient, route: Route, values: Mapping[str, object], key: str | None
) -> TaskHandle[Any]:
    """Submit a job of ``route`` through the client's own method for it."""
    method = getattr(client, route.name)
    positional = [values[f.name] for f in route.fields if f.positional]
    keywords = {f.name: values[f.name] for f in route.fields if not f.positional}
    handle: TaskHandle[Any] = await method(*positional, **keywords, key=key)
    return handle
