"""A job's timeline and its wire form (reference §4).

A job never runs anything: its status is a pure function of the virtual clock and
four timestamps fixed when it is scheduled, so thousands of jobs cost no timers.
"""

from __future__ import annotations

import json
from typing import Any, Final

import attrs

from ._catalog import MAX_VIDEO_EXTENSIONS, Family
from ._clock import ZERO_TIME, format_seconds
from ._media import signed_query

PENDING: Final = "pending"
STAGED: Final = "staged"
PROCESSING: Final = "processing"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
TERMINAL: Final = frozenset({COMPLETED, FAILED})

_INDEXES: Final = [0, 1, 2, 3]
#: The map every finished grid lists (live capture T-GET).
GRID_ACTIONS: Final[dict[str, object]] = {
    "edit": _INDEXES,
    "inpaint": _INDEXES,
    "outpaint": _INDEXES,
    "pan": _INDEXES,
    "remix": _INDEXES,
    "reroll": True,
    "upscale": _INDEXES,
    "variation": _INDEXES,
}
#: A single upscaled image offers Midjourney's per-image buttons for image 0; there is
#: no grid to reroll. (The reference is silent; this mirrors Midjourney's UI.)
SINGLE_ACTIONS: Final[dict[str, object]] = {
    "edit": [0],
    "inpaint": [0],
    "outpaint": [0],
    "pan": [0],
    "remix": [0],
    "reroll": False,
    "upscale": [0],
    "variation": [0],
}


@attrs.frozen
class JobError:
    """The ``error`` object of a failed task."""

    code: int
    message: str
    raw_message: str = ""


#: The error of a job failed by ``failure_rate``, ``fail_next()`` or ``seed_job(failed=True)``.
DEFAULT_FAILURE: Final = JobError(
    code=10001, message="Task failed", raw_message="midjourney job failed (emulated)"
)


