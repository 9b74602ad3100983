"""Valid media files served at the emulator's output URLs: tiny, or padded to a size."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

PNG_SIZE = 64

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.lru_cache(maxsize=512)
def png_for(name: str, size: int = PNG_SIZE) -> bytes:
    """An RGB PNG, ``size`` pixels square, whose colours are derived from ``name``.

    Different file names give visibly different images, and the same name always
    gives the same bytes, so a client can compare downloads.
    """
    digest = hashlib.sha256(name.encode()).digest()
    r0, g0, b0 = digest[0], digest[1], digest[2]
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter type "None" for this scanline
        for x in range(size):
            shade = (x + y) * 64 // size
            row += bytes(((r0 + shade) & 0xFF, (g0 + shade) & 0xFF, (b0 + shade) & 0xFF))
        rows.append(bytes(row))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + _chunk(b"IEND", b"")
    )


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


#: An ISO base media file with only ``ftyp``/``free``/``mdat`` boxes: enough for
#: ``file(1)`` and content sniffers to say "MP4", not a playable video.
MP4_STUB = (
    _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    + _box(b"free", b"legnext-async emulator stub")
    + _box(b"mdat", b"")
)


#: The private, ancillary PNG chunk that pads images to a requested size: decoders skip it
#: (lower-case first letter: ancillary; second: private; third upper case, as the format
#: requires; fourth lower case: safe to copy).
PAD_CHUNK = b"paDd"
#: Pieces a body is written in (and the zeros padding is cut from): bounded memory for a
#: body of any size.
PIECE = 256 * 1024
_ZEROS = bytes(PIECE)
#: The key of the emulator's URL signatures: any fixed value does, nothing is secret here.
_SIGNING_KEY = b"legnext-async emulator"


@functools.lru_cache(maxsize=64)
def _zeros_crc(kind: bytes, length: int) -> int:
    """The CRC-32 of a chunk of ``kind`` holding ``length`` zero bytes."""
    crc = zlib.crc32(kind)
    whole, rest = divmod(length, PIECE)
    for _ in range(whole):
        crc = zlib.crc32(_ZEROS, crc)
    return zlib.crc32(_ZEROS[:rest], crc) & 0xFFFFFFFF


class MediaBody(Payload):
    """A file's bytes as ``head``, then ``pad`` zero bytes, then ``tail``, written in pieces
    of at most :data:`PIECE` bytes: a body of hundreds of MB costs a few hundred KB.

    ``cut_at``: stop after that many bytes and call ``on_cut`` (which closes the
    connection): the answer ends short of its ``Content-Length``. ``pieces`` and
    ``seconds``: send the body in that many pieces spread over that many real seconds.
    """

    def __init__(
        self,
        head: bytes,
        pad: int = 0,
        tail: bytes = b"",
        *,
        content_type: str,
        cut_at: int | None = None,
        on_cut: Callable[[], object] | None = None,
        pieces: int | None = None,
        seconds: float = 0.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(head, content_type=content_type)
        self.head = head
        self.pad = pad
        self.tail = tail
        self.length = len(head) + pad + len(tail)
        self._size = self.length
        self.cut_at = cut_at
        self.on_cut = on_cut
        self.pieces = pieces
        self.seconds = seconds
        self.sleep = sleep

    def shaped(self, **changes: Any) -> MediaBody:
        """The same bytes, cut short or paced (see the class)."""
        settings: dict[str, Any] = {
            "content_type": self.content_type,
            "cut_at": self.cut_at,
            "on_cut": self.on_cut,
            "pieces": self.pieces,
            "seconds": self.seconds,
            "sleep": self.sleep,
        }
        settings.update(changes)
        return MediaBody(self.head, self.pad, self.tail, **settings)

    def _segments(self) -> Iterator[bytes | memoryview]:
        """The body in pieces of at most :data:`PIECE` bytes."""
        head, tail = memoryview(self.head), memoryview(self.tail)
        for start in range(0, len(head), PIECE):
            yield head[start : start + PIECE]
        whole, rest = divmod(self.pad, PIECE)
        for _ in range(whole):
            yield _ZEROS
        if rest:
            yield memoryview(_ZEROS)[:rest]
        for start in range(0, len(tail), PIECE):
            yield tail[start : start + PIECE]

    def _pieces(self) -> Iterator[bytes | memoryview]:
        """The segments, re-cut to the paced piece size and stopped at ``cut_at``."""
        size = self.length
        step = PIECE if not self.pieces else max(1, -(-size // self.pieces))
        left = size if self.cut_at is None else min(size, self.cut_at)
        for segment in self._segments():
            view = memoryview(segment)
            for start in range(0, len(view), step):
                if left <= 0:
                    return
                piece = view[start : start + min(step, left)]
                left -= len(piece)
                yield piece

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Write the body (the part before ``cut_at``), pausing between paced pieces."""
        pause = self.seconds / self.pieces if self.pieces else 0.0
        first = True
        for piece in self._pieces():
            if pause and not first:
                await self.sleep(pause)
            first = False
            await writer.write(piece)
        if self.cut_at is not None and self.cut_at < self.length:
            await writer.drain()
            if self.on_cut is not None:
                self.on_cut()

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Not text: a short description (aiohttp asks only for logging)."""
        return f"<{self.length} bytes of {self.content_type}>"


def media_file(name: str, size: int = 0) -> MediaBody:
    """The file served as ``name`` (``.png`` or ``.mp4``), at least ``size`` bytes long.

    The same name always gives the same bytes. A PNG is padded with a :data:`PAD_CHUNK`
    chunk, an MP4 with its ``free`` box, so a padded file still opens as what it is; a
    requested size within a dozen bytes over the natural one gives a file a little longer.
    """
    if name.endswith(".mp4"):
        natural = len(MP4_STUB)
        pad = max(0, size - natural)
        ftyp_size = struct.unpack(">I", MP4_STUB[:4])[0]
        free = MP4_STUB[ftyp_size:]
        free_size = struct.unpack(">I", free[:4])[0]
        head = MP4_STUB[:ftyp_size] + struct.pack(">I", free_size + pad) + free[4:free_size]
        return MediaBody(head, pad, free[free_size:], content_type="video/mp4")
    png = png_for(name)
    pad = size - len(png) - 12  # a chunk's length, type and CRC take 12 bytes
    if pad < 0:
        return MediaBody(png, content_type="image/png")
    iend = len(png) - 12
    head = png[:iend] + struct.pack(">I", pad) + PAD_CHUNK
    tail = struct.pack(">I", _zeros_crc(PAD_CHUNK, pad)) + png[iend:]
    return MediaBody(head, pad, tail, content_type="image/png")


def signature(name: str, expires: int) -> str:
    """The ``Signature`` of the emulator's signed URL for file ``name`` until ``expires``."""
    message = f"{name}:{expires}".encode()
    return hmac.new(_SIGNING_KEY, message, hashlib.sha256).hexdigest()


def signed_query(name: str, expires: int) -> str:
    """The query of a signed URL: ``Expires=<unix>&Signature=<hex>``."""
    return f"Expires={expires}&Signature={signature(name, expires)}"
