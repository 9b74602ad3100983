"""The blocking client, for scripts, notebooks and threads: ``legnext_async.sync.Client``.

It has the methods of :class:`~legnext_async.LegnextClient`, with the same arguments,
checks, results and errors, but each call blocks until it is done::

    from legnext_async.sync import Client

    with Client() as client:  # the key comes from $LEGNEXT_API_KEY
        handle = client.diffusion("a lighthouse at dusk --ar 16:9")
        result = handle.wait()  # polls until the job is completed
        print(result.image_urls)
        upscaled = result.upscale(0).wait()

One :class:`~legnext_async.LegnextClient` runs on a private event loop in a background
thread; each blocking call hands its coroutine to that loop and waits for the answer. So a
client works the same from a plain script, from several threads at once, and from code
that already runs an event loop (a Jupyter cell, a coroutine): that loop is blocked while
the call waits, never asked to run a second one. A ``KeyboardInterrupt`` (Ctrl-C) while a
call waits cancels the call's work in the loop thread before it propagates (a job already
created goes on on the service, as with a cancelled ``await``).

A job-creating method returns a blocking :class:`TaskHandle`; its :meth:`~TaskHandle.wait`
returns an :class:`ImageResult`, :class:`VideoResult` or :class:`TextResult` of this
module: the data of the async results (the same properties and ``to_json()``), with
blocking follow-ups (``result.upscale(0)``) and ``download``.

Close the client (``client.close()``, or ``with Client() as client:``) to stop its thread
and close its connections; a client dropped unclosed is closed when it is collected, or at
the latest when the interpreter exits.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import threading
import weakref
from collections.abc import Coroutine, Iterable
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    TypeVar,
    cast,
    overload,
)

import legnext_async

from . import _results
from ._batch import BatchProgress
from ._client import (
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_TIMEOUT,
    LegnextClient,
)
from ._download import DEFAULT_MAX_DOWNLOAD_BYTES, download_without_client
from ._exceptions import ClientClosedError, LegnextError
from ._handle import TaskHandle as AsyncTaskHandle

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
    from pathlib import Path
    from types import TracebackType

    from ._models import AvailableActions, Task, TaskType
    from ._polling import PollPolicy
    from ._retry import RetryPolicy
    from ._spending import PointTotals
    from ._store import JobRecord, JobStore, RecordState

__all__ = [
    "BatchItem",
    "Client",
    "ImageResult",
    "TaskHandle",
    "TaskResult",
    "TextResult",
    "VideoResult",
]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound="TaskResult")
R_co = TypeVar("R_co", bound="TaskResult", covariant=True)

#: How long a call interrupted by Ctrl-C waits for its work in the loop to end once
#: cancelled (cancellation there is prompt: this bounds a wedged clean-up, not a normal one).
CANCEL_WAIT: Final = 10.0


# --- the private loop --------------------------------------------------------------------


class _Loop:
    """An event loop running in a daemon thread of its own until :meth:`stop`.

    It holds no reference to the :class:`Client`, so the client can be collected (and its
    finaliser stop the loop) while the thread runs.
    """

    def __init__(self, client: LegnextClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._stopping = False
        ready = threading.Event()
        self._ready = ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="legnext-sync", daemon=True)
        self.thread.start()
        ready.wait()

    def _main(self) -> None:
        # asyncio.run() ends the loop as a loop should end: leftover tasks cancelled, async
        # generators (the client's loop guard among them) closed, the executor shut down.
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        self._ready.set()
        await stop.wait()
        await self._client.aclose()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` in the loop and return its result, blocking this thread meanwhile.

        Raises:
            ClientClosedError: the client was closed (before or while ``work`` ran).
            LegnextError: called from the loop's own thread, where it would wait forever.
        """
        if threading.current_thread() is self.thread:
            work.close()
            raise LegnextError(
                "a blocking call of legnext_async.sync.Client from its own event loop's"
                " thread would wait forever; call it from another thread"
            )
        call = _Call(work)
        loop = self._loop
        assert loop is not None
        try:
            with self._lock:
                # Under the lock, so nothing is scheduled after stop(): it would never run.
                if self._stopping:
                    call.abandon()
                    raise ClientClosedError("this legnext_async.sync.Client is closed")
                loop.call_soon_threadsafe(call.start)
            call.ended.wait()
        except BaseException:
            # KeyboardInterrupt (or another signal's exception) in this thread, at any
            # instant: the work is cancelled in the loop, and has ended, before this ends.
            if call.abandon():
                loop.call_soon_threadsafe(call.cancel)
                call.ended.wait(CANCEL_WAIT)
            raise
        return call.outcome()

    def stop(self) -> None:
        """Close the client in its loop, end the loop and (from another thread) join it."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            loop, stop = self._loop, self._stop
        assert loop is not None
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        if threading.current_thread() is not self.thread:
            self.thread.join()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping


class _Call(Generic[T]):
    """One blocking call's work: started in the loop, waited for (or abandoned) by its
    caller, which may be interrupted at any instant, even before the work has started."""

    __slots__ = ("_abandoned", "_error", "_lock", "_result", "_task", "_work", "ended")

    def __init__(self, work: Coroutine[Any, Any, T]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._abandoned = False
        self._task: asyncio.Task[T] | None = None
        self._result: T | None = None
        self._error: BaseException | None = None
        #: Set once the work has ended (or will never start).
        self.ended = threading.Event()

    def start(self) -> None:
        """In the loop: start the work, unless its caller has left already."""
        with self._lock:
            if self._abandoned:
                self._work.close()  # never started, so never awaited: no warning
                self.ended.set()
                return
            task = self._task = asyncio.ensure_future(self._work)
        task.add_done_callback(self._settle)

    def _settle(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            # Only the loop's end cancels what a caller still waits for.
            self._error = ClientClosedError(
                "this legnext_async.sync.Client was closed while the call waited"
            )
        elif (error := task.exception()) is not None:
            self._error = error
        else:
            self._result = task.result()
        self.ended.set()

    def abandon(self) -> bool:
        """From the caller, leaving: whether the work had started and has yet to end (then
        :meth:`cancel` it in the loop); if it had not started, it never will."""
        with self._lock:
            self._abandoned = True
            if self._task is None:
                self._work.close()
                self.ended.set()
                return False
        return not self.ended.is_set()

    def cancel(self) -> None:
        """In the loop: cancel the started work."""
        assert self._task is not None
        self._task.cancel()

    def outcome(self) -> T:
        """The work's result, or its error raised."""
        error = self._error
        if error is not None:
            raise error
        return cast("T", self._result)