@attrs.define(eq=False, slots=True)
class Job:
    """One task. Times are virtual Unix seconds; ``started_at is None`` while queued."""

    job_id: str
    task_type: str
    family: Family
    #: The owning account, by id: a job never reaches into its account's wallet.
    account_id: int
    callback: str | None
    origin: str
    created_at: float
    frozen: int
    from_points: int
    from_credits: int
    seed: str
    failure: JobError | None = None
    parent_id: str | None = None
    prompt: str = ""
    draft: bool = False
    turbo: bool = False
    video_type: int = 0
    video_count: int = 4
    extend_depth: int = 0
    duration: float = 0.0
    staged_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    settled: bool = False
    seeded: bool = False
    #: The ``Expires`` of the job's signed output URLs; ``None``: plain URLs.
    signed_until: int | None = None
    _cache_status: str = ""
    _cache_body: bytes = b""

    def schedule(self, start: float, pending: float, staged: float) -> None:
        """Fix the timeline: pending from ``start``, then staged, processing, done."""
        self.staged_at = start + pending if staged > 0 else None
        self.started_at = start + pending + staged
        self.ended_at = self.started_at + self.duration

    def status_at(self, now: float) -> str:
        """The wire ``status`` at virtual time ``now``."""
        started = self.started_at
        if started is None:
            return PENDING
        assert self.ended_at is not None
        if now >= self.ended_at:
            return FAILED if self.failure is not None else COMPLETED
        if now >= started:
            return PROCESSING
        if self.staged_at is not None and now >= self.staged_at:
            return STAGED
        return PENDING

    def body_at(self, now: float) -> bytes:
        """The serialised task object at ``now``; cached per status, as GETs repeat."""
        status = self.status_at(now)
        if status != self._cache_status:
            self._cache_body = json.dumps(self.to_wire(status), separators=(",", ":")).encode()
            self._cache_status = status
        return self._cache_body

    # -- wire form -----------------------------------------------------------------

    def to_wire(self, status: str) -> dict[str, Any]:
        """The task object as the service sends it, for ``status``."""
        running = status in (PROCESSING, COMPLETED, FAILED)
        done = status in TERMINAL
        error = self.failure if status == FAILED else None
        return {
            "job_id": self.job_id,
            "model": "midjourney",
            "task_type": self.task_type,
            "status": status,
            "config": {
                "service_mode": "public",
                "webhook_config": {"endpoint": self.callback or "", "secret": ""},
            },
            "input": None,
            "output": self.output() if status == COMPLETED else zero_output(self.family),
            "meta": {
                "created_at": format_seconds(self.created_at),
                "started_at": format_seconds(self.started_at or 0) if running else ZERO_TIME,
                "ended_at": format_seconds(self.ended_at or 0) if done else ZERO_TIME,
                "usage": {
                    "type": "point",
                    "frozen": self.frozen,
                    "consume": self.frozen if status == COMPLETED else 0,
                },
            },
            "detail": None,
            "logs": [],
            "error": {
                "code": error.code if error else 0,
                "raw_message": error.raw_message if error else "",
                "message": error.message if error else "",
                "detail": None,
            },
        }

    def file_names(self) -> list[str]:
        """Names under ``/files/`` that this job's completed output links to."""
        if self.family == "grid":
            return [f"{self.job_id}_grid.png"] + [f"{self.job_id}_{i}.png" for i in range(4)]
        if self.family == "single":
            return [f"{self.job_id}_0.png"]
        if self.family == "video":
            return [f"{self.job_id}_{i}.mp4" for i in range(self.video_count)]
        return []

    def available_actions(self) -> dict[str, object]:
        """Follow-ups this finished job allows, keyed like the wire ``available_actions``."""
        if self.family == "grid":
            actions = dict(GRID_ACTIONS)
            if self.draft:
                actions["enhance"] = _INDEXES  # draft grids can be enhanced (D:enhance)
            return actions
        if self.family == "single":
            return dict(SINGLE_ACTIONS) if self.task_type == "upscale" else {}
        if self.family == "video":
            if self.task_type == "video_upscale":
                return {}
            indexes = list(range(self.video_count))
            video_actions: dict[str, object] = {"upscale": indexes}
            if self.extend_depth < MAX_VIDEO_EXTENSIONS:
                video_actions["extend"] = indexes
            return dict(sorted(video_actions.items()))
        return {}

    def file_url(self, name: str) -> str:
        """The URL of output file ``name``: signed, if the job's URLs are."""
        url = f"{self.origin}/files/{name}"
        if self.signed_until is None:
            return url
        return f"{url}?{signed_query(name, self.signed_until)}"

    def output(self) -> dict[str, Any]:
        """The completed ``output`` object."""
        urls = [self.file_url(name) for name in self.file_names()]
        if self.family == "grid":
            return {
                "image_url": urls[0],
                "image_urls": urls[1:],
                "seed": self.seed,
                "available_actions": self.available_actions(),
            }
        if self.family == "single":
            return {
                "image_url": urls[0],
                "image_urls": [urls[0]],
                "seed": self.seed,
                "available_actions": self.available_actions(),
            }
        if self.family == "video":
            return {
                "video_urls": urls,
                "seed": self.seed,
                "available_actions": self.available_actions(),
            }
        return self._text_output()

    def _text_output(self) -> dict[str, Any]:
        if self.task_type == "shorten":
            words = self.prompt.split()
            prompts = [" ".join(words[: max(1, len(words) * k // 6)]) for k in (5, 4, 3, 2, 1)]
            return {
                "promptEn": self.prompt,
                "description": f"/shorten {self.prompt}",
                "finalPrompt": prompts[0],
                "prompts": prompts,
            }
        prompts = [
            f"a {subject} rendered in soft light, emulator description {self.seed[-4:]} --ar 1:1"
            for subject in ("quiet landscape", "portrait", "still life", "city street")
        ]
        return {
            "promptEn": "\n\n".join(f"{i}\ufe0f\u20e3 {p}" for i, p in enumerate(prompts, 1)),
            "description": "",
            "finalPrompt": prompts[0],
            "prompts": prompts,
        }


def zero_output(family: Family) -> dict[str, Any]:
    """The ``output`` of an unfinished or failed job, per family (reference §4)."""
    if family == "video":
        return {"video_urls": None, "seed": ""}
    if family == "text":
        return {"promptEn": "", "description": "", "finalPrompt": "", "prompts": []}
    return {"image_url": "", "image_urls": None, "seed": ""}
