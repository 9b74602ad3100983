"""The :class:`Emulator`: a local Legnext server's lifecycle and the controls tests use."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from ._app import Routes, make_application
from ._callbacks import CallbackRecord, CallbackWorker
from ._catalog import FAMILY_BY_TASK_TYPE
from ._clock import VirtualClock
from ._errors import ErrorShape
from ._faults import Fault, FaultPlan
from ._jobs import DEFAULT_FAILURE, JobError
from ._middleware import Middleware
from ._options import (
    DEFAULT_FILE_RETENTION,
    DEFAULT_INITIAL_CREDITS,
    DEFAULT_REQUEST_LOG_LIMIT,
    DEFAULT_RETENTION,
    LOGGED_BODY_BYTES,
    Access,
    CallbackBody,
    CallbackOptions,
    JobRules,
    LogOptions,
    Options,
    OverLimit,
)
from ._requests import RequestLog, RequestRecord
from ._snapshots import Balance, JobInfo, balance_of, job_info
from ._state import Account, FailurePlan, State

if TYPE_CHECKING:
    from types import TracebackType


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
    - ``signed_urls``: list output URLs signed like the service's
      (``?Expires=<unix>&Signature=<hex>``, ``Expires`` = creation + ``file_retention``,
      virtual time) and answer 403 to one expired or altered.
    - ``file_size``: bytes of every output file, when more than its natural size (a PNG
      padded with a private chunk, an MP4 with its ``free`` box); streamed, so any size
      up to 2 GiB costs the emulator a few hundred KB.
    - ``error_shape``: ``"envelope"`` (live task-shaped body), ``"flat"``, ``"nested"``.
    - ``failure_rate``: probability that a job fails (seeded RNG); see ``fail_next``.
    - Callbacks: ``callbacks_enabled``; ``callback_body`` ``"wrapped"`` posts
      ``{"timestamp", "data"}``, ``"bare"`` the task; ``callback_delay`` virtual seconds
      after the job ends; ``callback_duplicates`` identical deliveries;
      ``callback_timeout`` real seconds per delivery; only loopback hosts are contacted
      unless listed in ``callback_allowed_hosts`` (others are recorded as refused);
      ``callback_secret`` signs each delivery as the vendor SDK verifies it
      (``X-Legnext-Timestamp``: the virtual Unix seconds; ``X-Legnext-Signature``: hex
      HMAC-SHA256 of ``"<timestamp>." + body``); ``callback_loss``: the probability that a
      delivery is lost; ``callback_jitter``: a further random delay of up to that many
      virtual seconds per delivery, so deliveries may come out of order;
      ``callback_intermediate``: also post the job when it starts ``processing``.
    - ``request_log_limit``: how many ``requests`` records to keep (oldest dropped).
    - ``request_log_body_bytes``: how much of each request body a record keeps (see
      :class:`RequestRecord`); bodies themselves are refused with 413 past 32 MiB, as
      soon as they are known to be bigger (at once if ``Content-Length`` says so).
    - ``request_log_file``: a file each request is also appended to while the emulator
      serves, one JSON line each (``at``, ``method``, ``path``, ``status``, ``job_id``,
      ``fault``, ``body_size``, and ``body`` when kept whole): what another process (a
      shell) can read of ``requests``. The API key is never written.

    A nonsensical option raises ``ValueError``.
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
        signed_urls: bool = False,
        file_size: int = 0,
        error_shape: ErrorShape = "envelope",
        failure_rate: float = 0.0,
        callbacks_enabled: bool = True,
        callback_body: CallbackBody = "wrapped",
        callback_delay: float = 0.0,
        callback_duplicates: int = 1,
        callback_timeout: float = 10.0,
        callback_allowed_hosts: Collection[str] = (),
        callback_secret: str | None = None,
        callback_loss: float = 0.0,
        callback_jitter: float = 0.0,
        callback_intermediate: bool = False,
        request_log_limit: int | None = DEFAULT_REQUEST_LOG_LIMIT,
        request_log_body_bytes: int = LOGGED_BODY_BYTES,
        request_log_file: str | os.PathLike[str] | None = None,
    ) -> None:
        options = Options(
            host=host,
            port=port,
            time_scale=time_scale,
            seed=seed,
            error_shape=error_shape,
            access=Access(
                api_key=api_key,
                extra_api_keys=extra_api_keys,
                allow_anonymous_job_get=allow_anonymous_job_get,
                whitelisted=whitelisted,
                whitelisted_keys=whitelisted_keys,
            ),
            jobs=JobRules(
                durations=durations,
                pending_seconds=pending_seconds,
                staged_seconds=staged_seconds,
                concurrency_limit=concurrency_limit,
                over_limit=over_limit,
                initial_credits=initial_credits,
                initial_points=initial_points,
                failure_rate=failure_rate,
                retention=retention,
                file_retention=file_retention,
                signed_urls=signed_urls,
                file_size=file_size,
            ),
            callbacks=CallbackOptions(
                enabled=callbacks_enabled,
                body=callback_body,
                delay=callback_delay,
                duplicates=callback_duplicates,
                timeout=callback_timeout,
                allowed_hosts=callback_allowed_hosts,
                secret=callback_secret,
                loss=callback_loss,
                jitter=callback_jitter,
                intermediate=callback_intermediate,
            ),
            log=LogOptions(
                limit=request_log_limit,
                body_bytes=request_log_body_bytes,
                file=os.fspath(request_log_file) if request_log_file is not None else None,
            ),
        )
        self._options = options
        self._clock = clock = VirtualClock(time_scale)
        self._state = State(
            options.jobs,
            options.callbacks,
            random.Random(seed),
            # Its own stream: jitter and losses must not change job ids or run times.
            delivery_rng=random.Random(None if seed is None else f"callbacks/{seed}"),
        )
        # Its own stream: arming a fault must not change job ids or run times.
        self._faults = FaultPlan(random.Random(None if seed is None else f"faults/{seed}"))
        self._log = RequestLog(options.log, clock)
        self._callbacks = CallbackWorker(self._state, clock, options.callbacks)
        self._routes = Routes(
            state=self._state,
            clock=clock,
            access=options.access,
            log=self._log,
            callbacks=self._callbacks,
        )
        middleware = Middleware(self._faults, self._log, options.error_shape)
        self._app = make_application(self._routes, middleware, self._callbacks)
        self._runner: web.AppRunner | None = None

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # A started emulator left open holds a socket and a session: say so.
        if getattr(self, "_runner", None) is not None:
            _warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)

    def __repr__(self) -> str:
        where = self._routes.origin or "not started"
        return f"<Emulator {where} jobs={len(self._state.jobs)}>"

    # -- lifecycle -------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The ``aiohttp.web.Application``; usable without ``start()``."""
        return self._app

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        origin = self._routes.origin
        if origin is None:
            raise RuntimeError("the emulator is not started")
        return origin

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
        self._log.open_file()
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._options.host, self._options.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._log.close_file()
            raise
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        self._runner = runner
        self._routes.origin = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving, cancel callback delivery and close the callback session."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._log.close_file()

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

    # -- the clock, failures and faults --------------------------------------------------

    def now(self) -> float:
        """The virtual time, Unix seconds."""
        return self._clock.now()

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward; jobs, retention and callbacks follow."""
        self._clock.advance(seconds)
        self._callbacks.poke()

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

    # -- what happened -----------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received (up to ``request_log_limit``), oldest first."""
        return self._log.records

    @property
    def callback_log(self) -> list[CallbackRecord]:
        """Every callback delivery, failure and refusal, in order."""
        return list(self._callbacks.records)

    async def flush_callbacks(self) -> None:
        """Deliver every callback due by now, and return when they are done."""
        await self._callbacks.flush()

    @property
    def jobs(self) -> list[JobInfo]:
        """Snapshots of every job ever created or seeded, in creation order."""
        now = self._clock.now()
        self._state.settle_all(now)
        return [job_info(job, now) for job in self._state.jobs.values()]

    def job(self, job_id: str) -> JobInfo:
        """A snapshot of one job; ``KeyError`` if unknown."""
        now = self._clock.now()
        job = self._state.jobs[job_id]
        owner = self._state.owner(job)
        if owner is not None:  # a job seeded for every account has nothing to settle
            self._state.settle(owner, now)
        return job_info(job, now)

    # -- accounts and jobs -------------------------------------------------------------

    def _account(self, api_key: str) -> Account:
        whitelisted = self._options.access.whitelists(api_key)
        return self._state.account(api_key, self._clock.now(), whitelisted=whitelisted)

    def account_id(self, api_key: str) -> int:
        """The ``account_id`` of ``api_key``'s account (opening it if new)."""
        return self._account(api_key).account_id

    def peak_active(self, api_key: str | None = None) -> int:
        """The most jobs of ``api_key``'s account (the emulator's ``api_key`` by default)
        that held a concurrency slot at once (pending, staged or processing), so far."""
        key = api_key if api_key is not None else self._options.access.api_key
        if key is None:
            raise ValueError("peak_active needs api_key when the emulator accepts any key")
        account = self._account(key)
        self._state.settle(account, self._clock.now())
        return account.peak_active

    def balance(self, api_key: str) -> Balance:
        """``api_key``'s wallet now."""
        account = self._account(api_key)
        self._state.settle(account, self._clock.now())
        return balance_of(account)

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
        callback). It belongs to ``api_key``'s account; by default to the emulator's
        ``api_key``, or, on an emulator that accepts any key, to every account (each key
        may read it and follow it up; its ``account_id`` is 0). Use it as the parent of
        follow-ups (``draft=True`` lists ``enhance``) or for retention tests.
        """
        access = self._options.access
        key = api_key if api_key is not None else access.api_key
        if key is not None and not access.accepts(key):
            raise ValueError("seed_job's api_key is not one the emulator accepts")
        family = FAMILY_BY_TASK_TYPE.get(task_type)
        if family is None:
            raise ValueError(f"unknown task_type {task_type!r}")
        job = self._state.seed(
            self._account(key) if key is not None else None,
            task_type=task_type,
            family=family,
            origin=self._routes.origin or "http://127.0.0.1",
            created_at=self._clock.now() - age_seconds,
            draft=draft,
            video_type=video_type,
            video_count=video_count,
            prompt=f"{prompt} --draft" if draft and "--draft" not in prompt else prompt,
            failure=DEFAULT_FAILURE if failed else None,
        )
        return job.job_id


def make_app(**options: Any) -> web.Application:
    """An emulator's ``aiohttp.web.Application``; ``options`` as for :class:`Emulator`."""
    return Emulator(**options).app
