"""Webhook delivery, on the virtual clock, restricted to this machine unless told otherwise.

Example bodies in the vendor docs carry public URLs (``https://webhook.site/...``); a
test tool must never send traffic off the machine because of one. The decision is
made from the URL text alone, without DNS: IP literals in 127.0.0.0/8 or ``::1``, the
name ``localhost``, or a host the user allowed explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
from typing import TYPE_CHECKING, Final, Literal

import aiohttp
import attrs
from yarl import URL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection

    from aiohttp import web

    from ._clock import VirtualClock
    from ._jobs import Job
    from ._options import CallbackOptions
    from ._state import State

DeliveryOutcome = Literal["delivered", "failed", "refused", "lost"]

#: Deliveries sent at once; a burst of due callbacks waits its turn.
_BATCH: Final = 64


@attrs.frozen
class CallbackRecord:
    """One callback delivery attempt (or refusal), for tests to inspect.

    ``status`` is the receiver's HTTP status when one was received; ``error`` says why a
    delivery failed or was refused. ``body`` is the JSON value that was (or would have
    been) posted; ``outcome`` ``"lost"``: dropped on purpose (``callback_loss``).
    """

    job_id: str
    url: str
    outcome: DeliveryOutcome
    delivery: int
    status: int | None = None
    error: str | None = None
    body: object = None


def callback_allowed(url: str, allowed_hosts: Collection[str]) -> bool:
    """Whether ``url`` may be contacted: loopback literal, ``localhost`` or allowed host."""
    try:
        parsed = URL(url)
        host = parsed.host  # decoding an IDNA host may raise UnicodeError (a ValueError)
    except (ValueError, TypeError):
        return False
    if parsed.scheme not in ("http", "https") or not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host in allowed_hosts:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: resolving it is exactly what we refuse to do
        return False


class CallbackWorker:
    """Posts each finished job to its callback URL when due on the virtual clock.

    It runs while the app serves (see :meth:`lifespan`), sleeping until the next callback is
    due; :meth:`poke` wakes it when that time may have moved (a new job, a clock jump).
    Deliveries are sent at most :data:`_BATCH` at a time.
    """

    def __init__(self, state: State, clock: VirtualClock, options: CallbackOptions) -> None:
        self._state = state
        self._clock = clock
        self._options = options
        self._timeout = aiohttp.ClientTimeout(total=options.timeout)
        self.records: list[CallbackRecord] = []
        #: The session deliveries use; only while the app serves.
        self.session: aiohttp.ClientSession | None = None
        self._wake: asyncio.Event | None = None
        # Set while the worker is not delivering, so that a flush can wait for its batch.
        self._idle: asyncio.Event | None = None

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """Run the worker while the app serves (a ``cleanup_ctx``).

        Everything loop-bound is created here, inside the running loop.
        """
        self.session = aiohttp.ClientSession(trust_env=False)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        worker = asyncio.create_task(self._run(), name="legnext-emulator-callbacks")
        try:
            yield
        finally:
            worker.cancel()
            await asyncio.wait([worker])
            session, self.session = self.session, None
            await session.close()
            self._wake = self._idle = None

    def poke(self) -> None:
        """Wake the worker: the next due time may be earlier than it thinks."""
        if self._wake is not None:
            self._wake.set()

    async def flush(self) -> None:
        """Deliver every callback due by now, and return when they (and the worker's) are done.

        Raises ``RuntimeError`` unless the app is serving.
        """
        idle = self._idle
        if self.session is None or idle is None:
            raise RuntimeError("callbacks need a started emulator")
        await self._deliver(self._state.due_callbacks(self._clock.now()))
        await idle.wait()

    async def _run(self) -> None:
        wake, idle = self._wake, self._idle
        assert wake is not None
        assert idle is not None
        clock = self._clock
        while True:
            wake.clear()
            idle.clear()
            try:
                await self._deliver(self._state.due_callbacks(clock.now()))
            finally:
                idle.set()
            upcoming = self._state.next_event()
            timeout = None if upcoming is None else clock.real_seconds(upcoming - clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    async def _deliver(self, due: list[tuple[Job, int, float]]) -> None:
        for start in range(0, len(due), _BATCH):
            batch = due[start : start + _BATCH]
            await asyncio.gather(*(self._deliver_one(job, n, at) for job, n, at in batch))

    async def _deliver_one(self, job: Job, delivery: int, at: float) -> None:
        """Post ``job`` as it was at virtual time ``at`` (its end, or its start)."""
        url = job.callback
        assert url is not None
        now = self._clock.now()
        options = self._options
        task = job.to_wire(job.status_at(at))
        body: object = task
        if options.body == "wrapped":
            body = {"timestamp": int(now), "data": task}

        def record(
            outcome: DeliveryOutcome, status: int | None = None, error: str | None = None
        ) -> None:
            self.records.append(
                CallbackRecord(job.job_id, url, outcome, delivery, status, error, body)
            )

        if not callback_allowed(url, options.allowed_hosts):
            record("refused", error="host is not loopback and not in callback_allowed_hosts")
            return
        if options.loss > 0 and self._state.delivery_rng.random() < options.loss:
            record("lost")
            return
        session = self.session
        if session is None:
            return
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if options.secret is not None:
            stamp = str(int(now))
            digest = hmac.new(options.secret.encode(), f"{stamp}.".encode() + data, hashlib.sha256)
            headers["X-Legnext-Timestamp"] = stamp
            headers["X-Legnext-Signature"] = digest.hexdigest()
        try:
            async with session.post(
                url, data=data, headers=headers, allow_redirects=False, timeout=self._timeout
            ) as response:
                await response.read()
        except Exception as exc:  # any delivery error is the receiver's story, not ours
            record("failed", error=f"{type(exc).__name__}: {exc}")
            return
        ok = 200 <= response.status < 300
        record("delivered" if ok else "failed", response.status)