async def _made(make: Callable[[], T]) -> T:
    """``make()``, called in the loop: for the client's plain methods, which adopt the event
    loop they are called in (they must see the private one, not the caller's)."""
    return make()


async def _next(items: AsyncIterator[T]) -> tuple[T] | None:
    """The next item of ``items`` (in a 1-tuple), or ``None`` at its end."""
    try:
        return (await anext(items),)
    except StopAsyncIteration:
        return None


def _run_detached(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` with ``asyncio.run()`` in a short-lived thread (which works whether or
    not this thread runs a loop), for the rare call that needs no client."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            outcome.append(asyncio.run(work))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=main, name="legnext-sync-detached", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


# --- forwarding, typed -------------------------------------------------------------------

#: A Sphinx reference by a short name (``:meth:`TaskResult.bind```).
_RELATIVE_REFERENCE: Final = re.compile(r":(meth|class|attr):`(\w+)")


def _absolute(reference: re.Match[str]) -> str:
    """A reference to an object of ``legnext_async`` made absolute; others as they were."""
    role, name = reference.groups()
    if name in legnext_async.__all__:
        return f":{role}:`~legnext_async.{name}"
    return reference.group()


def _blocking_doc(method: Callable[..., Any], what: str) -> str:
    """``method``'s docstring, its references made absolute (they name the async client's
    objects, not this module's), and a line saying how the blocking form returns."""
    doc = _RELATIVE_REFERENCE.sub(_absolute, inspect.getdoc(method) or "")
    return f"{doc}\n\nBlocking: {what}"


def _signature(method: Callable[..., Any], returns: str) -> inspect.Signature:
    return inspect.signature(method).replace(return_annotation=returns)


@overload
def _submitting(
    method: Callable[
        Concatenate[Any, P], Coroutine[Any, Any, AsyncTaskHandle[_results.ImageResult]]
    ],
) -> Callable[Concatenate[Any, P], TaskHandle[ImageResult]]: ...
@overload
def _submitting(
    method: Callable[
        Concatenate[Any, P], Coroutine[Any, Any, AsyncTaskHandle[_results.VideoResult]]
    ],
) -> Callable[Concatenate[Any, P], TaskHandle[VideoResult]]: ...
@overload
def _submitting(
    method: Callable[
        Concatenate[Any, P], Coroutine[Any, Any, AsyncTaskHandle[_results.TextResult]]
    ],
) -> Callable[Concatenate[Any, P], TaskHandle[TextResult]]: ...
def _submitting(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, AsyncTaskHandle[Any]]],
) -> Callable[Concatenate[Any, P], TaskHandle[Any]]:
    """A blocking job-creating method (of :class:`Client` or of a result) running
    ``method`` (the async one) on the async counterpart of its object, ``self._async``."""

    @functools.wraps(method)
    def call(self: _Forwards, /, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[Any]:
        client = self._client
        return TaskHandle(client._run(method(self._async, *args, **kwargs)), client)

    annotation = str(inspect.signature(method).return_annotation)
    call.__doc__ = _blocking_doc(
        method,
        "returns once the job is created, with a blocking :class:`legnext_async.sync.TaskHandle`.",
    )
    del call.__wrapped__  # its __signature__ speaks for it
    call.__signature__ = _signature(method, annotation)  # type: ignore[attr-defined]
    return call


class _Forwards:
    """What a forwarded method needs of its object: the async counterpart and the client."""

    _async: object
    _client: Client


# --- the client --------------------------------------------------------------------------


class Client(_Forwards):
    """A blocking client for the Legnext API: :class:`~legnext_async.LegnextClient`'s
    methods, each returning once done.

    Use it as ``with Client() as client:`` or call :meth:`close` when done; one client may
    serve many threads at once. The arguments are :class:`~legnext_async.LegnextClient`'s,
    but for ``session`` (an aiohttp session belongs to the event loop it was made in, and
    this client's loop is private). The ``api_key`` and ``base_url`` fall back to
    ``$LEGNEXT_API_KEY`` and ``$LEGNEXT_BASE_URL``. A bad argument raises
    :class:`~legnext_async.ValidationError` before any thread starts.

    Don't call it from its own callbacks' thread: a blocking call there raises
    :class:`~legnext_async.LegnextError` rather than wait forever.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_active_jobs: int | None = None,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
        requests_per_second: float | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        store: JobStore | str | os.PathLike[str] | None = None,
        max_points: int | None = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        self._async: LegnextClient = LegnextClient(
            api_key=api_key,
            base_url=base_url,
            poll=poll,
            retry=retry,
            request_timeout=request_timeout,
            max_active_jobs=max_active_jobs,
            max_concurrent_requests=max_concurrent_requests,
            requests_per_second=requests_per_second,
            allow_insecure_http=allow_insecure_http,
            max_response_bytes=max_response_bytes,
            store=store,
            max_points=max_points,
            max_download_bytes=max_download_bytes,
        )
        self._client = self
        self._loop = _Loop(self._async)
        # Closes the client when it is collected, or at exit; never holds the client itself.
        self._finalizer = weakref.finalize(self, self._loop.stop)

    def __repr__(self) -> str:
        return f"<legnext_async.sync.Client base_url={self.base_url!r} api_key='***'>"

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(work)

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every poller, close the connections and end the client's thread. Idempotent.

        Calls waiting in other threads meanwhile raise :class:`~legnext_async.ClientClosedError`.
        """
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the client was finalised)."""
        return self._loop.stopping

    @property
    def base_url(self) -> str:
        """The API's base URL, as checked (no trailing slash)."""
        return self._async.base_url

    @property
    def points(self) -> PointTotals | None:
        """The points this client's jobs have committed and spent, under ``max_points``.

        ``None`` when the client has no ``max_points`` (then nothing is counted).
        """
        return self._async.points

    @property
    def store(self) -> JobStore | None:
        """The client's job store, if it has one.

        Its methods are coroutines (it is the async client's store); list its records
        with :meth:`records`.
        """
        return self._async.store

    # --- jobs made elsewhere, reads, the store --------------------------------------------

    def task(self, job_id: str, *, poll: PollPolicy | None = None) -> TaskHandle[TaskResult]:
        """A handle for a job created elsewhere; nothing is sent until it is waited for.

        Its result's type follows the job's task type (image, video or text).

        Raises:
            ValidationError: ``job_id`` is not a job id.
        """
        return TaskHandle(self._run(_made(lambda: self._async.task(job_id, poll=poll))), self)

    def resume(self, *, poll: PollPolicy | None = None) -> list[TaskHandle[TaskResult]]:
        """Handles for every unfinished job of the store, oldest first (see
        :meth:`legnext_async.LegnextClient.resume`).

        Raises:
            LegnextError: the client has no job store.
        """
        return [TaskHandle(handle, self) for handle in self._run(self._async.resume(poll=poll))]

    def records(self, *states: RecordState, limit: int | None = None) -> list[JobRecord]:
        """The store's records in ``states`` (all of them if none is named), oldest first.

        Raises:
            LegnextError: the client has no job store.
        """
        return self._run(self._async.records(*states, limit=limit))

    def download(
        self,
        target: str | Task | TaskResult | _results.TaskResult,
        directory: str | os.PathLike[str],
    ) -> tuple[Path, ...]:
        """Save a completed job's images or videos in ``directory``; their paths, in order.

        ``target``: a job id, a :class:`~legnext_async.Task`, or a result (of this module
        or an async one). See :meth:`legnext_async.LegnextClient.download` for the names,
        the checks and the errors.
        """
        if isinstance(target, TaskResult):
            target = target.task
        return self._run(self._async.download(target, directory))

    def get_task(self, job_id: str) -> Task:
        """Read a job's status once (failed reads are retried) and return it.

        See :meth:`legnext_async.LegnextClient.get_task` for the errors.
        """
        return self._run(self._async.get_task(job_id))

    def balance(self) -> legnext_async.Balance:
        """The account's balance (``GET /account/balance``)."""
        return self._run(self._async.balance())

    def forget(self, key: str) -> JobRecord | None:
        """Settle the submission recorded under ``key``, so the key may be used again (see
        :meth:`legnext_async.LegnextClient.forget`); the record as it was, or ``None``."""
        return self._run(self._async.forget(key))

    # --- batches -------------------------------------------------------------------------

    def as_completed(
        self,
        jobs: Iterable[TaskHandle[R]],
        *,
        on_progress: Callable[[BatchProgress], object] | None = None,
    ) -> Iterator[BatchItem[R]]:
        """Yield a :class:`BatchItem` for each job as it finishes, whatever the others do.

        ``jobs`` holds handles (each job-creating call returns once its job exists). Each
        item unpacks as ``(handle, outcome)``: ``outcome`` is the result, or the
        :class:`~legnext_async.LegnextError` that ended that job; ``item.position`` is the
        job's place in ``jobs``. ``on_progress`` is called, in this thread, with a
        :class:`~legnext_async.BatchProgress` after each job. Leaving the loop early stops
        waiting for the rest (their jobs go on running).
        """
        handles = list(jobs)
        by_async = {id(handle._handle): handle for handle in handles}
        progress: list[BatchProgress] = []
        items = self._run(
            _made(
                lambda: self._async.as_completed(
                    [handle._handle for handle in handles], on_progress=progress.append
                )
            )
        )
        try:
            while (step := self._run(_next(items))) is not None:
                item = step[0]
                handle = by_async[id(item.handle)]
                outcome: R | LegnextError
                if isinstance(item.outcome, LegnextError):
                    outcome = item.outcome
                else:
                    outcome = cast("R", _sync_result(item.outcome, self))
                if on_progress is not None and progress:
                    on_progress(progress.pop())
                yield BatchItem(handle, outcome, position=item.position)
        finally:
            if not self.closed:
                self._run(items.aclose())

    # --- job-creating methods (one per endpoint; see LegnextClient) -----------------------

    diffusion = _submitting(LegnextClient.diffusion)
    blend = _submitting(LegnextClient.blend)
    retexture = _submitting(LegnextClient.retexture)
    remove_background = _submitting(LegnextClient.remove_background)
    upload_paint = _submitting(LegnextClient.upload_paint)
    upscale = _submitting(LegnextClient.upscale)
    variation = _submitting(LegnextClient.variation)
    reroll = _submitting(LegnextClient.reroll)
    pan = _submitting(LegnextClient.pan)
    outpaint = _submitting(LegnextClient.outpaint)
    inpaint = _submitting(LegnextClient.inpaint)
    remix = _submitting(LegnextClient.remix)
    edit = _submitting(LegnextClient.edit)
    enhance = _submitting(LegnextClient.enhance)
    describe = _submitting(LegnextClient.describe)
    shorten = _submitting(LegnextClient.shorten)
    video_diffusion = _submitting(LegnextClient.video_diffusion)
    extend_video = _submitting(LegnextClient.extend_video)
    video_upscale = _submitting(LegnextClient.video_upscale)


