"""Saving a job's output files: streamed to disk, checked, renamed into place when whole.

A file is read in pieces and written under a temporary name in the target directory
(``.<name>.<random>.part``); once every byte arrived and the length matched, it is renamed
(``os.replace``) to ``<job_id>_<index><ext>``, flushed to disk first when asked
(``fsync``, always in a worker thread). A file of up to :data:`SMALL_FILE` bytes is written
on the event loop as it arrives, 64 KiB at a time, as a plain aiohttp loop writes; a longer
one (or one of unknown length) is handed, a batch at a time, to a worker thread, so a big
file never keeps the loop waiting on the disk. Memory stays bounded whatever the size, and
no half file ever carries the final name: a failure, a cancellation or a crash of the
process leaves at most a hidden ``.part`` file, removed on the way out when the process
lives. Without
``fsync`` only a power cut could leave a final name on a file cut short, and the check for
saved files sees that (:mod:`._wholeness`).

Before any request: a whole file under the final name is taken as done (skipped), a plain
``http://`` URL to a host other than loopback is refused unless allowed, and a signed URL
past its ``Expires`` raises :class:`DownloadExpiredError`. No request carries the API key."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
import attrs
from aiohttp import hdrs

from ._budget import RequestBudget
from ._clock import LOOP_CLOCK
from ._exceptions import DownloadError, DownloadExpiredError, ValidationError
from ._models import TaskStatus
from ._retry import RetryPolicy, parse_retry_after, retry_call
from ._validation import is_http_url, is_job_id, is_loopback_host
from ._wholeness import is_whole

if sys.platform != "win32":  # no flock on Windows: temporary files are left to the user
    import fcntl

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._clock import Clock
    from ._models import Task

__all__: list[str] = []

logger = logging.getLogger("legnext_async")

#: The name of a download's temporary file (:class:`_PartFile`): ``.<job_id>_<index><ext>
#: .<8 hex digits>.part``. Only such names are ever removed by :func:`_sweep`.
_PART_NAME: Final = re.compile(
    r"\.[A-Za-z0-9_-]{1,128}_[0-9]{1,4}\.[a-z0-9]{1,5}\.[0-9a-f]{8}\.part"
)
#: Folders this process has rid of the temporary files of killed downloads (:func:`_sweep`).
_SWEPT: Final[set[str]] = set()
#: Tries at making a temporary file that no sweep removed before it was held (a sweep
#: removes only files nobody holds; one made and not yet held may be taken for one).
_PART_TRIES: Final = 3

#: The largest file saved unless the client says otherwise: a Midjourney image is a few
#: MB and a video some tens; a gigabyte is room for any of them, and the most a hostile
#: host can make the client write.
DEFAULT_MAX_DOWNLOAD_BYTES: Final = 1 << 30
#: Redirects followed for one file (each one checked like the first URL).
MAX_REDIRECTS: Final = 5
#: Bytes gathered in a buffer before they go to the writer thread (one buffer is written
#: while the other fills). A thread hop costs 30 to 200 µs on a busy machine, so at 128 KiB
#: a fast transfer spent a sixth of its time hopping; at 1 MiB the hops are lost in the
#: copy, and memory stays bounded: two buffers and aiohttp's own, about 3 MiB whatever the
#: file's size. Writing earlier, in smaller batches, measured no
#: faster: the extra hops cost what the overlap saves.
WRITE_BATCH: Final = 1024 * 1024
#: The longest file (by its Content-Length) written on the event loop as it arrives, like
#: a plain aiohttp loop writes: no buffer to fill and no trip to a thread. Through the
#: thread, a 1 MB file cost two trips (30 to 200 µs each), a copy into the buffer, and a
#: write that could start only once the whole body was in: about a third of its time over
#: loopback. Each write here is one piece of :data:`SMALL_PIECE` (tens of µs into the page
#: cache), so the loop waits no longer than a plain aiohttp loop's; a Midjourney image is a
#: few MB. Longer files, and files of unknown length, go through the writer thread, which
#: overlaps the disk with the network and keeps a slow disk off the loop.
SMALL_FILE: Final = 4 * 1024 * 1024
#: The pieces a small file is read and written in. Taken as aiohttp receives them (up to
#: 256 KiB each), about a megabyte of them was alive at once and freed at once, and the C
#: allocator gave that memory back to the system after each file and took it again for
#: the next: about 140 page faults per MB in the benchmark, a sixth of a 1 MB file's time,
#: where the plain aiohttp loop, reading 64 KiB at a time, had none. Read the same way,
#: a small file costs the allocator what that loop costs it.
SMALL_PIECE: Final = 64 * 1024
#: Buffers a downloader keeps between downloads. Buffers are reused rather than the
#: received pieces kept: a megabyte of fresh 256 KiB pieces per batch made the allocator
#: map and fault in new pages all the time (eight times the page faults of a plain loop,
#: a third more CPU per MB), where copying into a warm buffer costs one memcpy.
SPARE_BUFFERS: Final = 4
#: With ``fsync``: bytes written between two requests that the kernel start writing them to
#: disk (``sync_file_range`` on Linux), so the disk works while the network does and the
#: final ``fsync`` finds little left to do. (``posix_fadvise(POSIX_FADV_DONTNEED)`` does
#: start writeback too, but also drops pages and drains every CPU's page lists: measured
#: up to a third slower than no advice at 256 MB, where ``sync_file_range`` was fastest.)
WRITEBACK_STEP: Final = 8 * 1024 * 1024
#: Files of one job saved at once (each also takes a place in the client's request budget).
FILES_IN_FLIGHT: Final = 4
#: The longest URL fragment an error message shows.
_SHOWN_URL_MAX: Final = 200

Kind = Literal["image", "video"]

#: The extensions a file may be saved with, by URL path suffix, per kind.
_SUFFIXES: Final[dict[Kind, dict[str, str]]] = {
    "image": {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".webp": ".webp", ".gif": ".gif"},
    "video": {".mp4": ".mp4", ".webm": ".webm", ".mov": ".mov"},
}
#: The extension for a content type, when the URL's path has none of the above.
_TYPE_SUFFIXES: Final[dict[str, str]] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
}
#: When neither the URL nor the content type says (the service's own files are PNG, MP4).
_DEFAULT_SUFFIX: Final[dict[Kind, str]] = {"image": ".png", "video": ".mp4"}
#: Content types that say nothing of the kind, which object stores use for any upload;
#: accepted for either kind (the URL's suffix or the kind then names the file).
_GENERIC_TYPES: Final = frozenset({"application/octet-stream", "binary/octet-stream"})
#: Sent with every file request: never the API key. ``identity`` so that Content-Length
#: counts the bytes saved.
_HEADERS: Final = {"Accept": "image/*, video/*, */*;q=0.5", "Accept-Encoding": "identity"}
#: Statuses a later try may not meet again.
_TRANSIENT_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


@attrs.frozen
class OutputFile:
    """One file a job produced: image or video number ``index`` at ``url``."""

    job_id: str
    index: int
    url: str
    kind: Kind
    #: The extension the URL's path names, if it is one allowed for this kind (read once:
    #: both the check for a saved file and the new file's name need it).
    suffix: str | None = attrs.field(init=False, eq=False, repr=False)

    @suffix.default
    def _path_suffix(self) -> str | None:
        try:
            path = urlsplit(self.url).path
        except ValueError:
            return None
        dot = path.rfind(".")
        if dot < path.rfind("/"):
            return None
        return _SUFFIXES[self.kind].get(path[dot:].lower()) if dot >= 0 else None

    @property
    def where(self) -> str:
        """The URL as errors show it: no query (a signature), no fragment, no user info."""
        return shown_url(self.url)

    def names(self) -> tuple[str, ...]:
        """The names this file may have been saved under: with the URL's extension if it
        names one, else with any extension allowed for its kind."""
        stem = f"{self.job_id}_{self.index}"
        suffix = self.suffix
        if suffix is not None:
            return (stem + suffix,)
        return tuple(stem + ext for ext in dict.fromkeys(_SUFFIXES[self.kind].values()))

    def name_for(self, content_type: str) -> str:
        """The file name: the URL's extension, else the content type's, else the kind's."""
        suffix = self.suffix or _TYPE_SUFFIXES.get(content_type) or _DEFAULT_SUFFIX[self.kind]
        return f"{self.job_id}_{self.index}{suffix}"


