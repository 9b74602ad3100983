"""Callbacks: a receiver for the service's webhook deliveries, so handles resolve when told.

Every job-creating call of a ``LegnextClient(webhook=receiver)`` carries a callback URL of
the receiver: its ``public_url`` followed by an unguessable token of that one job. When
the service POSTs the job there, the receiver checks the delivery and hands it to its
client, which resolves the job's handle (polling goes on only as a sparse safety net),
records the news in its job store, settles a submission whose answer was lost, and runs
the hooks registered with :meth:`WebhookReceiver.on_finished`.

What a delivery must be to count (reference §7: no vendor document promises signing):

- **With a secret**, the vendor SDK's scheme: ``X-Legnext-Signature`` is the hex
  HMAC-SHA256 of ``"<X-Legnext-Timestamp>." + body``; a delivery unsigned, badly signed,
  or stamped outside ``tolerance`` seconds of the receiver's clock is refused, and one
  seen before (a replay, or the service's own duplicate) is acknowledged and ignored.
  Its body is then trusted as a status read would be.
- **Without a secret**, anyone may POST to a URL: a delivery is only a hint. A finished
  status is confirmed by one status read before anything is resolved; an unfinished one
  is ignored (not worth a read).

Either body shape is read: ``{"timestamp": ..., "data": <task>}`` (the vendor's own
receiver) or the bare task (the vendor SDK). Every refusal, whatever its reason (a token
never issued, a bad signature, a body over ``max_body_bytes``, not JSON), is answered the
same way: ``404`` with aiohttp's own body for a path that does not exist, so tokens cannot
be probed. An accepted delivery is answered ``200`` at once: the work it causes (a read,
a store write, the hooks) runs in tasks, never inline.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import inspect
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Final, Protocol

import attrs
from aiohttp import web

from ._exceptions import LegnextError, ValidationError
from ._models import Task
from ._validation import check_min_int, check_service_url, is_job_id
from ._wire import loads

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

__all__ = [
    "ACCEPTED",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOLERANCE",
    "REFUSED",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallbackListener",
    "FinishedJob",
    "WebhookReceiver",
    "sign",
]

logger = logging.getLogger("legnext_async")

#: The status of an accepted delivery (a duplicate or a replay included).
ACCEPTED: Final = 200
#: The status of every refused delivery, whatever the reason (that of a path that does not
#: exist, so that an issued token cannot be told from any other).
REFUSED: Final = 404
#: Seconds a signed delivery's timestamp may differ from the receiver's clock.
DEFAULT_TOLERANCE: Final = 300.0
#: The longest body read. A finished task is about 1.5 KB; 256 KiB is room for any the
#: service means, while a hostile one costs at most this much.
DEFAULT_MAX_BODY_BYTES: Final = 256 * 1024
#: The smallest ``max_body_bytes`` accepted: a guard against a slip of unit.
MIN_BODY_BYTES: Final = 1024
#: Signatures of accepted deliveries remembered to ignore replays (oldest forgotten first;
#: one older than ``tolerance`` is refused as stale anyway).
DEFAULT_REPLAY_MEMORY: Final = 10_000
SIGNATURE_HEADER: Final = "X-Legnext-Signature"
TIMESTAMP_HEADER: Final = "X-Legnext-Timestamp"
#: Random bytes in a token (``secrets.token_urlsafe``): 192 bits, 32 characters.
TOKEN_BYTES: Final = 24
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{32}")
#: A timestamp past this is taken for milliseconds (the reference leaves the unit open).
_MILLISECONDS_FROM: Final = 1e11


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The signature of a delivery: hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@attrs.frozen
class FinishedJob:
    """A job whose finish a callback reported, as :meth:`WebhookReceiver.on_finished` hooks
    get it: the finished ``task`` (``completed`` or ``failed``), and the idempotency
    ``key`` of its submission when the client's job store recorded one."""

    task: Task
    key: str | None = None

    @property
    def job_id(self) -> str:
        return self.task.job_id


class CallbackListener(Protocol):
    """What a receiver hands deliveries to (its client)."""

    def delivered(self, token: str, task: Task, *, signed: bool) -> Awaitable[bool]:
        """Take a delivery of ``task`` to ``token`` (``signed``: its signature was checked).

        Resolves to whether ``token`` was issued by the listener (else the delivery is
        refused); the work the delivery causes is started, not awaited.
        """


