"""The client's limits and the emulator's agree; the emulator is the independent witness.

The client takes its limits from the endpoint catalogue (``_catalog.py``, and the models
for masks, canvases and image positions); the emulator keeps rules of its own
(``emulator/_validation.py``), written from the reference without the catalogue. For every
limit of every route, each test builds the body the client sends, sets one field at the
limit, just past it, or leaves it out, and checks that the emulator accepts (200) what the
client accepts and refuses (400, naming the field) what the client refuses.

:data:`DIFFERENCES` lists where the two knowingly differ, and why. Each entry is checked to
still differ, so a fix on either side must remove it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import attrs
import pytest

from legnext_async import Canvas, ImagePosition, Mask, Polygon, ValidationError
from legnext_async._catalog import ROUTES, Field, Kind, Route
from legnext_async._models import POLYGON_MAX, POLYGON_MIN, POLYGON_MIN_POINTS
from legnext_async.emulator import Emulator

from .catalog_values import IMG, MASK_URL, Parents, base_values, url_of
from .conftest import API_KEY

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

#: A probe that leaves the field out of the body (``None`` on the client's side).
MISSING: Final = object()


@attrs.frozen
class Difference:
    """A case where the emulator knowingly answers otherwise than the client decides."""

    wire: str
    case: str
    #: What the emulator does instead: "accepted", "refused" or "unknown job".
    emulator: str
    why: str
    #: The routes it applies to (by path); empty: every route with the field.
    routes: tuple[str, ...] = ()

    def covers(self, route: Route, wire: str, case: str) -> bool:
        """Whether this entry is about ``case`` of field ``wire`` on ``route``."""
        return (wire, case) == (self.wire, self.case) and (
            not self.routes or route.path in self.routes
        )


#: Go's zero value: the emulator reads "" as a field not given (reference §1).
EMPTY_IS_UNSET = (
    "the emulator reads an empty string as Go's zero value, a field not given; the client"
    " refuses it, since the documented length is 1-8192 and an empty prompt given on purpose"
    " is a mistake"
)
OPTIONAL_REMIX = ("variation", "pan", "outpaint", "inpaint")

DIFFERENCES: Final = (
    Difference(
        "callback",
        "too-long",
        "accepted",
        "no source gives callback a length limit: the client applies the documented limit of"
        " the API's other URL fields (1024, reference §8) so that a URL the service might cut"
        " or refuse is caught before a paid job is sent; the emulator takes up to 4096 so as"
        " not to refuse what the live service may accept",
    ),
    Difference(
        "callback",
        "empty",
        "accepted",
        "the emulator reads an empty callback as Go's zero value, no callback (as the live"
        " service echoes one); the client refuses an empty URL rather than send one that"
        " means nothing",
    ),
    Difference("remixPrompt", "empty", "accepted", EMPTY_IS_UNSET, OPTIONAL_REMIX),
    Difference("prompt", "empty", "accepted", EMPTY_IS_UNSET, ("video-diffusion", "extend-video")),
    Difference(
        "jobId",
        "too-long",
        "unknown job",
        "the client's job-id rule (1-128 of A-Z, a-z, 0-9, _ and -) keeps ids safe in request"
        " paths and is not an API limit (the API documents none); the emulator looks the id"
        " up and answers 404",
    ),
    Difference(
        "jobId",
        "missing",
        "accepted",
        "an image number without a parent job means nothing, so the client refuses it; the"
        " emulator ignores imageNo when there is no jobId (the prompt alone makes the video)",
        ("video-diffusion",),
    ),
)


@attrs.frozen
class Probe:
    """One value for one field: the same on both sides, or made per side."""

    case: str
    #: The body's value, or MISSING to leave the field out.
    wire: object
    #: The client's value for it; by default the wire value (None where it is missing).
    make: Callable[[], object] | None = None

    def value(self) -> object:
        """The client's value; raises ValidationError where the client refuses it already."""
        if self.make is not None:
            return self.make()
        return None if self.wire is MISSING else self.wire