def shown_url(url: str) -> str:
    """``url`` without its query, fragment and user info, cut to a readable length."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "an unreadable URL"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}{port}{parts.path}"
    return shown if len(shown) <= _SHOWN_URL_MAX else shown[: _SHOWN_URL_MAX - 3] + "..."


def expires_at(url: str) -> int | None:
    """The Unix time a signed URL's ``Expires`` query parameter names, if it has one.

    Any letter case of the name is read; a value that is not a whole number is ignored
    (the host then decides).
    """
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    return _expires_in(query)


def _expires_in(query: str) -> int | None:
    """:func:`expires_at` of a URL's query string."""
    if not query:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() == "expires":
            text = value.strip()
            if text.isascii() and text.isdigit() and len(text) <= 12:
                return int(text)
    return None


def output_files(task: Task) -> tuple[OutputFile, ...]:
    """The files a completed job produced, in output order (image or video number order).

    Images are ``image_urls``; a job that lists none but has an ``image_url`` has that one
    file (number 0). The grid image of a four-image job is not one of them.

    Raises:
        ValidationError: the job produced text, not files.
        DownloadError: the job is not completed, has no usable id, or lists no file.
    """
    job_id = task.job_id
    if not is_job_id(job_id):
        # The id names the files: one that could leave the directory is never used.
        raise DownloadError(
            job_id=repr(job_id[:40]),
            index=None,
            reason="the job's id is not a job id, so it cannot name a file",
        )
    family = task.task_type.family
    if family == "text":
        raise ValidationError(
            "target", f"job {job_id} is a {task.task_type.value} job: it produced text, no files"
        )
    if task.status is not TaskStatus.COMPLETED:
        raise DownloadError(
            job_id=job_id,
            index=None,
            reason=f"the job is {task.status.value}; it has files only once completed",
        )
    output = task.output
    images = output.image_urls or ((output.image_url,) if output.image_url else ())
    # A task type this client does not know counts as an image job; its videos still count.
    kind: Kind = "video" if family == "video" or (not images and output.video_urls) else "image"
    urls = output.video_urls if kind == "video" else images
    if not urls:
        raise DownloadError(job_id=job_id, index=None, reason="the job lists no output file")
    return tuple(OutputFile(job_id, index, url, kind) for index, url in enumerate(urls))


