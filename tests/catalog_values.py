"""Valid values for the fields of the endpoint catalogue, for tests that probe its limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from legnext_async import Canvas, ImagePosition, Mask
from legnext_async._catalog import Field, Kind, Route

if TYPE_CHECKING:
    from legnext_async.emulator import Emulator

IMG = "https://example.com/images/source.png"
MASK_URL = "https://example.com/images/mask.png"


@attrs.frozen
class Parents:
    """Finished jobs seeded on the emulator, one of each kind a parent field needs."""

    grid: str
    draft: str
    video: str

    @classmethod
    def seed(cls, emu: Emulator) -> Parents:
        """A finished grid, a finished draft grid and a finished video job on ``emu``."""
        return cls(
            grid=emu.seed_job("diffusion"),
            draft=emu.seed_job("diffusion", draft=True),
            video=emu.seed_job("video_diffusion"),
        )

    def for_route(self, route: Route) -> str:
        """The parent a route's follow-up needs."""
        if route.follows == "video":
            return self.video
        return self.draft if route.name == "enhance" else self.grid


def sample(field: Field) -> object:
    """A valid value for a field that is not a job id."""
    if field.kind is Kind.CODE or field.kind is Kind.NUMBER:
        return field.low
    if field.kind is Kind.CHOICE:
        return field.members[0].value
    return {
        Kind.TEXT: "a cat",
        Kind.URL: IMG,
        Kind.URLS: [IMG, IMG],
        Kind.INDEX: 0,
        Kind.OBJECT: {
            "mask": Mask(url=MASK_URL),
            "canvas": Canvas(1024, 1024),
            "img_pos": ImagePosition(512, 512, 0, 0),
        }.get(field.name),
    }[field.kind]


def base_values(route: Route, parent: str) -> dict[str, object]:
    """Valid values for every field of a route: the required ones set, the others defaulted.

    video-diffusion is given its image mode (a parent and an image number), so that every
    one of its fields can be probed.
    """
    values: dict[str, object] = {
        field.name: field.default
        if not field.required or field.kind is Kind.JOB_ID
        else sample(field)
        for field in route.fields
    }
    if route.parent is not None:
        values[route.parent.name] = parent
    if route.name == "video_diffusion":
        values["image_no"] = 0
    return values


def url_of(length: int) -> str:
    """An absolute http(s) URL exactly ``length`` characters long."""
    head = "https://example.com/"
    return head + "a" * (length - len(head))
