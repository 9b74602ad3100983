"""Typed, frozen views of what the API sends and takes.

Wire quirks are handled in one named constructor per model (``from_json``), never by
splatting a dict into ``__init__``: zero timestamps (``0001-01-01T00:00:00Z``) and empty
strings become ``None``, ``null`` lists become empty tuples, unknown fields are ignored,
and unknown statuses and task types are kept.
"""

from __future__ import annotations

import copy
import enum
import functools
import logging
import marshal
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Self, TypeVar

import attrs

from ._exceptions import ValidationError
from ._validation import (
    check_int,
    check_integer,
    check_min_int,
    check_url,
    is_http_url,
    is_job_id,
    shown,
)
from ._wire import loads

__all__ = [
    "AvailableActions",
    "Balance",
    "BlendAspectRatio",
    "Canvas",
    "ImagePosition",
    "Mask",
    "Meta",
    "Output",
    "PanDirection",
    "Polygon",
    "RawJSON",
    "RemixMode",
    "Task",
    "TaskError",
    "TaskStatus",
    "TaskType",
    "UpscaleType",
    "Usage",
    "VariationType",
    "VideoType",
]

logger = logging.getLogger("legnext_async")

POLYGON_MIN: Final = 500
POLYGON_MAX: Final = 4096
POLYGON_MIN_POINTS: Final = 6


class _OpenStrEnum(enum.StrEnum):
    """A string enum that keeps values it does not know as pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self:
        if not isinstance(value, str):
            return None  # type: ignore[return-value]
        normal = value.strip().lower().replace("-", "_")
        for member in cls:
            if member.value.replace("-", "_") == normal:
                return member
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value.upper().replace("-", "_") or "EMPTY"
        pseudo._value_ = value
        return pseudo

    @property
    def is_known(self) -> bool:
        """Whether the value is one this version of the client knows."""
        return self._name_ in type(self).__members__


class TaskStatus(_OpenStrEnum):
    """A job's status. Unknown values (``"retry"``, say) are kept and count as not finished."""

    PENDING = "pending"
    STAGED = "staged"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        """``completed`` or ``failed``: the job will not change again."""
        return self is TaskStatus.COMPLETED or self is TaskStatus.FAILED

    @property
    def is_queued(self) -> bool:
        """``pending`` or ``staged``: waiting for a free worker, not yet running."""
        return self is TaskStatus.PENDING or self is TaskStatus.STAGED


class TaskType(_OpenStrEnum):
    """What a job does, spelled as the service spells it; ``-`` and ``_`` both parse."""

    DIFFUSION = "diffusion"
    VARIATION = "variation"
    UPSCALE = "upscale"
    REROLL = "reroll"
    BLEND = "blend"
    DESCRIBE = "describe"
    SHORTEN = "shorten"
    PAN = "pan"
    OUTPAINT = "outpaint"
    INPAINT = "inpaint"
    REMIX = "remix"
    EDIT = "edit"
    UPLOAD_PAINT = "upload-paint"
    RETEXTURE = "retexture"
    REMOVE_BACKGROUND = "remove_background"
    ENHANCE = "enhance"
    VIDEO_DIFFUSION = "video_diffusion"
    EXTEND_VIDEO = "extend_video"
    VIDEO_UPSCALE = "video_upscale"

    @property
    def family(self) -> str:
        """``"image"``, ``"video"`` or ``"text"``: the kind of output the job produces."""
        if self in _VIDEO_TYPES:
            return "video"
        if self in _TEXT_TYPES:
            return "text"
        return "image"


_E = TypeVar("_E", bound=_OpenStrEnum)


def _member(kind: type[_E], members: Mapping[str, _E], value: object) -> _E:
    """``kind(value)`` of a wire string (``""`` for anything else), found first in
    ``members``, its values spelled exactly: a dict lookup, where the enum's own call runs
    two Python functions for every answer."""
    text = value if isinstance(value, str) else ""
    member = members.get(text)
    return kind(text) if member is None else member


_TASK_TYPES: Final = {member.value: member for member in TaskType}
_STATUSES: Final = {member.value: member for member in TaskStatus}