def polygon(width: int = 500, height: int = 500, points: int = 8, x: int = 10) -> dict[str, Any]:
    """A polygon's wire form: a ``points``-long list whose first x is ``x``."""
    return {"width": width, "height": height, "points": [x] + [10] * (points - 1)}


def mask_probe(case: str, wire: dict[str, Any]) -> Probe:
    """A mask given as its wire form, and built from it as the client's Mask."""

    def make() -> Mask:
        areas = wire.get("areas")
        polygons = None if areas is None else [Polygon(**area) for area in areas]
        return Mask(areas=polygons, url=wire.get("url"))

    return Probe(case, wire, make)


MASK_PROBES: Final = (
    mask_probe("smallest-frame", {"areas": [polygon(POLYGON_MIN, POLYGON_MIN)]}),
    mask_probe("largest-frame", {"areas": [polygon(POLYGON_MAX, POLYGON_MAX)]}),
    mask_probe("too-narrow", {"areas": [polygon(width=POLYGON_MIN - 1)]}),
    mask_probe("too-short", {"areas": [polygon(height=POLYGON_MIN - 1)]}),
    mask_probe("too-wide", {"areas": [polygon(width=POLYGON_MAX + 1)]}),
    mask_probe("too-tall", {"areas": [polygon(height=POLYGON_MAX + 1)]}),
    mask_probe("fewest-points", {"areas": [polygon(points=POLYGON_MIN_POINTS)]}),
    mask_probe("too-few-points", {"areas": [polygon(points=POLYGON_MIN_POINTS - 2)]}),
    mask_probe("odd-points", {"areas": [polygon(points=POLYGON_MIN_POINTS + 1)]}),
    mask_probe("point-on-edge", {"areas": [polygon(x=500)]}),
    mask_probe("point-off-edge", {"areas": [polygon(x=501)]}),
    mask_probe("url", {"url": MASK_URL}),
    mask_probe("url-longest", {"url": url_of(1024)}),
    mask_probe("url-too-long", {"url": url_of(1025)}),
    mask_probe("areas-and-url", {"areas": [polygon()], "url": MASK_URL}),
    mask_probe("neither", {}),
)


def model_probe(case: str, cls: type[Any], **wire: int) -> Probe:
    """A canvas or image position given as its wire form, and built from it."""
    return Probe(case, wire, lambda: cls(**wire))


CANVAS_PROBES: Final = (
    model_probe("smallest", Canvas, width=1, height=1),
    model_probe("zero-width", Canvas, width=0, height=1),
    model_probe("zero-height", Canvas, width=1, height=0),
)
IMG_POS_PROBES: Final = (
    model_probe("smallest", ImagePosition, width=1, height=1, x=0, y=0),
    model_probe("zero-width", ImagePosition, width=0, height=1, x=0, y=0),
    model_probe("zero-height", ImagePosition, width=1, height=0, x=0, y=0),
    model_probe("negative-x", ImagePosition, width=1, height=1, x=-1, y=0),
    model_probe("negative-y", ImagePosition, width=1, height=1, x=0, y=-1),
)
OBJECT_PROBES: Final = {"mask": MASK_PROBES, "canvas": CANVAS_PROBES, "img_pos": IMG_POS_PROBES}


