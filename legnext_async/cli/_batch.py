"""``legnext batch run FILE``: a JSON Lines file of requests, run under idempotency keys.

Every line is checked before anything is sent. Each line's key comes from the file's name
and the line's content (its occurrence among equal lines, not its position), so running
the same command again, after a crash, a kill or Ctrl-C, finds every job the store
recorded and sends only what was never sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from legnext_async._exceptions import (
    InsufficientCreditsError,
    LegnextError,
    NotFoundError,
    PermissionDeniedError,
    SpendingLimitError,
    SubmissionOutcomeUnknownError,
    ValidationError,
)
from legnext_async._results import TaskResult
from legnext_async._store import SQLiteJobStore, canonical_request
from legnext_async._task_errors import TaskFailedError, TaskTimeoutError

from ._commands import Terminal, forget_command, make_client
from ._display import BatchStats, open_live
from ._exit import ExitCode, exit_code_for
from ._options import ROUTES_BY_OP, submit, values_from_json
from ._output import emit, task_document

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

    from legnext_async._catalog import Route
    from legnext_async._client import LegnextClient
    from legnext_async._handle import TaskHandle
    from legnext_async._models import Task

    from ._config import Config

__all__ = ["BatchLine", "LineError", "batch_key", "read_batch", "run_batch"]

#: The most of a file's name a key keeps (keys are at most 256 characters).
_NAME_IN_KEY: Final = 160
#: What refuses a line for good, with no job made: the spending limit (``--max-points``), the
#: balance (402), the service's refusal of the request or the feature (403).
_REFUSALS: Final = (SpendingLimitError, InsufficientCreditsError, PermissionDeniedError)
#: Seconds between two progress lines when the output is not a terminal.
DEFAULT_PROGRESS_EVERY: Final = 10.0


@attrs.frozen
class BatchLine:
    """One valid line: its number (from 1), route, values, request object and key."""

    number: int
    route: Route
    values: Mapping[str, object]
    request: Mapping[str, Any]
    key: str


@attrs.frozen
class LineError:
    """Why a line cannot be sent: its number, the field at fault (if one) and the reason."""

    number: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.number}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


def invalid_document(path: Path, errors: Sequence[LineError], message: str) -> dict[str, Any]:
    """The JSON document of a batch file refused for its invalid lines: shaped as every
    other error, with each line's number, field and reason."""
    return {
        "error": "ValidationError",
        "message": f"{path}: {message}",
        "exit_code": int(ExitCode.USAGE),
        "invalid": [
            {"line": error.number, "field": error.field, "message": error.message}
            for error in errors
        ],
    }


def batch_key(file_name: str, request: Mapping[str, Any], occurrence: int) -> str:
    """The idempotency key of a line: the file's name, a hash of the request's content, and
    how many equal requests came before it in the file."""
    digest = hashlib.sha256(canonical_request(request).encode()).hexdigest()[:32]
    return f"{file_name[:_NAME_IN_KEY]}:{digest}:{occurrence}"


def _check_line(number: int, text: str) -> tuple[Route, dict[str, object], dict[str, Any]]:
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise ValidationError("", f"not JSON ({exc})") from None
    if not isinstance(request, dict):
        raise ValidationError("", f"must be a JSON object, got {type(request).__name__}")
    op = request.get("op")
    if not isinstance(op, str) or op not in ROUTES_BY_OP:
        ops = ", ".join(sorted({route.path for route in ROUTES_BY_OP.values()}))
        raise ValidationError("op", f"must be one of {ops}, got {op!r}")
    route = ROUTES_BY_OP[op]
    values = values_from_json(route, request)
    route.body(values)
    return route, values, request


