"""The client's expected costs and the emulator's prices agree; the emulator is the witness.

The client prices a job from its route's :class:`Price` in the catalogue (``_catalog.py``);
the emulator freezes points by a table of its own (``emulator/_catalog.py`` and
``_state.price``), written from the reference without the catalogue. For every route, each
test builds the body the client sends, in each mode the request can name, posts it to the
emulator and compares the ``meta.usage.frozen`` of the answer with the client's estimate. A
request that names no mode is priced by the client as turbo (twice the fast price), so
there the estimate is twice the emulator's fast-mode price.

:data:`DIFFERENCES` lists where the two knowingly differ, and why; each entry is checked
to still differ, so a fix on either side must remove it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest

from legnext_async._catalog import ROUTES, Route
from legnext_async._spending import expected_cost

from .catalog_values import Parents, base_values
from .conftest import API_KEY

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

    from legnext_async.emulator import Emulator

#: (route path, case) -> why the client's estimate is not the emulator's price.
DIFFERENCES: Final = {
    ("extend-video", "unnamed"): (
        "an extension costs its parent's resolution, which the request does not carry: the"
        " client assumes the dearer 720p price, the emulator knows its parent is 480p"
    ),
    ("extend-video", "fast"): "as unnamed: the parent's resolution is not in the request",
    ("extend-video", "turbo"): "as unnamed: the parent's resolution is not in the request",
}


def cases() -> list[ParameterSet]:
    """Every mode the request can name (and none), and every priced choice, per route."""
    found = []
    for route in ROUTES:
        price = route.price
        modes = ["unnamed"] + (["fast", "turbo"] if price.prompt is not None else [])
        if price.draft is not None:
            modes += ["draft-fast", "draft-turbo"]
        found += [pytest.param(route, mode, None, id=f"{route.path}-{mode}") for mode in modes]
        for value, _ in price.choices:
            mode = "fast" if price.prompt is not None else "unnamed"
            found.append(
                pytest.param(route, mode, (value,), id=f"{route.path}-{price.by}-{value}-{mode}")
            )
    return found


def body_for(
    route: Route, parents: Parents, mode: str, choice: tuple[object] | None
) -> dict[str, Any]:
    """The body the client sends for ``route`` with its prompt naming ``mode``."""
    body = route.body(base_values(route, parents.for_route(route)))
    price = route.price
    if mode != "unnamed":
        assert price.prompt is not None
        flags = " ".join(f"--{flag}" for flag in mode.split("-"))
        body[price.prompt] = f"a cat {flags}"
    if choice is not None:
        assert price.by is not None
        (value,) = choice
        body.pop(price.by, None)
        if value is not None:
            body[price.by] = value
    return body


async def frozen_by(emu: Emulator, route: Route, body: dict[str, Any]) -> int:
    """The points the emulator freezes for ``body``."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emu.base_url}/v1/{route.path}", json=body, headers={"x-api-key": API_KEY}
        ) as response,
    ):
        answer = await response.json()
    assert response.status == 200, answer
    frozen = answer["meta"]["usage"]["frozen"]
    assert isinstance(frozen, int)
    return frozen


@pytest.mark.parametrize(("route", "mode", "choice"), cases())
async def test_the_emulator_charges_what_the_client_expects(
    emu: Emulator, route: Route, mode: str, choice: tuple[object] | None
) -> None:
    """The emulator freezes the client's expected cost (half of it where no mode is named)."""
    body = body_for(route, Parents.seed(emu), mode, choice)
    _, expected = expected_cost(route, body)
    frozen = await frozen_by(emu, route, body)
    charged = frozen * 2 if mode == "unnamed" else frozen
    why = DIFFERENCES.get((route.path, mode))
    if why is None:
        assert expected == charged
    else:
        assert expected != charged, f"no longer differs, remove it from DIFFERENCES: {why}"
    # Whatever the differences, the client never expects less than the service takes.
    assert expected >= frozen