def probes(field: Field) -> list[Probe]:
    """Values at and past each limit the client states for ``field``, and none at all."""
    low, high = int(field.low or 0), int(field.high or 0)
    kind = field.kind
    found = [Probe("missing", MISSING)]
    if kind is Kind.TEXT:
        found += [Probe("longest", "x" * high), Probe("too-long", "x" * (high + 1))]
        found += [Probe("empty", "")]
    elif kind is Kind.URL:
        found += [Probe("longest", url_of(high)), Probe("too-long", url_of(high + 1))]
        found += [Probe("empty", ""), Probe("ftp", "ftp://example.com/a.png")]
    elif kind is Kind.URLS:
        found += [Probe(f"{n}-urls", [IMG] * n) for n in (low - 1, low, high, high + 1)]
        found += [Probe("bad-item", [IMG, "ftp://example.com/a.png"])]
    elif kind is Kind.JOB_ID:
        found += [Probe("too-long", "a" * 129)]
    elif kind is Kind.INDEX or kind is Kind.NUMBER:
        step = 1 if kind is Kind.INDEX else 0.01
        lowest, highest = field.low or 0, field.high or 0
        found += [Probe("lowest", lowest), Probe("highest", highest)]
        found += [
            Probe("below", round(lowest - step, 2)),
            Probe("above", round(highest + step, 2)),
        ]
    elif kind is Kind.CODE:
        codes = sorted({int(m.value) for m in field.members} | dict(field.deprecated).keys())
        found += [Probe(f"code-{code}", code) for code in codes]
        found += [Probe("below", codes[0] - 1), Probe("above", codes[-1] + 1)]
    elif kind is Kind.CHOICE:
        found += [Probe(f"choice-{m.value}", m.value) for m in field.members]
        found += [Probe("unknown", "16:9")]
    else:
        found += OBJECT_PROBES[field.name]
    return found


def agreement_cases() -> list[ParameterSet]:
    """Every probe of every field of every route."""
    return [
        pytest.param(route, field, probe, id=f"{route.path}-{field.wire}-{probe.case}")
        for route in ROUTES
        for field in route.fields
        for probe in probes(field)
    ]


def client_decides(route: Route, values: dict[str, object], probe: Probe) -> str:
    """What the client does with the probe: "accepted", or "refused" before sending."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # upscale types 2 and 3
        try:
            route.body(values)
            probe.value()
        except ValidationError:
            return "refused"
    return "accepted"


async def emulator_decides(emu: Emulator, route: Route, body: dict[str, Any], wire: str) -> str:
    """What the emulator answers the body: accepted, refused naming ``wire``, or else."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emu.base_url}/v1/{route.path}", json=body, headers={"x-api-key": API_KEY}
        ) as response,
    ):
        answer = await response.json()
    message = str(answer.get("error", {}).get("message", answer.get("message", "")))
    if response.status == 200:
        return "accepted"
    if response.status == 400 and wire in message:
        return "refused"
    if response.status == 404:
        return "unknown job"
    return f"HTTP {response.status}: {message}"


@pytest.mark.parametrize(("route", "field", "probe"), agreement_cases())
async def test_the_emulator_agrees_with_the_client(
    emu: Emulator, route: Route, field: Field, probe: Probe
) -> None:
    """The emulator accepts what the client sends and refuses what the client refuses."""
    values = base_values(route, Parents.seed(emu).for_route(route))
    if route.name == "video_diffusion":
        values["prompt"] = f"{IMG} the waves roll in"  # both modes at once: probe each field
    body = route.body(values)
    try:
        values[field.name] = probe.value()
    except ValidationError:
        values[field.name] = None
    if probe.wire is MISSING:
        body.pop(field.wire, None)
    else:
        body[field.wire] = probe.wire
    client = client_decides(route, values, probe)
    emulator = await emulator_decides(emu, route, body, field.wire)
    known = [d for d in DIFFERENCES if d.covers(route, field.wire, probe.case)]
    if known:
        assert client != known[0].emulator
        assert emulator == known[0].emulator, known[0].why
    else:
        assert emulator == client


def test_every_recorded_difference_is_probed() -> None:
    """Each entry of DIFFERENCES matches at least one probe, so none is left stale."""
    cases = [
        (route, field.wire, probe.case)
        for route in ROUTES
        for field in route.fields
        for probe in probes(field)
    ]
    for difference in DIFFERENCES:
        assert any(difference.covers(*case) for case in cases), difference
