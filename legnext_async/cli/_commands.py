"""The commands of ``legnext`` other than ``batch``: a job per endpoint, status, wait,
balance, download and jobs."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from legnext_async._client import LegnextClient
from legnext_async._exceptions import (
    IdempotencyConflictError,
    LegnextError,
    SubmissionOutcomeUnknownError,
    ValidationError,
)
from legnext_async._polling import PollPolicy
from legnext_async._retry import RetryPolicy
from legnext_async._store import RecordState, SQLiteJobStore
from legnext_async._task_errors import TaskFailedError

from ._display import JobView, open_live
from ._options import option_label, submit, values_from_args
from ._output import balance_document, emit, record_document, task_document, task_lines

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    from legnext_async._catalog import Route
    from legnext_async._handle import TaskHandle
    from legnext_async._models import Task

    from ._config import Config

__all__ = ["Terminal", "make_client", "run_command"]


@attrs.frozen
class Terminal:
    """Where output goes and how: JSON documents or text, with a live display or none."""

    out: TextIO
    err: TextIO
    json: bool
    live: bool

    @classmethod
    def of(cls, args: argparse.Namespace, out: TextIO, err: TextIO) -> Terminal:
        """JSON when asked or when the output is not a terminal; a live display only on a
        terminal, and never with ``--json``."""
        as_json = bool(args.json) or not out.isatty()
        return cls(out, err, as_json, live=not args.json and err.isatty())

    def say(self, text: str) -> None:
        """A line for the person at the terminal (on stderr: it is not the output)."""
        self.err.write(text + "\n")
        self.err.flush()


def make_client(config: Config) -> LegnextClient:
    """A client with the settings in force.

    Raises:
        ValidationError: no API key (``field`` is ``api_key``), or a setting the client
            refuses.
    """
    if config.get("api_key") is None:
        raise ValidationError(
            "api_key",
            "no API key: set LEGNEXT_API_KEY, or api_key in the config file"
            " (~/.config/legnext/config.toml)",
        )
    poll = PollPolicy(time_scale=config.get("time_scale"), timeout=config.get("timeout"))
    attempts = config.get("attempts")
    if attempts is not None and attempts < 1:
        raise ValidationError("attempts", f"must be at least 1, got {attempts}")
    return LegnextClient(
        retry=RetryPolicy(attempts=attempts) if attempts is not None else None,
        api_key=config.get("api_key"),
        base_url=config.get("base_url"),
        poll=poll,
        store=config.get("store"),
        max_points=config.get("max_points"),
        max_active_jobs=config.get("max_active_jobs"),
        requests_per_second=config.get("requests_per_second"),
    )


def checked_values(route: Route, args: argparse.Namespace) -> dict[str, object]:
    """The route's values from the options, checked against every limit (nothing sent).

    Raises:
        ValidationError: named by the option the user typed (``--image``), not the field.
    """
    try:
        values = values_from_args(route, args)
        route.body(values)
    except ValidationError as exc:
        name = exc.field.split(".")[0].split("[")[0]
        try:
            label = option_label(route.field(name))
        except KeyError:
            raise exc from None
        message = str(exc).removeprefix(f"{exc.field}: ")
        detail = exc.field if exc.field != name else ""
        raise ValidationError(f"{label}{f' ({detail})' if detail else ''}", message) from None
    return values


async def follow(
    client: LegnextClient, handle: TaskHandle[Any], label: str, terminal: Terminal
) -> Task:
    """Wait for ``handle``'s job, with a live display on a terminal; its final task.

    Raises:
        TaskFailedError: the job failed (after the display shows it).
    """
    task_type = handle.task_type
    window = client._durations.window(task_type) if task_type is not None else (60.0, 120.0)
    view = JobView(label, handle.job_id, window, client.poll.time_scale)
    live = open_live(view.line, terminal.err) if terminal.live else None
    last = ""
    if live is not None:
        live.__enter__()
    try:
        async for snapshot in handle.updates():
            if task_type is None:
                task_type = snapshot.task_type
                view.window = client._durations.window(task_type)
            view.update(snapshot)
            if live is None and terminal.live and snapshot.status.value != last:
                last = snapshot.status.value
                terminal.say(view.line())
    finally:
        if live is not None:
            live.__exit__(None, None, None)
    result = await handle
    task: Task = result.task
    return task


def _print_task(
    terminal: Terminal,
    task: Task,
    files: tuple[Path, ...] = (),
    extra: Mapping[str, object] | None = None,
) -> None:
    if terminal.json:
        emit(terminal.out, {**task_document(task, files=files), **(extra or {})})
    else:
        terminal.out.write("\n".join(task_lines(task, files=files)) + "\n")
        terminal.out.flush()


async def _finish(
    client: LegnextClient,
    handle: TaskHandle[Any],
    label: str,
    args: argparse.Namespace,
    terminal: Terminal,
    extra: Mapping[str, object] | None = None,
) -> int:
    """Wait for a job, save its files if asked, print it (its document with ``extra``);
    the exit code."""
    try:
        task = await follow(client, handle, label, terminal)
    except TaskFailedError as exc:
        _print_task(terminal, exc.task, extra=extra)
        raise
    files: tuple[Path, ...] = ()
    if args.download is not None and task.task_type.family != "text":
        files = await client.download(task, args.download)
    _print_task(terminal, task, files, extra)
    return 0


def forget_command(store: str, key: str, *, force: bool = False) -> str:
    """The command that settles ``key`` in the job store ``store``, quoted for a shell;
    ``force`` for a key whose job exists."""
    # ``--forget=KEY``: a key may begin with "-", which the parser would take for an option.
    command = f"legnext jobs --store {shlex.quote(store)} --forget={shlex.quote(key)}"
    return command + " --force" if force else command


async def _submit_keyed(
    client: LegnextClient, route: Route, values: dict[str, object], key: str, store: str
) -> tuple[TaskHandle[Any], bool]:
    """Submit under ``key``: the handle, and whether the store already held its job (then
    nothing was sent).

    Raises:
        IdempotencyConflictError: the key was recorded for another request; the message
            says the command that frees it.
        SubmissionOutcomeUnknownError: the key's submission has an unknown outcome; the
            message says the command that settles it.
    """
    assert client.store is not None
    before = await client.store.get(key)
    if before is not None and before.state is RecordState.FORGOTTEN:
        before = None  # a forgotten key is sent anew
    try:
        handle = await submit(client, route, values, key)
    except IdempotencyConflictError as exc:
        force = before is not None and before.state not in _FREE_TO_FORGET
        settle = forget_command(store, exc.key, force=force)
        raise IdempotencyConflictError(exc.key, exc.endpoint, settle=settle) from None
    except SubmissionOutcomeUnknownError as exc:
        if before is None or not before.state.outcome_unknown:
            raise  # sent by this run: its own account of what happened
        raise SubmissionOutcomeUnknownError(
            endpoint=exc.endpoint,
            payload=exc.payload,
            sent_at=exc.sent_at,
            reason=f"recorded as {before.state.value} under key {key!r}; once you know"
            " whether its job exists, settle it:"
            f" {forget_command(store, key, force=before.state is RecordState.SUBMITTING)}",
            key=key,
        ) from None
    # A job sent now would have a new id: the same id is the one the store held.
    return handle, before is not None and before.job_id == handle.job_id


async def run_job(route: Route, args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """Submit a job of ``route`` and, unless ``--no-wait``, wait for it and print it.

    Its JSON documents say ``already_submitted``: whether ``--key`` found its job in the
    store, so that nothing was sent.
    """
    values = checked_values(route, args)
    store = config.get("store")
    if args.key is not None and store is None:
        # Said in the command's words, not the library's (LegnextClient(store=...)).
        raise ValidationError("--key", "needs a job store: --store FILE (or LEGNEXT_STORE)")
    async with make_client(config) as client:
        already = False
        if args.key is not None:
            handle, already = await _submit_keyed(client, route, values, args.key, store)
        else:
            handle = await submit(client, route, values, None)
        if already:
            t.say(
                f"legnext: job {handle.job_id} was already submitted under key {args.key!r}"
                f" (recorded in {store}); nothing was sent"
            )
        elif not args.no_wait and not t.err.isatty():
            # At once, on stderr (a log, a pipe, cron's mail): a wait cut short (Ctrl-C, a
            # kill) must not take the id of a paid job with it. A terminal's display shows it.
            t.say(
                f"legnext: submitted job {handle.job_id}"
                f" (if cut short: legnext wait {handle.job_id})"
            )
        extra = {"already_submitted": already}
        if args.no_wait:
            if t.json:
                # The job as the submission's answer (or the store) last showed it.
                made = handle.last_task
                document = task_document(made) if made is not None else {"job_id": handle.job_id}
                emit(t.out, {**document, **extra})
            else:
                t.out.write(handle.job_id + "\n")
            return 0
        return await _finish(client, handle, route.path, args, t, extra)


async def run_wait(args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """Wait for a job made elsewhere and print it."""
    async with make_client(config) as client:
        return await _finish(client, client.task(args.job_id), "job", args, t)


async def run_status(args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """Read a job's status once and print it."""
    async with make_client(config) as client:
        _print_task(t, await client.get_task(args.job_id))
    return 0


