"""The emulator's settings: the keywords of ``Emulator(...)``, grouped by who reads them.

Each group is frozen and checks its own values, so a nonsensical option raises
``ValueError`` naming the keyword when the emulator is built, never while it serves.
Times are virtual seconds unless a field says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from ._errors import ErrorShape

OverLimit = Literal["reject", "queue"]
CallbackBody = Literal["wrapped", "bare"]

DAY: Final = 86_400.0
DEFAULT_RETENTION: Final = 3 * DAY
DEFAULT_FILE_RETENTION: Final = 30 * DAY
DEFAULT_INITIAL_CREDITS: Final = 100_000_000
DEFAULT_REQUEST_LOG_LIMIT: Final = 100_000
#: How much of each request body a request-log record keeps, by default: the largest valid
#: request (an 8,192-character prompt of 4-byte characters) fits whole.
LOGGED_BODY_BYTES: Final = 64 * 1024


def _keyword(attribute: attrs.Attribute[Any]) -> str:
    """The ``Emulator`` keyword a field comes from, for error messages."""
    return str(attribute.metadata.get("keyword", attribute.name))


def _one_of(*allowed: str) -> Any:
    """A validator: the value is one of ``allowed`` (a typo in a Literal is not caught)."""
    *first, last = (repr(value) for value in allowed)
    spelled = f"{', '.join(first)} or {last}"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValueError(f"{_keyword(attribute)} must be {spelled}")

    return check


def _at_least(low: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
        if value < low:
            raise ValueError(f"{_keyword(attribute)} must be at least {low}")

    return check


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{_keyword(attribute)} must be positive, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{_keyword(attribute)} must be at least 0, got {value!r}")


def _non_empty_key(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value:
        raise ValueError("api_key must be non-empty (or None to accept any key)")


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{_keyword(attribute)} must be between 0 and 1")


#: The largest ``file_size``: an MP4 box and a PNG chunk hold at most 2**31 - 1 bytes.
MAX_FILE_SIZE: Final = 2**31 - 1


def _file_size(_: object, __: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_FILE_SIZE:
        raise ValueError(f"file_size must be between 0 and {MAX_FILE_SIZE}, got {value!r}")


def _ranges(_: object, __: attrs.Attribute[Any], value: Mapping[str, tuple[float, float]]) -> None:
    for task_type, (low, high) in value.items():
        if not 0 <= low <= high:
            raise ValueError(f"durations[{task_type!r}] must be (min, max) with 0 <= min <= max")


def _host_names(hosts: Iterable[str]) -> frozenset[str]:
    """Host names as ``callback_allowed`` compares them: lower case, no trailing dot."""
    return frozenset(host.lower().rstrip(".") for host in hosts)


def _keys(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(keys)


def _durations(value: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    return dict(value or {})


@attrs.frozen
class Access:
    """Which API keys are accepted, and which may use the whitelisted endpoints.

    ``api_key=None`` accepts any non-empty key (``extra_api_keys`` then adds nothing).
    """

    api_key: str | None = attrs.field(default=None, validator=_non_empty_key)
    extra_api_keys: frozenset[str] = attrs.field(default=frozenset(), converter=_keys)
    allow_anonymous_job_get: bool = False
    whitelisted: bool = False
    whitelisted_keys: frozenset[str] = attrs.field(default=frozenset(), converter=_keys)

    def accepts(self, key: str) -> bool:
        """Whether ``key`` opens an account here."""
        if not key:
            return False
        return self.api_key is None or key == self.api_key or key in self.extra_api_keys

    def whitelists(self, key: str) -> bool:
        """Whether ``key``'s account may use ``/v1/edit`` and ``/v1/upload-paint``."""
        return self.whitelisted or key in self.whitelisted_keys


