"""The way in and out of every request: armed faults applied, refusals answered, all logged.

A fault without ``commit`` answers in place of the handler (the request is not processed,
though its body is still read for the log); with ``commit`` the handler runs first and only
its answer suffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Final

from aiohttp import web

from ._errors import Reject, error_response
from ._media import MediaBody

if TYPE_CHECKING:
    from ._errors import ErrorShape
    from ._faults import Fault, FaultPlan
    from ._requests import RequestLog

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_GATEWAY_PAGE: Final = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
#: What a truncated answer is cut from when there is no real answer to cut.
_PENDING_TASK: Final = b'{"job_id":"","model":"midjourney","status":"pending"}'


class Middleware:
    """Applies the armed faults, turns refusals into error bodies and logs each request."""

    def __init__(self, faults: FaultPlan, log: RequestLog, error_shape: ErrorShape) -> None:
        self._faults = faults
        self._log = log
        self._shape: ErrorShape = error_shape
        # Set at shutdown, so that handlers sleeping in a latency fault do not hold it up.
        self._closing: asyncio.Event | None = None

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """While the app serves (a ``cleanup_ctx``): the loop-bound shutdown signal exists."""
        self._closing = asyncio.Event()
        try:
            yield
        finally:
            self._closing = None

    async def on_shutdown(self, app: web.Application) -> None:
        """Wake handlers held by a latency fault (an ``on_shutdown`` signal)."""
        if self._closing is not None:
            self._closing.set()

    @web.middleware
    async def process(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Serve ``request`` through ``handler``, as the fault that picks it says."""
        fault = self._faults.pick(request.method, request.path)
        # These kinds cut the connection, so the client never sees a status.
        cut = fault is not None and fault.kind in ("disconnect", "truncate")
        status: int | None = None
        try:
            response = await self._serve(request, handler, fault)
            status = None if cut else response.status
            return response
        finally:
            self._log.append(request, status, fault.kind if fault is not None else None)

    def _error(self, status: int, message: str) -> web.Response:
        return error_response(self._shape, status, message)

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Reject as exc:
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
        if fault.kind == "slow":
            return self._paced(await self._handle(request, handler), fault)
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
            await self._log.note(request)
        if fault.kind == "status":
            return self._status(fault)
        if fault.kind == "garbage":
            body = fault.body or _GATEWAY_PAGE
            return web.Response(
                status=fault.status or 200,
                body=body.encode() if isinstance(body, str) else body,
                content_type="text/html",
            )
        transport = request.transport
        if fault.kind == "truncate" and transport is not None:
            if isinstance(real, web.Response) and isinstance(real.body, MediaBody):
                # A streamed file: its own headers, then half the body, then the close.
                streamed = real.body
                real.body = streamed.shaped(cut_at=streamed.length // 2, on_cut=transport.close)
                return real
            kind = "application/json"
            if isinstance(real, web.Response) and isinstance(real.body, bytes):
                status, full, kind = real.status, real.body, real.content_type
            else:
                status = fault.status or 200
                raw = fault.body or _PENDING_TASK
                full = raw.encode() if isinstance(raw, str) else raw
            reason = HTTPStatus(status).phrase
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(full)}\r\nConnection: close\r\n\r\n"
            )
            transport.write(head.encode() + full[: len(full) // 2])
        if transport is not None:
            transport.close()
        # The connection is gone; aiohttp discards whatever is returned now.
        return web.Response(status=499)

    def _paced(self, response: web.StreamResponse, fault: Fault) -> web.StreamResponse:
        """``response`` with its body sent in ``fault.pieces`` parts over ``fault.delay``."""
        if not isinstance(response, web.Response):
            return response
        body = response.body
        if isinstance(body, bytes | bytearray) and body:
            body = MediaBody(bytes(body), content_type=response.content_type)
        if isinstance(body, MediaBody):
            response.body = body.shaped(pieces=fault.pieces, seconds=fault.delay, sleep=self._pause)
        return response

    def _status(self, fault: Fault) -> web.Response:
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
