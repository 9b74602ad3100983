"""The ``legnext`` command: a subcommand per endpoint, status, wait, balance, download,
jobs, batch runs, the emulator and a demo.

``python -m legnext_async`` runs the same command. Only the live display on a terminal
needs more than the client itself (``rich``, in the ``legnext-async[cli]`` extra); the
rest, ``demo`` included, works with the plain install. Exit codes: :class:`ExitCode`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from legnext_async._catalog import ROUTES
from legnext_async._client import LegnextClient
from legnext_async._exceptions import LegnextError
from legnext_async._store import RecordState
from legnext_async._task_errors import TaskFailedError

from ._config import SETTINGS, load_config
from ._exit import ExitCode, exit_code_for
from ._options import add_route_options
from ._output import emit

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

    from ._commands import Terminal
    from ._config import Config

__all__ = ["ExitCode", "build_parser", "main"]

_EPILOG = (
    "Settings come from flags, then the environment (LEGNEXT_API_KEY, LEGNEXT_BASE_URL, ...),"
    " then ~/.config/legnext/config.toml. Exit codes: 0 ok, 1 job failed, 2 invalid"
    " arguments, 3 timeout, 4 authentication, 5 spending limit, 6 network, 7 unknown"
    " outcome, 8 other error, 130 interrupted."
)


class _UsageError(Exception):
    """argparse's refusal of a command line: the parser that refused, and why."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """A parser whose refusals are raised, so that ``main`` can say them as JSON too."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self, message)


def _common() -> _Parser:
    """The options every command that talks to the service takes."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--json", action="store_true", help="one JSON document per job on stdout, no display"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log requests and settings to stderr"
    )
    common.add_argument("--config", metavar="PATH", help="a TOML config file")
    for setting in SETTINGS:
        if setting.flag:
            common.add_argument(
                "--" + setting.name.replace("_", "-"),
                dest=f"setting_{setting.name}",
                metavar=setting.name.upper(),
                help=f"{setting.help} (${setting.env})",
            )
    return common


def _summary_of(route_name: str) -> str:
    doc = getattr(LegnextClient, route_name).__doc__ or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else route_name
    return summary.replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``legnext``: its subcommands come from the endpoint catalogue."""
    parser = _Parser(
        prog="legnext",
        description="Run Legnext (Midjourney) jobs from a terminal or a script.",
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()
    for route in ROUTES:
        sub = commands.add_parser(
            route.path, parents=[common], help=_summary_of(route.name), epilog=_EPILOG
        )
        add_route_options(sub, route)
        sub.add_argument("--no-wait", action="store_true", help="print the job id and stop")
        sub.add_argument("--download", metavar="DIR", help="save the outputs in DIR")
        sub.add_argument("--key", help="an idempotency key (needs --store)")
        sub.set_defaults(route=route)
    status = commands.add_parser("status", parents=[common], help="read a job's status once")
    status.add_argument("job_id", metavar="JOB_ID")
    wait = commands.add_parser("wait", parents=[common], help="wait for a job and print it")
    wait.add_argument("job_id", metavar="JOB_ID")
    wait.add_argument("--download", metavar="DIR", help="save the outputs in DIR")
    commands.add_parser("balance", parents=[common], help="the account's points and credits")
    download = commands.add_parser(
        "download", parents=[common], help="save a completed job's images or videos"
    )
    download.add_argument("job_id", metavar="JOB_ID")
    download.add_argument("--out", required=True, metavar="DIR", help="where to save them")
    jobs = commands.add_parser(
        "jobs", parents=[common], help="list a job store's records, or show or forget one"
    )
    jobs.add_argument("which", nargs="?", metavar="KEY_OR_JOB_ID", help="show this record")
    jobs.add_argument(
        "--state",
        action="append",
        choices=[state.value for state in RecordState],
        help="only records in this state (repeatable)",
    )
    jobs.add_argument("--forget", metavar="KEY", help="settle an unknown outcome: free its key")
    jobs.add_argument(
        "--force",
        action="store_true",
        help="with --forget: free a key whose job exists (the next run pays for it again)",
    )
    batch = commands.add_parser("batch", help="run a file of requests")
    batch_commands = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    run = batch_commands.add_parser(
        "run", parents=[common], help="run every line of a JSON Lines file", epilog=_EPILOG
    )
    check = batch_commands.add_parser(
        "check", help="check every line of a JSON Lines file; send nothing"
    )
    check.add_argument("file", metavar="FILE")
    run.add_argument("file", metavar="FILE", help="one JSON request per line")
    run.add_argument("--out", metavar="DIR", help="save every job's outputs in DIR")
    run.add_argument(
        "--results", metavar="FILE", help="the results file (default: FILE's name .results.jsonl)"
    )
    run.add_argument("--skip-invalid", action="store_true", help="run the valid lines anyway")
    run.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines when not on a terminal (default 10)",
    )
    emulator = commands.add_parser(
        "emulator",
        help="serve the local emulator (options: legnext emulator --help)",
        add_help=False,
    )
    emulator.add_argument("rest", nargs=argparse.REMAINDER)
    commands.add_parser("demo", help="run a diffusion and an inpaint against the built-in emulator")
    return parser


