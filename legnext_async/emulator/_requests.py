"""What the emulator received: request bodies read within a bound, and the request log.

A body is read whole (up to :data:`MAX_BODY_BYTES`) while its request is handled and
dropped after; the log keeps only a bounded summary of it, however big it was.
"""

from __future__ import annotations

import contextlib
import email.message
import email.parser
import email.policy
import json
from collections import deque
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs
from aiohttp import web

from ._errors import INVALID_REQUEST, Reject

if TYPE_CHECKING:
    from ._clock import VirtualClock
    from ._faults import FaultKind
    from ._options import LogOptions

#: Bigger bodies answer 413 (the reference lists 413 "payload too large").
MAX_BODY_BYTES: Final = 32 * 1024 * 1024

#: The decoded body, set by whoever decoded it.
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


def _too_large() -> Reject:
    return Reject(413, f"Payload too large: the limit is {MAX_BODY_BYTES} bytes")


class RequestLog:
    """The requests received, oldest first, and the reader that bounds what they keep."""

    def __init__(self, options: LogOptions, clock: VirtualClock) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=options.limit)
        self._keep = options.body_bytes
        self._clock = clock
        #: Where records are appended as they are made (``LogOptions.file``), once open.
        self._file_path = options.file
        self._file: TextIO | None = None

    def open_file(self) -> None:
        """Open the file records are appended to (if one was asked for)."""
        if self._file_path is not None and self._file is None:
            self._file = open(self._file_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    @property
    def records(self) -> list[RequestRecord]:
        """A copy of the records kept."""
        return list(self._records)

    async def read(self, request: web.Request) -> bytearray:
        """The whole body, up to ``MAX_BODY_BYTES``; what the log keeps of it is noted.

        A bigger body is refused (413) as soon as it is known to be bigger: at once when its
        ``Content-Length`` says so, without reading it, else when the bytes read pass the
        limit. aiohttp then discards the rest as it arrives.
        """
        declared = request.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            request[_RAW_KEY] = (b"", declared)
            raise _too_large()
        buffer = bytearray()
        try:
            while chunk := await request.content.readany():
                buffer += chunk
                if len(buffer) > MAX_BODY_BYTES:
                    raise _too_large()
        finally:
            request[_RAW_KEY] = (bytes(memoryview(buffer)[: self._keep]), len(buffer))
        return buffer

    async def read_body(self, request: web.Request, *, form: bool = False) -> object:
        """The decoded body: JSON, or with ``form`` a multipart form's fields if it is one.

        Raises :class:`Reject` (400) for a body that does not decode, 413 past the limit.
        """
        raw = await self.read(request)
        if form and request.content_type == "multipart/form-data":
            body: object = form_fields(request.headers.get("Content-Type", ""), raw)
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                raise Reject(400, f"{INVALID_REQUEST}: body is not valid JSON") from None
        request[_BODY_KEY] = body
        return body

    async def note(self, request: web.Request) -> None:
        """Read a body no handler will read, so that the log shows what was sent."""
        if not request.body_exists:
            return
        try:
            raw = await self.read(request)
        except Reject:  # too large: the caller answers anyway, and the log has the size
            return
        if len(raw) <= self._keep:
            with contextlib.suppress(ValueError):
                request[_BODY_KEY] = json.loads(raw)

    @staticmethod
    def mark_job(request: web.Request, job_id: str) -> None:
        """Say that ``request`` created job ``job_id``."""
        request[_JOB_KEY] = job_id

    def append(self, request: web.Request, status: int | None, fault: FaultKind | None) -> None:
        """Record ``request``, answered ``status`` (``None``: no answer reached the client)."""
        prefix, size = request.get(_RAW_KEY, (b"", request.content_length or 0))
        # aiohttp may hold the request object until the connection's next request.
        body = request.pop(_BODY_KEY, None)
        record = RequestRecord(
            method=request.method,
            path=request.path,
            status=status,
            body=body if size <= self._keep else None,
            job_id=request.get(_JOB_KEY),
            fault=fault,
            at=self._clock.now(),
            body_size=size,
            body_prefix=prefix,
            body_truncated=size > len(prefix),
        )
        self._records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(_line_of(record), default=str) + "\n")


def _line_of(record: RequestRecord) -> dict[str, object]:
    """What the request log's file says of a record (the body only if kept whole)."""
    return {
        "at": record.at,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "job_id": record.job_id,
        "fault": record.fault,
        "body_size": record.body_size,
        "body": record.body,
    }


def form_fields(content_type: str, raw: bytes | bytearray) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body; JSON-looking values are decoded.

    OAC documents upload-paint as multipart with JSON-encoded form fields.
    """
    parser = email.parser.BytesFeedParser(policy=email.policy.HTTP)
    parser.feed(f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace"))
    parser.feed(raw)
    form = parser.close()
    if not form.is_multipart():
        raise Reject(400, f"{INVALID_REQUEST}: the form is not multipart/form-data")
    fields: dict[str, Any] = {}
    for part in form.get_payload():
        if not isinstance(part, email.message.Message):  # a multipart payload lists parts
            raise Reject(400, f"{INVALID_REQUEST}: a form part is malformed")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise Reject(400, f"{INVALID_REQUEST}: a form part has no name")
        if part.get_filename() is not None:
            raise Reject(400, f"{INVALID_REQUEST}: {name} must be a form field")
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
        try:
            value = payload.decode(charset) if isinstance(payload, bytes) else ""
        except (LookupError, UnicodeDecodeError):
            raise Reject(400, f"{INVALID_REQUEST}: {name} is not text") from None
        fields[name] = value
        if value[:1] in ("{", "["):  # canvas, imgPos, mask
            with contextlib.suppress(ValueError):
                fields[name] = json.loads(value)
    return fields
