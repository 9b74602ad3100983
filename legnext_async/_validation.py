"""Client-side checks of documented limits; each failure names the field and the limit."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from typing import Any, Final, TypeGuard, TypeVar
from urllib.parse import urlsplit

from ._exceptions import ValidationError

PROMPT_MAX: Final = 8192
URL_MAX: Final = 1024

_E = TypeVar("_E", bound=enum.IntEnum)
_S = TypeVar("_S", bound=enum.StrEnum)


JOB_ID_MAX: Final = 128
#: What a job id looks like: UUIDs, the numeric ids some docs show, and the short ids of tests.
#: Nothing that could leave the path segment of ``/v1/job/{job_id}``: no ``.``, ``%``, ``/``,
#: backslash, ``?``, ``#``, ``;``, whitespace, control or non-ASCII characters.
_JOB_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{JOB_ID_MAX}}}")
#: How much of a refused value an error message shows.
_SHOWN_MAX: Final = 40


def is_job_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string that looks like a job id (see :func:`check_job_id`)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def check_job_id(value: object, field: str = "job_id") -> str:
    """A job id: 1 to 128 characters, each an ASCII letter, a digit, ``_`` or ``-``.

    Job ids go into request paths (``/v1/job/{job_id}``), so anything else is refused before
    a request is made.
    """
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if _JOB_ID.fullmatch(value) is None:
        raise ValidationError(
            field,
            f"must be 1 to {JOB_ID_MAX} characters from A-Z, a-z, 0-9, '_' and '-',"
            f" got {shown(value)}",
        )
    return value


def shown(value: str) -> str:
    """``value`` as an error message may quote it: its repr, cut short if long."""
    if len(value) <= _SHOWN_MAX:
        return repr(value)
    return f"{value[:_SHOWN_MAX]!r}... ({len(value)} characters)"


#: An absolute http(s) URL with a host, without space, backslash, or ASCII or C1 control
#: characters anywhere (those make URLs that parsers read differently). Character ranges
#: only, and no re.IGNORECASE: they keep the match cheap for every URL of every answer.
_HTTP_URL = re.compile(
    r"[Hh][Tt][Tt][Pp][Ss]?://"
    r"(?:[^\x00-\x20\x7f-\x9f/?#\\@]*@)?"  # user info
    r"(?:\[[0-9A-Fa-f:.]+\]|[^\x00-\x20\x7f-\x9f/?#\\@:\[\]]+)"  # host: a name, or [IPv6]
    r"(?::[0-9]*)?"  # port
    r"(?:[/?#][^\x00-\x20\x7f-\x9f\\]*)?"  # path, query, fragment
)


def is_http_url(value: object) -> TypeGuard[str]:
    """Whether ``value`` is an absolute ``http://`` or ``https://`` URL with a host.

    Beyond ASCII, only printable characters count (no Unicode spaces, line separators or
    direction marks).
    """
    return (
        isinstance(value, str)
        and _HTTP_URL.fullmatch(value) is not None
        and (value.isascii() or value.isprintable())
    )


def check_int(value: object, field: str, low: int, high: int) -> int:
    """An ``int`` (never a ``bool``) within ``low..high`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            field, f"must be an integer from {low} to {high}, got {type(value).__name__}"
        )
    if not low <= value <= high:
        raise ValidationError(field, f"must be from {low} to {high}, got {value}")
    return int(value)


def check_code(value: object, field: str, kind: type[_E]) -> _E:
    """A small integer code: a member of ``kind`` or the plain int it stands for."""
    members = list(kind)
    low, high = min(members), max(members)
    if isinstance(value, kind):
        return value
    number = check_int(value, field, int(low), int(high))
    try:
        return kind(number)
    except ValueError:
        allowed = ", ".join(f"{int(m)} ({m.name.lower()})" for m in members)
        raise ValidationError(field, f"must be one of {allowed}, got {number}") from None


def check_integer(value: object, field: str) -> int:
    """An ``int`` (never a ``bool``) of any value: the docs give the field no range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    return int(value)


def check_min_int(value: object, field: str, low: int) -> int:
    """An ``int`` (never a ``bool``) of at least ``low``, with no documented upper limit."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            field, f"must be an integer of at least {low}, got {type(value).__name__}"
        )
    if value < low:
        raise ValidationError(field, f"must be at least {low}, got {value}")
    return int(value)


def check_choice(value: object, field: str, kind: type[_S]) -> _S:
    """A string code: a member of ``kind`` or the plain string it stands for."""
    if isinstance(value, kind):
        return value
    allowed = ", ".join(repr(m.value) for m in kind)
    if not isinstance(value, str):
        raise ValidationError(field, f"must be one of {allowed}, got {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(field, f"must be one of {allowed}, got {value!r}") from None


def check_float(value: object, field: str, low: float, high: float) -> float:
    """A finite number (int or float, never ``bool``) within ``low..high`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            field, f"must be a number from {low} to {high}, got {type(value).__name__}"
        )
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationError(field, f"must be from {low} to {high}, got {value}")
    return number


def check_text(value: object, field: str, low: int = 1, high: int = PROMPT_MAX) -> str:
    """A string of ``low..high`` characters."""
    if not isinstance(value, str):
        raise ValidationError(
            field, f"must be a string of {low} to {high} characters, got {type(value).__name__}"
        )
    if not low <= len(value) <= high:
        raise ValidationError(field, f"must be {low} to {high} characters long, got {len(value)}")
    return value


def check_url(value: object, field: str, max_length: int = URL_MAX) -> str:
    """An absolute ``http://`` or ``https://`` URL of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be an absolute http(s) URL, got {type(value).__name__}")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters, got {len(value)}")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(field, f"must be an absolute http(s) URL, got {value!r}")
    if any(c.isspace() for c in value):
        raise ValidationError(field, "must be an absolute http(s) URL without whitespace")
    return value


def check_url_list(value: object, field: str, low: int, high: int) -> list[str]:
    """A list (or tuple) of ``low..high`` absolute http(s) URLs; a lone string is refused."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(
            field, f"must be a list of {low} to {high} image URLs, got {type(value).__name__}"
        )
    if not low <= len(value) <= high:
        raise ValidationError(field, f"must hold {low} to {high} image URLs, got {len(value)}")
    return [check_url(item, f"{field}[{index}]") for index, item in enumerate(value)]


def check_optional_text(value: object, field: str) -> str | None:
    """``None`` or a prompt of 1..8192 characters."""
    return None if value is None else check_text(value, field)


def check_optional_url(value: object, field: str) -> str | None:
    """``None`` or an absolute http(s) URL."""
    return None if value is None else check_url(value, field)


def compact(**fields: Any) -> dict[str, Any]:
    """The wire body: fields that were not given (``None``) are left out, not sent as null."""
    return {key: value for key, value in fields.items() if value is not None}