def read_batch(path: Path) -> tuple[list[BatchLine], list[LineError]]:
    """Every line of the file, checked: the valid ones and the errors (blank lines skipped).

    Raises:
        ValidationError: the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("FILE", f"cannot read {path}: {exc}") from None
    lines: list[BatchLine] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            route, values, request = _check_line(number, raw)
        except ValidationError as exc:
            message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
            errors.append(LineError(number, exc.field or None, message.removeprefix(": ")))
            continue
        canonical = canonical_request(request)
        occurrence = seen.get(canonical, 0)
        seen[canonical] = occurrence + 1
        key = batch_key(path.name, request, occurrence)
        lines.append(BatchLine(number, route, values, request, key))
    return lines, errors


def _line_document(
    line: BatchLine, state: str, task: Task | None, files: tuple[Path, ...], error: str | None
) -> dict[str, Any]:
    document: dict[str, Any] = {"line": line.number, "key": line.key, "op": line.route.path}
    if task is not None:
        document.update(task_document(task, files=files))
    document["state"] = state
    document["error"] = error
    return document


@attrs.define
class _Run:
    """One run of a batch: its lines, counts, results file and what ended how."""

    lines: list[BatchLine]
    stats: BatchStats
    results: TextIO
    terminal: Terminal
    out_dir: Path | None
    unknown: list[tuple[BatchLine, str]] = attrs.field(factory=list)
    restored: set[int] = attrs.field(factory=set)
    #: The lines whose outcome was recorded (by position).
    ended: set[int] = attrs.field(factory=set)
    downloads: set[asyncio.Task[None]] = attrs.field(factory=set)
    #: The exit codes of the refusals met (the spending limit or balance, a 403).
    refusals: set[ExitCode] = attrs.field(factory=set)
    #: The exit codes of the errors met (a network problem, any other).
    errors: set[ExitCode] = attrs.field(factory=set)
    #: Lines whose job the service no longer knows (a 404: past its retention window).
    lost: list[BatchLine] = attrs.field(factory=list)

    def record(self, document: Mapping[str, Any]) -> None:
        """Write a line's outcome to the results file (and stdout, as JSON)."""
        emit(self.results, document)
        if self.terminal.json:
            emit(self.terminal.out, document)

    async def execute(self, client: LegnextClient) -> None:
        """Submit every line (as job slots allow) and handle each as it ends."""
        submissions = [submit(client, line.route, line.values, line.key) for line in self.lines]

        def submitted(position: int, handle: TaskHandle[Any]) -> None:
            if handle.done:
                self.restored.add(position)  # answered from the store: no wait

        try:
            async for item in client.as_completed(submissions, on_submitted=submitted):
                handle, outcome = item
                self._ended(client, item.position, outcome, handle.job_id if handle else None)
            if self.downloads:
                await asyncio.gather(*self.downloads)
        finally:
            for task in self.downloads:
                task.cancel()

    def _ended(
        self, client: LegnextClient, position: int, outcome: object, job_id: str | None
    ) -> None:
        """Count and record how line ``position`` ended; ``job_id``: the job its submission
        made, if it made one (a refusal after that, of a status read, is an error: the job
        exists and is paid for)."""
        self.ended.add(position)
        line = self.lines[position]
        stats = self.stats
        if position not in self.restored:
            stats.waited += 1
        if isinstance(outcome, TaskResult):
            task = outcome.task
            stats.points += task.meta.usage.consume
            if self.out_dir is not None and task.task_type.family != "text":
                download = asyncio.ensure_future(self._save(client, line, task, self.out_dir))
                self.downloads.add(download)
                download.add_done_callback(self.downloads.discard)
                return
            stats.completed += 1
            self.record(_line_document(line, "completed", task, (), None))
        elif isinstance(outcome, TaskFailedError):
            stats.failed += 1
            stats.points += outcome.task.meta.usage.consume
            self.record(_line_document(line, "failed", outcome.task, (), str(outcome)))
        elif isinstance(outcome, SubmissionOutcomeUnknownError):
            stats.unknown += 1
            self.unknown.append((line, outcome.key or line.key))
            self.record(_line_document(line, "unknown", None, (), str(outcome)))
        elif isinstance(outcome, _REFUSALS) and job_id is None:
            # The service (or the limit) said no before any job was made: nothing is owed,
            # and a run after the account changes sends the line anew.
            stats.refused += 1
            self.refusals.add(exit_code_for(outcome))
            self.record(_line_document(line, "refused", None, (), str(outcome)))
        elif isinstance(outcome, TaskTimeoutError):
            stats.failed += 1
            self.record(_line_document(line, "timeout", None, (), str(outcome)))
        else:
            # Never a job's own failure: the network, the service or the client. A submission
            # that may have made a job is an unknown outcome (above), so a run again sends
            # only what provably made none, and waits again for what did.
            assert isinstance(outcome, LegnextError)
            stats.errors += 1
            self.errors.add(exit_code_for(outcome))
            document = _line_document(line, "error", None, (), str(outcome))
            if job_id is not None:
                document["job_id"] = job_id  # made, and recorded: a run again waits for it
                if isinstance(outcome, NotFoundError):
                    self.lost.append(line)  # a run again will not find it either
            self.record(document)

    async def unknown_from_store(self, config: Config) -> None:
        """After a Ctrl-C: the lines that did not end but whose request went (its answer
        abandoned, or on its way) are unknown outcomes, as the store (written by now) says."""
        store = config.get("store")
        if store is None:
            return
        async with SQLiteJobStore(store) as records:
            for position, line in enumerate(self.lines):
                if position in self.ended:
                    continue
                record = await records.get(line.key)
                if record is not None and record.state.outcome_unknown:
                    self.ended.add(position)
                    self.stats.unknown += 1
                    self.unknown.append((line, line.key))
                    self.record(_line_document(line, "unknown", None, (), "interrupted while sent"))

    async def _save(self, client: LegnextClient, line: BatchLine, task: Task, out: Path) -> None:
        try:
            files = await client.download(task, out)
        except LegnextError as exc:
            self.stats.errors += 1
            self.errors.add(exit_code_for(exc))
            self.record(_line_document(line, "download_failed", task, (), str(exc)))
            return
        except asyncio.CancelledError:
            # Ctrl-C: the job completed (and is paid); its files are fetched by a run again.
            self.stats.errors += 1
            self.record(_line_document(line, "download_failed", task, (), "interrupted"))
            raise
        self.stats.completed += 1
        self.record(_line_document(line, "completed", task, files, None))


