"""LegnextClient: the session's lifecycle and the one place every request goes through."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import platform
import time
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import attrs
from aiohttp import hdrs

from ._batch import BatchItem, BatchProgress, as_completed
from ._budget import JobSlots, RequestBudget
from ._callbacks import CallbackDesk
from ._coordination import Coordinator, Member, Membership, account_of
from ._download import DEFAULT_MAX_DOWNLOAD_BYTES, Downloader
from ._endpoints import Endpoints
from ._engine import JobEngine
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    EndpointNotFoundError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InvalidRequestError,
    LegnextError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    StoreError,
    SubmissionOutcomeUnknownError,
    ValidationError,
    rate_limit_kind,
)
from ._handle import TaskHandle
from ._keeper import JobKeeper
from ._models import Balance, RawJSON, Task, TaskStatus
from ._polling import DurationModel, PollPolicy, ServerHint
from ._results import TaskResult, result_for
from ._retry import (
    RetryPolicy,
    is_retryable_read,
    may_resend_submission,
    parse_retry_after,
    retry_call,
)
from ._spending import Ledger
from ._store import (
    CanonicalRequest,
    JobRecord,
    JobStore,
    RecordState,
    check_key,
    open_store,
    state_of,
)
from ._validation import check_job_id, check_min_int, check_service_url, is_job_id
from ._version import __version__
from ._wire import KeyScrubber, loads

if TYPE_CHECKING:
    from collections.abc import (
        AsyncGenerator,
        Awaitable,
        Callable,
        Coroutine,
        Iterable,
        Iterator,
        Mapping,
    )
    from os import PathLike
    from pathlib import Path

    from multidict import CIMultiDictProxy

    from ._budget import SlotTicket
    from ._catalog import Route
    from ._engine import Job
    from ._spending import Charge, PointTotals
    from .webhooks import WebhookReceiver

__all__ = ["LegnextClient"]

logger = logging.getLogger("legnext_async")

DEFAULT_BASE_URL: Final = "https://api.legnext.ai/api"
DEFAULT_REQUEST_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_CONCURRENT_REQUESTS: Final = 32
#: The longest answer read, in bytes after decompression. A task is a few KB (a finished
#: grid with every action listed, about 1.5 KB); 4 MiB is a thousand times that, room for
#: any answer the service means, while one broken or hostile answer costs at most this much
#: memory (twice, briefly, while its pieces are joined).
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
#: The smallest ``max_response_bytes`` accepted: a guard against a slip of unit (``4`` meant
#: as MiB). Real answers need a few KB.
MIN_RESPONSE_BYTES: Final = 1024
#: The most of an error answer read. Its status and headers decide the error; the body gives
#: only the message, which any error object of the API's fits in many times over. A longer
#: body (a proxy's 50 MB page) is cut off and dropped: the status's reason phrase is used.
ERROR_BODY_BYTES: Final = 64 * 1024
#: Job-creating POSTs in flight at once: few, so that an account's limit, when unknown, is
#: found with one or two 429s rather than a burst of them.
SUBMISSIONS_IN_FLIGHT: Final = 4
USER_AGENT: Final = (
    f"legnext-async/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"
)

R = TypeVar("R")

_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    # The value is not echoed: a misplaced key would land in the message.
    return check_service_url(
        base_url,
        "base_url",
        allow_insecure_http=allow_insecure_http,
        exposes="send the API key unencrypted",
    )


def _check_api_key(api_key: str | None) -> str:
    if api_key is None:
        raise ValidationError(
            "api_key", "missing: pass api_key= or set the LEGNEXT_API_KEY environment variable"
        )
    if not api_key.strip():
        raise ValidationError("api_key", "must be a non-empty string")
    if any(ch.isspace() or not ch.isprintable() for ch in api_key):
        # The key itself is never echoed.
        raise ValidationError("api_key", "must not contain whitespace or control characters")
    return api_key


def _error_fields(body: object) -> tuple[int | None, str, str]:
    """``(code, message, raw_message)`` from any of the three documented error body shapes."""
    if not isinstance(body, dict):
        return None, "", ""
    error = body.get("error")
    source = error if isinstance(error, dict) else body
    code = source.get("code")
    message = source.get("message")
    raw_message = source.get("raw_message")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else "",
        raw_message if isinstance(raw_message, str) else "",
    )


def _read_capped(response: aiohttp.ClientResponse, limit: int) -> Awaitable[bytes | None]:
    """The body (decompressed) if it is at most ``limit`` bytes long, else ``None``.

    At most one chunk past ``limit`` is read, and nothing past it is kept: a longer answer's
    connection is closed, never drained or handed back to the pool half-read.
    """
    length = response.content_length
    headers = response.headers
    if (
        length is not None
        and length <= limit
        and not (hdrs.CONTENT_ENCODING in headers or hdrs.TRANSFER_ENCODING in headers)
    ):
        # The common case, at aiohttp's own cost (no coroutine of ours around it): the
        # parser stops at Content-Length.
        return response.read()
    return _read_stream(response, length, limit)


async def _read_stream(
    response: aiohttp.ClientResponse, length: int | None, limit: int
) -> bytes | None:
    """:func:`_read_capped` for a body with no length, a length past ``limit``, or a
    compressed one (whose length says nothing of what it inflates to)."""
    if length is not None and length > limit:
        response.close()
        return None
    chunks: list[bytes] = []
    size = 0
    content = response.content
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            response.close()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _names_job(payload: Mapping[str, Any] | None) -> bool:
    """Whether a request's body names a job (a follow-up's parent), which a 404 may be about."""
    return payload is not None and payload.get("jobId") is not None


def _not_found(url: str, *, names_job: bool, **kwargs: Any) -> NotFoundError:
    """The error of a 404: an unknown job, or no endpoint at ``url`` when none was named.

    A status read names its job in the path, a follow-up its parent in the body; any other
    request that answers 404 went to a URL the API does not have, usually through a
    ``base_url`` with a wrong path.
    """
    if names_job or kwargs["path"].startswith("/v1/job/"):
        return NotFoundError(**kwargs)
    kwargs["message"] = (
        f"no API endpoint at {url}; check base_url (the service's is {DEFAULT_BASE_URL})"
    )
    return EndpointNotFoundError(url=url, **kwargs)


@functools.lru_cache(maxsize=4096)
def _status_path(job_id: str) -> str:
    """The status path of a job. Callers pass checked ids only; quoting keeps the path one
    segment regardless. Kept for the jobs read lately: most reads are of the same jobs."""
    return f"/v1/job/{quote(job_id, safe='')}"


def _reason_phrase(status: int) -> str:
    """The message of an error answer whose body has none: a gateway page, plain text, empty."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