# --- handles -----------------------------------------------------------------------------


class TaskHandle(Generic[R_co]):
    """A job on the service: :meth:`wait` for its result, or read it once with :meth:`refresh`.

    The blocking form of :class:`legnext_async.TaskHandle`: however many threads wait on
    it, one poller reads the status; a finished handle returns its result without a request.
    """

    __slots__ = ("_client", "_handle", "_result")

    def __init__(self, handle: AsyncTaskHandle[_results.TaskResult], client: Client) -> None:
        """A blocking view of the async ``handle`` of ``client``."""
        self._handle = handle
        self._client = client
        self._result: R_co | None = None

    def __repr__(self) -> str:
        return repr(self._handle)

    @property
    def job_id(self) -> str:
        """The job's id on the service."""
        return self._handle.job_id

    @property
    def last_task(self) -> Task | None:
        """The latest status seen (from the submission, a read or the poller), if any."""
        return self._handle.last_task

    @property
    def done(self) -> bool:
        """Whether the job was seen finished (completed or failed)."""
        return self._handle.done

    @property
    def task_type(self) -> TaskType | None:
        """The job's task type, once known."""
        return self._handle.task_type

    def wait(self, poll: PollPolicy | None = None) -> R_co:
        """Poll until the job finishes and return its result.

        ``poll`` overrides the handle's policy if this call starts polling.

        Raises:
            TaskFailedError: the job ended ``failed``.
            TaskTimeoutError: the policy's deadline passed (the job may still finish; wait
                again, or use ``client.task(job_id)``, to resume).
            ClientClosedError: the client was closed meanwhile.
        """
        result = self._result
        if result is None:
            made = self._client._run(self._handle.wait(poll))
            result = self._result = cast("R_co", _sync_result(made, self._client))
        return result

    def result(self, poll: PollPolicy | None = None) -> R_co:
        """:meth:`wait`, named like ``concurrent.futures.Future.result()``."""
        return self.wait(poll)

    def refresh(self) -> Task:
        """Read the job's status once (retrying failed reads) and return it.

        A snapshot seen finished is returned from then on, whatever a later read says.
        """
        return self._client._run(self._handle.refresh())

    def updates(self, poll: PollPolicy | None = None) -> Iterator[Task]:
        """Yield a snapshot each time the status (or progress) changes, ending with the final one.

        The current snapshot, if known, comes first. Leaving the loop early stops polling
        for it (unless something else waits for the job).
        """
        client = self._client
        snapshots = cast(
            "AsyncGenerator[Task, None]", client._run(_made(lambda: self._handle.updates(poll)))
        )
        try:
            while (step := client._run(_next(snapshots))) is not None:
                yield step[0]
        finally:
            if not client.closed:
                client._run(snapshots.aclose())


