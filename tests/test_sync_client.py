"""The blocking client: the async client's methods, results and errors, from plain code.

Scripts, code inside a running loop, threads and Ctrl-C run as real subprocesses (see
``sync_programs.py``) against the emulator; the methods run in this process against an
emulator served from a thread of its own (a blocking call must not block its server).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import legnext_async
from legnext_async import (
    Balance,
    ClientClosedError,
    LegnextClient,
    LegnextError,
    MemoryJobStore,
    PollPolicy,
    RecordState,
    TaskFailedError,
    TaskStatus,
    ValidationError,
    sync,
)
from legnext_async._catalog import ROUTES
from legnext_async.emulator import Emulator
from legnext_async.sync import Client

from .conftest import API_KEY, MASK, SCALE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from _pytest.mark.structures import ParameterSet

ROOT = Path(legnext_async.__file__).resolve().parent.parent
#: The loop thread's name: none may be alive once its client is closed.
LOOP_THREAD = "legnext-sync"


# --- subprocesses --------------------------------------------------------------------------


def program_env(base_url: str) -> dict[str, str]:
    """The environment of a program of ``sync_programs.py`` using the server at ``base_url``."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "LEGNEXT_BASE_URL": base_url,
        "LEGNEXT_API_KEY": API_KEY,
    }


async def start_program(name: str, base_url: str) -> asyncio.subprocess.Process:
    """Start ``sync_programs.py``'s ``name`` with ``-W error``."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "tests.sync_programs",
        name,
        str(SCALE),
        cwd=ROOT,
        env=program_env(base_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def findings(process: asyncio.subprocess.Process) -> Any:
    """A program's findings, after checking that it exited 0 and printed nothing on stderr."""
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert stderr.decode() == ""
    assert process.returncode == 0
    return json.loads(stdout.decode().splitlines()[-1])


def created(emulator: Emulator) -> list[str]:
    """The ids of the jobs clients created, each ``completed``."""
    assert {info.status for info in emulator.jobs if not info.seeded} <= {"completed"}
    return sorted(info.job_id for info in emulator.jobs if not info.seeded)


async def test_a_script_runs_a_job_and_a_follow_up_and_leaves_no_thread(
    emulator: Emulator,
) -> None:
    """A plain script waits for a job and its result's follow-up; after ``with`` ends, only
    the main thread is left, and nothing was warned about."""
    found = await findings(await start_program("script", emulator.base_url))
    first, upscaled, images = found["jobs"]
    assert images == 1
    assert created(emulator) == sorted([first, upscaled])
    assert found["threads"] == ["MainThread"]


async def test_blocking_calls_work_inside_a_running_event_loop(emulator: Emulator) -> None:
    """Called from a coroutine (a notebook cell), a blocking call neither deadlocks nor
    raises "this event loop is already running"."""
    found = await findings(await start_program("in_running_loop", emulator.base_url))
    job_id, status = found["jobs"]
    assert status == "completed"
    assert created(emulator) == [job_id]
    assert found["threads"] == ["MainThread"]


async def test_threads_share_one_client(emulator: Emulator) -> None:
    """Four threads run a job each through one client, each getting its own job."""
    found = await findings(await start_program("from_threads", emulator.base_url))
    assert len(set(found["jobs"])) == 4
    assert created(emulator) == found["jobs"]
    assert found["threads"] == ["MainThread"]


async def test_a_client_never_closed_is_closed_at_exit_without_a_warning(
    emulator: Emulator,
) -> None:
    """A script that never closes its client exits cleanly: no unclosed session, socket or
    coroutine is reported."""
    found = await findings(await start_program("never_closed", emulator.base_url))
    assert created(emulator) == found["jobs"]


async def test_ctrl_c_cancels_the_waiting_call_in_the_loop_thread() -> None:
    """SIGINT while a submission's POST is on its way raises KeyboardInterrupt in the caller
    only once the submission was cancelled in the loop: its key is recorded as an unknown
    outcome, not left submitting."""
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({}, status=500)

    app = web.Application()
    app.router.add_post("/api/v1/diffusion", hang)
    async with TestServer(app, host="127.0.0.1") as server:
        process = await start_program("interrupted", str(server.make_url("/api")))
        try:
            assert process.stdout is not None
            assert await process.stdout.readline() == b"submitting\n"
            await asyncio.wait_for(arrived.wait(), 30)
            process.send_signal(signal.SIGINT)
            found = await findings(process)
        finally:
            release.set()
    assert found == {
        "interrupted": True,
        "states": {"interrupted": RecordState.UNKNOWN.value},
        "threads": ["MainThread"],
    }


