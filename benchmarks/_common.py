"""Shared plumbing for the benchmarks: the emulator in its own process, clocks, statistics.

The emulator runs in a child process (``multiprocessing``, spawn) so that the client's CPU
time is measured alone: ``time.process_time()`` in the benchmark process counts only the
client. The child is driven over a pipe (seed jobs, create jobs, arm faults, read its job
book and its request log), and reports its virtual clock against ``time.monotonic()``,
which is the same clock in both processes on Linux, so the benchmark can place its own
observations on the emulator's virtual time line.

Not a benchmark itself; imported by the ``bench_*.py`` scripts next to it.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import gc
import hashlib
import json
import math
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence
    from multiprocessing.connection import Connection

    from legnext_async.emulator import Emulator, Fault

#: The key every benchmark's emulator accepts; fake, loopback only.
API_KEY: Final = "bench-" + "0" * 58
RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
#: Any plausible inpaint mask: one 500x500 square (the documented minimum size).
MASK_POINTS: Final = (10, 10, 10, 490, 490, 490, 490, 10)


# --- the emulator in a child process ---------------------------------------------------


class RemoteEmulator:
    """An :class:`~legnext_async.emulator.Emulator` running in a child process.

    Use as a context manager; ``options`` are the ``Emulator`` keyword options. Methods
    block until the child answers (they are for set-up and book-keeping, never for the
    measured phase).
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("api_key", API_KEY)
        options.setdefault("request_log_limit", None)
        self.options = options
        self.time_scale: float = float(options.get("time_scale", 1.0))
        self.base_url = ""
        self._clock_pair = (0.0, 0.0)  # (monotonic, virtual) read together in the child
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_child_main, args=(child_conn, options), name="legnext-emulator", daemon=True
        )

    def __enter__(self) -> RemoteEmulator:
        self._process.start()
        reply = self._conn.recv()
        if reply[0] != "ready":
            raise RuntimeError(f"the emulator child failed to start: {reply!r}")
        _, self.base_url, mono, virtual = reply
        self._clock_pair = (mono, virtual)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._conn.send(("stop", {}))
            self._conn.recv()
        except (BrokenPipeError, EOFError, OSError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._conn.close()

    def call(self, command: str, **kwargs: Any) -> Any:
        """Run ``command`` in the child and return its answer (errors re-raised here)."""
        self._conn.send((command, kwargs))
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulator child: {command} failed: {value}")
        return value

    def virtual_at(self, monotonic: float) -> float:
        """The emulator's virtual time (Unix seconds) at ``time.monotonic() == monotonic``."""
        mono0, virtual0 = self._clock_pair
        return virtual0 + (monotonic - mono0) / self.time_scale

    def seed_jobs(self, n: int, task_type: str = "diffusion") -> list[str]:
        """Ids of ``n`` finished jobs (parents for follow-ups, or targets for reads)."""
        ids: list[str] = self.call("seed_jobs", n=n, task_type=task_type)
        return ids

    def create_jobs(self, n: int, route: str, body: dict[str, Any]) -> list[str]:
        """Create ``n`` jobs with real POSTs made inside the child; their ids in order."""
        ids: list[str] = self.call("create_jobs", n=n, route=route, body=body)
        return ids

    def jobs(self) -> list[dict[str, Any]]:
        """Every job: ``job_id, task_type, status, created_at, started_at, ended_at, seeded``."""
        rows: list[dict[str, Any]] = self.call("jobs")
        return rows

    def request_mark(self) -> int:
        """How many requests the emulator has logged so far (a mark for ``requests_since``)."""
        count: int = self.call("request_count")
        return count

    def requests_since(self, mark: int) -> dict[str, Any]:
        """A summary of the requests after ``mark``: counts by ``"METHOD status"``, GETs
        per job id, and the total."""
        summary: dict[str, Any] = self.call("requests_since", mark=mark)
        return summary

    def add_faults(self, faults: Sequence[Fault]) -> None:
        """Arm ``faults`` in the child's emulator, in order."""
        self.call("add_faults", faults=list(faults))

    def records_since(self, mark: int, field: str) -> list[list[Any]]:
        """The requests after ``mark``, one row each: ``[method, path, status, fault,
        job_id, value]``, where ``value`` is the request body's ``field`` (or ``None``)."""
        rows: list[list[Any]] = self.call("records_since", mark=mark, field=field)
        return rows

    def peak_active(self) -> int:
        """The most jobs of the account that held a concurrency slot at once, so far."""
        peak: int = self.call("peak_active")
        return peak

    def cpu_seconds(self) -> float:
        """CPU seconds the emulator process has used (user + system)."""
        seconds: float = self.call("cpu")
        return seconds


def _child_main(conn: Connection, options: dict[str, Any]) -> None:
    asyncio.run(_child_serve(conn, options))


async def _child_serve(conn: Connection, options: dict[str, Any]) -> None:
    from legnext_async.emulator import Emulator

    emulator = Emulator(**options)
    loop = asyncio.get_running_loop()
    async with emulator:
        conn.send(("ready", emulator.base_url, time.monotonic(), emulator.now()))
        while True:
            command, kwargs = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                conn.send(("ok", None))
                break
            try:
                value = await _child_command(emulator, command, kwargs)
            except Exception as exc:  # reported to the parent, which raises
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("ok", value))