# --- results -----------------------------------------------------------------------------


class TaskResult(_Forwards):
    """A completed job: the data of :class:`legnext_async.TaskResult`, with blocking
    follow-ups going through the client that waited for it.

    Results compare equal when their tasks are equal (and they are of the same class).
    """

    __slots__ = ("_async", "_client")

    _async: _results.TaskResult

    def __init__(self, result: _results.TaskResult, client: Client) -> None:
        """The blocking view of the async ``result``, following up through ``client``."""
        self._async = result
        self._client = client

    def __repr__(self) -> str:
        return repr(self._async)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, TaskResult)
        return bool(self._async == other._async)

    def __hash__(self) -> int:
        return hash(self._async)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, client: Client) -> TaskResult:
        """The result for a task object (the output of :meth:`to_json`, or any the API
        sent), following up through ``client``; its class follows the job's task type.

        Raises:
            ValidationError: ``data`` is not a JSON object.
        """
        return _sync_result(_results.TaskResult.from_json(data, client=client._async), client)

    @property
    def task(self) -> Task:
        """The whole final :class:`~legnext_async.Task`."""
        return self._async.task

    @property
    def job_id(self) -> str:
        """The job's id (the parent id for follow-ups)."""
        return self._async.job_id

    @property
    def task_type(self) -> TaskType:
        """What the job did."""
        return self._async.task_type

    @property
    def seed(self) -> str | None:
        """The generation seed, if the service reported one."""
        return self._async.seed

    @property
    def available_actions(self) -> AvailableActions:
        """Follow-ups the service allows on this result, with the image numbers for each."""
        return self._async.available_actions

    def to_json(self) -> dict[str, Any]:
        """The job as the service reports it (:meth:`legnext_async.Task.to_json`), to store."""
        return self._async.to_json()

    def _save(self, directory: str | os.PathLike[str]) -> tuple[Path, ...]:
        """Save the files through the client, or, once it is closed, without one."""
        client = self._client
        if client.closed:
            return _run_detached(download_without_client(self.task, directory))
        return client._run(client._async.download(self.task, directory))