def _verbose(config: Config, err: TextIO) -> None:
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("legnext_async")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    if config.path is not None:
        err.write(f"legnext: config file {config.path}\n")
    for line in config.describe():
        err.write(f"legnext: {line}\n")


async def _run(args: argparse.Namespace, config: Config, terminal: Terminal) -> int:
    from ._batch import run_batch  # noqa: PLC0415 (the batch runner only when asked)
    from ._commands import run_command  # noqa: PLC0415

    if args.command == "batch":
        return await run_batch(args, config, terminal)
    return await run_command(args, config, terminal)


def _check_only(path: str, out: TextIO, err: TextIO) -> int:
    """``legnext batch check``: each invalid line on stderr; piped, a file with invalid
    lines is also one JSON document on stdout, as every refusal is."""
    from pathlib import Path  # noqa: PLC0415

    from ._batch import invalid_document, read_batch  # noqa: PLC0415

    lines, errors = read_batch(Path(path))
    for error in errors:
        err.write(f"{path}: {error}\n")
    message = f"{len(lines)} valid lines, {len(errors)} invalid"
    err.write(f"{path}: {message}\n")
    if errors and not out.isatty():
        emit(out, invalid_document(Path(path), errors, message))
    return ExitCode.USAGE if errors else ExitCode.OK


def _report(terminal: Terminal, error: LegnextError, code: ExitCode) -> None:
    terminal.say(f"legnext: error: {error}")
    if terminal.json and not isinstance(error, TaskFailedError):
        document: dict[str, Any] = {
            "error": type(error).__name__,
            "message": str(error),
            "exit_code": int(code),
        }
        job_id = getattr(error, "job_id", None)
        if isinstance(job_id, str):
            document["job_id"] = job_id
        emit(terminal.out, document)


def _refused(refusal: _UsageError, argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Say argparse's refusal as argparse does; with ``--json`` (or piped), as one JSON
    document on stdout too, shaped as every other error is."""
    refusal.parser.print_usage(err)
    err.write(f"{refusal.parser.prog}: error: {refusal.message}\n")
    err.flush()
    if "--json" in argv or not out.isatty():
        # Named as the limits' refusals are (``--image: must be from 0 to 3``): to a
        # script, "--image x" and "--image 7" are the same mistake.
        message = refusal.message.removeprefix("argument ")
        code = int(ExitCode.USAGE)
        emit(out, {"error": "ValidationError", "message": message, "exit_code": code})
    return ExitCode.USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``legnext`` with ``argv`` (default: the process's arguments); the exit code.

    Raises:
        SystemExit: a command line the parser refuses (code 2, after saying why), as
            ``argparse`` ends; ``--help`` too (code 0).
    """
    from ._commands import Terminal  # noqa: PLC0415

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # Its options are the emulator's own, passed on whole (argparse would read
        # "--port" as an option of legnext's).
        from legnext_async.emulator.__main__ import main as serve  # noqa: PLC0415

        return serve(argv[1:], prog="legnext emulator")
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as refusal:
        # As argparse itself ends, so that a caller of main() meets what it always met.
        raise SystemExit(_refused(refusal, argv, sys.stdout, sys.stderr)) from None
    if args.command == "demo":
        from ._demo import demo  # noqa: PLC0415

        return asyncio.run(demo())
    out, err = sys.stdout, sys.stderr
    try:
        if args.command == "batch" and args.batch_command == "check":
            return _check_only(args.file, out, err)
    except LegnextError as exc:
        code = exit_code_for(exc)
        err.write(f"legnext: error: {exc}\n")
        if not out.isatty():  # piped: one JSON document, as every refusal is
            emit(out, {"error": type(exc).__name__, "message": str(exc), "exit_code": int(code)})
        return code
    terminal = Terminal.of(args, out, err)
    try:
        flags = {s.name: getattr(args, f"setting_{s.name}", None) for s in SETTINGS if s.flag}
        config = load_config(flags, os.environ, args.config)
        if args.verbose:
            _verbose(config, err)
        return asyncio.run(_run(args, config, terminal))
    except LegnextError as exc:
        code = exit_code_for(exc)
        _report(terminal, exc, code)
        return code
    except KeyboardInterrupt:
        terminal.say("legnext: interrupted (a job already submitted goes on: legnext wait JOB_ID)")
        return ExitCode.INTERRUPTED