async def _child_command(emulator: Emulator, command: str, kwargs: dict[str, Any]) -> Any:
    if command == "seed_jobs":
        return [emulator.seed_job(kwargs["task_type"]) for _ in range(kwargs["n"])]
    if command == "create_jobs":
        return await _create_jobs(emulator.base_url, kwargs["n"], kwargs["route"], kwargs["body"])
    if command == "jobs":
        return [
            {
                "job_id": job.job_id,
                "task_type": job.task_type,
                "status": job.status,
                "created_at": job.created_at,
                "started_at": job.started_at,
                "ended_at": job.ended_at,
                "seeded": job.seeded,
            }
            for job in emulator.jobs
        ]
    if command == "peak_active":
        return emulator.peak_active()
    if command == "request_count":
        return len(emulator.requests)
    if command == "requests_since":
        records = emulator.requests[kwargs["mark"] :]
        by_status: collections.Counter[str] = collections.Counter()
        gets: collections.Counter[str] = collections.Counter()
        for record in records:
            by_status[f"{record.method} {record.status}"] += 1
            if record.method == "GET" and record.path.startswith("/api/v1/job/"):
                gets[record.path.rsplit("/", 1)[1]] += 1
        return {"total": len(records), "by_status": dict(by_status), "gets_by_job": dict(gets)}
    if command == "add_faults":
        for fault in kwargs["faults"]:
            emulator.add_fault(fault)
        return None
    if command == "records_since":
        field = kwargs["field"]
        return [
            [
                record.method,
                record.path,
                record.status,
                record.fault,
                record.job_id,
                record.body.get(field) if isinstance(record.body, dict) else None,
            ]
            for record in emulator.requests[kwargs["mark"] :]
        ]
    if command == "callback_log":
        return [[record.job_id, record.outcome] for record in emulator.callback_log]
    if command == "cpu":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    raise ValueError(f"unknown command {command!r}")


async def _create_jobs(base_url: str, n: int, route: str, body: dict[str, Any]) -> list[str]:
    import aiohttp

    gate = asyncio.Semaphore(64)
    headers = {"x-api-key": API_KEY}

    async def one(session: aiohttp.ClientSession) -> str:
        async with gate, session.post(f"{base_url}/v1/{route}", json=body, headers=headers) as r:
            data = await r.json()
            if r.status != 200:
                raise RuntimeError(f"POST /v1/{route} -> {r.status}: {data}")
            job_id: str = data["job_id"]
            return job_id

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(one(session) for _ in range(n))))


# --- measuring -------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU seconds (user + system) used by this process, all its threads included."""
    return time.process_time()


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss``; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """Resident set size now, from ``/proc/self/statm`` (0 where that does not exist)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; NaN for no values."""
    return sum(values) / len(values) if values else math.nan