async def _progress_lines(stats: BatchStats, terminal: Terminal, every: float) -> None:
    """A plain progress line every ``every`` seconds (output that is not a terminal)."""
    while True:
        await asyncio.sleep(every)
        terminal.say("progress: " + stats.line())


def _bar(stats: BatchStats, width: int = 24) -> str:
    done = round(width * stats.finished / stats.total) if stats.total else width
    return "[" + "#" * done + "." * (width - done) + "] " + stats.line()


def _exit_code(
    stats: BatchStats, skipped: int, refusals: set[ExitCode], errors: set[ExitCode]
) -> ExitCode:
    if stats.unknown:
        return ExitCode.UNKNOWN_OUTCOME
    if stats.failed or skipped:
        return ExitCode.FAILED
    if stats.errors:
        # One kind of error (the network's, most often): its code; a run again, once that
        # is mended, takes the lines up.
        return next(iter(errors)) if len(errors) == 1 else ExitCode.ERROR
    if stats.refused:
        # The spending limit or balance first: more money lets those lines run.
        return ExitCode.SPENDING if ExitCode.SPENDING in refusals else ExitCode.AUTH
    return ExitCode.OK


def _summary(
    path: Path, run: _Run, skipped: int, results: Path, store: str, interrupted: bool
) -> list[str]:
    stats = run.stats
    lines = [f"batch {path}: {stats.line()}"]
    if skipped:
        lines.append(f"{skipped} invalid lines skipped (listed in the results file)")
    lines.append(f"results: {results}")
    if run.unknown:
        lines.append(
            f"{len(run.unknown)} lines have an unknown outcome: the request was sent and its"
            " answer lost, so a job may exist and be billed. They are left alone:"
        )
        lines.extend(f"  line {line.number}  key {key}" for line, key in run.unknown)
        lines.append(
            f"  once you know a job does not exist (or want it anyway): legnext jobs --store"
            f" {store} --forget KEY, then run the batch again to send it"
        )
    if run.lost:
        lines.append(
            f"{len(run.lost)} lines' jobs are no longer known to the service (past its"
            " retention window). To send a line anew, free its key:"
        )
        lines.extend(
            f"  line {line.number}  {forget_command(store, line.key)}" for line in run.lost
        )
    others = stats.errors - len(run.lost)
    if others and not interrupted:
        lines.append(
            f"{others} lines ended in an error (listed in the results file): run the"
            " same command again to take them up; nothing is sent or paid twice"
        )
    if interrupted:
        lines.append(
            f"interrupted: {stats.finished} of {stats.total} lines ended. Jobs already"
            f" submitted go on and are recorded in {store}: run the same command again to"
            " continue (nothing is sent or paid twice)."
        )
    return lines