_VIDEO_TYPES: Final = frozenset(
    {TaskType.VIDEO_DIFFUSION, TaskType.EXTEND_VIDEO, TaskType.VIDEO_UPSCALE}
)
_TEXT_TYPES: Final = frozenset({TaskType.DESCRIBE, TaskType.SHORTEN})


class PanDirection(enum.IntEnum):
    """``direction`` of :meth:`LegnextClient.pan` (the vendor docs' order, not the SDK's)."""

    DOWN = 0
    RIGHT = 1
    UP = 2
    LEFT = 3


class UpscaleType(enum.IntEnum):
    """``type`` of :meth:`LegnextClient.upscale`."""

    SUBTLE = 0
    CREATIVE = 1


class VariationType(enum.IntEnum):
    """``type`` of :meth:`LegnextClient.variation`."""

    SUBTLE = 0
    STRONG = 1


class RemixMode(enum.IntEnum):
    """``mode`` of :meth:`LegnextClient.remix`."""

    STRONG = 0
    SUBTLE = 1


class VideoType(enum.IntEnum):
    """``video_type`` of :meth:`LegnextClient.video_diffusion`: the resolution."""

    SD_480P = 0
    HD_720P = 1


class BlendAspectRatio(enum.StrEnum):
    """``aspect_ratio`` of :meth:`LegnextClient.blend`.

    The names are those of the docs' other blend form (``dimension``), whose values map
    one to one onto these ratios.
    """

    PORTRAIT = "2:3"
    SQUARE = "1:1"
    LANDSCAPE = "3:2"


# --- tolerant readers -----------------------------------------------------------------

