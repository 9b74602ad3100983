"""The exceptions raised by legnext_async.

Every error derives from :class:`LegnextError`::

    LegnextError
    ├── ValidationError (also ValueError)     bad argument, raised before anything is sent
    ├── ClientClosedError (also RuntimeError) the client was used after aclose(), or a
    │                                         result with no open client was followed up
    ├── TransportError                        no usable HTTP answer
    │   ├── APIConnectionError                connection refused, reset or dropped
    │   ├── APITimeoutError (also TimeoutError) a single request took too long
    │   └── MalformedResponseError            the body could not be read as the API's JSON
    │       └── ResponseTooLargeError         the body was longer than max_response_bytes
    ├── APIStatusError                        the API answered with an error status
    │   ├── InvalidRequestError               400, 413, 422: the server refused the arguments
    │   ├── AuthenticationError               401: key missing or wrong
    │   ├── InsufficientCreditsError          402: the balance does not cover the job
    │   ├── PermissionDeniedError             403: content refused or feature not enabled
    │   ├── NotFoundError                     404: unknown or expired job
    │   │   └── EndpointNotFoundError         404 on no job: no such URL (check base_url)
    │   ├── RateLimitError                    429: too many requests or active jobs
    │   └── ServerError                       5xx
    ├── SpendingLimitError                    a job would take the points past max_points;
    │                                         nothing was sent
    ├── SubmissionOutcomeUnknownError         a job-creating POST failed after it was sent
    ├── IdempotencyConflictError              a recorded key was used for other arguments
    ├── StoreError                            the job store could not be read or written
    ├── DownloadError                         an output file could not be saved
    │   └── DownloadExpiredError              its signed URL is past its Expires time
    ├── TaskFailedError                       the job ended with status ``failed``
    └── TaskTimeoutError (also TimeoutError)  a wait passed its deadline; the job may still run

Messages never contain the API key. ``TaskFailedError`` and ``TaskTimeoutError`` carry a
:class:`Task`, so they live above the models, in ``_task_errors.py``; every other error is
here, below everything that raises it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ClientClosedError",
    "DownloadError",
    "DownloadExpiredError",
    "EndpointNotFoundError",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "LegnextError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
    "SpendingLimitError",
    "StoreError",
    "SubmissionOutcomeUnknownError",
    "TransportError",
    "ValidationError",
]


#: What a 429 says it limits: ``"jobs"`` (the account's active jobs), ``"rate"`` (requests
#: per unit of time), or ``"unknown"`` (its body says neither, or both).
RateLimitKind = Literal["jobs", "rate", "unknown"]

# Words for the active-job limit ("Concurrent task limit reached (6)"), and for a request
# rate ("Too many requests: rate limit exceeded"). "Concurrent requests" is in both: it
# could mean either, so it stays ambiguous.
_JOB_LIMIT_WORDS: Final = re.compile(
    r"concurren|parallel|simultaneous|too many (?:tasks|jobs)"
    r"|\b(?:active|running|unfinished|in-progress)\s+(?:tasks?|jobs?)\b"
    r"|\b(?:tasks?|jobs?)\s+(?:limit|quota|count|capacity|slots?)\b",
    re.IGNORECASE,
)
_RATE_LIMIT_WORDS: Final = re.compile(
    r"\brate\b|rate[\s_-]?limit|throttl|too many requests|concurrent\s+requests"
    r"|\brequests?\s+(?:limit|quota|rate)|\bper\s+(?:second|minute|hour|day)\b"
    r"|\b(?:rpm|rps|qps)\b",
    re.IGNORECASE,
)
# What frameworks and gateways put in any 429 body: it repeats the status, nothing more.
_BARE_PHRASE: Final = re.compile(r"\W*(?:429\W*)?too many requests\W*", re.IGNORECASE)


def rate_limit_kind(*texts: str) -> RateLimitKind:
    """Which limit a 429 is about, judged from its error body's ``message`` and ``raw_message``.

    Words about concurrency or active, running tasks or jobs mean the active-job limit;
    words about a request rate, throttling or "too many requests" mean a request-rate limit;
    both or neither is ``"unknown"``. A message that is only the status's reason phrase
    ("Too Many Requests") says nothing beyond the status, so it counts as neither. The
    body's numeric ``code`` is not used: the sources give no codes that tell the two apart.
    """
    jobs = rate = False
    for text in texts:
        if not text or _BARE_PHRASE.fullmatch(text):
            continue
        jobs = jobs or _JOB_LIMIT_WORDS.search(text) is not None
        rate = rate or _RATE_LIMIT_WORDS.search(text) is not None
    if jobs == rate:
        return "unknown"
    return "jobs" if jobs else "rate"


class LegnextError(Exception):
    """Base class of every error raised by legnext_async."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle's default rebuilds an error as cls(*args), which the keyword-only
        # constructors below refuse; this restores args and attributes without __init__.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(
    cls: type[LegnextError], args: tuple[object, ...], state: dict[str, Any]
) -> LegnextError:
    """An unpickled error: ``cls`` with ``args`` and the attributes it had."""
    error = cls.__new__(cls)
    error.args = args  # set here: OSError (TimeoutError's base) leaves args to __init__
    error.__dict__.update(state)
    return error