async def run_batch(args: argparse.Namespace, config: Config, terminal: Terminal) -> int:
    """``legnext batch run``: check every line, then run them; the exit code."""
    path = Path(args.file)
    lines, errors = read_batch(path)
    store = config.get("store")
    if store is None:
        raise ValidationError("--store", "a batch needs a job store file (--store batch.db)")
    if errors and not args.skip_invalid:
        for error in errors:
            terminal.say(f"{path}: {error}")
        message = f"{len(errors)} invalid lines; nothing was sent (--skip-invalid sends the rest)"
        terminal.say(message)
        if terminal.json:
            emit(terminal.out, invalid_document(path, errors, message))
        return ExitCode.USAGE
    results_path = (
        Path(args.results) if args.results else path.with_name(path.stem + ".results.jsonl")
    )
    out_dir = Path(args.out) if args.out is not None else None
    stats = BatchStats(total=len(lines))
    with results_path.open("w", encoding="utf-8") as results:
        run = _Run(lines, stats, results, terminal, out_dir)
        for error in errors:
            emit(results, {"line": error.number, "state": "invalid", "error": str(error)})
            terminal.say(f"{path}: skipped {error}")
        interrupted = await _execute(run, config, terminal, args.progress_every)
    for text in _summary(path, run, len(errors), results_path, str(store), interrupted):
        if terminal.json:
            terminal.say(text)
        else:
            terminal.out.write(text + "\n")
    terminal.out.flush()
    if interrupted:
        return ExitCode.INTERRUPTED
    return _exit_code(stats, len(errors), run.refusals, run.errors)


async def _execute(run: _Run, config: Config, terminal: Terminal, every: float) -> bool:
    """Run the batch until it ends or Ctrl-C stops it; whether Ctrl-C did."""
    loop = asyncio.get_running_loop()
    interrupted = False
    async with make_client(config) as client:
        work = asyncio.ensure_future(run.execute(client))

        def stop() -> None:
            nonlocal interrupted
            if interrupted:
                return
            interrupted = True
            terminal.say(
                "stopping: no new submissions; recording what was sent (Ctrl-C again quits at once)"
            )
            loop.remove_signal_handler(signal.SIGINT)
            work.cancel()

        loop.add_signal_handler(signal.SIGINT, stop)
        live = open_live(lambda: _bar(run.stats), terminal.err) if terminal.live else None
        ticker = None
        if live is None:
            ticker = asyncio.ensure_future(_progress_lines(run.stats, terminal, every))
        else:
            live.__enter__()
        try:
            await work
        except asyncio.CancelledError:
            if not interrupted:
                raise
        finally:
            if not interrupted:
                loop.remove_signal_handler(signal.SIGINT)
            if ticker is not None:
                ticker.cancel()
                await asyncio.wait((ticker,))
            if live is not None:
                live.__exit__(None, None, None)
    if interrupted:
        await run.unknown_from_store(config)
    if not terminal.live:
        terminal.say("progress: " + run.stats.line())
    return interrupted
