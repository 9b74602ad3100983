"""Output URLs point at the emulator and serve real PNGs and MP4 stubs."""

from __future__ import annotations

import struct
import zlib

from .conftest import Api


async def fetch(api: Api, url: str) -> tuple[int, str, bytes]:
    """GET an absolute URL without a key; return (status, content type, body)."""
    async with api.session.get(url) as response:
        return response.status, response.content_type, await response.read()


def png_size(data: bytes) -> tuple[int, int]:
    """Check a PNG's signature, IHDR and IDAT; return its (width, height)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 2)
    ihdr_crc = struct.unpack(">I", data[29:33])[0]
    assert ihdr_crc == zlib.crc32(data[12:29]) & 0xFFFFFFFF
    idat_len, idat = struct.unpack(">I4s", data[33:41])
    assert idat == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    assert data.endswith(b"IEND\xaeB`\x82")
    return width, height


async def test_grid_urls_serve_pngs(api: Api) -> None:
    """Every image URL of a finished grid serves a decodable PNG."""
    out = (await api.finished("diffusion", {"text": "x"}))["output"]
    for url in [out["image_url"], *out["image_urls"]]:
        assert url.startswith(api.emulator.url + "/files/")
        status, kind, body = await fetch(api, url)
        assert (status, kind) == (200, "image/png")
        assert png_size(body) == (64, 64)


async def test_images_differ_per_url(api: Api) -> None:
    """Different output images have different pixels."""
    out = (await api.finished("diffusion", {"text": "x"}))["output"]
    bodies = {(await fetch(api, url))[2] for url in out["image_urls"]}
    assert len(bodies) == 4


async def test_video_urls_serve_mp4(api: Api) -> None:
    """Video URLs serve an ISO-BMFF stub as video/mp4."""
    out = (await api.finished("video-diffusion", {"prompt": "https://e.x/a.png go"}))["output"]
    status, kind, body = await fetch(api, out["video_urls"][0])
    assert (status, kind) == (200, "video/mp4")
    assert body[4:8] == b"ftyp"


async def test_unknown_or_unfinished_files_are_404(api: Api) -> None:
    """Files of unfinished or unknown jobs are not served."""
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    assert (await fetch(api, f"{api.emulator.url}/files/{job_id}_0.png"))[0] == 404
    assert (await fetch(api, f"{api.emulator.url}/files/nope_0.png"))[0] == 404
    api.emulator.advance(3600)
    assert (await fetch(api, f"{api.emulator.url}/files/{job_id}_4.png"))[0] == 404
    assert (await fetch(api, f"{api.emulator.url}/files/{job_id}_3.png"))[0] == 200