def _check_public_url(url: str, *, allow_insecure_http: bool) -> str:
    return check_service_url(
        url,
        "public_url",
        allow_insecure_http=allow_insecure_http,
        exposes="show every token and result on the way",
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header whatever the letter case of the mapping's names."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _timestamp(text: str) -> float | None:
    """A delivery's timestamp in Unix seconds (milliseconds are recognised), if readable."""
    text = text.strip()
    if not (0 < len(text) <= 20 and text.isascii() and text.isdigit()):
        return None
    stamp = float(int(text))
    return stamp / 1000 if stamp >= _MILLISECONDS_FROM else stamp


def names_token(callback: str, token: str) -> bool:
    """Whether a task's echoed callback URL is one of ``token`` (its last path segment)."""
    return callback.rstrip("/").rpartition("/")[2] == token


def task_of(body: bytes) -> Task | None:
    """The task a delivery carries, in either body shape; ``None`` if it carries none."""
    try:
        data = loads(body)
    except ValueError:  # not JSON, or nested deeper than a task ever is
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("data")
    if "job_id" not in data and isinstance(inner, dict):
        task = Task.from_json(inner)
    else:
        task = Task.from_json(data, body=body)
    return task if is_job_id(task.job_id) else None


class WebhookReceiver:
    """Receives the service's callbacks for a ``LegnextClient(webhook=receiver)``.

    ``public_url`` is where the service can reach the receiver (the prefix it is mounted
    under included): each job's callback URL is ``public_url + "/" + token``. Serve it with
    :meth:`app` (mounted in an aiohttp application, or on its own), or feed it from any
    framework through :meth:`handle`. One receiver serves one client.

    Args:
        public_url: an absolute https URL (plain http only for loopback hosts, unless
            ``allow_insecure_http``).
        secret: the webhook secret, if deliveries are signed (see the module docstring);
            ``None``: every delivery is a hint, confirmed by one status read.
        tolerance: seconds a signed delivery's timestamp may be off the receiver's clock.
        max_body_bytes: the longest body read (at least 1024); a longer one is refused
            without being read further.
        replay_memory: how many accepted signatures are remembered to ignore replays.
        clock: the receiver's clock, in Unix seconds; ``None``: ``time.time`` (tests give
            another, an emulator's ``now`` for one).
    """

    def __init__(
        self,
        public_url: str,
        *,
        secret: str | bytes | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        replay_memory: int = DEFAULT_REPLAY_MEMORY,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.public_url = _check_public_url(public_url, allow_insecure_http=allow_insecure_http)
        if secret is not None and not secret:
            raise ValidationError("secret", "must be non-empty (or None for unsigned deliveries)")
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if not tolerance > 0:
            raise ValidationError("tolerance", f"must be positive, got {tolerance}")
        self.tolerance = float(tolerance)
        self.max_body_bytes = check_min_int(max_body_bytes, "max_body_bytes", MIN_BODY_BYTES)
        self._replay_memory = check_min_int(replay_memory, "replay_memory", 1)
        self._clock = clock or time.time
        #: Signatures of accepted deliveries, oldest first, with their timestamps.
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._listener: CallbackListener | None = None
        self._warned = False
        self._hooks: list[Callable[[FinishedJob], object]] = []
        self._running: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        signed = "signed" if self._secret is not None else "unsigned"
        return f"<WebhookReceiver {self.public_url!r} {signed}>"

    @property
    def signed(self) -> bool:
        """Whether deliveries must be signed (the receiver has a secret)."""
        return self._secret is not None

    # --- serving ----------------------------------------------------------------------

    def app(self) -> web.Application:
        """An application answering ``POST /{token}``: mount it with
        ``app.add_subapp(prefix, receiver.app())``, or run it on a port of its own."""
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post("/{token}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        body = await _read_capped(request, self.max_body_bytes)
        status = REFUSED
        if body is not None:
            status = await self.handle(body, request.headers, token=request.match_info["token"])
        if status != ACCEPTED:
            # Exactly what aiohttp answers for a path it does not know.
            raise web.HTTPNotFound()
        return web.Response(status=ACCEPTED)

    async def handle(self, body: bytes, headers: Mapping[str, str], *, token: str) -> int:
        """Take one delivery (its body, headers and the token of its path) and return the
        HTTP status to answer: :data:`ACCEPTED` or :data:`REFUSED`.

        Returns quickly: checks, then one lookup of the token by the client (in its job
        store, if it has one); whatever the delivery causes runs in tasks.
        """
        if len(body) > self.max_body_bytes or not _TOKEN.fullmatch(token):
            return REFUSED
        signature = None
        if self._secret is not None:
            signature = self._verified(body, headers)
            if signature is None:
                return REFUSED
        task = task_of(body)
        if task is None or (task.callback and not names_token(task.callback, token)):
            # (The echoed URL ties a signed body to its token: a body signed for another
            # job cannot be replayed against this one.)
            return REFUSED
        if signature is not None and signature in self._seen:
            return ACCEPTED  # a replay, or the service's duplicate: acknowledged, ignored
        listener = self._listener
        if listener is None:
            if not self._warned:
                self._warned = True  # once: anyone may POST here, and logs must not flood
                logger.warning("webhook: a delivery came while no client uses this receiver")
            return REFUSED
        if not await listener.delivered(token, task, signed=signature is not None):
            return REFUSED
        if signature is not None:
            self._remember(signature)
        return ACCEPTED

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """The delivery's signature if it is signed with the secret and fresh, else ``None``."""
        secret = self._secret
        assert secret is not None
        stamp = _header(headers, TIMESTAMP_HEADER)
        given = _header(headers, SIGNATURE_HEADER)
        if stamp is None or given is None:
            return None
        when = _timestamp(stamp)
        if when is None or abs(self._clock() - when) > self.tolerance:
            return None
        expected = sign(secret, stamp.strip(), body)
        given = given.strip().lower().removeprefix("sha256=")
        if not given.isascii() or not hmac.compare_digest(expected, given):
            return None
        return expected

    def _remember(self, signature: str) -> None:
        seen = self._seen
        seen[signature] = self._clock()
        horizon = self._clock() - self.tolerance
        # Oldest first: forget what the staleness check refuses anyway, and past the cap.
        while seen and (len(seen) > self._replay_memory or next(iter(seen.values())) < horizon):
            seen.popitem(last=False)

    # --- the client's side ------------------------------------------------------------

    def attach(self, listener: CallbackListener) -> None:
        """Hand deliveries to ``listener`` (the client does this; one client per receiver).

        Raises:
            LegnextError: another client uses this receiver.
        """
        if self._listener is not None and self._listener is not listener:
            raise LegnextError("this WebhookReceiver serves another client already")
        self._listener = listener

    def detach(self, listener: CallbackListener) -> None:
        """Stop handing deliveries to ``listener`` (its client closed)."""
        if self._listener is listener:
            self._listener = None

    def issue(self) -> tuple[str, str]:
        """A fresh token and its callback URL."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        return token, f"{self.public_url}/{token}"

    # --- hooks ------------------------------------------------------------------------

    def on_finished(self, hook: Callable[[FinishedJob], object]) -> Callable[[FinishedJob], object]:
        """Call ``hook(FinishedJob)`` for each job whose finish a callback reported first
        (confirmed by a read when unsigned), whether or not a handle awaits it: jobs of
        other processes sharing the store, restored ones, settled lost submissions.

        Once per job per process. A coroutine function is run as a task; an error it
        raises is logged, never raised into the receiver. Usable as a decorator.
        """
        self._hooks.append(hook)
        return hook

    def finished(self, job: FinishedJob) -> None:
        """Run every hook for ``job``, each in a task of its own (the client calls this)."""
        loop = asyncio.get_running_loop()
        for hook in self._hooks:
            running = loop.create_task(_run_hook(hook, job), name="legnext-webhook-hook")
            self._running.add(running)
            running.add_done_callback(self._running.discard)

    async def drain(self) -> None:
        """Wait until the hooks started so far have returned."""
        while self._running:
            await asyncio.wait(list(self._running))


async def _run_hook(hook: Callable[[FinishedJob], object], job: FinishedJob) -> None:
    try:
        result = hook(job)
        if inspect.isawaitable(result):
            await result
    except Exception:  # the user's code: logged with its traceback, never lost
        logger.exception("webhook: on_finished hook %r failed for job %s", hook, job.job_id)


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The request's body if it is at most ``limit`` bytes (after decompression), else
    ``None``, with at most one chunk past ``limit`` read."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    content = request.content
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
