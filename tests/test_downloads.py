"""Saving output files: streamed, checked, retried, renamed into place, never with the key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tracemalloc
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pytest
from aiohttp import web

from legnext_async import (
    DownloadError,
    DownloadExpiredError,
    ImageResult,
    LegnextClient,
    Task,
    TaskResult,
    ValidationError,
    VideoResult,
)
from legnext_async._download import SMALL_FILE, WRITE_BATCH, expires_at, shown_url
from legnext_async._wholeness import is_whole
from legnext_async.emulator import Emulator, Fault

from .conftest import API_KEY, FAST_RETRY, SCALE, eventually
from .hostile import recording

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from .hostile import Recorder

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
T = TypeVar("T")
FILES = "GET /files/*"
JOB = "0d9e8f1a-2b3c-4d5e-8f6a-7b8c9d0e1f2a"


def file_requests(emulator: Emulator) -> list[str]:
    """The paths of the output files the emulator was asked for."""
    return [r.path for r in emulator.requests if r.path.startswith("/files/")]


def written(directory: Path) -> bool:
    """Whether a temporary file in ``directory`` holds bytes yet."""
    return any(p.stat().st_size for p in directory.glob(".*.part"))


async def mid_body(directory: Path) -> None:
    """Yield to the download until its temporary file in ``directory`` holds bytes, so that
    what comes next lands mid-body (a worker thread or the loop writes them, and nothing
    else could signal it)."""
    async with asyncio.timeout(10):
        while not written(directory):  # noqa: ASYNC110
            await asyncio.sleep(0)


def leftovers(directory: Path) -> list[str]:
    """Every name in ``directory``, hidden temporary files included."""
    return sorted(os.listdir(directory))


async def finished(client: LegnextClient, emulator: Emulator) -> ImageResult:
    """A completed four-image grid."""
    handle = await client.diffusion("a lighthouse at dusk")
    emulator.advance(3600)
    return await handle


def task_with(urls: list[str], *, task_type: str = "diffusion", **fields: Any) -> Task:
    """A completed task listing ``urls`` as its images (or videos, for a video type)."""
    key = "video_urls" if task_type.startswith("video") else "image_urls"
    data: dict[str, Any] = {
        "job_id": JOB,
        "task_type": task_type,
        "status": "completed",
        "output": {key: urls},
    }
    data.update(fields)
    return Task.from_json(data)


@contextlib.asynccontextmanager
async def file_host(
    respond: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[Recorder]:
    """A recording loopback host; ``recorder.base_url`` minus ``/api`` is its origin."""
    async with recording(respond) as recorder:
        recorder.base_url = recorder.base_url.removesuffix("/api")
        yield recorder


async def png_answer(request: web.Request) -> web.StreamResponse:
    """A small PNG."""
    return web.Response(body=PNG, content_type="image/png")


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the calls handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.calls = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


# --- the happy paths --------------------------------------------------------------------


async def test_a_result_saves_its_images_in_output_order(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """``result.download`` saves ``image_urls`` as ``<job_id>_<index>.png``, in order."""
    result = await finished(client, emulator)
    paths = await result.download(tmp_path / "out")
    assert [p.name for p in paths] == [f"{result.job_id}_{i}.png" for i in range(4)]
    bodies = [p.read_bytes() for p in paths]
    assert all(body.startswith(b"\x89PNG\r\n\x1a\n") for body in bodies)
    assert len(set(bodies)) == 4
    assert leftovers(tmp_path / "out") == sorted(p.name for p in paths)


async def test_a_video_result_saves_its_videos(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A video result's files are its ``video_urls``, saved as ``.mp4``."""
    parent = emulator.seed_job("diffusion", api_key=API_KEY)
    handle = await client.video_diffusion(job_id=parent, image_no=0)
    emulator.advance(3600)
    result = await handle
    assert isinstance(result, VideoResult)
    paths = await result.download(tmp_path)
    assert [p.name for p in paths] == [f"{result.job_id}_{i}.mp4" for i in range(4)]
    assert paths[0].read_bytes()[4:8] == b"ftyp"