class ImageResult(TaskResult):
    """A completed image job: a grid of four images, or a single image."""

    __slots__ = ()
    _async: _results.ImageResult

    @property
    def image_urls(self) -> tuple[str, ...]:
        """The separate images (four for a grid; one for upscale or background removal)."""
        return self._async.image_urls

    @property
    def image_url(self) -> str | None:
        """The grid image, or the single image; ``None`` when the service left it empty."""
        return self._async.image_url

    def download(self, directory: str | os.PathLike[str]) -> tuple[Path, ...]:
        """Save the images in ``directory`` (made if missing); their paths, in order.

        See :meth:`legnext_async.ImageResult.download`; after the client is closed, the
        files are fetched with the default settings.
        """
        return self._save(directory)

    upscale = _submitting(_results.ImageResult.upscale)
    variation = _submitting(_results.ImageResult.variation)
    reroll = _submitting(_results.ImageResult.reroll)
    pan = _submitting(_results.ImageResult.pan)
    outpaint = _submitting(_results.ImageResult.outpaint)
    inpaint = _submitting(_results.ImageResult.inpaint)
    remix = _submitting(_results.ImageResult.remix)
    edit = _submitting(_results.ImageResult.edit)
    enhance = _submitting(_results.ImageResult.enhance)
    video_diffusion = _submitting(_results.ImageResult.video_diffusion)


