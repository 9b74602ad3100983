"""Whether a saved file is whole: read from its format's own structure, never from a record."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import pytest

from legnext_async._wholeness import is_whole
from legnext_async.emulator._media import MP4_STUB, png_for

if TYPE_CHECKING:
    from pathlib import Path

PNG = png_for("job_0.png")
JPEG = b"\xff\xd8\xff\xe0" + bytes(60) + b"\xff\xd9"
GIF = b"GIF89a" + bytes(40) + b"\x3b"
WEBP_BODY = b"WEBPVP8 " + bytes(30)
WEBP = b"RIFF" + struct.pack("<I", len(WEBP_BODY)) + WEBP_BODY
MP4 = MP4_STUB + struct.pack(">I", 24) + b"mdat" + bytes(16)
#: An MP4 whose last box is 64-bit sized.
MP4_LARGE = MP4_STUB + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 32) + bytes(16)
#: An EBML header (one element of 3 bytes) and a segment of 10 bytes, sizes known.
WEBM = b"\x1a\x45\xdf\xa3" + b"\x83" + b"\x42\x86\x81" + b"\x18\x53\x80\x67" + b"\x8a" + bytes(10)
#: The same with a segment of unknown size (all ones: a live recording).
WEBM_LIVE = b"\x1a\x45\xdf\xa3\x83\x42\x86\x81\x18\x53\x80\x67\xff" + b"\x01" * 20


@pytest.mark.parametrize(
    ("body", "whole"),
    [
        pytest.param(PNG, True, id="png"),
        pytest.param(PNG[:-1], False, id="png-cut-by-a-byte"),
        pytest.param(PNG[: len(PNG) // 2], False, id="png-cut-in-half"),
        pytest.param(PNG[:-12] + bytes(12), False, id="png-zero-tail"),
        pytest.param(JPEG, True, id="jpeg"),
        pytest.param(JPEG[:-2], False, id="jpeg-cut"),
        pytest.param(GIF, True, id="gif"),
        pytest.param(GIF[:-1], False, id="gif-cut"),
        pytest.param(WEBP, True, id="webp"),
        pytest.param(WEBP[:-4], False, id="webp-cut"),
        pytest.param(WEBP + bytes(8), False, id="webp-zeros-after"),
        pytest.param(MP4, True, id="mp4"),
        pytest.param(MP4_LARGE, True, id="mp4-64-bit-box"),
        pytest.param(MP4[:-1], False, id="mp4-cut"),
        pytest.param(MP4 + bytes(32), False, id="mp4-zero-tail"),
        pytest.param(MP4_STUB + struct.pack(">I", 0) + b"mdat" + bytes(9), True, id="mp4-to-end"),
        pytest.param(WEBM, True, id="webm"),
        pytest.param(WEBM[:-3], False, id="webm-cut"),
        pytest.param(WEBM_LIVE, True, id="webm-unknown-size"),
        pytest.param(b"some other format", True, id="unknown-format"),
        pytest.param(b"", False, id="empty"),
        pytest.param(bytes(len(PNG)), False, id="all-zeros"),
    ],
)
def test_a_file_is_whole_when_its_format_says_so(body: bytes, whole: bool, tmp_path: Path) -> None:
    """A file counts as whole only when it is not empty and its structure ends at its end."""
    path = tmp_path / "file"
    path.write_bytes(body)
    assert is_whole(path) is whole


def test_a_missing_file_or_a_directory_is_not_whole(tmp_path: Path) -> None:
    """No file, or a directory under the name, is not a saved file."""
    (tmp_path / "dir.png").mkdir()
    assert not is_whole(tmp_path / "missing.png")
    assert not is_whole(tmp_path / "dir.png")