async def test_the_client_downloads_by_job_id(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """``client.download(job_id, ...)`` reads the job, then saves its files."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    paths = await client.download(job_id, tmp_path)
    assert [p.name for p in paths] == [f"{job_id}_0.png"]
    assert [r.path for r in emulator.requests] == [
        f"/api/v1/job/{job_id}",
        f"/files/{job_id}_0.png",
    ]


async def test_a_result_restored_from_json_downloads_without_a_client(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A result with no client saves its files through a session of its own."""
    restored = TaskResult.from_json((await finished(client, emulator)).to_json())
    assert isinstance(restored, ImageResult)
    paths = await restored.download(tmp_path)
    assert len(paths) == 4
    assert all(p.stat().st_size > 0 for p in paths)


async def test_the_client_downloads_a_restored_result(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """``client.download`` takes a result restored from JSON, or its task."""
    result = await finished(client, emulator)
    restored = TaskResult.from_json(result.to_json())
    from_result = await client.download(restored, tmp_path / "a")
    from_task = await client.download(restored.task, tmp_path / "b")
    assert [p.name for p in from_result] == [p.name for p in from_task]


async def test_files_saved_before_are_skipped(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A second download of the same job requests nothing and returns the same paths."""
    result = await finished(client, emulator)
    first = await result.download(tmp_path)
    before = len(file_requests(emulator))
    assert await result.download(tmp_path) == first
    assert len(file_requests(emulator)) == before


async def test_only_missing_files_are_fetched(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """After one file is removed, only that one is requested again."""
    result = await finished(client, emulator)
    paths = await result.download(tmp_path)
    paths[2].unlink()
    before = len(file_requests(emulator))
    await result.download(tmp_path)
    assert file_requests(emulator)[before:] == [f"/files/{result.job_id}_2.png"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda body: b"", id="empty"),
        pytest.param(lambda body: body[: len(body) // 2], id="cut-short"),
        pytest.param(lambda body: bytes(len(body)), id="zeros"),
    ],
)
async def test_a_file_a_power_cut_left_broken_is_fetched_again(
    damage: Callable[[bytes], bytes],
    client: LegnextClient,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    """A file under its final name that is not whole is fetched again and replaced."""
    result = await finished(client, emulator)
    paths = await result.download(tmp_path)
    good = paths[1].read_bytes()
    paths[1].write_bytes(damage(good))
    before = len(file_requests(emulator))
    assert await result.download(tmp_path) == paths
    assert file_requests(emulator)[before:] == [f"/files/{result.job_id}_1.png"]
    assert paths[1].read_bytes() == good
    assert leftovers(tmp_path) == sorted(p.name for p in paths)


@pytest.mark.parametrize(
    ("client_option", "call_option", "synced"),
    [
        pytest.param(False, None, 0, id="default-off"),
        pytest.param(False, True, 4, id="call-on"),
        pytest.param(True, None, 4, id="client-on"),
        pytest.param(True, False, 0, id="call-off-over-client-on"),
    ],
)
async def test_fsync_flushes_each_file_when_asked(
    client_option: bool,
    call_option: bool | None,
    synced: int,
    client: LegnextClient,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each file is flushed to disk before its rename when the call or the client says so."""
    task = (await finished(client, emulator)).task
    flushed: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, fsync_downloads=client_option
    ) as saving:
        paths = await saving.download(task, tmp_path, fsync=call_option)
    assert len(flushed) == synced
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


async def test_fsync_without_a_client_is_honoured(
    client: LegnextClient, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result with no client flushes its files when ``fsync=True`` is passed."""
    restored = TaskResult.from_json((await finished(client, emulator)).to_json())
    assert isinstance(restored, ImageResult)
    flushed: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    await restored.download(tmp_path, fsync=True)
    assert len(flushed) == 4


async def test_a_big_file_streams_with_bounded_memory(tmp_path: Path) -> None:
    """A 128 MiB file is saved whole while Python's heap grows by less than 4 MiB."""
    size = 128 * 1024 * 1024
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, file_size=size) as emulator,
        LegnextClient(api_key=API_KEY, base_url=emulator.base_url) as client,
    ):
        task = await client.get_task(emulator.seed_job("upscale", api_key=API_KEY))
        tracemalloc.start()
        try:
            (path,) = await client.download(task, tmp_path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert path.stat().st_size == size
    assert peak < 4 * 1024 * 1024


async def test_a_big_file_with_fsync_is_saved_whole(tmp_path: Path) -> None:
    """With ``fsync=True``, a file long enough to start writeback as it streams is whole."""
    size = 20 * 1024 * 1024 + 12_345  # past two writeback steps (8 MiB), not a whole buffer
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, file_size=size) as emulator,
        LegnextClient(api_key=API_KEY, base_url=emulator.base_url) as client,
    ):
        task = await client.get_task(emulator.seed_job("upscale", api_key=API_KEY))
        (path,) = await client.download(task, tmp_path, fsync=True)
    assert path.stat().st_size == size
    assert is_whole(path)
    assert leftovers(tmp_path) == [path.name]