class VideoResult(TaskResult):
    """A completed video job."""

    __slots__ = ()
    _async: _results.VideoResult

    @property
    def video_urls(self) -> tuple[str, ...]:
        """The videos (mp4), one per batch item; ``video_urls[i]`` is video number ``i``."""
        return self._async.video_urls

    def download(self, directory: str | os.PathLike[str]) -> tuple[Path, ...]:
        """Save the videos in ``directory`` (made if missing); their paths, in order.

        See :meth:`legnext_async.VideoResult.download`; after the client is closed, the
        files are fetched with the default settings.
        """
        return self._save(directory)

    extend_video = _submitting(_results.VideoResult.extend_video)
    video_upscale = _submitting(_results.VideoResult.video_upscale)


class TextResult(TaskResult):
    """A completed describe or shorten job."""

    __slots__ = ()
    _async: _results.TextResult

    @property
    def prompts(self) -> tuple[str, ...]:
        """The suggested prompts."""
        return self._async.prompts

    @property
    def prompt_en(self) -> str | None:
        """The prompt text the service reports (``promptEn``)."""
        return self._async.prompt_en

    @property
    def description(self) -> str | None:
        """The service's description of what it did."""
        return self._async.description

    @property
    def final_prompt(self) -> str | None:
        """The service's ``finalPrompt``."""
        return self._async.final_prompt


_SYNC_RESULTS: Final[dict[type[_results.TaskResult], type[TaskResult]]] = {
    _results.ImageResult: ImageResult,
    _results.VideoResult: VideoResult,
    _results.TextResult: TextResult,
}


def _sync_result(result: _results.TaskResult, client: Client) -> TaskResult:
    """The blocking view of an async result, of the class of its family."""
    for kind, view in _SYNC_RESULTS.items():
        if isinstance(result, kind):
            return view(result, client)
    return TaskResult(result, client)


# --- batches -----------------------------------------------------------------------------


class BatchItem(tuple["TaskHandle[R_co]", "R_co | LegnextError"], Generic[R_co]):
    """One job of a batch, finished: it unpacks as ``(handle, outcome)``.

    Attributes:
        position: the job's place in the ``jobs`` given to :meth:`Client.as_completed`,
            from 0.
    """

    position: int

    def __new__(
        cls, handle: TaskHandle[R_co], outcome: R_co | LegnextError, *, position: int
    ) -> BatchItem[R_co]:
        item = super().__new__(cls, (handle, outcome))
        item.position = position
        return item

    @property
    def handle(self) -> TaskHandle[R_co]:
        """The job's handle."""
        return self[0]

    @property
    def outcome(self) -> R_co | LegnextError:
        """The job's result, or the error that ended it."""
        return self[1]

    def __repr__(self) -> str:
        return f"BatchItem(position={self.position}, handle={self[0]!r}, outcome={self[1]!r})"