@attrs.frozen
class JobRules:
    """How jobs run, wait for a slot, are paid for, fail and age."""

    #: Per task type, (min, max) processing seconds; others use the reference defaults.
    durations: dict[str, tuple[float, float]] = attrs.field(
        factory=dict, converter=_durations, validator=_ranges
    )
    pending_seconds: float = 1.0
    staged_seconds: float = 0.0
    concurrency_limit: int = attrs.field(default=6, validator=_at_least(1))
    over_limit: OverLimit = attrs.field(default="reject", validator=_one_of("reject", "queue"))
    initial_credits: int = DEFAULT_INITIAL_CREDITS
    initial_points: int = 0
    failure_rate: float = attrs.field(default=0.0, validator=_probability)
    #: Jobs older than this (since ``created_at``) are 404 and cannot be followed up.
    retention: float = DEFAULT_RETENTION
    #: How long a completed job's output URLs serve files.
    file_retention: float = DEFAULT_FILE_RETENTION
    #: List signed output URLs (``?Expires=<unix>&Signature=<hex>``, expiring with
    #: ``file_retention``) and refuse them with 403 once expired or altered.
    signed_urls: bool = False
    #: The size, in bytes, of every output file (when more than its natural size).
    file_size: int = attrs.field(default=0, validator=_file_size)


@attrs.frozen
class CallbackOptions:
    """How finished jobs are posted to their ``callback`` URL."""

    enabled: bool = True
    body: CallbackBody = attrs.field(
        default="wrapped",
        validator=_one_of("wrapped", "bare"),
        metadata={"keyword": "callback_body"},
    )
    #: Virtual seconds after the job ends.
    delay: float = 0.0
    duplicates: int = attrs.field(
        default=1, validator=_at_least(1), metadata={"keyword": "callback_duplicates"}
    )
    #: Sign each delivery as the vendor SDK verifies it (``X-Legnext-Timestamp``, and
    #: ``X-Legnext-Signature``: hex HMAC-SHA256 of ``"<timestamp>." + body``); ``None``:
    #: unsigned, as every vendor sample suggests.
    secret: str | None = attrs.field(default=None, metadata={"keyword": "callback_secret"})
    #: The probability that a delivery is lost (never sent; logged as ``"lost"``).
    loss: float = attrs.field(
        default=0.0, validator=_probability, metadata={"keyword": "callback_loss"}
    )
    #: Each delivery waits a further random 0..jitter virtual seconds, so that deliveries
    #: (duplicates, intermediate statuses) may come out of order.
    jitter: float = attrs.field(
        default=0.0, validator=_non_negative, metadata={"keyword": "callback_jitter"}
    )
    #: Also post the job when it starts ``processing`` (the reference does not know whether
    #: the service does).
    intermediate: bool = False
    #: Real seconds per delivery.
    timeout: float = 10.0
    #: Hosts besides loopback that may be contacted, as compared (lower case, no final dot).
    allowed_hosts: frozenset[str] = attrs.field(default=frozenset(), converter=_host_names)


@attrs.frozen
class LogOptions:
    """What the request log keeps."""

    #: Records kept, oldest dropped first; ``None`` keeps every one.
    limit: int | None = DEFAULT_REQUEST_LOG_LIMIT
    #: Bytes of each body a record keeps.
    body_bytes: int = attrs.field(
        default=LOGGED_BODY_BYTES,
        validator=_at_least(0),
        metadata={"keyword": "request_log_body_bytes"},
    )
    #: A file each record is also appended to as it is made, one JSON line each.
    file: str | None = attrs.field(default=None, metadata={"keyword": "request_log_file"})


@attrs.frozen
class Options:
    """Every setting of one emulator."""

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    #: Real seconds per virtual second.
    time_scale: float = attrs.field(default=1.0, validator=_positive)
    seed: int | None = None
    error_shape: ErrorShape = attrs.field(
        default="envelope", validator=_one_of("envelope", "flat", "nested")
    )
    access: Access = Access()
    jobs: JobRules = JobRules()
    callbacks: CallbackOptions = CallbackOptions()
    log: LogOptions = LogOptions()