# --- failures, retries and what is left on disk ------------------------------------------


async def test_a_cut_off_body_is_retried(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A body that ends before its Content-Length is fetched again, and saved whole."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    emulator.add_fault(Fault.truncated(FILES, commit=True, times=2))
    (path,) = await client.download(job_id, tmp_path)
    assert len(file_requests(emulator)) == 3
    assert path.read_bytes().endswith(b"IEND\xaeB`\x82")
    assert leftovers(tmp_path) == [path.name]


async def test_a_body_always_cut_off_leaves_no_file(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """When every try is cut off, the error is transient and nothing stays on disk."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    emulator.add_fault(Fault.truncated(FILES, commit=True, times=None))
    with pytest.raises(DownloadError) as caught:
        await client.download(job_id, tmp_path)
    assert caught.value.transient
    assert (caught.value.job_id, caught.value.index) == (job_id, 0)
    assert len(file_requests(emulator)) == FAST_RETRY.attempts
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(0, id="small-written-on-the-loop"),
        pytest.param(SMALL_FILE + 3 * WRITE_BATCH, id="big-written-by-the-thread"),
    ],
)
async def test_a_body_cut_short_leaves_no_file_whatever_its_size(size: int, tmp_path: Path) -> None:
    """A body always cut short of its Content-Length is refused as transient, small or big,
    and leaves neither the file nor its temporary file."""
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, file_size=size) as emulator,
        LegnextClient(api_key=API_KEY, base_url=emulator.base_url, retry=FAST_RETRY) as client,
    ):
        job_id = emulator.seed_job("upscale", api_key=API_KEY)
        emulator.add_fault(Fault.truncated(FILES, commit=True, times=None))
        with pytest.raises(DownloadError) as caught:
            await client.download(job_id, tmp_path)
    assert caught.value.transient
    assert len(file_requests(emulator)) == FAST_RETRY.attempts
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("fsync", "trips"),
    [
        pytest.param(False, 0, id="default"),
        pytest.param(True, 1, id="fsync-in-a-thread"),
    ],
)
async def test_a_small_file_is_written_on_the_loop(fsync: bool, trips: int, tmp_path: Path) -> None:
    """A file of known length up to ``SMALL_FILE`` costs no trip to a worker thread (one
    for the flush with ``fsync``), and is saved whole under its final name only. (The
    first download into a folder also looks once for killed downloads' leftovers.)"""
    body = PNG + bytes(SMALL_FILE - len(PNG))
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="image/png")

    async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
        url = f"{host.base_url}/a.png"
        (first,) = await client.download(task_with([url], job_id="first"), tmp_path)
        executor.calls = 0
        (path,) = await client.download(task_with([url]), tmp_path, fsync=fsync)
    assert executor.calls == trips
    assert path.read_bytes() == body
    assert sorted(leftovers(tmp_path)) == sorted([first.name, path.name])


async def test_server_errors_are_retried(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """503s on a file are retried with the client's read policy."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    emulator.add_fault(Fault.http_status(FILES, 503, times=2))
    (path,) = await client.download(job_id, tmp_path)
    assert len(file_requests(emulator)) == 3
    assert path.exists()


async def test_client_errors_are_not_retried(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A 404 on a file is raised at once, naming the job, the file and the status."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    emulator.add_fault(Fault.http_status(FILES, 404, times=None))
    with pytest.raises(DownloadError) as caught:
        await client.download(job_id, tmp_path)
    assert caught.value.status == 404
    assert not caught.value.transient
    assert f"job {job_id}, file 0: HTTP 404" in str(caught.value)
    assert len(file_requests(emulator)) == 1


async def test_a_slow_body_is_saved_whole(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A body trickled in small pieces over a while is saved like any other."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    (fast,) = await client.download(job_id, tmp_path / "fast")
    emulator.add_fault(Fault.slow(FILES, 0.2, pieces=20))
    (slow,) = await client.download(job_id, tmp_path / "slow")
    assert slow.read_bytes() == fast.read_bytes()
    assert emulator.requests[-1].fault == "slow"


async def test_a_stalled_host_times_out_and_is_retried(tmp_path: Path) -> None:
    """A host that stops sending mid-body is given up on after the request timeout."""
    calls = 0
    release = asyncio.Event()

    async def stall_once(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = len(PNG)
        await response.prepare(request)
        await response.write(PNG[:10])
        if calls == 1:
            await release.wait()  # silent until the client has given up
        await response.write(PNG[10:])
        return response

    async with (
        file_host(stall_once) as host,
        LegnextClient(api_key=API_KEY, request_timeout=0.2, retry=FAST_RETRY) as client,
    ):
        paths = await client.download(task_with([f"{host.base_url}/a.png"]), tmp_path)
        release.set()
    assert calls == 2
    assert paths[0].read_bytes() == PNG


async def test_cancelling_leaves_no_file(tmp_path: Path) -> None:
    """A download cancelled mid-body leaves neither the file nor its temporary file."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 8 << 20
        await response.prepare(request)
        await response.write(bytes(3 << 20))  # more than a write batch (1 MiB)
        started.set()
        await release.wait()
        return response

    async with file_host(hang) as host, LegnextClient(api_key=API_KEY) as client:
        download = asyncio.ensure_future(
            client.download(task_with([f"{host.base_url}/a.png"]), tmp_path)
        )
        await started.wait()
        await mid_body(tmp_path)
        download.cancel()
        with pytest.raises(asyncio.CancelledError):
            await download
        release.set()
    assert leftovers(tmp_path) == []


async def test_cancelling_a_small_file_leaves_no_file(tmp_path: Path) -> None:
    """A small download (written on the event loop) cancelled mid-body leaves nothing."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = SMALL_FILE
        await response.prepare(request)
        await response.write(bytes(SMALL_FILE // 2))
        await release.wait()
        return response

    async with file_host(hang) as host, LegnextClient(api_key=API_KEY) as client:
        download = asyncio.ensure_future(
            client.download(task_with([f"{host.base_url}/a.png"]), tmp_path)
        )
        await mid_body(tmp_path)
        download.cancel()
        with pytest.raises(asyncio.CancelledError):
            await download
        release.set()
    assert leftovers(tmp_path) == []


#: A child process that downloads the one image of a task (argv: the image's URL, the
#: folder, the job id) and prints the path: a download in another process.
DOWNLOADER = """
import asyncio, sys
from legnext_async import LegnextClient, Task

async def main() -> None:
    url, folder, job_id = sys.argv[1:4]
    task = Task.from_json({"job_id": job_id, "task_type": "diffusion", "status": "completed",
                           "output": {"image_urls": [url]}})
    async with LegnextClient(api_key="k" * 32) as client:
        (path,) = await client.download(task, folder)
    print(path)

asyncio.run(main())
"""


async def downloader(url: str, folder: Path, job_id: str) -> asyncio.subprocess.Process:
    """A :data:`DOWNLOADER` child process saving ``url`` into ``folder``."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DOWNLOADER,
        url,
        str(folder),
        job_id,
        stdout=asyncio.subprocess.PIPE,
    )


def parts(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


@contextlib.asynccontextmanager
async def half_served(size: int = 2 * WRITE_BATCH) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A file host that sends half of a ``size``-byte image, then waits for the event."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = size
        await response.prepare(request)
        await response.write(PNG + bytes(size // 2 - len(PNG)))
        await release.wait()
        await response.write(bytes(size - size // 2))
        return response

    async with file_host(hang) as host:
        yield f"{host.base_url}/a.png", release
        release.set()


async def test_a_killed_downloads_temporary_file_is_removed_by_the_next_download(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A download SIGKILLed mid-body leaves its hidden temporary file; the next download
    into that folder, in another process, removes it (and says so), and leaves alone files
    that are not a download's temporary file."""
    caplog.set_level(logging.INFO, logger="legnext_async")
    mine = [".notes.part", "x.part", ".a_0.png.zzzzzzzz.part"]
    for name in mine:
        (tmp_path / name).write_bytes(b"the user's")
    (tmp_path / ".b_0.png.0123abcd.part").symlink_to(tmp_path / "x.part")
    async with half_served() as (url, _):
        child = await downloader(url, tmp_path, "killed")

        async def started() -> bool:
            return any(n.startswith(".killed_0.png.") for n in parts(tmp_path)) and written(
                tmp_path
            )

        await eventually(started, "the child's temporary file holds bytes")
        child.send_signal(signal.SIGKILL)
        await child.wait()
    [left] = [n for n in parts(tmp_path) if n.startswith(".killed_0")]

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=PNG, content_type="image/png")

    async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
        (path,) = await client.download(task_with([f"{host.base_url}/b.png"]), tmp_path)
    assert left not in os.listdir(tmp_path)
    assert sorted(parts(tmp_path)) == sorted([*mine, ".b_0.png.0123abcd.part"])
    assert path.read_bytes() == PNG
    assert any("removed 1 temporary file" in r.getMessage() for r in caplog.records)


async def test_a_live_download_in_another_process_keeps_its_temporary_file(
    tmp_path: Path,
) -> None:
    """A download in another process that is still receiving holds its temporary file: a
    download into the same folder leaves it, and the other one ends whole."""
    async with half_served() as (url, release):
        child = await downloader(url, tmp_path, "live")

        async def started() -> bool:
            return written(tmp_path)

        await eventually(started, "the child's temporary file holds bytes")
        [live] = parts(tmp_path)

        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(body=PNG, content_type="image/png")

        async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
            await client.download(task_with([f"{host.base_url}/b.png"]), tmp_path)
        assert parts(tmp_path) == [live]
        release.set()
        out, _ = await child.communicate()
    assert child.returncode == 0
    saved = tmp_path / "live_0.png"
    assert out.decode().strip() == str(saved)
    assert saved.stat().st_size == 2 * WRITE_BATCH
    assert parts(tmp_path) == []


#: A child process that sweeps a folder (argv) for killed downloads' temporary files, as
#: fast as it can, until it is terminated.
SWEEPER = """
import sys
from legnext_async._download import _sweep

print("sweeping", flush=True)
while True:
    _sweep(sys.argv[1])
"""


async def test_a_sweep_in_another_process_never_takes_a_download_in_progress(
    tmp_path: Path,
) -> None:
    """While another process sweeps the folder without pause, 400 files downloaded into it
    are all saved whole: a temporary file is held from its making to its rename."""
    sweeper = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SWEEPER, str(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    assert sweeper.stdout is not None
    assert await sweeper.stdout.readline() == b"sweeping\n"
    body = PNG + bytes(64 * 1024)

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="image/png")

    try:
        async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
            urls = [f"{host.base_url}/{n}.png" for n in range(4)]
            for n in range(100):
                paths = await client.download(task_with(urls, job_id=f"job{n}"), tmp_path)
                assert [p.read_bytes() == body for p in paths] == [True] * 4
    finally:
        sweeper.terminate()
        await sweeper.wait()
    assert parts(tmp_path) == []
    assert len(os.listdir(tmp_path)) == 400


# --- what is checked ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "saved"),
    [
        pytest.param("image/png", True, id="image"),
        pytest.param("application/octet-stream", True, id="octet-stream"),
        pytest.param("text/html", False, id="html"),
        pytest.param("video/mp4", False, id="video-for-an-image"),
    ],
)
async def test_the_content_type_must_fit_the_kind(
    content_type: str, saved: bool, tmp_path: Path
) -> None:
    """An image must come as ``image/*`` (or a generic octet stream); else it is refused."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=PNG, content_type=content_type)

    async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
        task = task_with([f"{host.base_url}/a.png"])
        if saved:
            assert (await client.download(task, tmp_path))[0].read_bytes() == PNG
        else:
            with pytest.raises(DownloadError, match=content_type):
                await client.download(task, tmp_path)
            assert len(host.requests) == 1  # not retried
            assert leftovers(tmp_path) == []


async def test_a_file_over_the_cap_is_refused_from_its_length(
    client: LegnextClient, tmp_path: Path
) -> None:
    """A Content-Length over ``max_download_bytes`` is refused before the body is read."""
    async with (
        Emulator(api_key=API_KEY, file_size=1 << 20) as emulator,
        LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, max_download_bytes=100_000
        ) as small,
    ):
        with pytest.raises(DownloadError, match="over the limit of 100000"):
            await small.download(emulator.seed_job("upscale", api_key=API_KEY), tmp_path)
    assert leftovers(tmp_path) == []


async def test_a_body_without_length_stops_at_the_cap(tmp_path: Path) -> None:
    """A chunked body that runs past the cap is cut off, and nothing is kept."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(100):
                await response.write(bytes(10_000))
        return response

    async with (
        file_host(endless) as host,
        LegnextClient(api_key=API_KEY, max_download_bytes=50_000) as client,
    ):
        with pytest.raises(DownloadError, match="longer than the limit of 50000"):
            await client.download(task_with([f"{host.base_url}/a.png"]), tmp_path)
    assert leftovers(tmp_path) == []


async def test_the_api_key_is_never_sent_to_the_file_host(tmp_path: Path) -> None:
    """Status reads carry the key; file requests to the same host never do."""
    headers: list[tuple[str, bool]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        headers.append((request.path, "x-api-key" in request.headers))
        if request.path.startswith("/api/v1/job/"):
            origin = f"http://{request.host}"
            return web.json_response(
                {
                    "job_id": JOB,
                    "task_type": "diffusion",
                    "status": "completed",
                    "output": {"image_urls": [f"{origin}/f/{i}.png" for i in range(2)]},
                }
            )
        return await png_answer(request)

    async with (
        file_host(answer) as host,
        LegnextClient(api_key=API_KEY, base_url=f"{host.base_url}/api") as client,
    ):
        await client.download(JOB, tmp_path)
    assert sorted(headers) == [
        ("/api/v1/job/" + JOB, True),
        ("/f/0.png", False),
        ("/f/1.png", False),
    ]


async def test_a_signed_url_past_expires_sends_nothing(tmp_path: Path) -> None:
    """An expired signed URL raises before any file is requested, without its signature."""
    signature = "5f" * 32

    async def answer(request: web.Request) -> web.StreamResponse:
        origin = f"http://{request.host}"
        urls = [f"{origin}/f/{i}.png?Expires=1700000000&Signature={signature}" for i in range(4)]
        urls[0] = f"{origin}/f/0.png"  # one unsigned file: still nothing is fetched
        return web.json_response(
            {
                "job_id": JOB,
                "task_type": "diffusion",
                "status": "completed",
                "output": {"image_urls": urls},
            }
        )

    async with (
        file_host(answer) as host,
        LegnextClient(api_key=API_KEY, base_url=f"{host.base_url}/api") as client,
    ):
        with pytest.raises(DownloadExpiredError) as caught:
            await client.download(JOB, tmp_path)
    assert [seen.target for seen in host.requests] == [f"/api/v1/job/{JOB}"]
    error = caught.value
    assert (error.index, error.expires) == (1, 1700000000)
    assert "2023-11-14T22:13:20Z" in str(error)
    assert signature not in str(error)
    assert "Signature" not in str(error)
    assert API_KEY not in str(error)


async def test_a_refused_signed_url_does_not_show_its_signature(
    tmp_path: Path,
) -> None:
    """A 403 on a signed URL names the file and hints at expiry, never the signature."""
    async with (
        Emulator(api_key=API_KEY, time_scale=SCALE, signed_urls=True) as emulator,
        LegnextClient(api_key=API_KEY, base_url=emulator.base_url, retry=FAST_RETRY) as client,
    ):
        job_id = emulator.seed_job("upscale", api_key=API_KEY)
        task = await client.get_task(job_id)
        emulator.advance(31 * 86_400)  # the emulator's files expire on its own clock
        with pytest.raises(DownloadError) as caught:
            await client.download(task, tmp_path)
    message = str(caught.value)
    assert "HTTP 403; a signed URL may have expired" in message
    assert "Signature" not in message
    assert API_KEY not in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param("http://files.example/a.png", r"http:// to files\.example", id="http"),
        pytest.param("http://10.0.0.1/a.png", r"http:// to 10\.0\.0\.1", id="http-ip"),
    ],
)
async def test_plain_http_to_another_host_is_refused(url: str, why: str, tmp_path: Path) -> None:
    """Plain http:// to a host other than loopback is refused before any connection."""
    async with LegnextClient(api_key=API_KEY) as client:
        with pytest.raises(DownloadError, match=why):
            await client.download(task_with([url]), tmp_path)
    assert leftovers(tmp_path) == []


async def test_a_url_with_a_malformed_host_is_refused(tmp_path: Path) -> None:
    """A task built by hand with an unreadable URL gets a DownloadError, not a ValueError."""
    task = task_with(["http://127.0.0.1/a.png"])
    broken = attrs.evolve(task, output=attrs.evolve(task.output, image_urls=("http://[::1/a.png",)))
    async with LegnextClient(api_key=API_KEY) as client:
        with pytest.raises(DownloadError, match="not an absolute http"):
            await client.download(broken, tmp_path)
    assert leftovers(tmp_path) == []


async def test_redirects_are_followed_and_bounded(tmp_path: Path) -> None:
    """Two redirects lead to the file; a loop of them ends after five with an error."""

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/a.png":
            raise web.HTTPFound("/b")
        if request.path == "/b":
            raise web.HTTPTemporaryRedirect(f"http://{request.host}/c")
        if request.path == "/loop":
            raise web.HTTPFound("/loop")
        return await png_answer(request)

    async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
        (path,) = await client.download(task_with([f"{host.base_url}/a.png"]), tmp_path / "a")
        assert path.read_bytes() == PNG
        with pytest.raises(DownloadError, match="more than 5 redirects"):
            await client.download(task_with([f"{host.base_url}/loop"]), tmp_path / "b")
    assert [seen.target for seen in host.requests[:3]] == ["/a.png", "/b", "/c"]
    assert len(host.requests) == 3 + 6


async def test_a_redirect_to_plain_http_elsewhere_is_refused(tmp_path: Path) -> None:
    """A redirect is checked like the first URL: plain http:// elsewhere is not followed."""

    async def answer(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://files.example/a.png")

    async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
        with pytest.raises(DownloadError, match=r"plain http:// to files\.example"):
            await client.download(task_with([f"{host.base_url}/a.png"]), tmp_path)


async def test_names_come_from_the_job_never_from_the_host(tmp_path: Path) -> None:
    """Path tricks in the URL and a server-chosen file name cannot leave the directory."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=PNG,
            content_type="image/webp",
            headers={"Content-Disposition": 'attachment; filename="../../evil.png"'},
        )

    target = tmp_path / "inside"
    async with file_host(answer) as host, LegnextClient(api_key=API_KEY) as client:
        urls = [f"{host.base_url}/x/..%2F..%2Fevil.sh", f"{host.base_url}/y/../../evil.png"]
        paths = await client.download(task_with(urls), target)
    assert [p.name for p in paths] == [f"{JOB}_0.webp", f"{JOB}_1.png"]
    assert leftovers(tmp_path) == ["inside"]
    assert leftovers(target) == [f"{JOB}_0.webp", f"{JOB}_1.png"]


async def test_files_share_the_request_budget(tmp_path: Path) -> None:
    """With one request allowed at a time, four files are fetched one after another."""
    in_flight = 0
    most = 0

    async def answer(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = len(PNG)
        await response.prepare(request)
        await response.write(PNG)
        in_flight -= 1
        return response

    async with (
        file_host(answer) as host,
        LegnextClient(api_key=API_KEY, max_concurrent_requests=1) as client,
    ):
        urls = [f"{host.base_url}/{i}.png" for i in range(4)]
        assert len(await client.download(task_with(urls), tmp_path)) == 4
    assert (most, len(host.requests)) == (1, 4)


# --- what cannot be downloaded -----------------------------------------------------------


async def test_a_text_job_has_no_files(client: LegnextClient, tmp_path: Path) -> None:
    """A describe job produced text: ``download`` says so before sending anything."""
    task = Task.from_json(
        {"job_id": JOB, "task_type": "describe", "status": "completed", "output": {}}
    )
    with pytest.raises(ValidationError, match="describe job: it produced text"):
        await client.download(task, tmp_path)


async def test_an_unfinished_job_has_no_files_yet(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """A job still running raises an error saying it has no files yet."""
    handle = await client.diffusion("a lighthouse")
    with pytest.raises(DownloadError, match="the job is pending; it has files only once"):
        await client.download(handle.job_id, tmp_path)


async def test_a_directory_that_is_a_file_is_refused(client: LegnextClient, tmp_path: Path) -> None:
    """A ``directory`` that cannot be made raises a ValidationError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValidationError, match="directory: cannot be made"):
        await client.download(task_with(["http://127.0.0.1:9/a.png"]), blocker)


# --- pure helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expires"),
    [
        pytest.param(
            "https://i.example/a.png?Expires=1761100000&Signature=ab", 1761100000, id="signed"
        ),
        pytest.param("https://i.example/a.png?expires=12", 12, id="lower-case"),
        pytest.param("https://i.example/a.png?Expires=soon", None, id="not-a-number"),
        pytest.param("https://i.example/a.png", None, id="unsigned"),
    ],
)
def test_expires_is_read_from_the_query(url: str, expires: int | None) -> None:
    """``Expires`` is read as Unix seconds; anything else counts as no expiry."""
    assert expires_at(url) == expires


def test_urls_are_shown_without_query_or_user_info() -> None:
    """Error messages show scheme, host, port and path only."""
    shown = shown_url("https://user:pw@i.example:8443/d/a.png?Expires=1&Signature=cafe#x")
    assert shown == "https://i.example:8443/d/a.png"


def test_client_options_are_checked() -> None:
    """``max_download_bytes`` below 1 is refused, naming the option."""
    with pytest.raises(ValidationError, match="max_download_bytes"):
        LegnextClient(api_key=API_KEY, max_download_bytes=0)


def test_the_fsync_option_must_be_a_bool() -> None:
    """``fsync_downloads`` other than True or False is refused, naming the option."""
    with pytest.raises(ValidationError, match="fsync_downloads"):
        LegnextClient(api_key=API_KEY, fsync_downloads="yes")  # type: ignore[arg-type]


async def test_a_bad_fsync_argument_sends_nothing(
    client: LegnextClient, emulator: Emulator, tmp_path: Path
) -> None:
    """``download(..., fsync=1)`` is refused, naming ``fsync``, before the job is read."""
    job_id = emulator.seed_job("upscale", api_key=API_KEY)
    with pytest.raises(ValidationError, match="fsync"):
        await client.download(job_id, tmp_path, fsync=1)  # type: ignore[arg-type]
    assert emulator.requests == []