class ValidationError(LegnextError, ValueError):
    """An argument breaks a documented limit; nothing was sent.

    ``field`` names the argument (as the caller spelled it) and the message states the limit.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class StoreError(LegnextError):
    """The job store could not be opened, read or written (the underlying error is
    ``__cause__``)."""


class IdempotencyConflictError(LegnextError):
    """An idempotency key already recorded (in the client's job store) for other arguments
    was used again; nothing was sent. ``key`` is the key, ``endpoint`` the operation it was
    first used for. ``settle`` is what the message advises to free the key (the command
    line says its own command)."""

    def __init__(self, key: str, endpoint: str, *, settle: str = "client.forget(key)") -> None:
        super().__init__(
            f"key {key!r} was recorded for another {endpoint} request (or another endpoint);"
            f" one key stands for one request: use a new key, or {settle} first"
        )
        self.key = key
        self.endpoint = endpoint


class ClientClosedError(LegnextError, RuntimeError):
    """The client (or the session it borrowed) was used after it was closed.

    Also raised by a result's follow-up when the result has no open client: one read with
    ``from_json``, or one whose client has closed. The message says how to follow up.
    """


class TransportError(LegnextError):
    """No usable HTTP answer arrived.

    ``method`` and ``path`` name the request (the path is relative to the base URL).
    """

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class APIConnectionError(TransportError):
    """The connection failed: refused, reset, or closed before a full answer.

    ``sent`` is False only when the request provably never left this process.
    """

    def __init__(self, message: str, *, method: str, path: str, sent: bool) -> None:
        super().__init__(message, method=method, path=path)
        self.sent = sent


class APITimeoutError(TransportError, TimeoutError):
    """One HTTP request took longer than the client's request timeout."""


class MalformedResponseError(TransportError):
    """The server answered, but the body is not the JSON the API documents."""

    def __init__(self, message: str, *, method: str, path: str, status: int) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status


class ResponseTooLargeError(MalformedResponseError):
    """A successful answer was longer than the client's ``max_response_bytes``.

    It was not read past that many bytes (counted after decompression); ``limit`` is the
    cap. Reads retry it like any unreadable body; on a job-creating POST it becomes a
    :class:`SubmissionOutcomeUnknownError`.
    """

    def __init__(self, message: str, *, method: str, path: str, status: int, limit: int) -> None:
        super().__init__(message, method=method, path=path, status=status)
        self.limit = limit


class APIStatusError(LegnextError):
    """The API answered with an error status.

    ``status`` is the HTTP status; ``code``, ``message`` and ``raw_message`` come from the
    error body (whichever of the three documented shapes it had); ``body`` is the parsed body
    (or ``None`` when it was not JSON).
    """

    def __init__(
        self,
        *,
        status: int,
        message: str,
        code: int | None = None,
        raw_message: str = "",
        method: str = "",
        path: str = "",
        body: Mapping[str, Any] | None = None,
    ) -> None:
        where = f" ({method} {path})" if method else ""
        super().__init__(f"HTTP {status}{where}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.raw_message = raw_message
        self.method = method
        self.path = path
        self.body = body


class InvalidRequestError(APIStatusError):
    """HTTP 400, 413 or 422: the server refused the request's arguments."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing or not valid."""


class InsufficientCreditsError(APIStatusError):
    """HTTP 402: the account's balance does not cover the job."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: content refused, or a feature this account may not use (e.g. ``edit``)."""


class NotFoundError(APIStatusError):
    """HTTP 404: no such job for this key, or it is older than the retention window."""


class EndpointNotFoundError(NotFoundError):
    """HTTP 404 on a request that names no job: the URL is not an endpoint of the API.

    Usually a ``base_url`` with a wrong path (the service's is ``https://api.legnext.ai/api``).
    ``url`` is the full URL that was tried (the key travels in a header, never in it). No job
    was created: a route that does not exist makes none.
    """

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests, or too many active jobs.

    ``retry_after`` is the server's ``Retry-After`` in seconds, or ``None`` if it sent none
    (or one that is neither a finite number nor an HTTP date).
    ``kind`` says which limit the error body names: ``"jobs"`` (the account's limit of
    active jobs), ``"rate"`` (a limit on requests per unit of time), or ``"unknown"`` (the
    body names neither, or both; the API documents 429 as the active-job limit). A 429 on a
    submission teaches the client a limit of active jobs unless its ``kind`` is ``"rate"``.
    """

    def __init__(
        self,
        *,
        retry_after: float | None = None,
        kind: RateLimitKind = "unknown",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after
        self.kind: RateLimitKind = kind


class ServerError(APIStatusError):
    """HTTP 5xx."""


class SpendingLimitError(LegnextError):
    """A job's expected cost would take the points committed past the client's ``max_points``.

    Nothing was sent, and the submission did not wait for a job slot. ``endpoint`` is the
    operation (``"diffusion"``), ``limit`` the client's ``max_points``, ``committed`` the
    points its jobs had reserved, frozen or spent, ``cost`` the job's expected cost and
    ``basis`` where that came from.
    """

    def __init__(self, *, endpoint: str, limit: int, committed: int, cost: int, basis: str) -> None:
        super().__init__(
            f"{endpoint}: refused before sending: its expected cost of {cost} points ({basis})"
            f" would take the {committed} points committed past the limit of {limit}"
            " (max_points)"
        )
        self.endpoint = endpoint
        self.limit = limit
        self.committed = committed
        self.cost = cost
        self.basis = basis


class SubmissionOutcomeUnknownError(LegnextError):
    """A job-creating request was sent, and then failed: a job may or may not exist.

    The client never re-sends such a request, because a second job would be billed again.
    ``endpoint`` is the operation (``"inpaint"``), ``payload`` the exact JSON body that was
    sent, ``sent_at`` when (Unix seconds): check the account's jobs and balance (or wait for
    the callback, if one was given) before submitting again. The underlying error is
    ``__cause__``.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        payload: Mapping[str, Any],
        sent_at: float,
        reason: str,
        key: str | None = None,
    ):
        super().__init__(
            f"{endpoint}: the submission's outcome is unknown ({reason}); a job may have been"
            " created and billed, so it was not re-sent. Check before submitting again."
        )
        self.endpoint = endpoint
        self.payload = payload
        self.sent_at = sent_at
        #: The idempotency key the submission was recorded under, with a job store.
        self.key = key