_ZERO_TIME_PREFIX: Final = "0001-01-01"


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def _object(value: object, what: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object; a callback body, say, may hold anything."""
    if type(value) is dict or isinstance(value, Mapping):
        return value
    raise ValidationError("data", f"must be a JSON object ({what}), got {type(value).__name__}")


def _float(value: object) -> float:
    if not isinstance(value, int | float):
        return 0.0
    try:
        return float(value)
    except OverflowError:  # an int with more than 308 digits
        return 0.0


def _dict(value: object) -> Mapping[str, Any]:
    if type(value) is dict:  # what json.loads gives: skip the slower ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _strs(value: object) -> tuple[str, ...]:
    if not value or not isinstance(value, list | tuple):
        return ()
    return tuple([item for item in value if isinstance(item, str) and item])


#: The scheme of a URL, as a warning may name it (never the rest of the URL).
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,15}):")


def _kind(value: object) -> str:
    """What a refused output URL was, in a word or two: its scheme, or why it has none."""
    if value is None:
        return "null"
    if not isinstance(value, str):
        return type(value).__name__
    if not value:
        return "empty"
    scheme = _SCHEME.match(value)
    if scheme is None:
        return "no scheme"
    name = scheme.group(1).lower()
    return f"{name}: without a host or with spaces" if name in ("http", "https") else f"{name}:"


def _http_url(value: object, field: str, dropped: list[str]) -> str | None:
    """An output URL if it is an absolute http(s) URL; else ``None``, noted in ``dropped``
    unless the service left the field unset (``""`` or ``null``)."""
    if is_http_url(value):
        return value
    if value is not None and value != "":
        dropped.append(f"{field} ({_kind(value)})")
    return None


def _http_urls(value: object, field: str, dropped: list[str]) -> tuple[str, ...]:
    """A list of output URLs, ending just before the first that is not an absolute http(s)
    URL (noted in ``dropped``): item ``i`` stays image (or video) number ``i``."""
    if not value or not isinstance(value, list | tuple):
        return ()
    if all(map(is_http_url, value)):  # the usual answer, checked without a loop of ours
        return tuple(value)
    for index, item in enumerate(value):
        if not is_http_url(item):
            after = len(value) - index - 1
            rest = f" and the {after} after it" if after else ""
            dropped.append(f"{field}[{index}] ({_kind(item)}){rest}")
            return tuple(value[:index])
    return tuple(value)


def _ints(value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(item for item in value if isinstance(item, int) and not isinstance(item, bool))


#: The longest timestamp text whose reading :func:`parse_timestamp` keeps: an RFC 3339 time
#: with nanoseconds and an offset is 35 characters; a longer text (a hostile answer's) is
#: read afresh, never kept.
_KEPT_TIME_MAX: Final = 40


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; zero, empty or unreadable → ``None``.

    The service writes nanoseconds in some fields; Python keeps microseconds.
    """
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    if len(value) > _KEPT_TIME_MAX:
        return _read_timestamp(value)
    return _kept_timestamp(value)


def _read_timestamp(value: str) -> datetime | None:
    """:func:`parse_timestamp` of a non-empty string, worked out."""
    text = value
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        text = text[: min(end, dot + 7)] + text[end:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    zone = parsed.tzinfo
    if zone is UTC:  # what the service writes ("Z"): the datetime is already the answer
        return parsed
    if zone is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past the last datetime in UTC
        return None


#: The timestamps read lately: every read of a job repeats its ``created_at`` and
#: ``started_at`` (and, once it ends, ``ended_at``), and a dict lookup costs a third of the
#: parse. Datetimes are immutable, so a kept one can be shared.
_kept_timestamp: Final = functools.lru_cache(maxsize=4096)(_read_timestamp)


# --- task ------------------------------------------------------------------------------


@attrs.frozen
class AvailableActions:
    """The follow-ups a finished job allows: for each action, the image numbers it accepts.

    ``reroll`` is a bool. Actions the client does not know yet are kept in ``other``.
    """

    upscale: tuple[int, ...] = ()
    variation: tuple[int, ...] = ()
    inpaint: tuple[int, ...] = ()
    outpaint: tuple[int, ...] = ()
    pan: tuple[int, ...] = ()
    remix: tuple[int, ...] = ()
    edit: tuple[int, ...] = ()
    enhance: tuple[int, ...] = ()
    extend: tuple[int, ...] = ()
    reroll: bool = False
    other: Mapping[str, tuple[int, ...]] = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, data: object) -> AvailableActions:
        """Read the ``available_actions`` map; anything that is not a map means none."""
        raw = data if type(data) is dict else _dict(data)
        if not raw:
            return _NO_ACTIONS
        # Most jobs offer the same few maps: reuse the frozen value rather than rebuild it.
        key = _actions_key(raw)
        cached = _ACTIONS_CACHE.get(key) if key is not None else None
        if cached is not None:
            return cached
        actions = cls._build(raw)
        if key is not None and len(_ACTIONS_CACHE) < _ACTIONS_CACHE_SIZE:
            _ACTIONS_CACHE[key] = actions
        return actions

    @classmethod
    def _build(cls, raw: Mapping[str, Any]) -> AvailableActions:
        known = {name: _ints(raw.get(name)) for name in _ACTION_NAMES}
        other = {
            key: _ints(value)
            for key, value in raw.items()
            if key not in _ACTION_NAMES and key != "reroll" and isinstance(value, list)
        }
        return cls(**known, reroll=raw.get("reroll") is True, other=other)

    def images_for(self, action: str) -> tuple[int, ...]:
        """The image numbers ``action`` accepts (empty if it is not offered)."""
        if action in _ACTION_NAMES:
            images: tuple[int, ...] = getattr(self, action)
            return images
        return self.other.get(action, ())

    def to_json(self) -> dict[str, Any]:
        """The wire form: the known actions offered, every other one, and ``reroll``."""
        data: dict[str, Any] = {
            name: list(images) for name in _ACTION_NAMES if (images := getattr(self, name))
        }
        # An unknown action is kept even with no numbers: it was sent, so it is data.
        data.update((name, list(images)) for name, images in self.other.items())
        data["reroll"] = self.reroll
        return data


_ACTION_NAMES: Final = (
    "upscale",
    "variation",
    "inpaint",
    "outpaint",
    "pan",
    "remix",
    "edit",
    "enhance",
    "extend",
)


_NO_ACTIONS: Final = AvailableActions()
_ACTIONS_CACHE: dict[bytes, AvailableActions] = {}
_ACTIONS_CACHE_SIZE: Final = 256
#: The most actions, and the most bytes of key, of a map kept in that cache: real ones name
#: about ten actions of up to four images each (under 300 bytes). Bigger maps (a hostile
#: answer's) are built afresh and never kept, so the cache's memory stays small whatever the
#: service sends.
_ACTIONS_KEY_MAX: Final = 32
_ACTIONS_KEY_BYTES: Final = 1024
#: The types a cached map's values may have: lists (of numbers), a bool (``reroll``), null.
_ACTIONS_VALUE_TYPES: Final = frozenset({list, bool, type(None)})


def _actions_key(raw: Mapping[str, Any]) -> bytes | None:
    """The cache key of a small ``available_actions`` map (see :func:`_marshal_key`);
    ``None`` for one too big or odd."""
    if (
        type(raw) is not dict
        or len(raw) > _ACTIONS_KEY_MAX
        or not _ACTIONS_VALUE_TYPES.issuperset(map(type, raw.values()))
    ):
        return None
    return _marshal_key(raw, _ACTIONS_KEY_BYTES)


def _marshal_key(raw: Mapping[str, Any], limit: int) -> bytes | None:
    """An exact, hashable key for a small JSON object: its marshal bytes, made in C.

    Version 2 writes no back-references, so equal objects give equal keys, and the types
    stay apart (1, 1.0 and True are equal, yet read differently). ``None`` for anything but
    a plain dict of built-in values, or one past ``limit`` bytes.
    """
    if type(raw) is not dict:
        return None
    try:
        key = marshal.dumps(raw, 2)
    except ValueError:  # a subclass (an IntEnum, say) or another type marshal refuses
        return None
    return key if len(key) <= limit else None


@attrs.frozen
class Output:
    """What a job produced; fields that its family does not produce stay empty.

    ``image_url`` is the grid (or the single image), ``image_urls`` the separate images;
    ``video_urls`` for video jobs; ``prompt_en``, ``description``, ``final_prompt`` and
    ``prompts`` for describe and shorten.

    The URLs are only ever absolute ``http://`` or ``https://`` URLs with a host. Anything
    else an answer puts there (``javascript:``, ``file:``, ``data:``, a relative path, a
    number) is dropped, with one warning log naming the field and the scheme (never the
    URL): ``image_url`` becomes ``None``, and ``image_urls`` or ``video_urls`` end just
    before the first such item, so that ``image_urls[i]`` is always image number ``i`` (the
    images from there on are missing, never renumbered).
    """

    image_url: str | None = None
    image_urls: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    seed: str | None = None
    available_actions: AvailableActions = _NO_ACTIONS
    prompt_en: str | None = None
    description: str | None = None
    final_prompt: str | None = None
    prompts: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object, *, job_id: str = "") -> Output:
        """Read ``output``; ``null`` (as in error envelopes) gives an empty output.

        ``job_id`` names the job in the warning about dropped URLs, if any.
        """
        raw = data if type(data) is dict else _dict(data)
        if not any(raw.values()):
            # Null, or all blanks as while a job waits: share one empty instance (fewer
            # objects for the GC to walk when thousands of jobs wait).
            return _NO_OUTPUT
        get = raw.get
        dropped: list[str] = []
        image_url = _http_url(get("image_url"), "image_url", dropped)
        image_urls = _http_urls(get("image_urls"), "image_urls", dropped)
        video_urls = _http_urls(get("video_urls"), "video_urls", dropped)
        if dropped:
            logger.warning(
                "job %s: dropped output URLs that are not absolute http(s) URLs: %s",
                job_id if is_job_id(job_id) else "(no valid id)",
                ", ".join(dropped),
            )
        seed = get("seed")
        actions = AvailableActions.from_json(get("available_actions"))
        # Positional, in field order, like the other decoders on the status path: called with
        # keywords, a class packs them into a dict for its __init__ first.
        if not (
            get("promptEn")
            or get("prompt_en")
            or get("description")
            or get("finalPrompt")
            or get("final_prompt")
            or get("prompts")
        ):
            # Not a describe or shorten job's: its texts would all read as unset.
            return cls(image_url, image_urls, video_urls, _opt_str(seed), actions)
        return cls(
            image_url,
            image_urls,
            video_urls,
            _opt_str(seed),
            actions,
            _opt_str(get("promptEn", get("prompt_en"))),  # prompt_en
            _opt_str(get("description")),
            _opt_str(get("finalPrompt", get("final_prompt"))),  # final_prompt
            _strs(get("prompts")),
        )

    def to_json(self) -> dict[str, Any]:
        """The wire form; fields left empty are written as the service writes them unset."""
        return {
            "image_url": self.image_url or "",
            "image_urls": list(self.image_urls),
            "video_urls": list(self.video_urls),
            "seed": self.seed or "",
            "available_actions": self.available_actions.to_json(),
            "promptEn": self.prompt_en or "",
            "description": self.description or "",
            "finalPrompt": self.final_prompt or "",
            "prompts": list(self.prompts),
        }


