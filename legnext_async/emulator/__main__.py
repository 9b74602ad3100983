"""``python -m legnext_async.emulator``: serve the emulator until SIGINT/SIGTERM.

Prints the API base URL (``http://127.0.0.1:PORT/api``) as its first line, so a
script can start it with ``--port 0`` and read where it listens; then the shell line that
points an unchanged client program at it (see :func:`export_line`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
from typing import TYPE_CHECKING

from ._emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local emulator of the Legnext API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--api-key", action="append", help="accepted key (repeatable); default: any non-empty key"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real seconds per virtual second (0.01 = 100x)",
    )
    parser.add_argument("--concurrency-limit", type=int, default=6)
    parser.add_argument("--over-limit", choices=["reject", "queue"], default="reject")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--error-shape", choices=["envelope", "flat", "nested"], default="envelope")
    parser.add_argument("--whitelisted", action="store_true", help="allow edit and upload-paint")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument(
        "--request-log",
        metavar="FILE",
        help="append one JSON line per request received to FILE (method, path, status, job"
        " id, body; never the key), to see what was sent and which jobs were made",
    )
    callbacks = parser.add_argument_group("callbacks (posted to a job's callback URL)")
    callbacks.add_argument(
        "--callback-secret", help="sign each delivery with this webhook secret (default: unsigned)"
    )
    callbacks.add_argument(
        "--callback-delay", type=float, default=0.0, help="virtual seconds after the job ends"
    )
    callbacks.add_argument(
        "--callback-jitter", type=float, default=0.0, help="up to this much more, at random"
    )
    callbacks.add_argument(
        "--callback-loss", type=float, default=0.0, help="the share of deliveries lost (0-1)"
    )
    callbacks.add_argument(
        "--callback-duplicates", type=int, default=1, help="identical deliveries of each event"
    )
    callbacks.add_argument(
        "--callback-intermediate",
        action="store_true",
        help="also post the job when it starts processing",
    )
    return parser


def export_line(base_url: str, time_scale: float, *, any_key: bool) -> str:
    """The ``export`` of the environment a client program reads to use this emulator.

    The client takes its base URL, its poll policy's time scale and (when this emulator
    accepts any key) a key from these variables, so the program needs no change. A key
    given with ``--api-key`` is never printed.
    """
    line = f"export LEGNEXT_BASE_URL={base_url} LEGNEXT_TIME_SCALE={time_scale!r}"
    return line + " LEGNEXT_API_KEY=emulator" if any_key else line


async def _serve(args: argparse.Namespace) -> None:
    keys: list[str] = args.api_key or []
    emulator = Emulator(
        api_key=keys[0] if keys else None,
        extra_api_keys=keys[1:],
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        concurrency_limit=args.concurrency_limit,
        over_limit=args.over_limit,
        seed=args.seed,
        error_shape=args.error_shape,
        whitelisted=args.whitelisted,
        failure_rate=args.failure_rate,
        callback_secret=args.callback_secret,
        callback_delay=args.callback_delay,
        callback_jitter=args.callback_jitter,
        callback_loss=args.callback_loss,
        callback_duplicates=args.callback_duplicates,
        callback_intermediate=args.callback_intermediate,
        request_log_file=args.request_log,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await emulator.start()
    except OSError as exc:
        raise _CannotStart(_why_not(exc, args)) from exc
    try:
        print(emulator.base_url, flush=True)
        print(export_line(emulator.base_url, args.time_scale, any_key=not keys), flush=True)
        await stop.wait()
    finally:
        await emulator.close()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signum)


def main(
    argv: Sequence[str] | None = None, *, prog: str = "python -m legnext_async.emulator"
) -> int:
    """Run the CLI (called ``prog`` in its help and errors); the process exit status: 2
    when it cannot listen where asked (the port taken, the address not this machine's)."""
    args = _parser(prog).parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except _CannotStart as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


class _CannotStart(Exception):
    """The emulator could not start: not bound where asked, or its request log not opened."""


def _why_not(exc: OSError, args: argparse.Namespace) -> str:
    """What stopped the emulator from starting, and what to do about it."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None:  # the request log's file
        return f"cannot open {exc.filename}: {reason}"
    hint = " (--port 0 picks a free port)" if exc.errno == errno.EADDRINUSE else ""
    return f"cannot listen on {args.host}:{args.port}: {reason}{hint}"


if __name__ == "__main__":
    sys.exit(main())