class DownloadError(LegnextError):
    """An output file of a job could not be saved; no file carries its final name.

    ``job_id`` and ``index`` name the file (``index`` is ``None`` when the job as a whole
    has nothing to download), ``reason`` says what was wrong, ``where`` is the file's URL
    without its query (a signed URL's signature is a credential of sorts, so it is never
    shown), ``status`` the HTTP status if one came. ``transient`` is true for what a later
    try may not meet again (a lost or stalled connection, a body cut short, 429, 5xx):
    those were retried as the client's retry policy says before this was raised.
    ``retry_after`` is the host's ``Retry-After`` in seconds, if it sent one.
    """

    def __init__(
        self,
        *,
        job_id: str,
        index: int | None,
        reason: str,
        where: str = "",
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        what = f"job {job_id}" if index is None else f"job {job_id}, file {index}"
        at = f" ({where})" if where else ""
        super().__init__(f"{what}: {reason}{at}")
        self.job_id = job_id
        self.index = index
        self.reason = reason
        self.where = where
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


class DownloadExpiredError(DownloadError):
    """A signed output URL is past the time its ``Expires`` parameter names.

    Raised before any request for the job's files is sent. ``expires`` is that time (Unix
    seconds). The service keeps files for about 30 days; past that, run the job again.
    """

    def __init__(self, *, job_id: str, index: int, where: str, expires: float) -> None:
        super().__init__(
            job_id=job_id,
            index=index,
            reason=f"its signed URL expired at {_utc(expires)}; files are kept about 30 days,"
            " so download them soon after a job completes (or run the job again)",
            where=where,
        )
        self.expires = expires


def _utc(seconds: float) -> str:
    """``seconds`` (Unix time) as an ISO 8601 UTC time, to the second."""
    try:
        when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"Unix time {seconds:.0f}"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