def is_transient(exc: BaseException) -> bool:
    """Whether a failed download may simply be tried again."""
    return isinstance(exc, DownloadError) and exc.transient


class Downloader:
    """Saves output files through a session, sharing the client's request budget.

    ``session`` gives the aiohttp session to use (called for each file); ``budget`` holds a
    place for the whole of each file's transfer. ``read_timeout``: seconds the host may
    stay silent (a slow but steady transfer never times out); ``now`` is the wall clock
    that signed URLs' ``Expires`` are compared with. ``fsync``: whether files reach the disk
    before they take their name, unless a call says otherwise.
    """

    def __init__(
        self,
        *,
        session: Callable[[], aiohttp.ClientSession],
        budget: RequestBudget,
        allow_insecure_http: bool = False,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        read_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        now: Callable[[], float] = time.time,
        fsync: bool = False,
    ) -> None:
        self._session = session
        self._budget = budget
        self.allow_insecure_http = allow_insecure_http
        self.max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._now = now
        self.fsync = fsync
        self._spare: list[bytearray] = []  # write buffers, reused (only on the event loop)

    async def download(
        self,
        task: Task,
        directory: str | os.PathLike[str],
        *,
        retry: RetryPolicy,
        clock: Clock,
        fsync: bool | None = None,
    ) -> tuple[Path, ...]:
        """Save the job's files in ``directory`` (made if missing); their paths, in order.

        Files saved already are skipped: a file under its final name that
        :func:`~legnext_async._wholeness.is_whole` takes as whole (one cut short by a power
        cut is fetched again and replaced). Every other file is checked first
        (scheme, expiry), then fetched, up to :data:`FILES_IN_FLIGHT` at once, each retried
        on transient failures as ``retry`` says. When some fail, those that completed stay
        (and are skipped next time) and the first failure in output order is raised.
        ``fsync`` (``None``: the downloader's setting) flushes each file to disk before
        its rename.
        """
        files = output_files(task)
        folder = _folder(directory)
        try:
            # The usual case, no file saved yet, costs a few failed stat calls on the loop;
            # reading a file to see whether it is whole happens in a thread.
            if _any_named(folder, files):
                found = await asyncio.to_thread(_existing, folder, files)
            else:
                found = [None] * len(files)
        except OSError as exc:
            raise ValidationError(
                "directory", f"cannot be made or read: {exc.strerror or type(exc).__name__}"
            ) from exc
        todo = [file for file, path in zip(files, found, strict=True) if path is None]
        for file in todo:
            self._check_url(file.url, file)
        where = os.fspath(folder)
        if where not in _SWEPT:
            # Once per folder and process: what a process killed mid-download left is found
            # at the next start; a download of this process removes its own on the way out.
            _SWEPT.add(where)
            removed = await asyncio.to_thread(_sweep, where)
            if removed:
                logger.info(
                    "removed %d temporary file(s) that interrupted downloads left in %s",
                    removed,
                    where,
                )
        gate = asyncio.Semaphore(FILES_IN_FLIGHT)
        durable = self.fsync if fsync is None else fsync

        async def fetch(file: OutputFile) -> Path:
            async with gate:
                return await retry_call(
                    retry,
                    lambda: self._fetch(file, folder, fsync=durable),
                    retry_if=is_transient,
                    clock=clock,
                )

        outcomes: list[Path | BaseException]
        if len(todo) == 1:
            # One file (an upscale's): no task to gather it in, one trip round the loop fewer.
            outcomes = [await fetch(todo[0])]
        else:
            outcomes = await asyncio.gather(*(fetch(file) for file in todo), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # KeyboardInterrupt and the like: never turned into a result
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        fetched = iter(outcomes)
        return tuple(path if path is not None else _path_of(next(fetched)) for path in found)

    def _check_url(self, url: str, file: OutputFile) -> None:
        """Refuse a URL before anything is sent to it: wrong scheme, plain http to another
        host (unless allowed), or a signed URL already expired."""
        try:
            parts = urlsplit(url) if is_http_url(url) else None
            host = parts.hostname if parts is not None else None
        except ValueError:  # a malformed host, such as an IPv6 address missing its "]"
            parts = host = None
        if parts is None or not host:
            raise DownloadError(
                job_id=file.job_id,
                index=file.index,
                reason="the URL is not an absolute http(s) URL",
                where=shown_url(url),
            )
        if parts.scheme == "http" and not self.allow_insecure_http and not is_loopback_host(host):
            raise DownloadError(
                job_id=file.job_id,
                index=file.index,
                reason=f"plain http:// to {host} refused (anyone on the way could change the"
                " file); pass allow_insecure_http=True to the client to allow it",
                where=shown_url(url),
            )
        expires = _expires_in(parts.query)
        if expires is not None and expires <= self._now():
            raise DownloadExpiredError(
                job_id=file.job_id, index=file.index, where=shown_url(url), expires=expires
            )

    async def _fetch(self, file: OutputFile, folder: Path, *, fsync: bool) -> Path:
        """One try at one file, redirects followed (each hop checked): its saved path."""
        url = file.url
        async with self._budget:
            for _ in range(MAX_REDIRECTS + 1):
                session = self._session()
                try:
                    async with session.get(
                        url,
                        headers=_HEADERS,
                        allow_redirects=False,
                        auto_decompress=False,
                        timeout=self._timeout,
                    ) as response:
                        status = response.status
                        if status in (301, 302, 303, 307, 308):
                            url = self._next_hop(file, url, response.headers.get(hdrs.LOCATION))
                            continue
                        self._check_answer(file, url, response)
                        return await self._save(file, folder, response, url, fsync=fsync)
                except aiohttp.ClientPayloadError as exc:
                    raise _lost(file, url, "the body was cut off") from exc
                except (aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError) as exc:
                    raise _lost(file, url, "the host stopped answering") from exc
                except TimeoutError as exc:
                    raise _lost(file, url, "the host stopped answering") from exc
                except aiohttp.ClientConnectorError as exc:
                    raise _lost(file, url, f"could not connect: {exc.os_error}") from exc
                except aiohttp.ClientError as exc:
                    raise _lost(file, url, f"connection lost: {type(exc).__name__}") from exc
            raise DownloadError(
                job_id=file.job_id,
                index=file.index,
                reason=f"more than {MAX_REDIRECTS} redirects",
                where=shown_url(file.url),
            )

    def _next_hop(self, file: OutputFile, url: str, location: str | None) -> str:
        """Where a redirect leads, checked as the first URL was."""
        if not location:
            raise DownloadError(
                job_id=file.job_id,
                index=file.index,
                reason="a redirect with no Location",
                where=shown_url(url),
            )
        try:
            target = urljoin(url, location)
        except ValueError:
            target = ""
        self._check_url(target, file)
        return target

    def _check_answer(self, file: OutputFile, url: str, response: aiohttp.ClientResponse) -> None:
        """Refuse an answer that is not the file: its status, content type, encoding, size."""
        status = response.status

        def refuse(reason: str, *, transient: bool = False) -> DownloadError:
            retry_after = parse_retry_after(response.headers.get(hdrs.RETRY_AFTER))
            return DownloadError(
                job_id=file.job_id,
                index=file.index,
                reason=reason,
                where=shown_url(url),
                status=status,
                transient=transient,
                retry_after=retry_after,
            )

        if status != 200:
            hint = ""
            if status in (401, 403) and expires_at(url) is not None:
                hint = "; a signed URL may have expired"
            raise refuse(f"HTTP {status}{hint}", transient=status in _TRANSIENT_STATUSES)
        content_type = response.content_type
        if not (content_type.startswith(f"{file.kind}/") or content_type in _GENERIC_TYPES):
            raise refuse(f"the host sent {content_type or 'no content type'}, not an {file.kind}")
        encoding = response.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
        if encoding != "identity":
            raise refuse(f"the host sent the file encoded ({encoding}) although asked not to")
        length = response.content_length
        if length is not None and length > self.max_bytes:
            raise refuse(f"the file is {length} bytes, over the limit of {self.max_bytes}")

    async def _save(
        self,
        file: OutputFile,
        folder: Path,
        response: aiohttp.ClientResponse,
        url: str,
        *,
        fsync: bool,
    ) -> Path:
        """Stream the body to a temporary file, then rename it into place; its path.

        A body of known length up to :data:`SMALL_FILE` is written on the event loop
        (:meth:`_save_small`). Any other is copied, as aiohttp hands it over, into a buffer
        of :data:`WRITE_BATCH` bytes; a full buffer goes to the writer thread while the next
        fills. The temporary file is made by the first write, in that thread.
        """
        final = folder / file.name_for(response.content_type)
        length = response.content_length
        part = _PartFile(folder, final.name, fsync=fsync)
        if length is not None and length <= SMALL_FILE:
            return await self._save_small(file, part, response, url, final, length)
        limit = self.max_bytes
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        saved = False
        spare = self._spare
        buffer = spare.pop() if spare else bytearray(WRITE_BATCH)
        writing: bytearray | None = None  # the buffer the thread is writing, if any
        try:
            received = 0
            filled = 0
            async for piece, _ in response.content.iter_chunks():
                size = len(piece)
                received += size
                if received > limit:
                    response.close()  # never drained: the rest is not wanted
                    raise DownloadError(
                        job_id=file.job_id,
                        index=file.index,
                        reason=f"the file is longer than the limit of {limit} bytes",
                        where=shown_url(url),
                        status=200,
                    )
                view = memoryview(piece)  # sliced without a copy
                taken = 0
                while taken < size:
                    step = min(size - taken, WRITE_BATCH - filled)
                    buffer[filled : filled + step] = view[taken : taken + step]
                    filled += step
                    taken += step
                    if filled < WRITE_BATCH:
                        continue
                    if pending is not None:
                        # Shielded: a cancellation here must not orphan a write in progress.
                        await asyncio.shield(pending)
                    pending = loop.run_in_executor(None, part.write, memoryview(buffer))
                    if writing is None:
                        writing = spare.pop() if spare else bytearray(WRITE_BATCH)
                    buffer, writing = writing, buffer
                    filled = 0
            if pending is not None:
                await asyncio.shield(pending)
            if length is not None and received != length:
                raise _lost(file, url, f"the body ended after {received} of {length} bytes")
            pending = loop.run_in_executor(None, part.commit, memoryview(buffer)[:filled], final)
            await asyncio.shield(pending)
            saved = True
            # Only now: no write of the thread may still read from them.
            for done in (buffer, writing):
                if done is not None and len(spare) < SPARE_BUFFERS:
                    spare.append(done)
        except (aiohttp.ClientError, TimeoutError):
            raise  # the network's failures (some are OSErrors too): _fetch says which
        except OSError as exc:
            raise _disk_error(file, exc) from exc
        finally:
            if not saved:
                await _discard(part, pending)
        return final

    async def _save_small(
        self,
        file: OutputFile,
        part: _PartFile,
        response: aiohttp.ClientResponse,
        url: str,
        final: Path,
        length: int,
    ) -> Path:
        """:meth:`_save` for a body of at most :data:`SMALL_FILE` bytes: read in pieces of
        :data:`SMALL_PIECE`, each written on the event loop as it comes, as a plain aiohttp
        loop writes, then renamed.

        No buffer and no thread; aiohttp hands over no more than the announced ``length``.
        With ``fsync``, the flush and the rename happen in a thread (an fsync takes
        milliseconds).
        """
        pending: asyncio.Future[None] | None = None
        saved = False
        try:
            received = 0
            fd = part.open()
            async for piece in response.content.iter_chunked(SMALL_PIECE):
                size = len(piece)
                received += size
                written = os.write(fd, piece)
                if written < size:  # a short write (a signal): write the rest
                    part.write(memoryview(piece)[written:])
            if received != length:
                raise _lost(file, url, f"the body ended after {received} of {length} bytes")
            if part.fsync:
                loop = asyncio.get_running_loop()
                pending = loop.run_in_executor(None, part.commit, memoryview(b""), final)
                await asyncio.shield(pending)
            else:
                part.commit(memoryview(b""), final)
            saved = True
        except (aiohttp.ClientError, TimeoutError):
            raise  # the network's failures (some are OSErrors too): _fetch says which
        except OSError as exc:
            raise _disk_error(file, exc) from exc
        finally:
            if not saved:
                await _discard(part, pending)
        return final


async def _discard(part: _PartFile, pending: asyncio.Future[None] | None) -> None:
    """Remove the temporary file once no write to it runs: at once, or after the write in
    the thread ends (closing its descriptor under that write could hit another file's).

    It waits for that write (one batch, shielded) so that the file is gone when the error
    reaches the caller; cancelled again meanwhile, it leaves the removal to the write's end.
    """
    if pending is not None and not pending.done():
        try:
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            _discard_after(part, pending)
            raise
        except Exception:  # the download failed already: this error adds nothing
            pass
    _discard_after(part, pending)


def _discard_after(part: _PartFile, pending: asyncio.Future[None] | None) -> None:
    """Remove the temporary file now, or once the write still running in the thread ends."""
    if pending is None or pending.done():
        if pending is not None and not pending.cancelled():
            pending.exception()  # seen: its error (if any) is the one being raised
        part.discard()
        return

    def after(future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # the download failed already; this error changes nothing
        part.discard()

    pending.add_done_callback(after)


def _lost(file: OutputFile, url: str, reason: str) -> DownloadError:
    return DownloadError(
        job_id=file.job_id, index=file.index, reason=reason, where=shown_url(url), transient=True
    )


def _disk_error(file: OutputFile, exc: OSError) -> DownloadError:
    return DownloadError(
        job_id=file.job_id,
        index=file.index,
        reason=f"could not write the file: {exc.strerror or type(exc).__name__}",
    )


def _held(fd: int) -> bool:
    """Hold the new temporary file ``fd`` (see :meth:`_PartFile.open`); ``False`` if a
    sweep holds or removed it first."""
    if sys.platform == "win32":
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return os.fstat(fd).st_nlink > 0


def _sweep(folder: str) -> int:
    """Remove from ``folder`` the temporary files of downloads that were killed before they
    ended (named as :data:`_PART_NAME`, held by nobody); how many.

    A live download, of this process or another, holds its file (see
    :meth:`_PartFile.open`) and is left alone; so is anything not named like a temporary
    file, and a symbolic link. Errors (a file gone meanwhile, no permission) skip the file.
    """
    if sys.platform == "win32":
        return 0
    removed = 0
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if _PART_NAME.fullmatch(entry.name)]
    except OSError:
        return 0
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                os.unlink(path)
                removed += 1
        except OSError:  # held by a live download (BlockingIOError), or gone meanwhile
            continue
        finally:
            os.close(fd)
    return removed


def _folder(directory: str | os.PathLike[str]) -> Path:
    try:
        return Path(directory)
    except TypeError:
        raise ValidationError(
            "directory", f"must be a path (str or os.PathLike), got {type(directory).__name__}"
        ) from None


def _any_named(folder: Path, files: Sequence[OutputFile]) -> bool:
    """Make ``folder`` if needed; whether anything exists under one of the files' names.

    Only metadata calls (a ``stat`` of the folder, then an ``access`` per name, which fails
    on a fresh download), cheap enough for the event loop, as opening a file is in any
    aiohttp program.
    """
    if not os.path.isdir(folder):
        folder.mkdir(parents=True, exist_ok=True)
    where = os.fspath(folder)
    # access() answers without raising (a stat of a missing name costs an exception); it
    # follows symbolic links, so a dangling one counts as no file, and is replaced.
    return any(
        os.access(os.path.join(where, name), os.F_OK) for file in files for name in file.names()
    )


def _existing(folder: Path, files: Sequence[OutputFile]) -> list[Path | None]:
    """For each file, its path in ``folder`` if it was saved already, whole.

    A file under its final name that is not whole (see :mod:`._wholeness`) counts as not
    saved: it is fetched again, and the new file replaces it.
    """
    found: list[Path | None] = []
    for file in files:
        path = next((folder / n for n in file.names() if is_whole(folder / n)), None)
        found.append(path)
    return found


@functools.cache
def _writeback_starter() -> Callable[[int, int, int, int], object] | None:
    """Linux's ``sync_file_range`` from the C library (Python's ``os`` lacks it), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _path_of(outcome: Path | BaseException) -> Path:
    if isinstance(outcome, BaseException):  # pragma: no cover - raised before this
        raise outcome
    return outcome


class _PartFile:
    """A file being written under a temporary name beside ``name``; its methods run one at
    a time, in a worker thread (on the event loop for a small file, see :data:`SMALL_FILE`),
    except :meth:`discard`, which runs once none runs.

    The file is made by the first write (or the commit, for an empty body). With ``fsync``
    its bytes reach the disk before the rename, and writing back starts as they are
    written; without, they may still be in the page cache when the file takes its name.
    """

    __slots__ = ("committed", "fd", "folder", "fsync", "name", "path", "started", "written")

    def __init__(self, folder: Path, name: str, *, fsync: bool) -> None:
        self.folder = folder
        self.name = name
        self.fsync = fsync
        self.fd = -1
        self.path: str | None = None
        self.committed = False
        self.written = 0  # bytes written so far
        self.started = 0  # bytes whose writing back to disk was asked for

    def open(self) -> int:
        """The temporary file's descriptor, the file made on the first call.

        The file is held (an exclusive ``flock``) until it is closed, by this process or by
        its death: a file nobody holds is a killed download's, which :func:`_sweep` removes.
        """
        if self.path is not None:
            return self.fd
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        flags |= getattr(os, "O_CLOEXEC", 0)
        for _ in range(_PART_TRIES):
            path = os.path.join(self.folder, f".{self.name}.{secrets.token_hex(4)}.part")
            fd = os.open(path, flags, 0o666)
            if _held(fd):
                self.fd, self.path = fd, path
                return fd
            os.close(fd)  # a sweep took it for a killed download's between the two calls
        raise OSError(f"could not make a temporary file in {self.folder}")

    def write(self, data: memoryview) -> None:
        """Write ``data`` whole."""
        fd = self.open()
        while data:
            # A short write (a signal, a full disk's last block) leaves the rest to write.
            written = os.write(fd, data)
            self.written += written
            data = data[written:]
        if self.fsync and self.written - self.started >= WRITEBACK_STEP:
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Ask the kernel to start writing what was written since the last call to disk.

        On Linux, ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` starts the writeback of that
        range and returns; elsewhere this does nothing and the ``fsync`` at the end does it
        all.
        """
        start_writeback = _writeback_starter()
        if start_writeback is not None:
            # Advice only (its result is not checked): the fsync still makes it sure.
            start_writeback(self.fd, self.started, self.written - self.started, 2)
        self.started = self.written

    def commit(self, data: memoryview, final: Path) -> None:
        """Write the last ``data``, flush to disk if asked, and rename the file to ``final``.

        With ``fsync``, the bytes are on disk before the name is: after a power cut the
        final name holds the whole file or does not exist. (The directory is not synced: a
        lost rename only means the file is fetched again.) Without, a crash of the process
        still never leaves a half file under the final name (the kernel holds every byte
        before the rename); only a power cut could, which the skip check then notices.
        """
        self.write(data)
        if self.fsync:
            os.fsync(self.fd)
        assert self.path is not None  # made by the write above
        if sys.platform == "win32":
            # Windows renames no open file (and sweeps nothing, so nothing to hold off).
            os.close(self.fd)
            self.fd = -1
        # Elsewhere renamed while still held (closing lets the lock go): a sweep in another
        # process never takes a whole file for a killed download's.
        os.replace(self.path, final)
        self.committed = True
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        """Close and remove the temporary file (unless it was renamed into place)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        if not self.committed and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


async def download_without_client(
    task: Task, directory: str | os.PathLike[str], *, fsync: bool = False
) -> tuple[Path, ...]:
    """:meth:`Downloader.download` through a session of its own, closed after: for a result
    with no open client (the files need no API key). The default limits and retry policy
    apply, and plain ``http://`` only to loopback."""
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(
            session=lambda: session, budget=RequestBudget(FILES_IN_FLIGHT), fsync=fsync
        )
        return await downloader.download(task, directory, retry=RetryPolicy(), clock=LOOP_CLOCK)
