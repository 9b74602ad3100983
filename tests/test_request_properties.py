"""Properties of the job-creating methods, end to end against the emulator.

For any arguments, valid or not, a call either raises :class:`ValidationError` naming one
of the method's fields with nothing sent, or sends exactly one POST that the emulator (an
independent witness, with validation of its own) accepts. Arguments mix values within
the documented limits with wrong types, out-of-range numbers, bools for ints, NaN, blank
and huge strings, bad URLs and wrong list lengths.

Each test runs its examples on one event loop, one emulator and one client, made once
(examples are sync calls into that loop; fixtures are not re-made per example).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from legnext_async import (
    BlendAspectRatio,
    Canvas,
    ImagePosition,
    ImageResult,
    LegnextClient,
    Mask,
    PanDirection,
    Polygon,
    RemixMode,
    UpscaleType,
    ValidationError,
    VariationType,
    VideoResult,
    VideoType,
)
from legnext_async._endpoints import Endpoints
from legnext_async.emulator import Emulator

from .conftest import API_KEY

# --- arguments ---------------------------------------------------------------------------


class Parent(enum.Enum):
    """Stands for a completed parent job of the emulator, whose id is known only at run time."""

    GRID = "grid"
    VIDEO = "video"


@attrs.frozen
class Build:
    """A model to construct when the call is made (its constructor may refuse the values)."""

    kind: Callable[..., object]
    kwargs: dict[str, Any]


#: An optional argument left out of the call.
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()


def mostly(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any], odds: int = 4
) -> st.SearchStrategy[Any]:
    """``valid`` ``odds`` times out of ``odds + 1``, else ``invalid``.

    Most arguments are then valid, so that many calls reach the wire; the parts of a
    model (a polygon's points, a canvas's sizes) take higher odds, as they add up.
    """
    return st.integers(0, odds).flatmap(lambda pick: invalid if pick == 0 else valid)


#: Values of the wrong type for any argument.
WRONG_TYPES = st.sampled_from(
    [None, b"bytes", ["a", "list"], {"a": "dict"}, object, 1j, (0, 1)]
) | st.floats(allow_nan=True)
#: Integers at and past every edge, including ones too long to print.
INTEGERS = st.integers() | st.sampled_from([-1, 0, 3, 4, 2**31, 2**63, -(2**63), 10**5000])
#: Lone surrogates cannot be encoded as UTF-8: they must never reach the wire.
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ANY_TEXT = st.text(st.characters(codec=None) | SURROGATES, max_size=30)
ODD_VALUES = WRONG_TYPES | INTEGERS | st.booleans() | ANY_TEXT

VALID_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(
    lambda text: not text.isspace()
) | st.sampled_from(["a red fox in the snow --ar 16:9 --v 7", "x" * 8192, "  padded  "])
BAD_TEXT = st.sampled_from(["", " ", "\t\n ", "\u3000", "x" * 8193, "a \ud800 b"]) | ODD_VALUES
TEXT = mostly(VALID_TEXT, BAD_TEXT)
OPTIONAL_TEXT = mostly(st.just(ABSENT) | st.none() | VALID_TEXT, BAD_TEXT)

#: Hosts the client should take. "xn--" labels (invalid punycode) and Unicode hosts that
#: IDNA refuses are left out: the client does not decode hostnames (see the issue #8 report).
HOSTS = st.sampled_from(
    ["example.com", "cdn.legnext.ai", "127.0.0.2", "[::1]", "例え.jp", "EXAMPLE.com"]
) | st.from_regex(r"[a-z0-9][a-z0-9-]{0,8}(\.[a-z0-9-]{1,8}){0,2}", fullmatch=True).filter(
    lambda host: "xn--" not in host
)
PATH_CHARACTERS = st.characters(codec="utf-8").filter(lambda char: not char.isspace())


@st.composite
def urls(draw: st.DrawFn, *, valid: bool) -> str:
    """An http(s) URL on any host; ``valid=False`` adds bad ports and any path at all."""
    scheme = draw(st.sampled_from(["https://", "http://", "HTTPS://"]))
    ports = st.sampled_from(["", ":443"]) | st.integers(0, 65535).map(lambda n: f":{n}")
    path = st.text(PATH_CHARACTERS, max_size=12)
    if not valid:
        ports |= st.sampled_from([":", ":65536", ":-1", ":abc", ":99999"])
        path |= ANY_TEXT
    return f"{scheme}{draw(HOSTS)}{draw(ports)}/{draw(path)}"


BAD_URLS = st.sampled_from(
    [
        "",
        " ",
        "example.com/a.png",
        "//example.com/a.png",
        "ftp://example.com/a.png",
        "http://",
        "https:///a.png",
        "http://exa mple.com/a.png",
        "https://example.com/a b.png",
        "https://example.com/a.png\n",
        "http://[::1/a.png",
        "javascript:alert(1)",
        "https://example.com/\udcff.png",
        "https://example.com/" + "a" * 1004,  # 1024 characters: the longest allowed
        "https://example.com/" + "a" * 1005,
    ]
)
VALID_URL = urls(valid=True)
WILD_URL = urls(valid=False) | BAD_URLS | ODD_VALUES
URL = mostly(VALID_URL, WILD_URL)
OPTIONAL_URL = mostly(st.just(ABSENT) | st.none() | VALID_URL, WILD_URL)
IMG_URLS = mostly(
    st.lists(VALID_URL, min_size=2, max_size=5)
    | st.lists(VALID_URL, min_size=2, max_size=5).map(tuple),
    st.lists(URL, max_size=7) | VALID_URL | ODD_VALUES,
)
ASPECT_RATIOS = mostly(
    st.sampled_from([*BlendAspectRatio, "2:3", "1:1", "3:2"]),
    st.sampled_from(["16:9", "SQUARE", "", " 1:1"]) | ODD_VALUES,
)


def indexes() -> st.SearchStrategy[Any]:
    """Image or video numbers: 0–3 (an IntEnum too), or their edges, bools, floats, strings."""
    return mostly(
        st.integers(0, 3) | st.just(PanDirection.UP),
        st.sampled_from([-1, 4, 1.0, "1"]) | ODD_VALUES,
    )


def codes(kind: type[enum.IntEnum]) -> st.SearchStrategy[Any]:
    """A small integer code: members and the ints they stand for, or anything else."""
    return mostly(
        st.sampled_from([*kind, *map(int, kind)]),
        st.integers(-1, 4) | st.sampled_from([0.0, "1", "SUBTLE"]) | ODD_VALUES,
    )


def scales(low: float, high: float) -> st.SearchStrategy[Any]:
    """A scale factor: within and at the limits (ints too), or past them, NaN, odd types."""
    return mostly(
        st.floats(low, high) | st.sampled_from([low, high, 2]),
        st.floats(low - 1, high + 1)
        | st.sampled_from([1, 3 if high < 3 else 4, 10**400, float("inf"), float("nan"), "1.5"])
        | ODD_VALUES,
    )


#: Job ids the client must refuse: blanks, path tricks, other characters, too long.
BAD_JOB_IDS = (
    st.sampled_from(
        ["", " ", "a b", "a/b", " x ", "x\n", "..", "x?y", "x#y", "%2e", "a" * 129, "é", "\ud800"]
    )
    | WRONG_TYPES
    | INTEGERS
)


def job_ids(parent: Parent) -> st.SearchStrategy[Any]:
    """The right completed parent, or an id the client must refuse."""
    return mostly(st.just(parent), BAD_JOB_IDS)


#: Sizes of a Canvas or an ImagePosition, which have no documented upper limit.
SIZES = mostly(st.integers(1, 5000) | st.just(2**63 - 1), st.integers(-2, 0) | ODD_VALUES, 19)
OFFSETS = mostly(st.integers(0, 5000) | st.just(2**63 - 1), st.just(-1) | ODD_VALUES, 19)


@st.composite
def polygons(draw: st.DrawFn) -> Build:
    """A polygon of 3 to 6 vertices in its frame, or with anything broken."""
    frame = mostly(st.integers(500, 4096), st.sampled_from([499, 4097]) | ODD_VALUES, 19)
    width, height = draw(frame), draw(frame)
    limit = min(width, height) if isinstance(width, int) and isinstance(height, int) else 500
    points: Any = draw(
        mostly(
            st.integers(3, 6).flatmap(
                lambda n: st.lists(
                    st.integers(0, max(0, min(limit, 10_000))), min_size=2 * n, max_size=2 * n
                )
            ),
            st.lists(st.integers(-5, 5000) | st.booleans(), max_size=13) | ODD_VALUES,
            9,
        )
    )
    return Build(Polygon, {"width": width, "height": height, "points": points})


MASKS = mostly(
    st.builds(
        lambda areas: Build(Mask, {"areas": areas}), st.lists(polygons(), min_size=1, max_size=3)
    )
    | st.builds(lambda url: Build(Mask, {"url": url}), VALID_URL),
    st.builds(lambda url: Build(Mask, {"url": url}), WILD_URL)
    | st.builds(lambda areas: Build(Mask, {"areas": areas}), ODD_VALUES)
    | st.just(Build(Mask, {}))
    | st.just(Build(Mask, {"areas": []}))
    | st.just({"areas": [{"width": 500, "height": 500, "points": [0, 0, 10, 0, 10, 10]}]})
    | ODD_VALUES,
)
CANVASES = mostly(
    st.builds(lambda w, h: Build(Canvas, {"width": w, "height": h}), SIZES, SIZES),
    st.just({"width": 1024, "height": 1024}) | ODD_VALUES,
)
IMAGE_POSITIONS = mostly(
    st.builds(
        lambda w, h, x, y: Build(ImagePosition, {"width": w, "height": h, "x": x, "y": y}),
        SIZES,
        SIZES,
        OFFSETS,
        OFFSETS,
    ),
    st.just((512, 512, 0, 0)) | ODD_VALUES,
)

# --- the methods -------------------------------------------------------------------------


@attrs.frozen
class Method:
    """A job-creating method: its name, the route it posts to and how to draw its arguments."""

    name: str
    route: str
    arguments: dict[str, st.SearchStrategy[Any]] = attrs.field(repr=False)
    #: Where the method lives: on the client, or on the result of a parent job.
    on: str = "client"
    #: Other sets of arguments, for a method with several modes.
    or_arguments: tuple[dict[str, st.SearchStrategy[Any]], ...] = attrs.field(
        default=(), repr=False
    )

    @property
    def fields(self) -> set[str]:
        """The names of all its arguments."""
        every = (self.arguments, *self.or_arguments)
        return {"callback", *(name for arguments in every for name in arguments)}

    def calls(self) -> st.SearchStrategy[dict[str, Any]]:
        """Keyword arguments for one call (every method also takes ``callback``)."""
        return st.one_of(
            [
                st.fixed_dictionaries({**arguments, "callback": OPTIONAL_URL})
                for arguments in (self.arguments, *self.or_arguments)
            ]
        )


GRID_FOLLOW_UP_IDS = job_ids(Parent.GRID)
OPTIONAL_VIDEO_TYPE = st.just(ABSENT) | codes(VideoType)
CLIENT_METHODS = [
    Method("diffusion", "diffusion", {"text": TEXT}),
    Method(
        "blend",
        "blend",
        {"img_urls": IMG_URLS, "aspect_ratio": ASPECT_RATIOS},
    ),
    Method("retexture", "retexture", {"img_url": URL, "remix_prompt": TEXT}),
    Method("remove_background", "remove-background", {"img_url": URL}),
    Method(
        "upload_paint",
        "upload-paint",
        {
            "img_url": URL,
            "canvas": CANVASES,
            "img_pos": IMAGE_POSITIONS,
            "remix_prompt": TEXT,
            "mask": MASKS,
        },
    ),
    Method(
        "upscale",
        "upscale",
        {"job_id": GRID_FOLLOW_UP_IDS, "image_no": indexes(), "type": codes(UpscaleType)},
    ),
    Method(
        "variation",
        "variation",
        {
            "job_id": GRID_FOLLOW_UP_IDS,
            "image_no": indexes(),
            "type": codes(VariationType),
            "remix_prompt": OPTIONAL_TEXT,
        },
    ),
    Method("reroll", "reroll", {"job_id": GRID_FOLLOW_UP_IDS}),
    Method(
        "pan",
        "pan",
        {
            "job_id": GRID_FOLLOW_UP_IDS,
            "image_no": indexes(),
            "direction": codes(PanDirection),
            "scale": scales(1.1, 3.0),
            "remix_prompt": OPTIONAL_TEXT,
        },
    ),
    Method(
        "outpaint",
        "outpaint",
        {
            "job_id": GRID_FOLLOW_UP_IDS,
            "image_no": indexes(),
            "scale": scales(1.1, 2.0),
            "remix_prompt": OPTIONAL_TEXT,
        },
    ),
    Method(
        "inpaint",
        "inpaint",
        {
            "job_id": GRID_FOLLOW_UP_IDS,
            "image_no": indexes(),
            "mask": MASKS,
            "remix_prompt": OPTIONAL_TEXT,
        },
    ),
    Method(
        "remix",
        "remix",
        {
            "job_id": GRID_FOLLOW_UP_IDS,
            "image_no": indexes(),
            "remix_prompt": TEXT,
            "mode": st.just(ABSENT) | st.none() | codes(RemixMode),
        },
    ),
    Method(
        "edit",
        "edit",
        {
            "job_id": GRID_FOLLOW_UP_IDS,
            "image_no": indexes(),
            "canvas": CANVASES,
            "img_pos": IMAGE_POSITIONS,
            "remix_prompt": TEXT,
            "mask": st.just(ABSENT) | st.none() | MASKS,
        },
    ),
    Method("enhance", "enhance", {"job_id": GRID_FOLLOW_UP_IDS, "image_no": indexes()}),
    Method("describe", "describe", {"img_url": URL}),
    Method("shorten", "shorten", {"prompt": TEXT}),
    Method(
        "video_diffusion",
        "video-diffusion",
        {"prompt": TEXT, "video_type": OPTIONAL_VIDEO_TYPE},
        or_arguments=(
            {
                "job_id": GRID_FOLLOW_UP_IDS,
                "image_no": indexes(),
                "prompt": OPTIONAL_TEXT,
                "video_type": OPTIONAL_VIDEO_TYPE,
            },
            {
                "prompt": OPTIONAL_TEXT,
                "job_id": st.just(ABSENT) | GRID_FOLLOW_UP_IDS,
                "image_no": st.just(ABSENT) | indexes(),
            },
        ),
    ),
    Method(
        "extend_video",
        "extend-video",
        {"job_id": job_ids(Parent.VIDEO), "video_no": indexes(), "prompt": OPTIONAL_TEXT},
    ),
    Method(
        "video_upscale", "video-upscale", {"job_id": job_ids(Parent.VIDEO), "video_no": indexes()}
    ),
]


def _without_job_id(method: Method, on: str, name: str | None = None) -> Method:
    arguments = {key: value for key, value in method.arguments.items() if key != "job_id"}
    return Method(name or method.name, method.route, arguments, on=on)


_BY_NAME = {method.name: method for method in CLIENT_METHODS}
RESULT_METHODS = [
    *(
        _without_job_id(_BY_NAME[name], "image")
        for name in ("upscale", "variation", "pan", "outpaint", "inpaint", "remix", "edit")
    ),
    _without_job_id(_BY_NAME["enhance"], "image"),
    Method("reroll", "reroll", {}, on="image"),
    Method(
        "video_diffusion",
        "video-diffusion",
        {
            "image_no": indexes(),
            "prompt": OPTIONAL_TEXT,
            "video_type": OPTIONAL_VIDEO_TYPE,
        },
        on="image",
    ),
    _without_job_id(_BY_NAME["extend_video"], "video"),
    _without_job_id(_BY_NAME["video_upscale"], "video"),
]

# --- the run -----------------------------------------------------------------------------


@attrs.frozen
class Live:
    """One event loop with an emulator, a client and completed parent jobs, for many calls."""

    runner: asyncio.Runner
    emu: Emulator
    client: LegnextClient
    parents: dict[Parent, str]
    image: ImageResult
    video: VideoResult


async def _prepare(runner: asyncio.Runner, emu: Emulator, client: LegnextClient) -> Live:
    await client.__aenter__()
    parents = {
        Parent.GRID: emu.seed_job("diffusion", draft=True),  # a draft grid offers everything
        Parent.VIDEO: emu.seed_job("video_diffusion"),
    }
    image = ImageResult(await client.get_task(parents[Parent.GRID]), client=client)
    video = VideoResult(await client.get_task(parents[Parent.VIDEO]), client=client)
    return Live(runner, emu, client, parents, image, video)


@pytest.fixture
def live() -> Iterator[Live]:
    """An emulator with room for thousands of jobs (no callbacks), and a client for it."""
    with asyncio.Runner() as runner:
        emu = Emulator(
            api_key=API_KEY,
            seed=8,
            whitelisted=True,
            concurrency_limit=1_000_000,
            callbacks_enabled=False,
        )
        runner.run(emu.start())
        try:
            client = LegnextClient(api_key=API_KEY, base_url=emu.base_url)
            try:
                yield runner.run(_prepare(runner, emu, client))
            finally:
                runner.run(client.aclose())
        finally:
            runner.run(emu.close())
        leftover = asyncio.all_tasks(runner.get_loop())
        assert not leftover, f"tasks left running: {leftover}"


def _resolve(value: Any, parents: dict[Parent, str]) -> Any:
    if isinstance(value, Parent):
        return parents[value]
    if isinstance(value, Build):
        return value.kind(**{key: _resolve(item, parents) for key, item in value.kwargs.items()})
    if isinstance(value, dict):
        return {key: _resolve(item, parents) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, parents) for item in value]
    return value


#: Fields a refusal may name besides the method's own arguments: the models' constructors.
MODEL_FIELDS = {"Polygon", "Canvas", "ImagePosition", "mask"}


async def _call(live: Live, method: Method, arguments: dict[str, Any]) -> None:
    """Call ``method``; check that it refused with nothing sent, or sent one accepted POST."""
    target = {"client": live.client, "image": live.image, "video": live.video}[method.on]
    before = len(live.emu.requests)
    given_arguments = {key: value for key, value in arguments.items() if value is not ABSENT}
    refusal: ValidationError | None = None
    with warnings.catch_warnings(record=True) as caught:
        # Deprecated upscale types are sent with a warning; any other warning stays an error.
        warnings.filterwarnings("always", "type [23] ", DeprecationWarning)
        try:
            handle = await getattr(target, method.name)(**_resolve(given_arguments, live.parents))
        except ValidationError as exc:
            refusal = exc
    received = live.emu.requests[before:]
    if refusal is not None:
        assert re.split(r"[.\[]", refusal.field)[0] in method.fields | MODEL_FIELDS
        assert str(refusal).startswith(f"{refusal.field}: ")
        assert received == [], "a refused call sent a request"
        return
    assert [(r.method, r.path, r.status) for r in received] == [
        ("POST", f"/api/v1/{method.route}", 200)
    ]
    assert handle.job_id == received[0].job_id
    assert all(issubclass(warning.category, DeprecationWarning) for warning in caught)


def _check_method(live: Live, method: Method) -> None:
    @given(method.calls())
    def check(arguments: dict[str, Any]) -> None:
        live.runner.run(_call(live, method, arguments))

    check()


@pytest.mark.parametrize("method", [pytest.param(m, id=m.name) for m in CLIENT_METHODS])
def test_a_job_method_sends_a_valid_body_or_nothing(live: Live, method: Method) -> None:
    """Any arguments: ValidationError naming a field and nothing sent, or one accepted POST."""
    _check_method(live, method)


@pytest.mark.parametrize("method", [pytest.param(m, id=f"{m.on}-{m.name}") for m in RESULT_METHODS])
def test_a_follow_up_sends_a_valid_body_or_nothing(live: Live, method: Method) -> None:
    """Follow-ups on a result: the same property, the parent's id filled in by the result."""
    _check_method(live, method)


#: Coroutine methods of results that create no job.
NOT_JOBS = frozenset({"download"})


def _job_methods(cls: type) -> set[str]:
    return {
        name
        for name, function in vars(cls).items()
        if inspect.iscoroutinefunction(function)
        and not name.startswith("_")
        and name not in NOT_JOBS
        and not (function.__doc__ or "").startswith("Deprecated")
    }


def test_every_job_method_has_its_property() -> None:
    """The tables above hold every job-creating method of the client and of the results."""
    assert {method.name for method in CLIENT_METHODS} == _job_methods(Endpoints)
    on_image = {method.name for method in RESULT_METHODS if method.on == "image"}
    assert on_image == _job_methods(ImageResult)
    on_video = {method.name for method in RESULT_METHODS if method.on == "video"}
    assert on_video == _job_methods(VideoResult)