# --- in this process -------------------------------------------------------------------------


class ServedEmulator:
    """An :class:`Emulator` serving from a thread and an event loop of its own."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._emulator: Emulator | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),))

    async def _serve(self) -> None:
        async with Emulator(**self._options) as emulator:
            self._emulator = emulator
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await self._stop.wait()

    def __enter__(self) -> ServedEmulator:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    @property
    def base_url(self) -> str:
        assert self._emulator is not None
        return self._emulator.base_url

    def call(self, use: Callable[[Emulator], Any]) -> Any:
        """``use(emulator)``, called in the emulator's own thread."""
        emulator = self._emulator
        assert emulator is not None
        assert self._loop is not None

        async def in_loop() -> Any:
            return use(emulator)

        return asyncio.run_coroutine_threadsafe(in_loop(), self._loop).result()

    def posts(self) -> int:
        """How many POSTs the emulator received."""
        return int(self.call(lambda emu: sum(r.method == "POST" for r in emu.requests)))


@pytest.fixture
def served() -> Iterator[ServedEmulator]:
    """An emulator on its own thread, accepting :data:`API_KEY`."""
    with ServedEmulator(api_key=API_KEY, time_scale=SCALE, seed=5, whitelisted=True) as emulator:
        yield emulator


@pytest.fixture
def blocking(served: ServedEmulator) -> Iterator[Client]:
    """A blocking client of :func:`served`, polling on its clock."""
    with Client(
        api_key=API_KEY, base_url=served.base_url, poll=PollPolicy(time_scale=SCALE)
    ) as client:
        yield client


def loop_threads() -> list[threading.Thread]:
    """The blocking clients' loop threads alive now."""
    return [thread for thread in threading.enumerate() if thread.name == LOOP_THREAD]


def test_a_job_waits_to_an_image_result_with_blocking_follow_ups(blocking: Client) -> None:
    """``wait()`` returns the blocking ImageResult; its follow-up returns a blocking handle
    whose result is the upscaled image."""
    result = blocking.diffusion("a lighthouse").wait()
    assert isinstance(result, sync.ImageResult)
    assert len(result.image_urls) == 4
    handle = result.upscale(0)
    assert isinstance(handle, sync.TaskHandle)
    upscaled = handle.result()
    assert isinstance(upscaled, sync.ImageResult)
    assert len(upscaled.image_urls) == 1
    assert handle.done


def test_updates_are_a_plain_iterator_ending_with_the_final_snapshot(blocking: Client) -> None:
    """``updates()`` yields snapshots as they change, the last one completed."""
    statuses = [task.status for task in blocking.diffusion("a lighthouse").updates()]
    assert statuses[-1] is TaskStatus.COMPLETED
    assert len(statuses) == len(set(statuses)) >= 2


def test_leaving_updates_early_leaves_the_client_usable(blocking: Client) -> None:
    """Breaking out of ``updates()`` after the first snapshot closes it; the job can still
    be waited for."""
    handle = blocking.diffusion("a lighthouse")
    for task in handle.updates():
        assert not task.is_finished
        break
    assert handle.wait().job_id == handle.job_id


def test_reads_return_the_async_clients_types(served: ServedEmulator, blocking: Client) -> None:
    """``get_task``, ``refresh``, ``balance`` and ``task(job_id).wait()`` of a job made
    elsewhere return what the async client returns."""
    job_id = served.call(lambda emu: emu.seed_job("describe"))
    assert blocking.get_task(job_id).status is TaskStatus.COMPLETED
    handle = blocking.task(job_id)
    assert handle.refresh().job_id == job_id
    result = handle.wait()
    assert isinstance(result, sync.TextResult)
    assert result.prompts
    assert isinstance(blocking.balance(), Balance)


