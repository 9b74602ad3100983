"""Client-side checks of documented limits; each failure names the field and the limit."""

from __future__ import annotations

import enum
import functools
import ipaddress
import math
import re
from collections.abc import Sequence
from typing import Final, TypeGuard, TypeVar
from urllib.parse import urlsplit

from ._exceptions import ValidationError

PROMPT_MAX: Final = 8192
URL_MAX: Final = 1024
#: The largest integer the service can read: its backend decodes JSON numbers into Go's
#: 64-bit ints (reference §1), and Python cannot even print one past 4300 digits.
INT_MAX: Final = 2**63 - 1

_E = TypeVar("_E", bound=enum.IntEnum)
_S = TypeVar("_S", bound=enum.StrEnum)


JOB_ID_MAX: Final = 128
#: What a job id looks like: UUIDs, the numeric ids some docs show, and the short ids of tests.
#: Nothing that could leave the path segment of ``/v1/job/{job_id}``: no ``.``, ``%``, ``/``,
#: backslash, ``?``, ``#``, ``;``, whitespace, control or non-ASCII characters.
_JOB_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{JOB_ID_MAX}}}")
#: How much of a refused value an error message shows.
_SHOWN_MAX: Final = 40


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine, judged from the text alone (no DNS lookup)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_service_url(url: str, field: str, *, allow_insecure_http: bool, exposes: str) -> str:
    """``url`` as the absolute http(s) URL of a service (no trailing ``/``), or a
    ValidationError naming ``field``: no credentials, query or fragment, and plain
    ``http://`` only to loopback unless ``allow_insecure_http`` (``exposes``: what it would
    show on the way, for the message). The value itself is never echoed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(field, "must be an absolute http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(field, "must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ValidationError(
            field,
            f"plain http:// to {parts.hostname} would {exposes}; use https://, or pass"
            " allow_insecure_http=True (loopback hosts are always allowed)",
        )
    return url.rstrip("/")


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


def shown(value: object) -> str:
    """``value`` as an error message may quote it: a string's repr, cut short if long; an
    integer too long to print (or read) summarised by its size; anything else as ``str``."""
    if isinstance(value, str):
        if len(value) <= _SHOWN_MAX:
            return repr(value)
        return f"{value[:_SHOWN_MAX]!r}... ({len(value)} characters)"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return str(value)


#: An absolute http(s) URL with a host, without space, backslash, or ASCII or C1 control
#: characters anywhere (those make URLs that parsers read differently). Character ranges
#: only, and no re.IGNORECASE: they keep the match cheap for every URL of every answer.
_HTTP_URL = re.compile(
    # Possessive everywhere: no part can match less and still let the next one match (each
    # class excludes what ends it), so backtracking would only cost time.
    r"[Hh][Tt][Tt][Pp][Ss]?+://"
    r"(?:[^\x00-\x20\x7f-\x9f/?#\\@]*+@)?+"  # user info
    r"(?:\[[0-9A-Fa-f:.]++\]|[^\x00-\x20\x7f-\x9f/?#\\@:\[\]]++)"  # host: a name, or [IPv6]
    r"(?::[0-9]*+)?+"  # port
    r"(?:[/?#][^\x00-\x20\x7f-\x9f\\]*+)?+"  # path, query, fragment
)


#: The longest URL whose verdict :func:`is_http_url` keeps. Output URLs are about a hundred
#: characters; longer ones (a hostile answer's) are checked afresh, never kept.
_KEPT_URL_MAX: Final = 512


def is_http_url(value: object) -> TypeGuard[str]:
    """Whether ``value`` is an absolute ``http://`` or ``https://`` URL with a host.

    Beyond ASCII, only printable characters count (no Unicode spaces, line separators or
    direction marks).
    """
    if not isinstance(value, str):
        return False
    if len(value) > _KEPT_URL_MAX:
        return _checked_http_url(value)
    return _kept_http_url(value)


def _checked_http_url(value: str) -> bool:
    """:func:`is_http_url` of a string, worked out."""
    return _HTTP_URL.fullmatch(value) is not None and (value.isascii() or value.isprintable())


#: The verdicts on URLs read lately: an answer read again (a finished job's, re-read by id)
#: repeats its URLs, and a dict lookup costs a fifth of the match. A pure function of the
#: text, so a kept verdict is the one the check would give.
_kept_http_url: Final = functools.lru_cache(maxsize=1024)(_checked_http_url)


def check_int(value: object, field: str, low: int, high: int) -> int:
    """An ``int`` (never a ``bool``) within ``low..high`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            field, f"must be an integer from {low} to {high}, got {type(value).__name__}"
        )
    if not low <= value <= high:
        raise ValidationError(field, f"must be from {low} to {high}, got {shown(value)}")
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
        raise ValidationError(field, f"must be one of {allowed}, got {shown(number)}") from None


def check_integer(value: object, field: str) -> int:
    """An ``int`` (never a ``bool``): the docs give the field no range, but the service
    cannot read one beyond a 64-bit integer (:data:`INT_MAX`), so neither is sent."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise ValidationError(
            field, f"must be a 64-bit integer, from {-INT_MAX - 1} to {INT_MAX}, got {shown(value)}"
        )
    return int(value)


def check_min_int(value: object, field: str, low: int) -> int:
    """An ``int`` (never a ``bool``) of at least ``low``, with no documented upper limit.

    Values above :data:`INT_MAX` are refused all the same: the service cannot read them.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            field, f"must be an integer of at least {low}, got {type(value).__name__}"
        )
    if value < low:
        raise ValidationError(field, f"must be at least {low}, got {shown(value)}")
    if value > INT_MAX:
        raise ValidationError(
            field, f"must be at most {INT_MAX} (a 64-bit integer), got {shown(value)}"
        )
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
    try:
        number = float(value)
    except OverflowError:  # an int past float's range
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationError(field, f"must be from {low} to {high}, got {shown(value)}")
    return number


def _check_encodable(value: str, field: str) -> None:
    """Refuse text that cannot be sent: a lone surrogate has no UTF-8 form."""
    if value.isascii():
        return
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(
            field,
            f"must be valid Unicode text, got a lone surrogate {value[exc.start]!r}"
            f" at position {exc.start}",
        ) from None


def check_text(value: object, field: str, low: int = 1, high: int = PROMPT_MAX) -> str:
    """A string of ``low..high`` characters, not only whitespace, that can be sent as UTF-8.

    A blank prompt would be sent and billed, and make nothing worth having.
    """
    if not isinstance(value, str):
        raise ValidationError(
            field, f"must be a string of {low} to {high} characters, got {type(value).__name__}"
        )
    if not low <= len(value) <= high:
        raise ValidationError(field, f"must be {low} to {high} characters long, got {len(value)}")
    if value.isspace():
        raise ValidationError(field, "must not be blank (only whitespace)")
    _check_encodable(value, field)
    return value


def check_url(value: object, field: str, max_length: int = URL_MAX) -> str:
    """An absolute ``http://`` or ``https://`` URL of at most ``max_length`` characters.

    Its port, if any, must be a number from 0 to 65535.
    """
    if not isinstance(value, str):
        raise ValidationError(field, f"must be an absolute http(s) URL, got {type(value).__name__}")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters, got {len(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(field, f"must be an absolute http(s) URL, got {value!r}")
    if any(c.isspace() for c in value):
        raise ValidationError(field, "must be an absolute http(s) URL without whitespace")
    _check_encodable(value, field)
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