async def run_balance(args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """Print the account's balance."""
    async with make_client(config) as client:
        balance = await client.balance()
    if t.json:
        emit(t.out, balance_document(balance))
    else:
        t.out.write(
            f"{balance.available_points} points, {balance.available_credits} credits"
            f" (${balance.balance_usd:.2f}), account {balance.account_id}\n"
        )
    return 0


async def run_download(args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """Save a completed job's files."""
    async with make_client(config) as client:
        paths = await client.download(args.job_id, args.out)
    if t.json:
        emit(t.out, {"job_id": args.job_id, "files": [str(p) for p in paths]})
    else:
        t.out.write("".join(f"{path}\n" for path in paths))
    return 0


def _store_path(config: Config) -> Path:
    store = config.get("store")
    if store is None:
        raise ValidationError("--store", "name the job store file (or set LEGNEXT_STORE)")
    path = Path(store)
    if not path.is_file():
        raise ValidationError("--store", f"no job store at {path}")
    return path


#: What ``jobs --forget`` frees without ``--force``: keys whose answer was lost (an unknown
#: outcome), or whose job the service no longer knows. A claim still ``submitting`` needs
#: ``--force`` too: its run may be sending it now (or died while it did; nobody can tell
#: from the store).
_FREE_TO_FORGET: Final = frozenset({RecordState.UNKNOWN, RecordState.LOST, RecordState.FORGOTTEN})


async def _forget(store: SQLiteJobStore, key: str, t: Terminal, *, force: bool) -> int:
    """Settle ``key`` (as ``client.forget`` does); a key not held is nothing to forget.

    Exits 0 either way, as ``client.forget`` returns either way: what was asked for (the
    key free to be sent anew) holds, so a script may settle a key twice. A key whose job
    exists (pending, running or finished) is freed only with ``force``: the next run would
    pay for the job again.
    """
    held = await store.get(key)
    if held is not None and held.state is RecordState.SUBMITTING and not force:
        raise ValidationError(
            "--forget",
            f"key {key!r} is claimed by a submission that may be sending it now (or whose"
            " process died while it did): once no run is going and the account shows no"
            " job for it, add --force to forget it",
        )
    if held is not None and held.state not in _FREE_TO_FORGET and not force:
        raise ValidationError(
            "--forget",
            f"key {key!r} holds job {held.job_id} ({held.state.value}): forgetting it lets"
            " the next run send it, and pay for it, again; add --force to forget it anyway",
        )
    record = await store.forget(key)
    was = record.state if record is not None else None
    if was is None:
        t.say(f"legnext: nothing to forget: the store holds no record under key {key!r}")
    elif was is RecordState.FORGOTTEN:
        t.say(f"legnext: nothing to forget: key {key!r} was forgotten already")
    else:
        t.say(f"legnext: forgot key {key!r} (was {was.value}); it may be sent again")
    if t.json:
        emit(
            t.out,
            {
                "key": key,
                "forgotten": was is not None and was is not RecordState.FORGOTTEN,
                "state": was.value if was is not None else None,
            },
        )
    return 0


async def run_jobs(args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """List a job store's records, show one (by key or job id), or forget one."""
    async with SQLiteJobStore(_store_path(config)) as store:
        if args.forget is not None:
            return await _forget(store, args.forget, t, force=args.force)
        if args.which is not None:
            record = await store.get(args.which) or await store.find(args.which)
            if record is None:
                raise LegnextError(f"no record with key or job id {args.which!r}")
            records = [record]
        else:
            states = [RecordState(s) for s in args.state or ()]
            if RecordState.UNKNOWN in states:
                # A claim whose process died before it learned the answer is unknown too.
                states.append(RecordState.SUBMITTING)
            records = await store.records(*states)
    if t.json:
        for record in records:
            emit(t.out, record_document(record))
    elif args.which is not None:
        record = records[0]
        t.out.write(
            f"key {record.key}\n  state    {record.state.value}\n  endpoint {record.endpoint}\n"
            f"  job id   {record.job_id or '-'}\n"
            f"  updated  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.updated_at))}\n"
        )
        if record.task is not None:
            t.out.write("\n".join(task_lines(record.task, files=record.files)) + "\n")
    else:
        for record in records:
            t.out.write(
                f"{record.state.value:<10} {record.job_id or '-':<36} {record.endpoint:<18}"
                f" {record.key}\n"
            )
        t.say(f"{len(records)} records")
    return 0


async def run_command(args: argparse.Namespace, config: Config, t: Terminal) -> int:
    """Run the parsed command."""
    route = getattr(args, "route", None)
    if route is not None:
        return await run_job(route, args, config, t)
    runner = {
        "status": run_status,
        "wait": run_wait,
        "balance": run_balance,
        "download": run_download,
        "jobs": run_jobs,
    }[args.command]
    return await runner(args, config, t)
