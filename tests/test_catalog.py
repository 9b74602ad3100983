"""The endpoint catalogue: every client method and follow-up is held to its route.

Each route of ``_catalog.py`` names its fields (Python and wire names, kinds, limits,
defaults, positions). These tests check each client method's signature, return type and
docstring against its route, each follow-up against its client method, and then call every
method with values at and just past each limit its route states: at the limit the value is
sent as the wire form; past it a ValidationError names the field and the limit, and nothing
is sent.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from legnext_async import (
    ImageResult,
    LegnextClient,
    TaskType,
    ValidationError,
    VideoResult,
)
from legnext_async._catalog import ROUTES, Field, Kind, Route
from legnext_async._endpoints import Endpoints
from legnext_async.emulator import Emulator

from .catalog_values import IMG, MASK_URL, Parents, base_values, url_of

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

RESULTS = {"image": "ImageResult", "video": "VideoResult", "text": "TextResult"}
FOLLOW_UP_CLASSES: dict[str, type[ImageResult] | type[VideoResult]] = {
    "image": ImageResult,
    "video": VideoResult,
}
#: Follow-ups renamed to their client method's name, kept as deprecated aliases.
RENAMED = {
    (ImageResult, "video"): "video_diffusion",
    (VideoResult, "extend"): "extend_video",
    (VideoResult, "upscale"): "video_upscale",
}

Positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
KeywordOnly = inspect.Parameter.KEYWORD_ONLY
Empty = inspect.Parameter.empty


def by_route() -> list[ParameterSet]:
    """One case per route, named after its path."""
    return [pytest.param(route, id=route.path) for route in ROUTES]


def follow_ups() -> list[ParameterSet]:
    """One case per route that a result offers as a follow-up."""
    return [pytest.param(route, id=route.path) for route in ROUTES if route.follows]


def parameters(function: Any) -> list[tuple[str, Any, object, object]]:
    """``(name, kind, default, annotation)`` of each parameter after ``self``."""
    listed = list(inspect.signature(function).parameters.values())[1:]
    return [(p.name, p.kind, p.default, p.annotation) for p in listed]


def expected(field: Field, kind: Any = None) -> tuple[str, Any, object, object]:
    """The parameter a field calls for (``kind`` overrides its position)."""
    position = kind or (Positional if field.positional else KeywordOnly)
    default = Empty if field.required else field.default
    return (field.name, position, default, field.annotation)


POLL = ("poll", KeywordOnly, None, "PollPolicy | None")
KEY = ("key", KeywordOnly, None, "str | None")


# --- the routes ------------------------------------------------------------------------


def test_one_route_per_endpoint() -> None:
    """The 19 job endpoints each have one route, whose family is that of its task type."""
    assert len(ROUTES) == 19
    assert len({route.path for route in ROUTES}) == len({route.name for route in ROUTES}) == 19
    for route in ROUTES:
        task_type = TaskType(route.path)
        assert task_type.is_known, route.path
        assert task_type.family == route.family, route.path


def test_the_client_has_a_method_for_each_route_and_no_other() -> None:
    """Every public method of the endpoints mixin is a route's, and every route has one."""
    public = {name for name in vars(Endpoints) if not name.startswith("_")}
    assert public == {route.name for route in ROUTES}


def test_what_names_the_input_comes_first() -> None:
    """Positional fields come first in each route; every one names the input of the job."""
    for route in ROUTES:
        kinds = [field.positional for field in route.fields]
        assert kinds == sorted(kinds, reverse=True), route.name
        for field in route.fields:
            if field.positional:
                assert field.kind in (Kind.JOB_ID, Kind.INDEX, Kind.TEXT, Kind.URL, Kind.URLS)


def test_a_route_refuses_values_its_method_did_not_name() -> None:
    """A method that hands its route the wrong names fails loudly rather than drop a field."""
    route = next(r for r in ROUTES if r.name == "diffusion")
    with pytest.raises(TypeError, match=r"\['text', 'txt'\]"):
        route.body({"txt": "a cat", "callback": None})


# --- client methods against their routes ------------------------------------------------


@pytest.mark.parametrize("route", by_route())
def test_client_method_signature_is_its_route(route: Route) -> None:
    """Names, positions, defaults and types of the method are the route's, then ``poll``
    and ``key``."""
    method = getattr(LegnextClient, route.name)
    assert parameters(method) == [*map(expected, route.fields), POLL, KEY]


