"""Whether a saved output file is whole, read from the file's own structure.

A download renames its temporary file into place only once every byte was written, so a
crash of the process never leaves a half file under the final name. Without ``fsync``,
a power cut can: the name may reach the disk before the bytes, leaving an empty file, a
short one, or (on some file systems) one whose end reads as zeros. Such a file must be
fetched again, not skipped as done.

The formats the service produces say where they end, so the file itself tells: a PNG ends
with its ``IEND`` chunk, a JPEG with its end-of-image marker, a GIF with its trailer, a
WebP's RIFF header and an MP4's (or MOV's) top-level boxes add up to the file's length,
and so does a WebM's segment when it states its size. This needs no record beside the
file (nothing to lose or clutter the directory with) and also holds for files saved by
earlier versions or copied in by hand. A file of no format known here counts as whole when
it is not empty and neither its first nor its last bytes are all zeros.

Reading is a few small reads at the start and the end (for MP4, one per top-level box):
no whole file is read.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

__all__: list[str] = []

#: Bytes read at the start and at the end of a file.
_EDGE: Final = 32
#: The top-level MP4 boxes walked at most; beyond, a file is taken as whole (a real file
#: has a handful, a fragmented one a few thousand; a hostile one is not walked for ever).
MAX_BOXES: Final = 20_000

_PNG: Final = b"\x89PNG\r\n\x1a\n"
_PNG_END: Final = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_EBML: Final = b"\x1a\x45\xdf\xa3"
_SEGMENT: Final = b"\x18\x53\x80\x67"
#: Box types that may open an MP4 or QuickTime file.
_MP4_FIRST: Final = frozenset({b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"pnot"})


def is_whole(path: Path) -> bool:
    """Whether the file at ``path`` holds a whole file of its format (see the module).

    False when it cannot be opened as a regular file, too.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        size = info.st_size
        if not stat.S_ISREG(info.st_mode) or size == 0:
            return False
        head = os.pread(fd, _EDGE, 0)
        tail = os.pread(fd, _EDGE, max(0, size - _EDGE))
        return _whole(fd, size, head, tail)
    except OSError:
        return False
    finally:
        os.close(fd)


def _whole(fd: int, size: int, head: bytes, tail: bytes) -> bool:
    """The check for the format ``head`` names; the generic one for any other."""
    if head.startswith(_PNG):
        return tail.endswith(_PNG_END)
    if head.startswith(b"\xff\xd8\xff"):
        return tail.endswith(b"\xff\xd9")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return tail.endswith(b"\x3b")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        # The RIFF size counts what follows its 8-byte header, padded to an even length.
        return int.from_bytes(head[4:8], "little") + 8 == size
    if head[4:8] in _MP4_FIRST:
        return _boxes_fill(fd, size)
    if head.startswith(_EBML):
        return _ebml_fills(head, size) and any(tail)
    return any(head) and any(tail)


def _boxes_fill(fd: int, size: int) -> bool:
    """Whether the file's top-level MP4 boxes, read one header at a time, end exactly at
    its end (a box of size 0 runs to the end by definition, so only as the last)."""
    offset = 0
    for _ in range(MAX_BOXES):
        if offset == size:
            return True
        header = os.pread(fd, 16, offset)
        if len(header) < 8 or not _is_box_type(header[4:8]):
            return False
        length = int.from_bytes(header[:4], "big")
        if length == 1:
            if len(header) < 16:
                return False
            length = int.from_bytes(header[8:16], "big")
            if length < 16:
                return False
        elif length == 0:
            return True  # runs to the end of the file
        elif length < 8:
            return False
        offset += length
        if offset > size:
            return False
    return True  # more boxes than any real file has: not worth telling


def _is_box_type(kind: bytes) -> bool:
    """Whether ``kind`` is a box type: four printable ASCII characters (``©`` too)."""
    return all(0x20 <= c <= 0x7E or c == 0xA9 for c in kind)


def _ebml_fills(head: bytes, size: int) -> bool:
    """Whether a WebM's EBML header and segment end at the file's end (a segment of
    unknown size, as a live recording writes, runs to the end by definition)."""
    header = _vint(head, 4)
    if header is None:
        return False
    header_size, at = header
    start = at + header_size
    if start + 4 > size:
        return False
    if start + 12 > len(head):
        return True  # a long EBML header: its segment is past what was read; not told
    if head[start : start + 4] != _SEGMENT:
        return False
    segment = _vint(head, start + 4)
    if segment is None:
        return False
    segment_size, at = segment
    width = at - (start + 4)
    if segment_size == (1 << (7 * width)) - 1:
        return True  # unknown size
    return at + segment_size == size


def _vint(data: bytes, at: int) -> tuple[int, int] | None:
    """The EBML variable-length integer at ``data[at]`` (its marker bit removed) and the
    offset after it, or None if it is not one."""
    if at >= len(data) or data[at] == 0:
        return None
    first = data[at]
    width = 8 - first.bit_length() + 1
    if at + width > len(data):
        return None
    value = first & ((1 << (8 - width)) - 1)
    for byte in data[at + 1 : at + width]:
        value = (value << 8) | byte
    return value, at + width