_NO_OUTPUT: Final = Output()


@attrs.frozen
class Usage:
    """Points reserved (``frozen``) at submission and charged (``consume``) at the end."""

    type: str = "point"
    frozen: int = 0
    consume: int = 0

    @classmethod
    def from_json(cls, data: object) -> Usage:
        """Read ``meta.usage``."""
        raw = _dict(data)
        key = (_str(raw.get("type")) or "point", _int(raw.get("frozen")), _int(raw.get("consume")))
        usage = _USAGE_CACHE.get(key)
        if usage is None:
            # A few distinct values serve a whole batch: share them, like AvailableActions.
            if len(_USAGE_CACHE) >= _USAGE_CACHE_SIZE:
                _USAGE_CACHE.clear()
            usage = _USAGE_CACHE[key] = cls(*key)
        return usage

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"type": self.type, "frozen": self.frozen, "consume": self.consume}


_USAGE_CACHE: dict[tuple[str, int, int], Usage] = {}
_USAGE_CACHE_SIZE: Final = 256


@attrs.frozen
class Meta:
    """Timestamps (aware UTC datetimes, ``None`` while unset) and usage."""

    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    usage: Usage = Usage()

    @classmethod
    def from_json(cls, data: object) -> Meta:
        """Read ``meta``; zero or empty timestamps become ``None``."""
        raw = data if type(data) is dict else _dict(data)
        # Every read of a job repeats its meta until the job starts or ends: reuse the value.
        key = _marshal_key(raw, _META_KEY_BYTES)
        meta = _META_CACHE.get(key) if key is not None else None
        if meta is None:
            meta = cls(  # positional: see Output.from_json
                parse_timestamp(raw.get("created_at")),
                parse_timestamp(raw.get("started_at")),
                parse_timestamp(raw.get("ended_at")),
                Usage.from_json(raw.get("usage")),
            )
            if key is not None:
                if len(_META_CACHE) >= _META_CACHE_SIZE:
                    _META_CACHE.clear()
                _META_CACHE[key] = meta
        return meta

    def to_json(self) -> dict[str, Any]:
        """The wire form; unset timestamps are the service's zero time."""
        return {
            "created_at": _wire_time(self.created_at),
            "started_at": _wire_time(self.started_at),
            "ended_at": _wire_time(self.ended_at),
            "usage": self.usage.to_json(),
        }

    @property
    def run_seconds(self) -> float | None:
        """How long the job ran (``ended_at - started_at``), once both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


#: The metas read lately, by :func:`_marshal_key`: one per job in flight, for the reads
#: that repeat it. A real meta is under 200 bytes; bigger ones are never kept.
_META_CACHE: dict[bytes, Meta] = {}
_META_CACHE_SIZE: Final = 1024
_META_KEY_BYTES: Final = 512


@attrs.frozen
class TaskError:
    """Why a job failed: the service's error code, message and upstream ``raw_message``."""

    code: int
    message: str
    raw_message: str = ""

    @classmethod
    def from_json(cls, data: object) -> TaskError | None:
        """Read ``error``; the all-zero error of a healthy job gives ``None``."""
        raw = data if type(data) is dict else _dict(data)
        if not (raw.get("code") or raw.get("message") or raw.get("raw_message")):
            return None  # the usual all-zero error: a falsy value reads as 0 or "" below
        code = _int(raw.get("code"))
        message = _str(raw.get("message"))
        raw_message = _str(raw.get("raw_message"))
        if not (code or message or raw_message):
            return None
        return cls(code, message, raw_message)  # positional: see Output.from_json

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"code": self.code, "message": self.message, "raw_message": self.raw_message}