@pytest.mark.parametrize("route", by_route())
def test_client_method_returns_its_route_family(route: Route) -> None:
    """The method's handle resolves to the result class of the route's output family."""
    method = getattr(LegnextClient, route.name)
    assert inspect.signature(method).return_annotation == f"TaskHandle[{RESULTS[route.family]}]"


@pytest.mark.parametrize("route", by_route())
def test_client_method_documents_every_parameter_and_its_path(route: Route) -> None:
    """The docstring names the endpoint and has an ``Args`` entry for each parameter."""
    doc = inspect.getdoc(getattr(LegnextClient, route.name)) or ""
    assert f"POST /v1/{route.path}" in doc
    args = doc.split("Args:", 1)[1].split("Returns:", 1)[0]
    for name in [field.name for field in route.fields] + ["poll", "key"]:
        assert f"\n    {name}: " in args, name


# --- follow-ups against their client methods -------------------------------------------


@pytest.mark.parametrize("route", follow_ups())
def test_follow_up_is_its_client_method_minus_the_job_id(route: Route) -> None:
    """Same name, keywords, defaults and types; the image or video number comes first."""
    assert route.follows is not None
    follow_up = getattr(FOLLOW_UP_CLASSES[route.follows], route.name)
    client_method = getattr(LegnextClient, route.name)
    index, parent = route.index, route.parent
    assert parent is not None
    first = [] if index is None else [(index.name, Positional, Empty, "int")]
    rest = [
        (name, KeywordOnly, default, annotation)
        for name, _, default, annotation in parameters(client_method)
        if name not in (parent.name, index and index.name)
    ]
    assert parameters(follow_up) == first + rest
    assert inspect.signature(follow_up).return_annotation == (
        inspect.signature(client_method).return_annotation
    )


