"""Running ``legnext`` as a real subprocess (``python -m legnext_async``): piped, or on a
pseudo-terminal, with an environment that points it at a test emulator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .conftest import API_KEY

if TYPE_CHECKING:
    from collections.abc import Mapping

    from legnext_async.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
#: The clock of the CLI tests: an inpaint (90–120 s) takes about a fifth of a second.
CLI_SCALE = 0.002


@attrs.frozen
class Finished:
    """A finished run: its exit status and what it wrote."""

    status: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Everything written, stdout then stderr."""
        return self.out + self.err


def cli_env(home: Path, emulator: Emulator | None = None, **extra: str | None) -> dict[str, str]:
    """This process's environment without any LEGNEXT_ variable, a config home of its own,
    the package importable, and (given an emulator) its URL, the test key and clock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGNEXT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["TERM"] = "xterm"
    env["COLUMNS"] = "200"  # one display line per line of the terminal
    env.pop("NO_COLOR", None)
    if emulator is not None:
        env["LEGNEXT_BASE_URL"] = emulator.base_url
        env["LEGNEXT_API_KEY"] = API_KEY
        env["LEGNEXT_TIME_SCALE"] = str(CLI_SCALE)
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


async def legnext(*args: str, env: Mapping[str, str], limit: float = 60.0) -> Finished:
    """Run ``legnext ARGS`` with its output piped; wait for it to end (``limit`` seconds at
    most: a hung command fails the test rather than the suite)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legnext_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    out, err = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def legnext_on_terminal(*args: str, env: Mapping[str, str], limit: float = 60.0) -> Finished:
    """Run ``legnext ARGS`` with stdout and stderr on a pseudo-terminal; all it wrote comes
    back as ``out``."""
    master, slave = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legnext_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=dict(env),
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    closed = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has gone
            chunk = b""
        if chunk:
            chunks.append(chunk)
        elif not closed.done():
            loop.remove_reader(master)
            closed.set_result(None)

    loop.add_reader(master, readable)
    try:
        await asyncio.wait_for(closed, limit)
        status = await asyncio.wait_for(process.wait(), limit)
    finally:
        if not closed.done():
            loop.remove_reader(master)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        os.close(master)
    return Finished(status, b"".join(chunks).decode(errors="replace"), "")
