"""Tiny but valid media files served at the emulator's output URLs."""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib

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