class RawJSON(Mapping[str, Any]):
    """A JSON object kept as the bytes it came in, decoded when first read.

    ``Task.raw`` of a status read: a read-only mapping like the parsed dict, which thousands
    of waiting jobs then hold as one object each, rather than as trees of dicts and lists
    that the garbage collector walks on every full collection. ``dict(raw)`` gives a dict.
    Bytes that are not JSON, or nest deeper than 32 levels, raise ``ValueError`` when read.
    """

    __slots__ = ("_body", "_data")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._data: dict[str, Any] | None = None

    @property
    def body(self) -> bytes:
        """The bytes as received (in the client's reads, rewritten where they quoted the key)."""
        return self._body

    @staticmethod
    def came_as(raw: Mapping[str, Any], body: bytes) -> bool:
        """Whether ``raw`` is a :class:`RawJSON` of exactly ``body`` (nothing is decoded)."""
        return isinstance(raw, RawJSON) and raw._body == body

    def _decoded(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            parsed = loads(self._body)  # ValueError, never RecursionError, if unreadable
            data = self._data = parsed if isinstance(parsed, dict) else {}
        return data

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RawJSON) and other._body == self._body:
            return True
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # like a dict

    def __repr__(self) -> str:
        return repr(self._decoded())


@attrs.frozen
class Task:
    """One job as the API reports it (``GET /v1/job/{job_id}``, a POST's answer, a callback).

    ``callback`` is the webhook URL the job was submitted with, if any. ``raw`` is the
    JSON object, for fields this client does not model: a :class:`RawJSON` (a read-only
    mapping) for the client's own status reads and submissions.
    """

    job_id: str
    task_type: TaskType
    status: TaskStatus
    output: Output = _NO_OUTPUT
    meta: Meta = Meta()
    error: TaskError | None = None
    model: str = "midjourney"
    callback: str | None = None
    logs: tuple[Any, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, body: bytes | None = None) -> Task:
        """Read a task object as the service sends it (tolerantly; see the module docstring).

        ``body``: the bytes ``data`` was decoded from; ``raw`` then keeps those (as
        :class:`RawJSON`) instead of ``data``.

        Raises:
            ValidationError: ``data`` is not a JSON object.
        """
        if type(data) is not dict:  # what json.loads gives: skip the slower ABC check
            data = _object(data, "a task")
        get = data.get
        logs = get("logs")
        job_id = get("job_id")
        if not isinstance(job_id, str):
            job_id = ""
        model = get("model")
        return cls(  # positional: see Output.from_json
            job_id,
            _member(TaskType, _TASK_TYPES, get("task_type")),
            _member(TaskStatus, _STATUSES, get("status")),
            Output.from_json(get("output"), job_id=job_id),
            Meta.from_json(get("meta")),
            TaskError.from_json(get("error")),
            model if model and isinstance(model, str) else "midjourney",
            _callback(get("config")),
            tuple(logs) if isinstance(logs, list) else (),
            data if body is None else RawJSON(body),
        )

    @property
    def is_finished(self) -> bool:
        """Whether the job is ``completed`` or ``failed``."""
        return self.status.is_finished

    def to_json(self) -> dict[str, Any]:
        """The task as the service sends it, so that ``Task.from_json(task.to_json()) == task``.

        The fields of this class are written from its attributes (an unset timestamp as the
        service's zero time, no error as the all-zero error); what it does not model
        (``input``, ``config.service_mode``, unknown fields) is kept from ``raw``. The dict
        is new: changing it changes neither the task nor ``raw``.
        """
        error = self.error.to_json() if self.error is not None else TaskError(0, "").to_json()
        modelled = {
            "job_id": self.job_id,
            "model": self.model,
            "task_type": self.task_type.value,
            "status": self.status.value,
            "config": {"webhook_config": {"endpoint": self.callback or ""}},
            "output": self.output.to_json(),
            "meta": self.meta.to_json(),
            "logs": list(self.logs),
            "error": error,
        }
        return _merged(_copy_of(self.raw), modelled)