def test_a_failed_job_raises_task_failed_error(served: ServedEmulator, blocking: Client) -> None:
    """A job that ends failed raises the async client's TaskFailedError, with its task."""
    served.call(lambda emu: emu.fail_next())
    handle = blocking.diffusion("a lighthouse")
    with pytest.raises(TaskFailedError) as failed:
        handle.wait()
    assert failed.value.task.job_id == handle.job_id


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.inpaint("a" * 8, 7, mask=MASK), id="client-method"),
        pytest.param(lambda c: c.get_task("not a job id"), id="read"),
    ],
)
def test_bad_arguments_raise_validation_error_and_send_nothing(
    served: ServedEmulator, blocking: Client, call: Callable[[Client], object]
) -> None:
    """A value past a documented limit raises ValidationError before any request."""
    with pytest.raises(ValidationError):
        call(blocking)
    assert served.call(lambda emu: len(emu.requests)) == 0


def test_a_follow_up_not_offered_is_refused_before_sending(
    served: ServedEmulator, blocking: Client
) -> None:
    """A result's follow-up checks ``available_actions`` first, as the async one does."""
    job_id = served.call(lambda emu: emu.seed_job("diffusion"))
    result = blocking.task(job_id).wait()
    assert isinstance(result, sync.ImageResult)
    with pytest.raises(ValidationError, match="enhance is not offered"):
        result.enhance(0)
    assert served.posts() == 0


def test_downloads_save_the_files(blocking: Client, tmp_path: Path) -> None:
    """``result.download(dir)`` and ``client.download(result, dir)`` save the four images."""
    result = blocking.diffusion("a lighthouse").wait()
    saved = result.download(tmp_path)
    assert [path.name for path in saved] == [f"{result.job_id}_{n}.png" for n in range(4)]
    assert blocking.download(result, tmp_path) == saved
    assert all(path.stat().st_size > 0 for path in saved)


def test_a_key_already_recorded_sends_nothing(served: ServedEmulator) -> None:
    """With a store, a second call with the same key returns the recorded job; ``resume``
    and ``records`` see it."""
    with Client(
        api_key=API_KEY,
        base_url=served.base_url,
        poll=PollPolicy(time_scale=SCALE),
        store=MemoryJobStore(),
    ) as client:
        first = client.diffusion("a lighthouse", key="one")
        again = client.diffusion("a lighthouse", key="one")
        assert again.job_id == first.job_id
        assert [handle.job_id for handle in client.resume()] == [first.job_id]
        first.wait()
        assert [record.key for record in client.records(RecordState.COMPLETED)] == ["one"]
    assert served.posts() == 1


def test_points_are_counted_under_max_points(served: ServedEmulator) -> None:
    """``points`` reads the async client's totals."""
    with Client(
        api_key=API_KEY,
        base_url=served.base_url,
        poll=PollPolicy(time_scale=SCALE),
        max_points=1000,
    ) as client:
        assert client.points is not None
        assert client.points.spent == 0
        client.diffusion("a lighthouse").wait()
        assert client.points.spent > 0


def test_as_completed_yields_each_job_and_reports_progress(blocking: Client) -> None:
    """Items come as ``(handle, outcome)`` with their position; ``on_progress`` is called
    in the caller's thread after each."""
    handles = [blocking.diffusion(f"take {n}") for n in range(3)]
    seen: list[tuple[int, str]] = []
    items = list(
        blocking.as_completed(
            handles,
            on_progress=lambda p: seen.append((p.finished, threading.current_thread().name)),
        )
    )
    assert sorted(item.position for item in items) == [0, 1, 2]
    for item in items:
        handle, outcome = item
        assert handle is handles[item.position]
        assert isinstance(outcome, sync.ImageResult)
    assert seen == [(n, threading.current_thread().name) for n in (1, 2, 3)]


def test_closing_ends_the_thread_and_refuses_later_calls(served: ServedEmulator) -> None:
    """After ``close()`` no loop thread is left, calls raise ClientClosedError, and closing
    again does nothing."""
    client = Client(api_key=API_KEY, base_url=served.base_url)
    assert len(loop_threads()) == 1
    client.balance()
    client.close()
    assert loop_threads() == []
    assert client.closed
    with pytest.raises(ClientClosedError):
        client.balance()
    client.close()


