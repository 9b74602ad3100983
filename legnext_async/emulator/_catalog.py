"""What each endpoint creates: task type, output family, price and duration.

Prices are fast-mode points from the vendor's pricing table (reference §2); where the
table is silent the choice is marked. Durations are virtual seconds (reference §2).
"""

from __future__ import annotations

from typing import Literal

import attrs

Family = Literal["grid", "single", "video", "text"]


@attrs.frozen
class Operation:
    """One ``POST /api/v1/<route>`` endpoint."""

    route: str
    task_type: str
    family: Family
    #: Fast-mode points; ``--turbo`` doubles, see ``_state.price``.
    cost: int
    #: The ``available_actions`` key the parent must list, for follow-ups.
    parent_action: str | None = None
    #: Endpoints gated behind the account whitelist (live 403 on ``/v1/edit``).
    whitelisted: bool = False


OPERATIONS: dict[str, Operation] = {
    op.route: op
    for op in (
        Operation("diffusion", "diffusion", "grid", 80),
        Operation("variation", "variation", "grid", 120, "variation"),
        # Subtle 120 / creative 160 is applied in _state.price.
        Operation("upscale", "upscale", "single", 120, "upscale"),
        # Unpriced by the vendor; a reroll re-runs the parent prompt, so it is priced
        # like the parent diffusion (draft/turbo included).
        Operation("reroll", "reroll", "grid", 80, "reroll"),
        Operation("blend", "blend", "grid", 80),  # unpriced by the vendor: like diffusion
        Operation("describe", "describe", "text", 20),
        Operation("shorten", "shorten", "text", 20),
        Operation("pan", "pan", "grid", 80, "pan"),
        Operation("outpaint", "outpaint", "grid", 80, "outpaint"),
        Operation("inpaint", "inpaint", "grid", 120, "inpaint"),
        Operation("remix", "remix", "grid", 120, "remix"),
        Operation("edit", "edit", "grid", 120, "edit", whitelisted=True),
        Operation("upload-paint", "upload-paint", "grid", 120, whitelisted=True),
        Operation("retexture", "retexture", "grid", 120),
        Operation("remove-background", "remove_background", "single", 80),
        Operation("enhance", "enhance", "grid", 80, "enhance"),
        # 480p price; 720p (videoType 1) costs 1536, applied in _state.price.
        Operation("video-diffusion", "video_diffusion", "video", 480),
        Operation("extend-video", "extend_video", "video", 480, "extend"),
        Operation("video-upscale", "video_upscale", "video", 480, "upscale"),
    )
}

#: Task types by output family, for seeding jobs directly.
FAMILY_BY_TASK_TYPE: dict[str, Family] = {op.task_type: op.family for op in OPERATIONS.values()}

#: Default (min, max) processing time per task type, virtual seconds (reference §2).
DEFAULT_DURATIONS: dict[str, tuple[float, float]] = {
    "diffusion": (30.0, 90.0),
    "variation": (60.0, 90.0),
    "upscale": (90.0, 120.0),
    "reroll": (60.0, 90.0),
    "blend": (60.0, 90.0),
    "describe": (30.0, 60.0),
    "shorten": (20.0, 40.0),
    "pan": (90.0, 120.0),
    "outpaint": (90.0, 120.0),
    "inpaint": (90.0, 120.0),
    "remix": (90.0, 120.0),
    "edit": (90.0, 120.0),
    "upload-paint": (90.0, 120.0),
    "retexture": (90.0, 120.0),
    "remove_background": (15.0, 20.0),
    "enhance": (60.0, 90.0),
    "video_diffusion": (180.0, 300.0),
    "extend_video": (180.0, 300.0),
    "video_upscale": (240.0, 360.0),
}

#: Video prices by ``videoType`` (0 = 480p, 1 = 720p), fast mode.
VIDEO_PRICES = {0: 480, 1: 1536}
#: Upscale prices by ``type``; the deprecated 2x/4x types cost like subtle.
UPSCALE_PRICES = {0: 120, 1: 160, 2: 120, 3: 120}
DRAFT_DIFFUSION_PRICE = 40

#: Each video extension adds 4 s; the docs allow at most four extensions.
MAX_VIDEO_EXTENSIONS = 4