class LegnextClient(Endpoints):
    """An asyncio client for the Legnext API.

    Use it as ``async with LegnextClient() as client:`` or call :meth:`aclose` when done. It
    owns one aiohttp session, made on first use inside the running event loop, unless one is
    passed in as ``session`` (which it then never closes).

    One client may serve one event loop after another, as in a script that calls
    ``asyncio.run()`` twice: when its loop shuts down (``asyncio.run()`` and
    ``asyncio.Runner`` do so on exit), the client stops polling there and closes its
    session, and the next loop gets a fresh one. What it learned (job run times, the
    account's job limit) carries over. Using it in a second loop while the first has not
    shut down, or with a borrowed ``session`` made in another loop, raises
    :class:`LegnextError`.

    Args:
        api_key: the key (``x-api-key``); defaults to ``$LEGNEXT_API_KEY``. Never shown in
            reprs, logs or errors.
        base_url: defaults to ``$LEGNEXT_BASE_URL``, then ``https://api.legnext.ai/api``.
            Plain ``http://`` is refused for hosts other than loopback unless
            ``allow_insecure_http`` is set.
        poll: how handles wait (a :class:`PollPolicy`); each handle may override it.
        retry: how failed reads (and provably unsent submissions) are retried.
        session: an aiohttp session to borrow.
        request_timeout: seconds one HTTP request may take (time spent waiting for the
            client's own request budget is not counted).
        max_active_jobs: jobs this client keeps running at once; further submissions wait
            here, first come first served. ``None``: learned from the service's 429s, and
            raised again after jobs finish without one.
        max_concurrent_requests: HTTP requests in flight at once.
        requests_per_second: an optional cap on the rate of requests (polls included).
        allow_insecure_http: allow ``http://`` to a host other than loopback.
        max_response_bytes: the longest answer read, counted after decompression (at least
            1024; 4 MiB by default, a thousand times a real task). A longer successful
            answer raises :class:`ResponseTooLargeError` (retried by reads; on a
            job-creating POST, :class:`SubmissionOutcomeUnknownError`). Error answers are
            read up to 64 KiB at most, for their message.
        store: a :class:`JobStore` that records every submission before it is sent (the
            path of an SQLite file stands for :class:`SQLiteJobStore`). With one,
            job-creating calls take ``key=`` (an idempotency key: a key already recorded
            sends nothing), :meth:`resume` picks up unfinished jobs after a restart, and
            learned run times carry over. The client closes it when it closes (a store
            opens again when used).
        max_points: the most points this client's jobs may take, frozen and consumed
            together (an int, at least 0). A submission whose expected cost would take them
            past it raises :class:`SpendingLimitError` before it is sent or waits for a job
            slot. ``None`` (the default): no limit, nothing counted. See :attr:`points`.
        max_download_bytes: the largest output file :meth:`download` saves (1 GiB by
            default); a longer one raises :class:`DownloadError`, with nothing left on disk.
        fsync_downloads: whether :meth:`download` flushes each file to disk before giving
            it its name (each call may say otherwise). Off by default: a crash of the
            process never leaves a half file under its name either way, and a file a power
            cut left short is noticed and fetched again; on, downloads run at the disk's
            speed rather than the page cache's, and a file, once named, survives a power cut.
        webhook: a :class:`~legnext_async.webhooks.WebhookReceiver`. Each job-creating call
            without a ``callback=`` of its own then carries a callback URL of the receiver,
            with a token of that one job; its handle resolves as soon as the callback comes
            (confirmed by one status read if the receiver has no secret), and polling goes
            on only as a sparse safety net. With a store, the token is recorded, so a
            callback for a job no handle here awaits updates its record, and one for a
            submission whose answer was lost settles it. A ``callback=`` given to a call
            stays the caller's: that job is polled as without a receiver.
        coordinator: a :class:`Coordinator`, such as
            ``legnext_async.redis.RedisCoordinator``, shared by every client (worker) of the
            account: job slots come from one account-wide pool (``max_active_jobs``, if
            given, is the whole account's limit), the limit learned from a 429 by any worker
            is known to all, the poll pace and run times are shared, callbacks reach the
            worker that awaits them, and with a shared store the unfinished jobs of a lost
            worker are taken over; :meth:`resume` returns only jobs no live worker watches.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_active_jobs: int | None = None,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
        requests_per_second: float | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        store: JobStore | str | PathLike[str] | None = None,
        max_points: int | None = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        fsync_downloads: bool = False,
        webhook: WebhookReceiver | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self._api_key = _check_api_key(
            api_key if api_key is not None else os.environ.get("LEGNEXT_API_KEY")
        )
        self.base_url = _check_base_url(
            base_url or os.environ.get("LEGNEXT_BASE_URL") or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        if max_active_jobs is not None and max_active_jobs < 1:
            raise ValidationError("max_active_jobs", f"must be at least 1, got {max_active_jobs}")
        if max_concurrent_requests < 1:
            raise ValidationError(
                "max_concurrent_requests", f"must be at least 1, got {max_concurrent_requests}"
            )
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValidationError(
                "requests_per_second", f"must be positive, got {requests_per_second}"
            )
        if request_timeout <= 0:
            raise ValidationError("request_timeout", f"must be positive, got {request_timeout}")
        self._max_response_bytes = check_min_int(
            max_response_bytes, "max_response_bytes", MIN_RESPONSE_BYTES
        )
        self._max_error_bytes = min(ERROR_BODY_BYTES, self._max_response_bytes)
        self._ledger = (
            Ledger(check_min_int(max_points, "max_points", 0)) if max_points is not None else None
        )
        max_download_bytes = check_min_int(max_download_bytes, "max_download_bytes", 1)
        if not isinstance(fsync_downloads, bool):
            raise ValidationError(
                "fsync_downloads", f"must be True or False, got {fsync_downloads!r}"
            )
        self.poll = poll or PollPolicy()
        self.retry = retry or RetryPolicy()
        self._session = session
        self._owns_session = session is None
        # A borrowed session belongs to the loop it was made in: the one running now, if any.
        self._session_loop = _running_loop() if session is not None else None
        #: The event loop the session, the poll scheduler and the semaphores belong to.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_guard: AsyncGenerator[None, None] | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout, sock_connect=min(DEFAULT_CONNECT_TIMEOUT, request_timeout)
        )
        self._scrubber = KeyScrubber(self._api_key)
        self._headers = {
            "x-api-key": self._api_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self._closed = False
        self._budget = RequestBudget(max_concurrent_requests, requests_per_second)
        self._submit_gate: asyncio.Semaphore | None = None
        self._durations = DurationModel()
        opened = open_store(store)
        self._keeper = JobKeeper(opened, self._durations) if opened is not None else None
        self._membership: Membership | None = None
        self._adopted: set[asyncio.Task[object]] = set()
        if coordinator is None:
            self._slots = JobSlots(max_active_jobs)
        else:
            if not isinstance(coordinator, Coordinator):
                raise ValidationError(
                    "coordinator", f"must be a coordinator, got {type(coordinator).__name__}"
                )
            self._membership = coordinator.join(
                Member(
                    account=account_of(self._api_key),
                    max_active_jobs=max_active_jobs,
                    durations=self._durations,
                    pace=self._budget.pace,
                    deliver=self._routed_delivery if webhook is not None else None,
                    adopt_orphans=self._adopt_orphans if self._keeper is not None else None,
                )
            )
            self._slots = self._membership.slots
        self._engine = JobEngine(_EngineServices(self), max_in_flight=max_concurrent_requests)
        self._desk: CallbackDesk | None = None
        if webhook is not None:
            self._desk = CallbackDesk(
                webhook,
                read=self._read_callback_job,
                keeper=self._keeper,
                membership=self._membership,
            )
            webhook.attach(self._desk)
        self._downloader = Downloader(
            session=self._ensure_session,
            budget=self._budget,
            allow_insecure_http=allow_insecure_http,
            max_bytes=max_download_bytes,
            read_timeout=request_timeout,
            connect_timeout=min(DEFAULT_CONNECT_TIMEOUT, request_timeout),
            fsync=fsync_downloads,
        )

    def __repr__(self) -> str:
        return f"<LegnextClient base_url={self.base_url!r} api_key='***'>"

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> LegnextClient:
        self._ensure_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def points(self) -> PointTotals | None:
        """The points this client's jobs have committed and spent, under ``max_points``.

        ``None`` when the client has no ``max_points`` (then nothing is counted).
        """
        ledger = self._ledger
        return ledger.totals if ledger is not None else None

    async def aclose(self) -> None:
        """Stop every poller and close the session (if the client made it). Idempotent.

        Called from another event loop than the client's, it only marks the client closed:
        the rest is done when the client's loop shuts down.
        """
        if self._closed:
            return
        self._closed = True
        self._engine.closed = True
        desk = self._desk
        if desk is not None:
            desk.receiver.detach(desk)
        guard = self._loop_guard
        if guard is not None and self._loop is _running_loop():
            await guard.aclose()  # runs _leave_loop()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this LegnextClient is closed")
        loop = _running_loop()
        if loop is not self._loop and loop is not None:
            self._enter_loop(loop)
        if self._session is not None and self._session.closed:
            raise ClientClosedError("the aiohttp session this client uses is closed")

    # --- one event loop after another ------------------------------------------------------

    def _enter_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make ``loop`` the client's, with a fresh poll scheduler and request semaphores.

        A session cannot be closed once its loop is closed (its sockets close through that
        loop), so the client registers a guard with ``loop`` that closes the session while
        the loop shuts down, and refuses a new loop until then.
        """
        if self._loop is not None:
            raise LegnextError(
                "this LegnextClient belongs to another event loop, which has not shut down (it"
                " still runs, or was closed without loop.shutdown_asyncgens()); use one client"
                " per event loop, or run each loop with asyncio.run(), which shuts it down"
            )
        if not self._owns_session:
            if self._session_loop is None:
                self._session_loop = loop
            elif loop is not self._session_loop:
                raise LegnextError(
                    "the aiohttp session passed as session= belongs to another event loop;"
                    " pass one made in this loop, or let the client make its own"
                )
        self._loop = loop
        self._engine.renew()
        self._budget.renew()
        if self._keeper is not None:
            self._keeper.renew()
        self._submit_gate = None
        if self._membership is not None:
            self._membership.enter()
        guard = self._loop_guard = self._guard_loop()
        # Its first step runs here, at once (nothing before its yield awaits); starting it
        # registers it with the loop, whose shutdown_asyncgens() then closes it.
        with contextlib.suppress(StopIteration):
            guard.asend(None).send(None)

    async def _guard_loop(self) -> AsyncGenerator[None, None]:
        """Suspended while the client's loop lives; closed by its shutdown or by aclose()."""
        loop = self._loop
        try:
            yield
        finally:
            # Reached in the loop: at its shutdown, from aclose(), or in a task the loop makes
            # when the client is dropped unclosed (aiohttp has warned of the session by then).
            if self._loop is loop and _running_loop() is loop:
                self._loop_guard = None
                await self._leave_loop()

    async def _leave_loop(self) -> None:
        """End what belongs to the client's loop: every poll run, and its own session."""
        why = "the client was closed" if self._closed else "its event loop shut down"
        if self._desk is not None:
            await self._desk.stop()
        adopted, self._adopted = self._adopted, set()
        for task in adopted:
            task.cancel()
        if adopted:
            await asyncio.wait(adopted)
        await self._engine.stop(
            lambda job_id: ClientClosedError(f"{why} while waiting for job {job_id}")
        )
        if self._membership is not None:
            # Before the store closes: taking over a lost worker's jobs reads the store.
            await self._membership.leave()
        keeper = self._keeper
        if keeper is not None:
            await keeper.close()
        session = self._session
        if self._owns_session and session is not None:
            self._session = None
            await session.close()
        self._loop = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        self._check_open()
        session = self._session
        if session is None:
            # Made here, inside the running loop; the connector never queues requests,
            # since RequestBudget already holds them outside aiohttp's timeout.
            connector = aiohttp.TCPConnector(limit=self._budget.max_concurrent, limit_per_host=0)
            session = self._session = aiohttp.ClientSession(connector=connector)
        return session

    # --- the request choke point ---------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        sending: _Submission | None = None,
    ) -> tuple[dict[str, Any], CIMultiDictProxy[str], bytes]:
        """Send one request (no retry); return the JSON object, the headers and the body.

        Every aiohttp failure becomes one of our errors here, and every error status is
        read (body first) into the :class:`APIStatusError` subclass for it. ``sending`` (a
        submission) is marked sent once the request has its place in the budget and goes.
        """
        status, headers, body = await self._exchange(method, path, payload, sending)
        data = self._decode(method, path, status, headers, body, names_job=_names_job(payload))
        return data, headers, body

    async def _exchange(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        sending: _Submission | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        """Send one request; the answer's status, headers and body, whatever the status.

        Every aiohttp failure becomes one of our errors here. The body is read up to the
        client's cap (an error answer's up to :data:`ERROR_BODY_BYTES`, dropped past it),
        and comes back with the API key scrubbed from it.
        """
        session = self._ensure_session()
        url = self.base_url + path
        data = None
        headers = self._headers
        if payload is not None:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            headers = {**headers, "Content-Type": "application/json"}
        async with self._budget:
            if sending is not None:
                # From here the request may reach the service; waiting for the budget (or
                # the rate cap) before this sent nothing, and a cancel there made no job.
                sending.sent = True
            try:
                async with session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as response:
                    status = response.status
                    response_headers = response.headers
                    ok = 200 <= status < 300
                    limit = self._max_response_bytes if ok else self._max_error_bytes
                    read = await _read_capped(response, limit)
                    if read is None and ok:
                        raise ResponseTooLargeError(
                            f"{method} {path}: HTTP {status} with a body longer than"
                            f" {limit} bytes; not read further",
                            method=method,
                            path=path,
                            status=status,
                            limit=limit,
                        )
                    body = read or b""  # an error answer past its cap: its status decides
            except aiohttp.ClientConnectorError as exc:
                raise APIConnectionError(
                    f"{method} {path}: could not connect: {exc.os_error}",
                    method=method,
                    path=path,
                    sent=False,
                ) from exc
            except aiohttp.ConnectionTimeoutError as exc:
                raise APIConnectionError(
                    f"{method} {path}: timed out connecting", method=method, path=path, sent=False
                ) from exc
            except TimeoutError as exc:
                raise APITimeoutError(
                    f"{method} {path}: no answer within {self._timeout.total:g} s",
                    method=method,
                    path=path,
                ) from exc
            except aiohttp.ClientPayloadError as exc:
                raise APIConnectionError(
                    f"{method} {path}: the answer was cut off", method=method, path=path, sent=True
                ) from exc
            except aiohttp.ClientError as exc:
                raise APIConnectionError(
                    f"{method} {path}: connection lost: {type(exc).__name__}",
                    method=method,
                    path=path,
                    sent=True,
                ) from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %s", method, path, status)
        # Every body leaves here scrubbed: whatever is made of it (a Task and its raw, an
        # error's message and body, a log record) cannot show the key, however it was quoted.
        return status, response_headers, self._scrubber.body(body)

    def _decode(
        self,
        method: str,
        path: str,
        status: int,
        headers: CIMultiDictProxy[str],
        body: bytes,
        *,
        names_job: bool = False,
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer; any other status raises its APIStatusError.

        ``names_job``: the request's body named a job, which a 404 may then be about.
        """
        if 200 <= status < 300:
            try:
                parsed = loads(body)
            except ValueError:  # not JSON, or nested too deep to be the API's
                parsed = None
            if not isinstance(parsed, dict):
                raise MalformedResponseError(
                    f"{method} {path}: HTTP {status} with a body that is not a JSON object",
                    method=method,
                    path=path,
                    status=status,
                )
            return parsed
        raise self._status_error(method, path, status, body, headers, names_job=names_job)

    def _status_error(
        self,
        method: str,
        path: str,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        *,
        names_job: bool = False,
    ) -> APIStatusError:
        try:
            parsed = loads(body) if body else None
        except ValueError:
            parsed = None
        code, message, raw_message = _error_fields(parsed)
        if 300 <= status < 400:
            # The host only, from a Location with the key scrubbed (a server chose it).
            target = self._scrubber.text(headers.get("Location", ""))
            try:
                host = urlsplit(target).hostname
            except ValueError:  # e.g. "http://[oops": no host to name
                host = None
            location = host or "an unknown place"
            message = f"redirect to {location} not followed (it would carry the API key)"
        kwargs: dict[str, Any] = {
            "status": status,
            "message": message or raw_message or _reason_phrase(status),
            "code": code,
            "raw_message": raw_message,
            "method": method,
            "path": path,
            "body": parsed if isinstance(parsed, dict) else None,
        }
        if status == 429:
            return RateLimitError(
                retry_after=parse_retry_after(headers.get("Retry-After")),
                kind=rate_limit_kind(message, raw_message),
                **kwargs,
            )
        if status >= 500:
            return ServerError(**kwargs)
        if status == 404:
            return _not_found(self.base_url + path, names_job=names_job, **kwargs)
        return _STATUS_ERRORS.get(status, APIStatusError)(**kwargs)

    def _retried(self, read: Callable[[], Awaitable[R]]) -> Coroutine[Any, Any, R]:
        """``read()``, retried as the retry policy says (see :func:`retry_call`)."""
        return retry_call(self.retry, read, retry_if=is_retryable_read, clock=self._engine.clock)

    async def _read(self, path: str) -> dict[str, Any]:
        """A GET, retried as the retry policy says."""
        data, _, _ = await self._retried(lambda: self._request("GET", path))
        return data

    async def _read_task_once(
        self, job_id: str, known: Task | None = None
    ) -> tuple[Task, ServerHint]:
        """One status read: the task, and the answer's hints of when to read again.

        ``known``: the snapshot held already; an answer of the very same bytes returns it
        without decoding anything (most reads of a waiting job change nothing).
        """
        path = _status_path(job_id)
        status, headers, body = await self._exchange("GET", path)
        retry_after = headers.get("Retry-After")
        if (
            known is not None
            and 200 <= status < 300
            and RawJSON.came_as(known.raw, body)
            # (find: bytes' ``in`` raises and clears a TypeError first; see KeyScrubber.body)
            and body.find(b"estimated_time") == -1  # a hint relative to now: read it afresh
        ):
            return known, ServerHint(retry_after)
        data = self._decode("GET", path, status, headers, body)
        hint = ServerHint(retry_after, data.get("estimated_time"))
        task = Task.from_json(data, body=body)
        if task.job_id != job_id:
            task = self._same_job(path, job_id, task)
        return task, hint

    @staticmethod
    def _same_job(path: str, job_id: str, task: Task) -> Task:
        """A status answer whose ``job_id`` is not the one asked for, made to carry it.

        No ``job_id`` (or one spelled in other letter case): the asked id is kept. Another
        job's id: the answer says nothing of this job (a misrouted or hostile answer), and
        taking it would hand that job's status and outputs, and its id for follow-ups, to
        this one; it is unreadable (:class:`MalformedResponseError`, retried like others).
        """
        if task.job_id and task.job_id.lower() != job_id.lower():
            raise MalformedResponseError(
                f"GET {path}: HTTP 200 with the status of another job",
                method="GET",
                path=path,
                status=200,
            )
        return attrs.evolve(task, job_id=job_id)

    async def _read_callback_job(self, job_id: str) -> Task:
        """The status read confirming an unsigned callback (retried as reads are)."""
        check_job_id(job_id)
        task, _ = await self._read_task(job_id)
        return task

    def _read_task(
        self, job_id: str, known: Task | None = None
    ) -> Coroutine[Any, Any, tuple[Task, ServerHint]]:
        """One status read, retried as the retry policy says."""
        return self._retried(lambda: self._read_task_once(job_id, known))

    # --- public reads --------------------------------------------------------------------

    async def get_task(self, job_id: str) -> Task:
        """Read a job's status once (failed reads are retried) and return it.

        Raises:
            ValidationError: ``job_id`` is not 1 to 128 characters from ``A-Z``, ``a-z``,
                ``0-9``, ``_`` and ``-`` (nothing is sent).
            NotFoundError: no such job for this key, or it is past the retention window.
            MalformedResponseError: the answers, retries included, were unreadable or about
                another job.
        """
        check_job_id(job_id)
        task, _ = await self._read_task(job_id)
        return task

    def task(self, job_id: str, *, poll: PollPolicy | None = None) -> TaskHandle[TaskResult]:
        """A handle for a job created elsewhere; nothing is sent until it is awaited.

        Its result's type follows the job's task type (image, video or text).

        Raises:
            ValidationError: ``job_id`` is not 1 to 128 characters from ``A-Z``, ``a-z``,
                ``0-9``, ``_`` and ``-``.
        """
        check_job_id(job_id)
        self._check_open()
        return TaskHandle(self._engine.job(job_id, poll), result_for, self)

    async def balance(self) -> Balance:
        """The account's balance (``GET /account/balance``)."""
        return Balance.from_json(await self._read("/account/balance"))

    # --- the job store -------------------------------------------------------------------

    @property
    def store(self) -> JobStore | None:
        """The client's job store, if it has one."""
        keeper = self._keeper
        return keeper.store if keeper is not None else None

    def _stored(self) -> JobKeeper:
        keeper = self._keeper
        if keeper is None:
            raise LegnextError(
                "this client has no job store: LegnextClient(store='jobs.db') records jobs"
            )
        return keeper

    async def resume(self, *, poll: PollPolicy | None = None) -> list[TaskHandle[TaskResult]]:
        """Handles for every unfinished job of the store (pending or running), oldest first.

        They wait like any other handle, and their updates are recorded. Submissions whose
        outcome is unknown have no job id and no handle: list them with
        ``client.store.records(RecordState.UNKNOWN, RecordState.SUBMITTING)`` and settle
        each with :meth:`forget` once you know whether its job exists.

        With a ``coordinator``, the jobs another live worker of the group watches are left
        to it: the handles are for this client's own jobs and those nobody watched, which
        become this client's (no other worker's ``resume()`` returns them then).

        Raises:
            LegnextError: the client has no job store.
        """
        return await self._resume(poll)

    async def _resume(
        self, poll: PollPolicy | None, *, adopted_only: bool = False
    ) -> list[TaskHandle[TaskResult]]:
        """:meth:`resume`; ``adopted_only``: only the jobs no live worker watched before
        (not this client's own)."""
        self._check_open()
        keeper = self._stored()
        await self._store_ready(keeper)
        with _collector_paused():
            records = await keeper.store.records(RecordState.PENDING, RecordState.RUNNING)
            membership = self._membership
            if membership is not None:
                # Jobs another live worker of the group watches (or took over) are its own:
                # only the rest (a lost worker's, nobody's, or this client's) are this
                # client's. Asked for every job, this client's too: what it adopted a moment
                # ago is answered again.
                mine_before = set(keeper.live) if adopted_only else set()
                adopted = await membership.adopt(
                    [r.job_id for r in records if r.job_id is not None]
                )
                records = [
                    r
                    for r in records
                    if (r.job_id in adopted and r.key not in mine_before)
                    or (r.key in keeper.live and not adopted_only)
                ]
            return [
                TaskHandle(self._restored(record, poll), result_for, self)
                for record in records
                if record.job_id is not None
            ]

    async def _adopt_orphans(self) -> None:
        """The coordinator's call when a worker of the group was lost (or at start): take
        over the unfinished stored jobs nobody watches and see them to their end, so their
        records and the receiver's hooks learn how they ended."""
        if self._closed:
            return
        handles = await self._resume(None, adopted_only=True)
        if handles:
            logger.info(
                "took over %d unfinished stored job(s) that no live worker watched: %s",
                len(handles),
                ", ".join(handle.job_id for handle in handles[:10])
                + (", ..." if len(handles) > 10 else ""),
            )
        for handle in handles:
            task = asyncio.ensure_future(self._see_through(handle))
            self._adopted.add(task)
            task.add_done_callback(self._adopted.discard)

    @staticmethod
    async def _see_through(handle: TaskHandle[TaskResult]) -> None:
        with contextlib.suppress(LegnextError):
            await handle

    async def _routed_delivery(self, token: str, task: Task, signed: bool) -> bool:
        """A delivery another worker received for a token of this client's."""
        desk = self._desk
        if desk is None or self._closed:
            return False
        return await desk.delivered(token, task, signed=signed, routed=True)

    async def records(self, *states: RecordState, limit: int | None = None) -> list[JobRecord]:
        """The store's records in any of ``states`` (all if none), oldest first, once this
        client's news is written: its jobs' latest statuses are grouped into transactions
        (up to 50 ms apart), so ``client.store.records()`` may lag behind them a moment.

        Raises:
            LegnextError: the client has no job store.
        """
        self._check_open()
        keeper = self._stored()
        await keeper.ready()
        await keeper.flush()
        return await keeper.store.records(*states, limit=limit)

    async def forget(self, key: str) -> JobRecord | None:
        """Settle the submission recorded under ``key``: the key may be used again, and a
        call with it sends a new request (paid again). The record is kept, marked
        ``forgotten``. Returns the record as it was, or ``None`` if the key was unknown.

        Use it for a key whose outcome is unknown, once you know whether its job exists.

        Raises:
            LegnextError: the client has no job store, or the key is being submitted by
                this client right now.
        """
        check_key(key)
        self._check_open()
        keeper = self._stored()
        if key in keeper.submitting:
            raise LegnextError(f"key {key!r} is being submitted right now; forget it after")
        await keeper.ready()
        await keeper.flush()
        forgotten = await keeper.store.forget(key)
        job = keeper.live.pop(key, None)
        if job is not None:
            job.record = None  # its later news must not write over the key's next record
        return forgotten

    # --- output files --------------------------------------------------------------------

    async def download(
        self,
        target: str | Task | TaskResult,
        directory: str | os.PathLike[str],
        *,
        fsync: bool | None = None,
    ) -> tuple[Path, ...]:
        """Save a completed job's images or videos in ``directory``; their paths, in order.

        ``target`` is a job id (its status is read first), a :class:`Task` or a result
        (one restored with :meth:`TaskResult.from_json` too). ``directory`` is made if
        missing. Each file is named ``<job_id>_<index><ext>`` (``ext`` from the URL, else
        the content type: ``.png``, ``.jpg``, ``.webp``, ``.gif``, ``.mp4``, ``.webm``,
        ``.mov``); a file whose name exists already and that is whole (its format's own
        structure ends where the file does: a PNG with its ``IEND`` chunk, an MP4's boxes
        with the file) is taken as done and not fetched again. Files are streamed to a
        hidden temporary file, checked (status 200, an image or video content type or
        ``application/octet-stream``, the announced length, at most
        ``max_download_bytes``) and only then renamed, so no half file ever carries its
        final name. ``fsync=True`` also flushes each file to disk before its rename, so a
        named file survives a power cut too (``None``: the client's ``fsync_downloads``,
        off unless set). Transient failures (a lost or stalled connection, a body cut
        short, 429, 5xx) are retried as the client's ``retry`` policy says; each transfer
        takes a place in the client's budget of concurrent requests. The API key is never
        sent to the file host.

        Raises:
            ValidationError: ``target`` is a text job (describe, shorten), or ``job_id`` is
                not a job id (nothing is sent).
            DownloadExpiredError: a file's signed URL is past its ``Expires`` time (checked
                before any file is requested).
            DownloadError: the job is not completed or lists no file, or a file could not
                be saved (the job, the file number and the reason are named; files that
                completed are kept).
        """
        if fsync is not None and not isinstance(fsync, bool):
            raise ValidationError("fsync", f"must be True, False or None, got {fsync!r}")
        if isinstance(target, str):
            task = await self._finished_task(target)
        elif isinstance(target, Task):
            task = target
        elif isinstance(target, TaskResult):
            task = target.task
        else:
            raise ValidationError(
                "target",
                f"must be a job id, a Task or a TaskResult, got {type(target).__name__}",
            )
        self._check_open()
        paths = await self._downloader.download(
            task, directory, retry=self.retry, clock=self._engine.clock, fsync=fsync
        )
        await self._files_downloaded(task.job_id, paths)
        return paths

    async def _files_downloaded(self, job_id: str, paths: tuple[Path, ...]) -> None:
        """Record that job ``job_id``'s files are saved at ``paths`` (in output order).

        Called after every successful :meth:`download`, skipped files included. Without a
        job store there is nothing to record; with one, the job's record lists the files.
        """
        keeper = self._keeper
        if keeper is None:
            return
        files = tuple(str(path) for path in paths)
        for job in list(keeper.live.values()):
            record = job.record
            if job.job_id == job_id and record is not None:
                # The live job's record is the one its later news is written from.
                job.record = attrs.evolve(record, files=files, updated_at=time.time())
                await keeper.durable(job.record)
                return
        await self._store_ready(keeper)
        await keeper.flush()
        record = await keeper.store.find(job_id)
        if record is not None and record.state is not RecordState.FORGOTTEN:
            await keeper.durable(attrs.evolve(record, files=files, updated_at=time.time()))

    async def _finished_task(self, job_id: str) -> Task:
        """The task of job ``job_id``: from the store if it recorded the job completed (no
        request), else read."""
        keeper = self._keeper
        if keeper is not None:
            check_job_id(job_id)
            self._check_open()
            await self._store_ready(keeper)
            record = await keeper.store.find(job_id)
            task = record.task if record is not None else None
            if task is not None and task.status is TaskStatus.COMPLETED:
                return task
        return await self.get_task(job_id)

    # --- batches -------------------------------------------------------------------------

    def as_completed(
        self,
        jobs: Iterable[TaskHandle[R] | Awaitable[TaskHandle[R]]],
        *,
        on_progress: Callable[[BatchProgress], object] | None = None,
        on_submitted: Callable[[int, TaskHandle[R]], object] | None = None,
    ) -> AsyncGenerator[BatchItem[R], None]:
        """Yield a :class:`BatchItem` for each job as it finishes, whatever the others do.

        ``jobs`` holds handles, or submissions not yet awaited (``client.inpaint(...)``
        coroutines), which are sent as job slots allow. Each item unpacks as
        ``(handle, outcome)``: ``outcome`` is the result, or the :class:`LegnextError` that
        ended that job (:class:`TaskFailedError`, a timeout, or the submission's error, with
        ``handle`` then ``None``); one failure never ends the batch. ``item.position`` is
        the job's place in ``jobs`` (from 0) and ``item.job`` that element, so a failed
        submission still tells which input it was.

        ``on_submitted(position, handle)`` is called as soon as a job's id is known: when
        its submission returns (at once for a handle given in ``jobs``), long before it
        finishes; record ``handle.job_id`` there to find the job again after a crash.
        ``on_progress`` is called with a :class:`BatchProgress` after each job. An exception
        raised by either callback ends the iteration. Leaving the loop early stops waiting
        for the rest (their jobs go on running).
        """
        self._check_open()
        ledger = self._ledger
        return as_completed(
            jobs,
            on_progress=on_progress,
            on_submitted=on_submitted,
            points=(lambda: ledger.totals) if ledger is not None else None,
        )

    # --- submissions ---------------------------------------------------------------------

    async def _submit(
        self,
        route: Route,
        payload: dict[str, Any],
        make_result: Callable[[Task, LegnextClient], R],
        poll: PollPolicy | None = None,
        key: str | None = None,
    ) -> TaskHandle[R]:
        """Create a job and return its handle, never sending the same job twice.

        The job waits for a client job slot first (see :class:`JobSlots`). The POST is sent
        again only when it provably made no job: the connection failed before sending, or
        the service answered 429. On a 429 the client learns the account's limit of active
        jobs and waits for a slot, unless the 429 says it is about the request rate (then it
        backs off). Any other failure after sending raises
        :class:`SubmissionOutcomeUnknownError`.

        With a job store, the submission is recorded under ``key`` (one is made up if none
        is given) before it is sent, and a key already recorded sends nothing (see
        :meth:`_recorded`). With ``max_points``, the job's expected cost is reserved first
        (or :class:`SpendingLimitError` raised), before it waits for a slot.
        """
        self._check_open()
        keeper = self._keeper
        if keeper is None:
            if key is not None:
                check_key(key)
                raise ValidationError(
                    "key",
                    "idempotency keys need a job store: LegnextClient(store='jobs.db') or"
                    " store=MemoryJobStore()",
                )
            return await self._send_job(route, payload, make_result, poll)
        if key is None:
            # A key made up here is recorded nowhere yet (the claim still makes sure).
            key = f"auto-{uuid.uuid4().hex}"
            made_up = True
        else:
            check_key(key)
            made_up = False
        # One submission per key at a time in this client: a second call waits, then finds
        # the first one's record.
        while (other := keeper.submitting.get(key)) is not None:
            await asyncio.wait((other,))
        done = keeper.submitting[key] = asyncio.get_running_loop().create_future()
        try:
            await self._store_ready(keeper)
            if keeper.discarding(key):
                # The key's last submission was refused and its record is on its way out:
                # read the store once that is written, not the record it replaces.
                await keeper.flush()
            record = None if made_up else await keeper.store.get(key)
            if record is not None and record.state is not RecordState.FORGOTTEN:
                return self._recorded(record, route.path, payload, make_result, poll)
            return await self._send_job(route, payload, make_result, poll, keeper, key)
        finally:
            del keeper.submitting[key]
            done.set_result(None)

    async def _send_job(
        self,
        route: Route,
        payload: dict[str, Any],
        make_result: Callable[[Task, LegnextClient], R],
        poll: PollPolicy | None,
        keeper: JobKeeper | None = None,
        key: str | None = None,
    ) -> TaskHandle[R]:
        """Send a new job: its expected cost reserved first (with ``max_points``); once it
        has a slot, its key claimed in the store (durably, with a store); then the POST.
        With a store, the job id is durable before this returns; a failure after sending is
        recorded as an unknown outcome, and a submission that provably made no job gives
        its key (and its points) back."""
        endpoint = route.path
        ledger = self._ledger
        charge = await ledger.admit(route, payload) if ledger is not None else None
        submission = _Submission(self, endpoint, payload, keeper, key, charge)
        desk = self._desk
        token = None
        if desk is not None and payload.get("callback") is None:
            token, url = desk.issue()
            submission.token = token
            submission.sent_payload = {**payload, "callback": url}
        try:
            job = await self._engine.submit(
                submission.send, poll, expects_callback=token is not None
            )
        except _KeyTaken:
            if desk is not None and token is not None:
                desk.unsent(token, unknown=False)
            if ledger is not None:
                assert charge is not None
                ledger.failed(charge, unknown=False)
            taken = submission.taken
            assert taken is not None
            return self._recorded(taken, endpoint, payload, make_result, poll)
        except BaseException as exc:
            # An error of ours other than an unknown outcome says no job was made; a
            # cancellation (or anything else) while the POST may be on its way does not.
            unknown = isinstance(exc, SubmissionOutcomeUnknownError) or (
                submission.sent and not isinstance(exc, LegnextError)
            )
            if desk is not None and token is not None:
                desk.unsent(token, unknown=unknown)
            if ledger is not None:
                assert charge is not None
                ledger.failed(charge, unknown=unknown)
            claimed = submission.claimed
            if claimed is not None:
                assert keeper is not None
                self._submission_failed(keeper, claimed, exc, unknown=unknown)
                # Written before the caller hears of it: a store read in its handler shows
                # the outcome (unknown, or the key free again). A failed write was logged by
                # the keeper; the submission's own error matters more.
                with contextlib.suppress(LegnextError):
                    await asyncio.shield(keeper.flush())
            raise
        logger.debug("%s created job %s", endpoint, job.job_id)
        if desk is not None and token is not None:
            desk.sent(token, job)
        claimed = submission.claimed
        if claimed is not None:
            assert keeper is not None
            assert job.task is not None
            record = job.record = claimed.with_task(job.task, state_of(job.task))
            keeper.live[claimed.key] = job
            try:
                await keeper.durable(record)
            except StoreError:
                # The job exists and is paid for: its handle is worth more than the error,
                # which the keeper logged.
                logger.error("job store: job %s of key %r is not recorded", job.job_id, key)
        return TaskHandle(job, make_result, self)

    async def _store_ready(self, keeper: JobKeeper) -> None:
        """Open the store (once); with ``max_points``, count the points of its jobs first
        (once, and before any submission of this client is admitted)."""
        await keeper.ready()
        ledger = self._ledger
        if ledger is None:
            return
        counting = keeper.counting
        if counting is None or (counting.done() and counting.exception() is not None):
            counting = keeper.counting = asyncio.ensure_future(self._count_store(keeper, ledger))
        await asyncio.shield(counting)

    @staticmethod
    async def _count_store(keeper: JobKeeper, ledger: Ledger) -> None:
        """Carry the points of the store's jobs into ``ledger``; follow its unfinished ones."""
        store = keeper.store
        totals = await store.totals()
        unfinished = await store.records(RecordState.PENDING, RecordState.RUNNING)
        ledger.carry(totals.committed, totals.spent)
        for record in unfinished:
            if record.job_id is not None:
                ledger.follow(record.job_id, record.points_frozen or 0)

    @staticmethod
    def _submission_failed(
        keeper: JobKeeper, record: JobRecord, error: BaseException, *, unknown: bool
    ) -> None:
        """Record a claimed submission that ended without a job id."""
        if unknown:
            if isinstance(error, SubmissionOutcomeUnknownError):
                error.key = record.key
            keeper.write(attrs.evolve(record, state=RecordState.UNKNOWN, updated_at=time.time()))
            return
        # Refused (the service answered, and made no job) or never sent: the key is free.
        keeper.discard(record)

    def _recorded(
        self,
        record: JobRecord,
        endpoint: str,
        payload: Mapping[str, Any],
        make_result: Callable[[Task, LegnextClient], R],
        poll: PollPolicy | None,
    ) -> TaskHandle[R]:
        """The handle of a submission recorded under its key, which sends nothing.

        Raises:
            IdempotencyConflictError: the key was recorded for other arguments.
            SubmissionOutcomeUnknownError: the key's submission was sent and its answer
                lost (or is being sent by another client of the store right now).
        """
        key = record.key
        if not record.same_request(endpoint, payload):
            raise IdempotencyConflictError(key, record.endpoint)
        if record.state.outcome_unknown or record.job_id is None:
            raise SubmissionOutcomeUnknownError(
                endpoint=record.endpoint,
                payload=dict(record.request),
                sent_at=record.sent_at or record.created_at,
                reason=f"recorded as {record.state.value} under key {key!r}; settle it with"
                " client.forget(key) once you know whether the job exists",
                key=key,
            )
        return TaskHandle(self._restored(record, poll), make_result, self)

    def _restored(self, record: JobRecord, poll: PollPolicy | None) -> Job:
        """The job of ``record`` (which has a job id): the live one if this client has it."""
        assert record.job_id is not None
        keeper = self._keeper
        assert keeper is not None
        job = keeper.live.get(record.key)
        if job is None or job.job_id != record.job_id:
            desk = self._desk
            token = record.callback_token
            expects_callback = desk is not None and token is not None
            if record.state.is_finished:
                job = self._engine.restore(
                    record.job_id,
                    task=record.task,
                    sent_at=record.sent_at,
                    policy=poll,
                    expects_callback=expects_callback,
                )
            else:
                # Decoded when the job is first used or asked about: resume() of many
                # jobs decodes none.
                job = self._engine.restore(
                    record.job_id,
                    stored=lambda: record.task,
                    sent_at=record.sent_at,
                    policy=poll,
                    expects_callback=expects_callback,
                )
            job.record = record
            job.lost_said = record.state is RecordState.LOST
            keeper.live[record.key] = job
            if desk is not None and token is not None:
                desk.adopt(token, job)
        return job

    async def _post_submission(
        self, submission: _Submission, ticket: SlotTicket
    ) -> tuple[dict[str, Any], bytes, float]:
        """POST a job until the service answers it: the JSON object, the body, when it was sent.

        Sent again (by the retry engine, under :func:`may_resend_submission`) only when
        provably no job was made: after a 429 (waiting for a slot if the limit of active
        jobs was learned from it, else backing off, as after every request-rate 429) or a
        connection that failed before sending. Anything else after sending is an unknown
        outcome. Time spent waiting for a slot does not count against the retry policy:
        each turn with a slot is retried afresh.
        """
        submission.ticket = ticket
        while True:
            answer = await retry_call(
                self.retry,
                submission.try_once,
                retry_if=may_resend_submission,
                clock=self._engine.clock,
            )
            if answer is not None:
                return answer
            await self._slots.wait_granted(ticket)

    def _snapshot_changed(self, job: Job, previous: Task | None) -> None:
        """The engine's news of a job's new snapshot (see ``JobServices.snapshot_changed``):
        what the client keeps about jobs beyond the engine is updated here."""
        ledger = self._ledger
        if ledger is not None and job.task is not None:
            ledger.observe(job.job_id, job.task)
        record = job.record
        keeper = self._keeper
        if record is None or keeper is None:
            return
        task = job.task
        assert task is not None
        if previous is None and RawJSON.came_as(task.raw, record.task_body or b""):
            return  # a restored job's recorded snapshot: nothing new to write
        record = job.record = record.with_task(task, state_of(task))
        keeper.write(record)
        if task.is_finished and (job.policy or self.poll).learn:
            keeper.learned()

    def _job_lost(self, job: Job) -> None:
        """The engine's news that the service no longer knows ``job`` (a 404): its record
        says so, and ``resume()`` leaves it from now on."""
        record = job.record
        keeper = self._keeper
        if record is None or keeper is None or record.state is RecordState.LOST:
            return
        job.record = record = attrs.evolve(record, state=RecordState.LOST, updated_at=time.time())
        keeper.write(record)

    def _job_found(self, job: Job) -> None:
        """The engine's news that a job held lost was read (or delivered) again: its record
        takes the job's state again, and ``resume()`` picks it up."""
        record = job.record
        keeper = self._keeper
        task = job.task
        if record is None or keeper is None or task is None or record.state is not RecordState.LOST:
            return
        job.record = record = record.with_task(task, state_of(task))
        keeper.write(record)

    @staticmethod
    def _unknown(
        endpoint: str, payload: Mapping[str, Any], sent_at: float, exc: Exception
    ) -> SubmissionOutcomeUnknownError:
        return SubmissionOutcomeUnknownError(
            endpoint=endpoint, payload=payload, sent_at=sent_at, reason=str(exc)
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a burst of objects that are not garbage is
    made (a record, a job and a handle per stored job, the records on the store's thread):
    it would otherwise walk the growing heap again and again, which doubled the time of
    ``resume()`` for 100,000 jobs. Code running meanwhile (about a second) just makes no
    cyclic garbage collected until it ends."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Submission:
    """One job-creating request on its way: what it sends, and what became of it.

    One object rather than closures: a batch of thousands waits with one of these each,
    where closures over the same state cost a score of cells and functions apiece, every
    one of them for the garbage collector to walk.
    """

    __slots__ = (
        "charge",
        "claimed",
        "client",
        "endpoint",
        "keeper",
        "key",
        "payload",
        "sent",
        "sent_payload",
        "taken",
        "ticket",
        "token",
    )

    def __init__(
        self,
        client: LegnextClient,
        endpoint: str,
        payload: dict[str, Any],
        keeper: JobKeeper | None,
        key: str | None,
        charge: Charge | None,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        #: The arguments' body (what a key is checked against) and the body sent (with the
        #: webhook's callback URL, if the client has a receiver).
        self.payload = payload
        self.sent_payload = payload
        self.keeper = keeper
        self.key = key
        self.charge = charge
        self.token: str | None = None
        #: Whether the POST may have reached the service and made a job, at any instant (one
        #: refused with a 429, or never connected, did not).
        self.sent = False
        #: The store's record of this submission, once claimed; the record that held the key
        #: if another client of the store claimed it first.
        self.claimed: JobRecord | None = None
        self.taken: JobRecord | None = None
        self.ticket: SlotTicket | None = None

    async def send(self, ticket: SlotTicket) -> Task:
        """What the engine calls with a slot: POST the job; the task the answer made."""
        client, endpoint = self.client, self.endpoint
        data, body, sent_at = await client._post_submission(self, ticket)
        task = Task.from_json(data, body=body)
        if not is_job_id(task.job_id):
            # The job may exist, but its id is unknown: never guessed, never sent again.
            what = "no job_id" if not task.job_id else "a job_id that is not a job id"
            unreadable = MalformedResponseError(
                f"POST /v1/{endpoint}: the answer carries {what}",
                method="POST",
                path=f"/v1/{endpoint}",
                status=200,
            )
            raise client._unknown(endpoint, self.payload, sent_at, unreadable) from unreadable
        ledger = client._ledger
        if ledger is not None:
            assert self.charge is not None
            ledger.answered(self.charge, task)
        return task

    async def try_once(self) -> tuple[dict[str, Any], bytes, float] | None:
        """One try of the POST; ``None`` when the slot was taken back (the ticket is in line
        again). The key is claimed just before the first try is sent."""
        client, ticket = self.client, self.ticket
        assert ticket is not None
        slots = client._slots
        gate = client._submit_gate
        if gate is None:
            gate = client._submit_gate = asyncio.Semaphore(SUBMISSIONS_IN_FLIGHT)
        endpoint, payload = self.endpoint, self.sent_payload
        async with gate:
            # The slot may have been taken back while waiting here (see JobSlots).
            if not await slots.send_turn(ticket):
                return None
            if self.keeper is not None and self.claimed is None:
                # As late as can be: a kill before the claim leaves no record, and one after
                # it leaves a request that was about to go.
                await self.claim()
            sent_at = time.time()
            try:
                data, _, body = await client._request("POST", f"/v1/{endpoint}", payload, self)
            except RateLimitError as exc:
                self.sent = False
                # Learns a limit of active jobs (and requeues) unless the 429 is about the
                # request rate; then this submission keeps its slot and backs off.
                if await slots.refuse(ticket, exc.kind):
                    return None
                slots.unsend(ticket)
                raise
            except APIConnectionError as exc:
                if exc.sent:
                    raise client._unknown(endpoint, payload, sent_at, exc) from exc
                self.sent = False
                slots.unsend(ticket)
                raise
            except (APITimeoutError, MalformedResponseError, ServerError) as exc:
                raise client._unknown(endpoint, payload, sent_at, exc) from exc
        return data, body, sent_at

    async def claim(self) -> None:
        """Claim the key in the store, durably (or raise ``_KeyTaken``)."""
        keeper, key = self.keeper, self.key
        assert keeper is not None
        assert key is not None
        now = time.time()
        mine = JobRecord(
            key=key,
            attempt=uuid.uuid4().hex,
            endpoint=self.endpoint,
            # Encoded once here: every write of the record reuses the text.
            request=CanonicalRequest.of(self.sent_payload),
            state=RecordState.SUBMITTING,
            created_at=now,
            updated_at=now,
            sent_at=now,
            callback_token=self.token,
        )
        # Shielded: once on the store's thread the claim happens, cancelled or not.
        claiming = keeper.claim(mine)
        try:
            held = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Cancelled (a Ctrl-C) before the POST was sent: the key goes back once the claim
            # is written, or the record would read as an unknown outcome.
            keeper.abandon(mine, claiming)
            raise
        if held.attempt != mine.attempt:
            self.taken = held  # claimed meanwhile by another client of the store
            raise _KeyTaken
        self.claimed = held


class _KeyTaken(Exception):
    """Another client of the store claimed the key first (the claim's record says which)."""


class _EngineServices:
    """What the job engine may use of a client (the engine's ``JobServices``): the client's
    own parts, handed over once, and its policies, read each time (they may be replaced)."""

    __slots__ = ("_client", "check_open", "durations", "pace", "read_status", "slots")

    def __init__(self, client: LegnextClient) -> None:
        self._client = client
        self.slots = client._slots
        self.pace = client._budget.pace
        self.durations = client._durations
        self.check_open = client._check_open
        self.read_status = client._read_task_once

    @property
    def poll(self) -> PollPolicy:
        return self._client.poll

    def snapshot_changed(self, job: Job, previous: Task | None) -> None:
        self._client._snapshot_changed(job, previous)

    def job_lost(self, job: Job) -> None:
        self._client._job_lost(job)

    def job_found(self, job: Job) -> None:
        self._client._job_found(job)

    @property
    def retry(self) -> RetryPolicy:
        return self._client.retry