def test_a_client_dropped_unclosed_is_closed_when_collected(served: ServedEmulator) -> None:
    """The finaliser of a collected client ends its thread and closes its session."""
    client = Client(api_key=API_KEY, base_url=served.base_url)
    client.balance()
    del client
    gc.collect()
    assert loop_threads() == []


def test_closing_ends_a_wait_in_another_thread(blocking: Client) -> None:
    """A thread waiting on a handle when the client closes gets ClientClosedError."""
    handle = blocking.diffusion("a very long one", poll=PollPolicy(time_scale=1.0))
    outcome: list[BaseException] = []
    waiting = threading.Thread(target=lambda: outcome.extend(_raised(handle.wait)))
    waiting.start()
    blocking.close()
    waiting.join()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientClosedError)


def _raised(call: Callable[[], object]) -> list[BaseException]:
    try:
        call()
    except BaseException as exc:  # the test looks at it
        return [exc]
    return []


def test_bad_constructor_arguments_start_no_thread() -> None:
    """A ValidationError from the constructor leaves no loop thread behind."""
    with pytest.raises(ValidationError, match="max_active_jobs"):
        Client(api_key=API_KEY, base_url="http://127.0.0.2:9/api", max_active_jobs=0)
    assert loop_threads() == []


def test_the_key_is_not_in_the_repr() -> None:
    """The blocking client's repr masks the key, as the async one does."""
    with Client(api_key=API_KEY, base_url="http://127.0.0.2:9/api") as client:
        assert API_KEY not in repr(client)


# --- one surface, held to the catalogue ----------------------------------------------------


def by_route() -> list[ParameterSet]:
    """One case per route, named after its path."""
    return [pytest.param(route.name, id=route.path) for route in ROUTES]


def follow_ups() -> list[ParameterSet]:
    """One case per follow-up a result offers."""
    classes = {"image": "ImageResult", "video": "VideoResult"}
    return [
        pytest.param(classes[route.follows], route.name, id=route.path)
        for route in ROUTES
        if route.follows is not None
    ]


def signature(function: Any) -> tuple[list[tuple[str, Any, object, object]], object]:
    """A method's parameters after ``self`` and its return annotation."""
    found = inspect.signature(function)
    listed = list(found.parameters.values())[1:]
    return [(p.name, p.kind, p.default, p.annotation) for p in listed], found.return_annotation


@pytest.mark.parametrize("name", by_route())
def test_each_job_creating_method_is_the_async_clients(name: str) -> None:
    """Same parameters, defaults and return annotation (a handle of the same family)."""
    assert signature(getattr(Client, name)) == signature(getattr(LegnextClient, name))


@pytest.mark.parametrize(("cls", "name"), follow_ups())
def test_each_follow_up_is_the_async_results(cls: str, name: str) -> None:
    """A blocking result's follow-up takes what the async result's does."""
    blocking, asynchronous = getattr(sync, cls), getattr(legnext_async, cls)
    assert signature(getattr(blocking, name)) == signature(getattr(asynchronous, name))


def test_the_client_has_every_public_method_of_the_async_one() -> None:
    """Nothing public of LegnextClient is missing, but what a blocking client cannot have."""
    asynchronous = {name for name in dir(LegnextClient) if not name.startswith("_")}
    blocking = {name for name in dir(Client) if not name.startswith("_")}
    assert asynchronous - blocking == {"aclose"}
    # base_url: an attribute of each LegnextClient, a property of the blocking one.
    assert blocking - asynchronous == {"base_url", "close"}


def test_a_blocking_call_from_the_loop_thread_is_refused(blocking: Client) -> None:
    """A blocking call made in the client's own loop thread raises rather than wait forever."""
    loop = blocking._loop._loop
    assert loop is not None

    async def in_loop_thread() -> list[BaseException]:
        return _raised(blocking.balance)

    (error,) = asyncio.run_coroutine_threadsafe(in_loop_thread(), loop).result()
    assert isinstance(error, LegnextError)
    assert "would wait forever" in str(error)