class LoopLagProbe:
    """A coroutine that sleeps ``interval`` seconds over and over and records how late it
    wakes (the event loop's lag, in seconds). Use as ``async with LoopLagProbe() as p``."""

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.times: list[float] = []  # loop.time() at the start of each sleep
        self.started = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - before - self.interval))
            self.times.append(before)

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        # Let it tick before the measured work starts, or that work's first loop
        # iteration would run unseen inside the probe's first sleep.
        await asyncio.sleep(3 * self.interval)
        self.lags.clear()
        self.times.clear()
        self.started = asyncio.get_running_loop().time()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def summary_ms(self, after: float = 0.0) -> dict[str, float]:
        """p50, p99 and max of the lags recorded from ``after`` seconds on, in milliseconds,
        and when (seconds after the probe started) the worst one began."""
        picked = [
            (t - self.started, lag)
            for t, lag in zip(self.times, self.lags, strict=True)
            if t - self.started >= after
        ]
        lags = [lag for _, lag in picked]
        worst = max(picked, key=lambda item: item[1], default=(math.nan, math.nan))
        return {
            "p50": percentile(lags, 50) * 1000,
            "p99": percentile(lags, 99) * 1000,
            "max": worst[1] * 1000,
            "max_at_s": worst[0],
            "samples": float(len(lags)),
        }


class GcWatch:
    """Records the pauses of the cyclic garbage collector while in the ``with`` block."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((int(info["generation"]), time.perf_counter() - self._started))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary_ms(self) -> dict[str, float]:
        """Collections, and the longest pause (ms), per generation and overall."""
        out: dict[str, float] = {"collections": float(len(self.pauses))}
        for generation in (0, 1, 2):
            pauses = [d for g, d in self.pauses if g == generation]
            out[f"gen{generation}_count"] = float(len(pauses))
            out[f"gen{generation}_max_ms"] = max(pauses, default=0.0) * 1000
        out["max_ms"] = max((d for _, d in self.pauses), default=0.0) * 1000
        out["total_ms"] = sum(d for _, d in self.pauses) * 1000
        return out


# --- the machine and the output --------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import aiohttp

    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import legnext_async

        client_version = legnext_async.__version__
    except ImportError:  # pragma: no cover - the benchmarks need the package
        client_version = "missing"
    commit = package_label()
    return {
        "commit": commit,
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
        "legnext_async": client_version,
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


#: Set by ``run_all.py`` for its children: which package version the run measures.
PACKAGE_ENV: Final = "LEGNEXT_BENCH_PACKAGE"


def source_digest(directory: Path) -> str:
    """A short SHA-256 over the names and contents of the ``.py`` files under ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def package_label() -> str:
    """Which ``legnext_async`` is measured: the last commit that touched ``legnext_async/``
    when the imported copy matches the working tree (plus "+ local changes" if the tree has
    uncommitted ones); otherwise the imported copy's digest, since the tree moved on."""
    from_env = os.environ.get(PACKAGE_ENV)
    if from_env:
        return from_env
    import legnext_async

    root = Path(__file__).resolve().parent.parent
    installed = source_digest(Path(legnext_async.__file__).parent)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("log", "-1", "--format=%h", "--", "legnext_async")
        changed = git("status", "--porcelain", "--", "legnext_async")
    except (OSError, subprocess.CalledProcessError):
        return f"source digest {installed}"
    if installed != source_digest(root / "legnext_async"):
        return f"source digest {installed}, not the tree's (tree at {commit})"
    return f"{commit} + local changes" if changed else commit


def write_result(name: str, result: dict[str, Any], path: str | None = None) -> Path:
    """Write ``result`` (plus the machine) as JSON to ``path`` or ``results/<name>.json``."""
    target = Path(path) if path else RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), **result}
    target.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return target


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table: fixed decimals, "n/a" for NaN or ``None``."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def log(message: str) -> None:
    """Progress to stderr (stdout carries the result tables)."""
    print(message, file=sys.stderr, flush=True)