@pytest.mark.parametrize("cls", [ImageResult, VideoResult], ids=["image", "video"])
def test_results_offer_only_the_routes_that_follow_them(cls: type[Any]) -> None:
    """A result's coroutine methods are its family's follow-ups, the renamed aliases, and
    ``download`` (which saves files and submits nothing)."""
    family = "image" if cls is ImageResult else "video"
    methods = {
        name
        for name, value in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    routes = {route.name for route in ROUTES if route.follows == family}
    aliases = {name for (owner, name) in RENAMED if owner is cls}
    assert methods == routes | aliases | {"download"}


def test_text_results_offer_no_follow_ups() -> None:
    """No route follows a describe or shorten job."""
    assert [route.name for route in ROUTES if route.follows == "text"] == []


# --- every limit of every route, at and past it ----------------------------------------


@pytest.fixture
def parents(emu: Emulator) -> Parents:
    """A finished grid, a finished draft grid and a finished video job."""
    return Parents.seed(emu)


async def call(client: LegnextClient, route: Route, values: dict[str, Any]) -> Any:
    """Call the route's client method with ``values``: positional fields by position."""
    args = [values.pop(f.name) for f in route.fields if f.positional]
    return await getattr(client, route.name)(*args, **values)


@attrs.frozen
class Probe:
    """A value for one field, and what the client must do with it."""

    value: object
    #: The wire value the body must carry, or None when the value must be refused.
    wire: object = None
    #: The field the refusal names, and a piece of the limit it states.
    field: str = ""
    says: str = ""


def bounds(field: Field) -> tuple[float, float]:
    """The field's ``low`` and ``high``, where it has them (else 0)."""
    return (field.low or 0, field.high or 0)


def probes(field: Field) -> list[tuple[str, Probe]]:
    """Values at and past each limit of ``field``, named for the case ids."""
    name = field.name
    low, high = bounds(field)
    kind = field.kind
    if kind is Kind.TEXT:
        limit = f"{int(low)} to {int(high)}"
        return [
            ("longest", Probe("x" * int(high), "x" * int(high))),
            ("empty", Probe("", field=name, says=limit)),
            ("too-long", Probe("x" * int(high + 1), field=name, says=limit)),
            ("not-str", Probe(7, field=name, says="string")),
        ]
    if kind is Kind.URL:
        return [
            ("longest", Probe(url_of(int(high)), url_of(int(high)))),
            ("too-long", Probe(url_of(int(high) + 1), field=name, says=str(int(high)))),
            ("ftp", Probe("ftp://example.com/a.png", field=name, says="http(s)")),
            ("relative", Probe("/a.png", field=name, says="absolute")),
        ]
    if kind is Kind.URLS:
        limit = f"{int(low)} to {int(high)}"
        return [
            ("fewest", Probe([IMG] * int(low), [IMG] * int(low))),
            ("most", Probe([IMG] * int(high), [IMG] * int(high))),
            ("too-few", Probe([IMG] * int(low - 1), field=name, says=limit)),
            ("too-many", Probe([IMG] * int(high + 1), field=name, says=limit)),
            ("lone-string", Probe(IMG, field=name, says="list")),
            ("bad-item", Probe([IMG, "not a url"], field=f"{name}[1]", says="http(s)")),
        ]
    if kind is Kind.JOB_ID:
        return [
            ("empty", Probe("", field=name, says="1 to 128 characters")),
            ("slash", Probe("a/b", field=name, says="1 to 128 characters")),
            ("too-long", Probe("a" * 129, field=name, says="1 to 128 characters")),
            ("not-str", Probe(7, field=name, says="string")),
        ]
    if kind is Kind.INDEX or kind is Kind.CODE:
        deprecated = dict(field.deprecated)
        top = max([int(high), *deprecated])
        limit = "deprecated" if deprecated else f"{int(low)} to {int(high)}"
        cases = [(f"{value}", Probe(value, value)) for value in range(int(low), int(high) + 1)] + [
            ("below", Probe(int(low) - 1, field=name, says=limit)),
            ("above", Probe(top + 1, field=name, says=limit)),
            ("bool", Probe(True, field=name, says="SUBTLE (0)" if deprecated else "integer")),
        ]
        cases += [(m.name.lower(), Probe(m, m.value)) for m in field.members]
        return cases
    if kind is Kind.CHOICE:
        members = field.members
        return (
            [(str(m.name).lower(), Probe(m, m.value)) for m in members]
            + [(f"plain-{m.name.lower()}", Probe(m.value, m.value)) for m in members]
            + [
                ("unknown", Probe("16:9", field=name, says=repr(members[0].value))),
                ("not-str", Probe(1, field=name, says=repr(members[0].value))),
            ]
        )
    if kind is Kind.NUMBER:
        limit = f"{low} to {high}"
        return [
            ("lowest", Probe(low, low)),
            ("highest", Probe(high, high)),
            ("below", Probe(round(low - 0.01, 2), field=name, says=limit)),
            ("above", Probe(round(high + 0.01, 2), field=name, says=limit)),
            ("nan", Probe(math.nan, field=name, says=limit)),
            ("str", Probe(str(low), field=name, says="number")),
            ("bool", Probe(True, field=name, says="number")),
        ]
    assert kind is Kind.OBJECT
    shape = field.shape.split()[1].split("(")[0] + "("
    return [
        ("dict", Probe({"url": MASK_URL}, field=name, says=shape)),
        ("str", Probe("x", field=name, says=shape)),
    ]


def none_probe(field: Field) -> list[tuple[str, Probe]]:
    """``None`` for a field always sent: refused like any value of the wrong type."""
    if not field.always_sent:
        return []
    says = {
        Kind.TEXT: "string",
        Kind.URL: "http(s)",
        Kind.URLS: "list",
        Kind.JOB_ID: "string",
        Kind.INDEX: "integer",
        Kind.CODE: "SUBTLE (0)" if field.deprecated else "integer",
        Kind.NUMBER: "number",
    }.get(field.kind)
    if field.kind is Kind.CHOICE:
        says = repr(field.members[0].value)
    if field.kind is Kind.OBJECT:
        says = field.shape.split()[1].split("(")[0] + "("
    assert says is not None
    return [("none", Probe(None, field=field.name, says=says))]


def limit_cases() -> list[ParameterSet]:
    """Every probe of every field of every route."""
    return [
        pytest.param(route, field, probe, id=f"{route.path}-{field.name}-{case}")
        for route in ROUTES
        for field in route.fields
        for case, probe in [*probes(field), *none_probe(field)]
    ]


@pytest.mark.parametrize(("route", "field", "probe"), limit_cases())
async def test_every_limit_of_every_route(
    emu: Emulator,
    legnext: LegnextClient,
    parents: Parents,
    route: Route,
    field: Field,
    probe: Probe,
) -> None:
    """At a limit the value is sent in its wire form; past it, ValidationError and no request."""
    values = {**base_values(route, parents.for_route(route)), field.name: probe.value}
    if probe.wire is None:
        with pytest.raises(ValidationError) as caught:
            await call(legnext, route, values)
        assert caught.value.field == probe.field
        assert probe.says in str(caught.value)
        assert emu.requests == []
        return
    await call(legnext, route, values)
    [request] = [r for r in emu.requests if r.method == "POST"]
    assert request.path == f"/api/v1/{route.path}"
    assert isinstance(request.body, dict)
    assert request.body[field.wire] == probe.wire
