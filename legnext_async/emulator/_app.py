"""The emulator: an ``aiohttp.web`` application plus the controls tests need."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.parser
import email.policy
import json
import random
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import aiohttp
import attrs
from aiohttp import web

from ._callbacks import CallbackRecord, callback_allowed
from ._catalog import FAMILY_BY_TASK_TYPE, OPERATIONS, Operation
from ._clock import VirtualClock, format_nanoseconds
from ._errors import AUTH_FAILED, NOT_WHITELISTED, ErrorShape, error_body
from ._faults import Fault, FaultKind, FaultPlan
from ._jobs import COMPLETED, Job, JobError
from ._media import MP4_STUB, png_for
from ._state import ALERT_THRESHOLD_USD, Account, FailurePlan, OverLimit, State, price
from ._validation import InvalidRequest, Submission, validate

if TYPE_CHECKING:
    from types import TracebackType

DAY: Final = 86_400.0
DEFAULT_RETENTION: Final = 3 * DAY
DEFAULT_FILE_RETENTION: Final = 30 * DAY
DEFAULT_INITIAL_CREDITS: Final = 100_000_000
DEFAULT_FAILURE: Final = JobError(
    code=10001, message="Task failed", raw_message="midjourney job failed (emulated)"
)
_CALLBACK_BATCH: Final = 64
#: Bigger bodies answer 413 (the reference lists 413 "payload too large").
MAX_BODY_BYTES: Final = 32 * 1024 * 1024
#: How much of each request body a request-log record keeps, by default: the largest valid
#: request (an 8,192-character prompt of 4-byte characters) fits whole.
LOGGED_BODY_BYTES: Final = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BODY_KEY: Final = web.RequestKey("legnext_emulator_body", object)
#: What the log keeps of the raw body: its first bytes and its full size.
_RAW_KEY: Final = web.RequestKey("legnext_emulator_raw", tuple[bytes, int])
_JOB_KEY: Final = web.RequestKey("legnext_emulator_job", str)


@attrs.frozen
class RequestRecord:
    """One request the emulator received; the API key is never stored.

    ``status`` is ``None`` when the connection was dropped or cut by a fault; ``job_id``
    is set when the request created a job (even if its answer was then lost).

    A record holds a bounded summary of the body, whatever was sent: ``body_prefix`` is
    its first bytes (at most the emulator's ``request_log_body_bytes``), ``body_size`` its
    size in bytes, and ``body_truncated`` says the prefix is not the whole body. ``body``
    is the decoded JSON (or form fields) of a body the emulator read and decoded, only if
    the whole body fits in the prefix; else ``None``. A body the emulator did not read
    (a GET, a request refused before reading) has the size its ``Content-Length`` declared
    (0 if none) and an empty prefix; a body refused as too large without a
    ``Content-Length`` has the size read when it was refused.
    """

    method: str
    path: str
    status: int | None
    body: object
    job_id: str | None
    fault: FaultKind | None
    at: float
    body_size: int = 0
    body_prefix: bytes = b""
    body_truncated: bool = False


@attrs.frozen
class JobInfo:
    """A snapshot of one job, as the emulator sees it at the time of the call."""

    job_id: str
    task_type: str
    status: str
    account_id: int
    parent_id: str | None
    callback: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    frozen: int
    consume: int
    error_code: int
    #: Made by ``seed_job`` rather than by a request.
    seeded: bool


@attrs.frozen
class Balance:
    """An account's wallet: available amounts exclude what unfinished jobs froze."""

    credits: int
    points: int
    frozen: int
    used: int


class _Reject(Exception):
    """Answer with an error body; raised anywhere below a handler."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Emulator:
    """A local Legnext API server for tests, on a virtual clock.

    Use as ``async with Emulator(...) as emu`` (binds ``host``:``port``, port 0 picks a
    free one) and point a client at ``emu.base_url``. ``emu.app`` is the plain
    ``aiohttp.web.Application`` for running under your own runner instead.

    All durations and ages are *virtual* seconds unless documented as real: the clock
    runs ``1 / time_scale`` times faster than real time and ``advance()`` jumps it, and
    every timestamp on the wire is virtual.

    Keyword options:

    - ``api_key``: the only accepted key (plus ``extra_api_keys``); ``None`` accepts any
      non-empty key. Each key is its own account (balance, concurrency, jobs).
    - ``allow_anonymous_job_get``: serve ``GET /v1/job/{id}`` without a key (HERMES).
    - ``seed``: seeds job ids, durations, output seeds and ``failure_rate`` draws, and (as
      a separate stream, so arming faults changes none of those) the draws of faults
      with a ``probability``.
    - ``durations``: per ``task_type``, (min, max) processing seconds, drawn uniformly;
      merged over the reference defaults. ``--turbo`` halves the draw.
    - ``pending_seconds`` / ``staged_seconds``: time in ``pending`` then ``staged``
      before ``processing``; ``staged_seconds=0`` skips ``staged`` (never seen live).
    - ``concurrency_limit`` unfinished jobs per account; past it ``over_limit="reject"``
      answers 429 and ``"queue"`` creates the job but keeps it ``pending`` (FIFO) until
      a slot frees.
    - ``initial_credits`` / ``initial_points``: each new account's wallet. Costs are
      frozen at submit (points first, then credits) and disappear from the available
      balance at once; success consumes them, failure gives them back.
    - ``whitelisted`` (every key) or ``whitelisted_keys``: may use ``/v1/edit`` and
      ``/v1/upload-paint``; others get the live 403.
    - ``retention``: jobs older than this (since ``created_at``) are 404 and cannot be
      followed up. ``file_retention``: how long output URLs serve files.
    - ``error_shape``: ``"envelope"`` (live task-shaped body), ``"flat"``, ``"nested"``.
    - ``failure_rate``: probability that a job fails (seeded RNG); see ``fail_next``.
    - Callbacks: ``callbacks_enabled``; ``callback_body`` ``"wrapped"`` posts
      ``{"timestamp", "data"}``, ``"bare"`` the task; ``callback_delay`` virtual seconds
      after the job ends; ``callback_duplicates`` identical deliveries;
      ``callback_timeout`` real seconds per delivery; only loopback hosts are contacted
      unless listed in ``callback_allowed_hosts`` (others are recorded as refused).
    - ``request_log_limit``: how many ``requests`` records to keep (oldest dropped).
    - ``request_log_body_bytes``: how much of each request body a record keeps (see
      :class:`RequestRecord`); bodies themselves are refused with 413 past 32 MiB, as
      soon as they are known to be bigger (at once if ``Content-Length`` says so).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        extra_api_keys: Collection[str] = (),
        allow_anonymous_job_get: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        seed: int | None = None,
        durations: Mapping[str, tuple[float, float]] | None = None,
        pending_seconds: float = 1.0,
        staged_seconds: float = 0.0,
        concurrency_limit: int = 6,
        over_limit: OverLimit = "reject",
        initial_credits: int = DEFAULT_INITIAL_CREDITS,
        initial_points: int = 0,
        whitelisted: bool = False,
        whitelisted_keys: Collection[str] = (),
        retention: float = DEFAULT_RETENTION,
        file_retention: float = DEFAULT_FILE_RETENTION,
        error_shape: ErrorShape = "envelope",
        failure_rate: float = 0.0,
        callbacks_enabled: bool = True,
        callback_body: Literal["wrapped", "bare"] = "wrapped",
        callback_delay: float = 0.0,
        callback_duplicates: int = 1,
        callback_timeout: float = 10.0,
        callback_allowed_hosts: Collection[str] = (),
        request_log_limit: int | None = 100_000,
        request_log_body_bytes: int = LOGGED_BODY_BYTES,
    ) -> None:
        if api_key is not None and not api_key:
            raise ValueError("api_key must be non-empty (or None to accept any key)")
        if concurrency_limit < 1:
            raise ValueError("concurrency_limit must be at least 1")
        if over_limit not in ("reject", "queue"):
            raise ValueError("over_limit must be 'reject' or 'queue'")
        if error_shape not in ("envelope", "flat", "nested"):
            raise ValueError("error_shape must be 'envelope', 'flat' or 'nested'")
        if callback_body not in ("wrapped", "bare"):
            raise ValueError("callback_body must be 'wrapped' or 'bare'")
        if callback_duplicates < 1:
            raise ValueError("callback_duplicates must be at least 1")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if request_log_body_bytes < 0:
            raise ValueError("request_log_body_bytes must be at least 0")
        for task_type, (low, high) in (durations or {}).items():
            if not 0 <= low <= high:
                raise ValueError(
                    f"durations[{task_type!r}] must be (min, max) with 0 <= min <= max"
                )
        self._keys = None if api_key is None else frozenset({api_key, *extra_api_keys})
        self._default_key = api_key
        self._anonymous_get = allow_anonymous_job_get
        self._host = host
        self._port = port
        self._clock = VirtualClock(time_scale)
        self._whitelist_all = whitelisted
        self._whitelisted_keys = frozenset(whitelisted_keys)
        self._retention = retention
        self._file_retention = file_retention
        self._error_shape: ErrorShape = error_shape
        self._callback_body = callback_body
        self._callback_timeout = aiohttp.ClientTimeout(total=callback_timeout)
        self._callback_hosts = frozenset(h.lower().rstrip(".") for h in callback_allowed_hosts)
        self._state = State(
            rng=random.Random(seed),
            durations=dict(durations or {}),
            pending_seconds=pending_seconds,
            staged_seconds=staged_seconds,
            concurrency_limit=concurrency_limit,
            over_limit=over_limit,
            initial_credits=initial_credits,
            initial_points=initial_points,
            failure_rate=failure_rate,
            default_failure=DEFAULT_FAILURE,
            callback_delay=callback_delay,
            callback_duplicates=callback_duplicates,
            callbacks_enabled=callbacks_enabled,
        )
        # Its own stream: arming a fault must not change job ids or run times.
        fault_rng = random.Random(None if seed is None else f"faults/{seed}")
        self._faults = FaultPlan(fault_rng)
        self._requests: deque[RequestRecord] = deque(maxlen=request_log_limit)
        self._log_body_bytes = request_log_body_bytes
        self._callback_log: list[CallbackRecord] = []
        self._runner: web.AppRunner | None = None
        self._base_origin: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wake: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None
        self._app = self._make_app()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # A started emulator left open holds a socket and a session: say so.
        if getattr(self, "_runner", None) is not None:
            _warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)

    def __repr__(self) -> str:
        where = self._base_origin or "not started"
        return f"<Emulator {where} jobs={len(self._state.jobs)}>"

    # -- lifecycle -------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The ``aiohttp.web.Application``; usable without ``start()``."""
        return self._app

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._base_origin is None:
            raise RuntimeError("the emulator is not started")
        return self._base_origin

    @property
    def base_url(self) -> str:
        """The API base a client should use, ``http://host:port/api``."""
        return f"{self.url}/api"

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        return int(self.url.rsplit(":", 1)[1])

    async def start(self) -> None:
        """Bind and serve; starting twice raises ``RuntimeError``."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already started")
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        self._runner = runner
        self._base_origin = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving, cancel callback delivery and close the callback session."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- controls for tests ----------------------------------------------------------

    def now(self) -> float:
        """The virtual time, Unix seconds."""
        return self._clock.now()

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward; jobs, retention and callbacks follow."""
        self._clock.advance(seconds)
        self._poke()

    def fail_next(
        self,
        n: int = 1,
        *,
        code: int = DEFAULT_FAILURE.code,
        message: str = DEFAULT_FAILURE.message,
        raw_message: str = DEFAULT_FAILURE.raw_message,
        task_type: str | None = None,
    ) -> None:
        """Make the next ``n`` created jobs (of ``task_type``, if given) end ``failed``.

        The job runs its normal course, then fails with ``error`` = ``code``,
        ``message``, ``raw_message``; its frozen cost is released.
        """
        if code == 0:
            raise ValueError("a failed task carries a non-zero error code")
        self._state.plan_failures(n, FailurePlan(JobError(code, message, raw_message), task_type))

    def add_fault(self, fault: Fault) -> None:
        """Arm an HTTP fault; see :class:`Fault`."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Disarm every HTTP fault."""
        self._faults.clear()

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The faults that may still fire."""
        return self._faults.armed

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received (up to ``request_log_limit``), oldest first."""
        return list(self._requests)

    @property
    def callback_log(self) -> list[CallbackRecord]:
        """Every callback delivery, failure and refusal, in order."""
        return list(self._callback_log)

    @property
    def jobs(self) -> list[JobInfo]:
        """Snapshots of every job ever created or seeded, in creation order."""
        now = self._clock.now()
        self._settle_all(now)
        return [self._info(job, now) for job in self._state.jobs.values()]

    def job(self, job_id: str) -> JobInfo:
        """A snapshot of one job; ``KeyError`` if unknown."""
        now = self._clock.now()
        job = self._state.jobs[job_id]
        self._state.settle(job.account, now)
        return self._info(job, now)

    def account_id(self, api_key: str) -> int:
        """The ``account_id`` of ``api_key``'s account (opening it if new)."""
        return self._account(api_key).account_id

    def balance(self, api_key: str) -> Balance:
        """``api_key``'s wallet now."""
        account = self._account(api_key)
        self._state.settle(account, self._clock.now())
        return Balance(account.credits, account.points, account.frozen, account.used)

    def set_balance(
        self, api_key: str, *, credits: int | None = None, points: int | None = None
    ) -> None:
        """Overwrite the available credits and/or points of ``api_key``'s account."""
        account = self._account(api_key)
        if credits is not None:
            account.credits = credits
        if points is not None:
            account.points = points
        account.updated_at = self._clock.now()

    def seed_job(
        self,
        task_type: str = "diffusion",
        *,
        api_key: str | None = None,
        draft: bool = False,
        age_seconds: float = 0.0,
        failed: bool = False,
        video_type: int = 0,
        video_count: int = 4,
        prompt: str = "an emulated seed job --v 7",
    ) -> str:
        """Record a job that already finished, ``age_seconds`` ago, and return its id.

        The job is created, started and ended at ``now - age_seconds`` (no billing, no
        callback). ``api_key`` defaults to the emulator's ``api_key``. Use it as the
        parent of follow-ups (``draft=True`` lists ``enhance``) or for retention tests.
        """
        key = api_key if api_key is not None else self._default_key
        if key is None:
            raise ValueError("seed_job needs api_key when the emulator accepts any key")
        if self._keys is not None and key not in self._keys:
            raise ValueError("seed_job's api_key is not one the emulator accepts")
        family = FAMILY_BY_TASK_TYPE.get(task_type)
        if family is None:
            raise ValueError(f"unknown task_type {task_type!r}")
        job = self._state.seed(
            self._account(key),
            task_type=task_type,
            family=family,
            origin=self._base_origin or "http://127.0.0.1",
            created_at=self._clock.now() - age_seconds,
            draft=draft,
            video_type=video_type,
            video_count=video_count,
            prompt=f"{prompt} --draft" if draft and "--draft" not in prompt else prompt,
            failure=DEFAULT_FAILURE if failed else None,
        )
        return job.job_id

    async def flush_callbacks(self) -> None:
        """Deliver every callback due by now, and return when they are done."""
        if self._session is None:
            raise RuntimeError("callbacks need a started emulator")
        await self._deliver(self._state.due_callbacks(self._clock.now()))

    # -- internals -------------------------------------------------------------------

    def _account(self, api_key: str) -> Account:
        whitelisted = self._whitelist_all or api_key in self._whitelisted_keys
        return self._state.account(api_key, self._clock.now(), whitelisted=whitelisted)

    def _settle_all(self, now: float) -> None:
        for account in self._state.accounts.values():
            self._state.settle(account, now)

    @staticmethod
    def _info(job: Job, now: float) -> JobInfo:
        status = job.status_at(now)
        return JobInfo(
            job_id=job.job_id,
            task_type=job.task_type,
            status=status,
            account_id=job.account.account_id,
            parent_id=job.parent_id,
            callback=job.callback,
            created_at=job.created_at,
            started_at=job.started_at,
            ended_at=job.ended_at,
            frozen=job.frozen,
            consume=job.frozen if status == COMPLETED else 0,
            error_code=job.failure.code if job.failure and status == "failed" else 0,
            seeded=job.seeded,
        )

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _make_app(self) -> web.Application:
        # Request bodies are read by _read_raw, which enforces MAX_BODY_BYTES itself; the
        # same bound here covers any of aiohttp's own readers (its default, 1 MiB, would
        # refuse a blend of five base64 images).
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES)
        for route in OPERATIONS:
            app.router.add_post(f"/api/v1/{route}", self._create)
        app.router.add_get("/api/v1/job/{job_id}", self._get_job)
        app.router.add_get("/api/account/balance", self._get_balance)
        app.router.add_get("/api/account/info", self._get_info)
        app.router.add_get("/files/{name}", self._get_file)
        app.cleanup_ctx.append(self._lifespan)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        # Everything loop-bound is created here, inside the running loop.
        self._session = aiohttp.ClientSession(trust_env=False)
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        worker = asyncio.create_task(self._callback_worker(), name="legnext-emulator-callbacks")
        try:
            yield
        finally:
            worker.cancel()
            await asyncio.wait([worker])
            session, self._session = self._session, None
            await session.close()
            self._wake = self._closing = None

    async def _on_shutdown(self, app: web.Application) -> None:
        # Wakes handlers sleeping in a latency fault, so shutdown is not held up.
        if self._closing is not None:
            self._closing.set()

    # -- HTTP plumbing ---------------------------------------------------------------

    def _error(self, status: int, message: str) -> web.Response:
        return web.Response(
            status=status,
            body=error_body(self._error_shape, status, message),
            content_type="application/json",
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self._faults.pick(request.method, request.path)
        # These kinds cut the connection, so the client never sees a status.
        cut = fault is not None and fault.kind in ("disconnect", "truncate")
        status: int | None = None
        try:
            response = await self._serve(request, handler, fault)
            status = None if cut else response.status
            return response
        finally:
            # Only a bounded summary of the body is kept, however big it was.
            prefix, size = request.get(_RAW_KEY, (b"", request.content_length or 0))
            # aiohttp may hold the request object until the connection's next request.
            body = request.pop(_BODY_KEY, None)
            self._requests.append(
                RequestRecord(
                    method=request.method,
                    path=request.path,
                    status=status,
                    body=body if size <= self._log_body_bytes else None,
                    job_id=request.get(_JOB_KEY),
                    fault=fault.kind if fault is not None else None,
                    at=self._clock.now(),
                    body_size=size,
                    body_prefix=prefix,
                    body_truncated=size > len(prefix),
                )
            )

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Reject as exc:
            return self._error(exc.status, exc.message)
        except web.HTTPException as exc:  # router 404/405: keep the configured shape
            return self._error(exc.status, exc.reason)

    async def _pause(self, seconds: float) -> None:
        closing = self._closing
        if closing is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), seconds)

    async def _serve(
        self, request: web.Request, handler: Handler, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is None:
            return await self._handle(request, handler)
        if fault.kind == "latency":
            if fault.commit:
                response = await self._handle(request, handler)
                await self._pause(fault.delay)
                return response
            await self._pause(fault.delay)
            return await self._handle(request, handler)
        if fault.commit:
            real = await self._handle(request, handler)
        else:
            real = None
            await self._note_body(request)
        if fault.kind == "status":
            return self._fault_status(fault)
        if fault.kind == "garbage":
            body = fault.body or b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return web.Response(
                status=fault.status or 200,
                body=body.encode() if isinstance(body, str) else body,
                content_type="text/html",
            )
        transport = request.transport
        if fault.kind == "truncate" and transport is not None:
            if isinstance(real, web.Response) and isinstance(real.body, bytes):
                status, full = real.status, real.body
            else:
                status = fault.status or 200
                raw = fault.body or b'{"job_id":"","model":"midjourney","status":"pending"}'
                full = raw.encode() if isinstance(raw, str) else raw
            reason = HTTPStatus(status).phrase
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(full)}\r\nConnection: close\r\n\r\n"
            )
            transport.write(head.encode() + full[: len(full) // 2])
        if transport is not None:
            transport.close()
        # The connection is gone; aiohttp discards whatever is returned now.
        return web.Response(status=499)

    async def _note_body(self, request: web.Request) -> None:
        """Read a body no handler will read, so that the log shows what was sent."""
        if not request.body_exists:
            return
        try:
            raw = await self._read_raw(request)
        except _Reject:  # too large: the fault answers anyway, and the log has the size
            return
        if len(raw) <= self._log_body_bytes:
            with contextlib.suppress(ValueError):
                request[_BODY_KEY] = json.loads(raw)

    def _fault_status(self, fault: Fault) -> web.Response:
        status = fault.status or 503
        if fault.body is None:
            response = self._error(status, fault.message or HTTPStatus(status).phrase)
        else:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            try:
                json.loads(body)
                kind = "application/json"
            except ValueError:
                kind = "text/plain"
            response = web.Response(status=status, body=body, content_type=kind)
        retry = fault.retry_after
        if isinstance(retry, datetime):
            response.headers["Retry-After"] = format_datetime(retry, usegmt=True)
        elif isinstance(retry, str):
            response.headers["Retry-After"] = retry
        elif retry is not None:
            response.headers["Retry-After"] = str(round(retry))
        return response

    def _authenticate(self, request: web.Request, now: float) -> Account | None:
        key = request.headers.get("x-api-key")  # CIMultiDict: any header-name case
        if not key or (self._keys is not None and key not in self._keys):
            return None
        whitelisted = self._whitelist_all or key in self._whitelisted_keys
        return self._state.account(key, now, whitelisted=whitelisted)

    def _expired(self, job: Job, now: float) -> bool:
        return now - job.created_at > self._retention

    @staticmethod
    def _json(body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    # -- handlers --------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        op = OPERATIONS[request.path.rsplit("/", 1)[1]]
        now = self._clock.now()
        account = self._authenticate(request, now)
        if account is None:
            raise _Reject(401, AUTH_FAILED)
        try:
            body = await self._read_body(request, op)
        except _Reject:
            if op.whitelisted and not account.whitelisted:
                raise _Reject(403, NOT_WHITELISTED) from None
            raise
        request[_BODY_KEY] = body
        if op.whitelisted and not account.whitelisted:
            raise _Reject(403, NOT_WHITELISTED)
        try:
            sub = validate(op, body)
        except InvalidRequest as exc:
            raise _Reject(400, f"Invalid request parameters: {exc}") from None
        now = self._clock.now()
        parent = self._parent(account, sub, now) if sub.parent_id is not None else None
        state = self._state
        state.settle(account, now)
        cost = price(sub, parent)
        if account.available < cost:
            raise _Reject(402, f"Insufficient balance: this task needs {cost} points")
        if state.over_limit == "reject" and state.busy(account):
            limit = state.concurrency_limit
            raise _Reject(429, f"Concurrent task limit reached ({limit}); try again later")
        job = state.create(
            account, sub=sub, parent=parent, cost=cost, origin=self._origin(request), now=now
        )
        request[_JOB_KEY] = job.job_id
        if job.callback is not None:
            self._poke()  # the callback worker may need to wake earlier now
        return self._json(job.body_at(now))

    async def _read_body(self, request: web.Request, op: Operation) -> object:
        raw = await self._read_raw(request)
        if op.route == "upload-paint" and request.content_type == "multipart/form-data":
            # OAC documents upload-paint as multipart with JSON-encoded form fields.
            return _form_fields(request.headers.get("Content-Type", ""), raw)
        try:
            return json.loads(raw)
        except ValueError:
            raise _Reject(400, "Invalid request parameters: body is not valid JSON") from None

    async def _read_raw(self, request: web.Request) -> bytearray:
        """The whole body, up to ``MAX_BODY_BYTES``; what the log keeps of it is noted.

        A bigger body is refused (413) as soon as it is known to be bigger: at once when its
        ``Content-Length`` says so, without reading it, else when the bytes read pass the
        limit. aiohttp then discards the rest as it arrives.
        """
        declared = request.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            request[_RAW_KEY] = (b"", declared)
            raise _Reject(413, f"Payload too large: the limit is {MAX_BODY_BYTES} bytes")
        keep = self._log_body_bytes
        buffer = bytearray()
        try:
            while chunk := await request.content.readany():
                buffer += chunk
                if len(buffer) > MAX_BODY_BYTES:
                    raise _Reject(413, f"Payload too large: the limit is {MAX_BODY_BYTES} bytes")
        finally:
            request[_RAW_KEY] = (bytes(memoryview(buffer)[:keep]), len(buffer))
        return buffer

    def _origin(self, request: web.Request) -> str:
        return self._base_origin or f"{request.scheme}://{request.host}"

    def _parent(self, account: Account, sub: Submission, now: float) -> Job:
        op = sub.operation
        parent_id = sub.parent_id
        parent = account.jobs.get(parent_id or "")
        if parent is None or self._expired(parent, now):
            raise _Reject(404, f"job {parent_id} not found")
        if parent.started_at is None:
            self._state.settle(account, now)
        status = parent.status_at(now)
        if status != COMPLETED:
            raise _Reject(400, f"job {parent_id} is {status}, not completed")
        actions = parent.available_actions()
        index = sub.index
        if op.route == "reroll":
            if actions.get("reroll") is not True:
                raise _Reject(400, f"job {parent_id} cannot be rerolled")
            return parent
        if op.route == "video-diffusion":
            if parent.family not in ("grid", "single"):
                raise _Reject(400, f"jobId {parent_id} is not an image job")
            images = 4 if parent.family == "grid" else 1
            if index is None or index >= images:
                raise _Reject(400, f"imageNo {index} is not an image of job {parent_id}")
            return parent
        if op.family == "video" and parent.family != "video":
            raise _Reject(400, f"jobId {parent_id} is not a video job")
        if op.route == "enhance" and not parent.draft:
            raise _Reject(400, f"job {parent_id} was not created in draft mode")
        key = op.parent_action or ""
        allowed = actions.get(key)
        field = "videoNo" if op.family == "video" else "imageNo"
        if not isinstance(allowed, list) or index not in allowed:
            raise _Reject(
                400, f"{field} {index} is not in available_actions.{key} of job {parent_id}"
            )
        return parent

    async def _get_job(self, request: web.Request) -> web.StreamResponse:
        now = self._clock.now()
        account = self._authenticate(request, now)
        job_id = request.match_info["job_id"]
        if account is not None:
            job = account.jobs.get(job_id)
        elif self._anonymous_get and not request.headers.get("x-api-key"):
            job = self._state.jobs.get(job_id)
        else:
            raise _Reject(401, AUTH_FAILED)
        if job is None or self._expired(job, now):
            raise _Reject(404, f"job {job_id} not found")
        if job.started_at is None:  # queued: a slot may have freed since
            self._state.settle(job.account, now)
        return self._json(job.body_at(now))

    async def _get_balance(self, request: web.Request) -> web.StreamResponse:
        now = self._clock.now()
        account = self._authenticate(request, now)
        if account is None:
            raise _Reject(401, AUTH_FAILED)
        self._state.settle(account, now)
        usd = round(account.available / 1000, 3)
        data = {
            "account_id": account.account_id,
            "balance_usd": usd,
            "available_credits": account.credits,
            "available_points": account.points,
            "alert_threshold": ALERT_THRESHOLD_USD,
            "low_balance_alert": usd < ALERT_THRESHOLD_USD,
            "updated_at": format_nanoseconds(account.updated_at),
        }
        return web.json_response({"code": 200, "data": data, "message": "success"})

    async def _get_info(self, request: web.Request) -> web.StreamResponse:
        now = self._clock.now()
        account = self._authenticate(request, now)
        if account is None:
            raise _Reject(401, AUTH_FAILED)
        self._state.settle(account, now)
        # Field names from the vendor web app's client (reference §3.23); values emulated.
        data = {
            "id": account.account_id,
            "name": f"emulated account {account.account_id}",
            "plan": "developer",
            "type": "user",
            "is_enable": True,
            "max_concurrent_task_count": self._state.concurrency_limit,
            "wallet": {
                "point_remain": account.points,
                "point_frozen": account.frozen,
                "point_used": account.used,
                "credit_packs": [],
            },
            "credit_pack_info": {
                "available_credits": account.credits,
                "frozen_credits": 0,
                "used_credits": 0,
                "expired_credits": 0,
            },
        }
        return web.json_response({"code": 200, "data": data, "message": "success"})

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        now = self._clock.now()
        job = self._state.jobs.get(name.rsplit("_", 1)[0])
        if (
            job is None
            or job.status_at(now) != COMPLETED
            or now - job.created_at > self._file_retention
            or name not in job.file_names()
        ):
            raise web.HTTPNotFound()
        if name.endswith(".mp4"):
            return web.Response(body=MP4_STUB, content_type="video/mp4")
        return web.Response(body=png_for(name), content_type="image/png")

    # -- callbacks -------------------------------------------------------------------

    async def _callback_worker(self) -> None:
        wake = self._wake
        assert wake is not None
        clock = self._clock
        while True:
            wake.clear()
            await self._deliver(self._state.due_callbacks(clock.now()))
            upcoming = self._state.next_event()
            timeout = None if upcoming is None else clock.real_seconds(upcoming - clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    async def _deliver(self, due: list[tuple[Job, int]]) -> None:
        for start in range(0, len(due), _CALLBACK_BATCH):
            batch = due[start : start + _CALLBACK_BATCH]
            await asyncio.gather(*(self._deliver_one(job, n) for job, n in batch))

    async def _deliver_one(self, job: Job, delivery: int) -> None:
        url = job.callback
        assert url is not None
        now = self._clock.now()
        task = job.to_wire(job.status_at(now))
        body: object = task
        if self._callback_body == "wrapped":
            body = {"timestamp": int(now), "data": task}

        def record(outcome: Any, status: int | None = None, error: str | None = None) -> None:
            self._callback_log.append(
                CallbackRecord(job.job_id, url, outcome, delivery, status, error, body)
            )

        if not callback_allowed(url, self._callback_hosts):
            record("refused", error="host is not loopback and not in callback_allowed_hosts")
            return
        session = self._session
        if session is None:
            return
        try:
            async with session.post(
                url, json=body, allow_redirects=False, timeout=self._callback_timeout
            ) as response:
                await response.read()
        except Exception as exc:  # any delivery error is the receiver's story, not ours
            record("failed", error=f"{type(exc).__name__}: {exc}")
            return
        ok = 200 <= response.status < 300
        record("delivered" if ok else "failed", response.status)


def _form_fields(content_type: str, raw: bytes | bytearray) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body; JSON-looking values are decoded."""
    parser = email.parser.BytesFeedParser(policy=email.policy.HTTP)
    parser.feed(f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace"))
    parser.feed(raw)
    form = parser.close()
    if not form.is_multipart():
        raise _Reject(400, "Invalid request parameters: the form is not multipart/form-data")
    fields: dict[str, Any] = {}
    for part in form.get_payload():
        if not isinstance(part, email.message.Message):  # a multipart payload lists parts
            raise _Reject(400, "Invalid request parameters: a form part is malformed")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise _Reject(400, "Invalid request parameters: a form part has no name")
        if part.get_filename() is not None:
            raise _Reject(400, f"Invalid request parameters: {name} must be a form field")
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
        try:
            value = payload.decode(charset) if isinstance(payload, bytes) else ""
        except (LookupError, UnicodeDecodeError):
            raise _Reject(400, f"Invalid request parameters: {name} is not text") from None
        fields[name] = value
        if value[:1] in ("{", "["):  # canvas, imgPos, mask
            with contextlib.suppress(ValueError):
                fields[name] = json.loads(value)
    return fields


def make_app(**options: Any) -> web.Application:
    """An emulator's ``aiohttp.web.Application``; ``options`` as for :class:`Emulator`."""
    return Emulator(**options).app
