"""Output URLs point at the emulator and serve real PNGs and MP4 stubs."""

from __future__ import annotations

import struct
import zlib

import aiohttp
import pytest

from legnext_async.emulator import Fault
from legnext_async.emulator._media import png_for

from .conftest import Api, EmulatorFactory


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


# --- sizes, signed URLs and media faults -------------------------------------------------


def chunks(data: bytes) -> list[tuple[bytes, int]]:
    """Every chunk of a PNG as (type, data length), each CRC checked on the way."""
    found = []
    at = 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        found.append((kind, length))
        at += 12 + length
    return found


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    """Every top-level box of an MP4 as (type, size)."""
    found = []
    at = 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        found.append((kind, size))
        at += size
    return found


async def test_file_size_pads_a_png_with_a_private_chunk(
    make_emulator: EmulatorFactory, session: aiohttp.ClientSession
) -> None:
    """With ``file_size``, an image is exactly that long and still a valid PNG."""
    emulator = await make_emulator(file_size=300_000)
    api = Api(session, emulator)
    out = (await api.finished("diffusion", {"text": "x"}))["output"]
    status, kind, body = await fetch(api, out["image_urls"][2])
    assert (status, kind, len(body)) == (200, "image/png", 300_000)
    assert png_size(body) == (64, 64)
    assert [kind for kind, _ in chunks(body)] == [b"IHDR", b"IDAT", b"paDd", b"IEND"]


async def test_file_size_pads_an_mp4_with_its_free_box(
    make_emulator: EmulatorFactory, session: aiohttp.ClientSession
) -> None:
    """With ``file_size``, a video is exactly that long and its boxes add up."""
    emulator = await make_emulator(file_size=100_000)
    api = Api(session, emulator)
    out = (await api.finished("video-diffusion", {"prompt": "https://e.x/a.png go"}))["output"]
    _, kind, body = await fetch(api, out["video_urls"][1])
    assert (kind, len(body)) == ("video/mp4", 100_000)
    found = boxes(body)
    assert [kind for kind, _ in found] == [b"ftyp", b"free", b"mdat"]
    assert sum(size for _, size in found) == 100_000


async def test_signed_urls_expire_with_file_retention(
    make_emulator: EmulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Signed URLs carry Expires (creation + file retention) and answer 403 past it."""
    emulator = await make_emulator(signed_urls=True, file_retention=86_400.0)
    api = Api(session, emulator)
    task = await api.finished("diffusion", {"text": "x"})
    url = task["output"]["image_urls"][0]
    query = dict(part.split("=") for part in url.split("?", 1)[1].split("&"))
    assert int(query["Expires"]) == int(emulator.job(task["job_id"]).created_at + 86_400)
    assert len(query["Signature"]) == 64
    assert (await fetch(api, url))[0] == 200
    assert (await fetch(api, url.split("?")[0]))[0] == 403
    assert (await fetch(api, url[:-1] + ("0" if url[-1] != "0" else "1")))[0] == 403
    emulator.advance(86_400)
    status, kind, body = await fetch(api, url)
    assert (status, kind) == (403, "application/xml")
    assert b"Request has expired" in body


async def test_a_truncated_file_keeps_its_headers(api: Api) -> None:
    """``Fault.truncated(..., commit=True)`` on a file: its type and full length, half a body."""
    emulator = api.emulator
    out = (await api.finished("diffusion", {"text": "x"}))["output"]
    emulator.add_fault(Fault.truncated("GET /files/*", commit=True))
    async with api.session.get(out["image_urls"][0]) as response:
        assert response.content_type == "image/png"
        assert response.content_length == len(png_for(out["image_urls"][0].rsplit("/", 1)[1]))
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert emulator.requests[-1].fault == "truncate"


async def test_a_slow_file_arrives_whole(api: Api) -> None:
    """``Fault.slow`` sends the real body, in pieces."""
    out = (await api.finished("diffusion", {"text": "x"}))["output"]
    _, _, normal = await fetch(api, out["image_urls"][0])
    api.emulator.add_fault(Fault.slow("GET /files/*", 0.05, pieces=8))
    pieces = []
    async with api.session.get(out["image_urls"][0]) as response:
        async for piece in response.content.iter_any():
            pieces.append(piece)
    assert b"".join(pieces) == normal
    assert len(pieces) > 1


async def test_a_slow_json_answer_arrives_whole(api: Api) -> None:
    """``Fault.slow`` works on API answers too: the same JSON, trickled."""
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    api.emulator.add_fault(Fault.slow("GET /api/v1/job/*", 0.02, pieces=4))
    assert (await api.job(job_id))["job_id"] == job_id