def _callback(config: object) -> str | None:
    """``config.webhook_config.endpoint``, the job's callback URL, if it is a set string."""
    hook = _dict(config).get("webhook_config")
    endpoint = _dict(hook).get("endpoint")
    return endpoint if endpoint and isinstance(endpoint, str) else None


_ZERO_TIME: Final = "0001-01-01T00:00:00Z"
#: Replaced whole by ``to_json``, never merged with ``raw``: an action dropped from the
#: model must not come back from ``raw``.
_WRITTEN_WHOLE: Final = frozenset({"available_actions"})


def _wire_time(value: datetime | None) -> str:
    """A timestamp as the service writes it (RFC 3339, UTC); ``None`` as its zero time."""
    if value is None:
        return _ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _copy_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh copy of a task's ``raw`` JSON object, sharing nothing with it."""
    data = loads(raw.body) if isinstance(raw, RawJSON) else copy.deepcopy(dict(raw))
    return data if isinstance(data, dict) else {}


def _merged(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the values of ``over`` written in, object by object."""
    for key, value in over.items():
        below = base.get(key)
        if isinstance(value, dict) and isinstance(below, dict) and key not in _WRITTEN_WHOLE:
            base[key] = _merged(below, value)
        else:
            base[key] = value
    return base


# --- account ---------------------------------------------------------------------------


@attrs.frozen
class Balance:
    """The account's balance (``GET /account/balance``).

    ``balance_usd`` counts credits and points (1000 to the dollar); ``alert_threshold`` is in
    USD.
    """

    account_id: int
    balance_usd: float
    available_credits: int
    available_points: int
    alert_threshold: float = 0.0
    low_balance_alert: bool = False
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Balance:
        """Read the ``{code, message, data}`` wrapper (or a bare ``data`` object).

        Raises:
            ValidationError: ``data`` is not a JSON object.
        """
        data = _object(data, "a balance")
        inner = _dict(data.get("data")) if "data" in data else data
        return cls(
            account_id=_int(inner.get("account_id")),
            balance_usd=_float(inner.get("balance_usd")),
            available_credits=_int(inner.get("available_credits")),
            available_points=_int(inner.get("available_points")),
            alert_threshold=_float(inner.get("alert_threshold")),
            low_balance_alert=inner.get("low_balance_alert") is True,
            updated_at=parse_timestamp(inner.get("updated_at")),
        )


# --- request parts ---------------------------------------------------------------------


def _to_points(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list | tuple) else value  # type: ignore[return-value]


@attrs.frozen
class Polygon:
    """A region to repaint: a flat ``[x1, y1, x2, y2, ...]`` list in a ``width``×``height`` frame.

    ``width`` and ``height`` (500–4096) give the pixel frame the points refer to; ``points``
    needs at least three vertices, each within the frame. The docs say clockwise from the
    top-left, but their own example runs the other way, so winding is not checked.

    Raises:
        ValidationError: a limit is broken (the message names the field).
    """

    width: int
    height: int
    points: tuple[int, ...] = attrs.field(converter=_to_points)

    def __attrs_post_init__(self) -> None:
        check_int(self.width, "Polygon.width", POLYGON_MIN, POLYGON_MAX)
        check_int(self.height, "Polygon.height", POLYGON_MIN, POLYGON_MAX)
        points = self.points
        if not isinstance(points, tuple):
            raise ValidationError(
                "Polygon.points", f"must be a list of integers, got {type(points).__name__}"
            )
        if len(points) < POLYGON_MIN_POINTS or len(points) % 2:
            raise ValidationError(
                "Polygon.points",
                f"must be an even-length list of at least {POLYGON_MIN_POINTS} integers"
                f" (x, y pairs of 3 or more vertices), got {len(points)}",
            )
        for index, value in enumerate(points):
            axis, limit = ("x", self.width) if index % 2 == 0 else ("y", self.height)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(
                    f"Polygon.points[{index}]", f"must be an integer, got {type(value).__name__}"
                )
            if not 0 <= value <= limit:
                side = "width" if axis == "x" else "height"
                raise ValidationError(
                    f"Polygon.points[{index}]",
                    f"{axis} must be from 0 to the polygon's {side} {limit}, got {shown(value)}",
                )

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"width": self.width, "height": self.height, "points": list(self.points)}


def _to_areas(value: Sequence[Polygon] | None) -> tuple[Polygon, ...] | None:
    given: object = value  # whatever the caller passed: __attrs_post_init__ judges it
    if isinstance(given, Sequence) and not isinstance(given, str | bytes):
        return tuple(given)
    return given  # type: ignore[return-value]


@attrs.frozen
class Mask:
    """Where to repaint: either polygon ``areas`` or the ``url`` of a black-and-white image.

    In a mask image, white is repainted and black kept. Give exactly one of the two.

    Raises:
        ValidationError: both or neither given, ``areas`` empty or not a list of polygons,
            or ``url`` not an absolute http(s) URL.
    """

    areas: tuple[Polygon, ...] | None = attrs.field(default=None, converter=_to_areas)
    url: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.areas is None) == (self.url is None):
            raise ValidationError("mask", "give exactly one of areas or url")
        if self.areas is not None:
            if not isinstance(self.areas, tuple):
                raise ValidationError(
                    "mask.areas", f"must be a list of Polygons, got {type(self.areas).__name__}"
                )
            if not self.areas:
                raise ValidationError("mask.areas", "must hold at least one Polygon")
            for index, area in enumerate(self.areas):
                if not isinstance(area, Polygon):
                    raise ValidationError(
                        f"mask.areas[{index}]", f"must be a Polygon, got {type(area).__name__}"
                    )
        if self.url is not None:
            check_url(self.url, "mask.url")

    def to_json(self) -> dict[str, Any]:
        """The wire form: ``{"areas": [...]}`` or ``{"url": ...}``."""
        if self.areas is not None:
            return {"areas": [area.to_json() for area in self.areas]}
        return {"url": self.url}


@attrs.frozen
class Canvas:
    """The canvas of an edit (``canvas`` of ``/v1/edit`` and ``/v1/upload-paint``), in pixels.

    The docs give no range; sizes must be positive integers (of at most 64 bits).

    Raises:
        ValidationError: a size is not an integer, or is out of range.
    """

    width: int
    height: int

    def __attrs_post_init__(self) -> None:
        check_min_int(self.width, "Canvas.width", 1)
        check_min_int(self.height, "Canvas.height", 1)

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"width": self.width, "height": self.height}


@attrs.frozen
class ImagePosition:
    """Where the image sits on the :class:`Canvas` of an edit (``imgPos``), in pixels.

    ``width`` and ``height`` are the image's size on the canvas, ``x`` and ``y`` the offset
    of its top-left corner from the canvas's top-left. The docs give no range; sizes must be
    positive, and offsets may be any integer (a negative one places the image partly off the
    canvas's left or top edge).

    Raises:
        ValidationError: a value is not an integer, or is out of range.
    """

    width: int
    height: int
    x: int
    y: int

    def __attrs_post_init__(self) -> None:
        check_min_int(self.width, "ImagePosition.width", 1)
        check_min_int(self.height, "ImagePosition.height", 1)
        check_integer(self.x, "ImagePosition.x")
        check_integer(self.y, "ImagePosition.y")

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"width": self.width, "height": self.height, "x": self.x, "y": self.y}
