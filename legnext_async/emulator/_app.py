"""The emulated API as an ``aiohttp.web`` application: its routes and their handlers.

Handlers answer a refusal by raising :class:`~._errors.Reject`; the middleware turns it
into an error body in the configured shape.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiohttp import web

from ._catalog import OPERATIONS
from ._clock import format_nanoseconds
from ._errors import AUTH_FAILED, INVALID_REQUEST, NOT_WHITELISTED, Reject
from ._jobs import COMPLETED
from ._media import media_file, signature
from ._parents import find_parent
from ._requests import MAX_BODY_BYTES
from ._state import ALERT_THRESHOLD_USD, price
from ._validation import InvalidRequest, validate

if TYPE_CHECKING:
    from ._callbacks import CallbackWorker
    from ._clock import VirtualClock
    from ._middleware import Middleware
    from ._options import Access
    from ._requests import RequestLog
    from ._state import Account, State


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _file_refused(message: str) -> web.Response:
    """An object store's refusal of a signed URL (a short XML body, as theirs are)."""
    body = f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
    return web.Response(status=403, text=body, content_type="application/xml")


def _envelope(data: dict[str, object]) -> web.Response:
    return web.json_response({"code": 200, "data": data, "message": "success"})


class Routes:
    """The handlers of every emulated endpoint, over one emulator's state."""

    def __init__(
        self,
        *,
        state: State,
        clock: VirtualClock,
        access: Access,
        log: RequestLog,
        callbacks: CallbackWorker,
    ) -> None:
        self._state = state
        self._clock = clock
        self._access = access
        self._log = log
        self._callbacks = callbacks
        #: ``http://host:port`` that output URLs start with; ``None``: the request's Host.
        self.origin: str | None = None

    def table(self) -> list[web.RouteDef]:
        """Every route, for ``app.add_routes``."""
        return [
            *(web.post(f"/api/v1/{route}", self.create) for route in OPERATIONS),
            web.get("/api/v1/job/{job_id}", self.get_job),
            web.get("/api/account/balance", self.get_balance),
            web.get("/api/account/info", self.get_info),
            web.get("/files/{name}", self.get_file),
        ]

    def _authenticate(self, request: web.Request, now: float) -> Account | None:
        key = request.headers.get("x-api-key")  # CIMultiDict: any header-name case
        if key is None or not self._access.accepts(key):
            return None
        return self._state.account(key, now, whitelisted=self._access.whitelists(key))

    def _account(self, request: web.Request, now: float) -> Account:
        account = self._authenticate(request, now)
        if account is None:
            raise Reject(401, AUTH_FAILED)
        return account

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/<route>``: validate, price and create a job."""
        op = OPERATIONS[request.path.rsplit("/", 1)[1]]
        account = self._account(request, self._clock.now())
        gated = op.whitelisted and not account.whitelisted
        try:
            body = await self._log.read_body(request, form=op.route == "upload-paint")
        except Reject:
            if gated:  # the live service says 403 before it looks at the body
                raise Reject(403, NOT_WHITELISTED) from None
            raise
        if gated:
            raise Reject(403, NOT_WHITELISTED)
        try:
            sub = validate(op, body)
        except InvalidRequest as exc:
            raise Reject(400, f"{INVALID_REQUEST}: {exc}") from None
        now = self._clock.now()
        state = self._state
        parent = find_parent(state, account, sub, now) if sub.parent_id is not None else None
        state.settle(account, now)
        cost = price(sub, parent)
        if account.available < cost:
            raise Reject(402, f"Insufficient balance: this task needs {cost} points")
        if state.rules.over_limit == "reject" and state.busy(account):
            limit = state.rules.concurrency_limit
            raise Reject(429, f"Concurrent task limit reached ({limit}); try again later")
        origin = self.origin or f"{request.scheme}://{request.host}"
        job = state.create(account, sub=sub, parent=parent, cost=cost, origin=origin, now=now)
        self._log.mark_job(request, job.job_id)
        if job.callback is not None:
            self._callbacks.poke()  # it may be due earlier than the worker's next wake-up
        return _json(job.body_at(now))

    async def get_job(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v1/job/{job_id}``: the task as it is now."""
        now = self._clock.now()
        job_id = request.match_info["job_id"]
        account = self._authenticate(request, now)
        if account is not None:
            job = account.jobs.get(job_id)
        elif self._access.allow_anonymous_job_get and not request.headers.get("x-api-key"):
            job = self._state.jobs.get(job_id)
        else:
            raise Reject(401, AUTH_FAILED)
        if job is None or self._state.expired(job, now):
            raise Reject(404, f"job {job_id} not found")
        owner = self._state.owner(job)
        if job.started_at is None and owner is not None:  # queued: a slot may have freed since
            self._state.settle(owner, now)
        return _json(job.body_at(now))

    async def get_balance(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/account/balance``: the wallet, as the service reports it."""
        now = self._clock.now()
        account = self._account(request, now)
        self._state.settle(account, now)
        usd = round(account.available / 1000, 3)
        return _envelope(
            {
                "account_id": account.account_id,
                "balance_usd": usd,
                "available_credits": account.credits,
                "available_points": account.points,
                "alert_threshold": ALERT_THRESHOLD_USD,
                "low_balance_alert": usd < ALERT_THRESHOLD_USD,
                "updated_at": format_nanoseconds(account.updated_at),
            }
        )

    async def get_info(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/account/info``: the account and its wallet in the web app's terms."""
        now = self._clock.now()
        account = self._account(request, now)
        self._state.settle(account, now)
        # Field names from the vendor web app's client (reference §3.23); values emulated.
        return _envelope(
            {
                "id": account.account_id,
                "name": f"emulated account {account.account_id}",
                "plan": "developer",
                "type": "user",
                "is_enable": True,
                "max_concurrent_task_count": self._state.rules.concurrency_limit,
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
        )

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        """``GET /files/{name}``: an output file of a completed job, within file retention.

        A signed URL must carry the job's ``Expires`` and its ``Signature``, and be used
        by then (virtual time): else 403, as object stores answer.
        """
        name = request.match_info["name"]
        now = self._clock.now()
        rules = self._state.rules
        job = self._state.jobs.get(name.rsplit("_", 1)[0])
        if job is None or job.status_at(now) != COMPLETED or name not in job.file_names():
            raise web.HTTPNotFound()
        expires = job.signed_until
        if expires is not None:
            query = request.query
            if query.get("Expires") != str(expires) or not hmac.compare_digest(
                query.get("Signature", ""), signature(name, expires)
            ):
                return _file_refused("the signature does not match")
            if now > expires:
                return _file_refused("Request has expired")
        elif now - job.created_at > rules.file_retention:
            raise web.HTTPNotFound()
        return web.Response(body=media_file(name, rules.file_size))


def make_application(
    routes: Routes, middleware: Middleware, callbacks: CallbackWorker
) -> web.Application:
    """The application serving ``routes`` through ``middleware``, delivering callbacks."""
    # Request bodies are read by RequestLog.read, which enforces MAX_BODY_BYTES itself; the
    # same bound here covers any of aiohttp's own readers (its default, 1 MiB, would refuse
    # a blend of five base64 images).
    app = web.Application(middlewares=[middleware.process], client_max_size=MAX_BODY_BYTES)
    app.add_routes(routes.table())
    app.cleanup_ctx.append(middleware.lifespan)
    app.cleanup_ctx.append(callbacks.lifespan)
    app.on_shutdown.append(middleware.on_shutdown)
    return app
