"""A private ``redis-server`` for tests: loopback only, no persistence, stopped when done.

Tests of the Redis parts run against a real server, never a fake: Debian's
``redis-server`` package (``sudo apt-get install redis-server``; ``.ci/run`` installs it
when it is missing). Each :class:`RedisServer` listens on 127.0.0.1 on a free port, keeps
its data in memory only (``--save ""``, ``--appendonly no``) with a temporary directory as
its working directory, and reads no configuration file. :meth:`RedisServer.start` after
:meth:`RedisServer.stop` or :meth:`RedisServer.kill` starts it again on the same port
with no data, as a server without persistence comes back after a restart.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import redis

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["RedisServer", "RedisServerMissingError"]

#: What the tests say when the machine has no server to run.
MISSING: Final = (
    "the tests need a real Redis server and `redis-server` is not on PATH: install"
    " Debian's redis-server package (sudo apt-get install redis-server; .ci/run does it)"
)
#: How long a server may take to answer PING after it was started (a busy machine).
START_TIMEOUT: Final = 30.0
#: How long a stopped server may take to exit.
STOP_TIMEOUT: Final = 30.0
#: Free ports tried when another program takes the one picked before the server binds it.
PORT_TRIES: Final = 5


class RedisServerMissingError(RuntimeError):
    """``redis-server`` is not installed (the message says how to install it)."""


class RedisServer:
    """A ``redis-server`` process of this test run on 127.0.0.1 (see the module docstring).

    ``port`` 0 picks a free one when first started; every later start uses the same port.
    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, *, port: int = 0, executable: str | None = None) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisServerMissingError(MISSING)
        self.executable = found
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer 127.0.0.1:{self.port} {state}>"

    @property
    def url(self) -> str:
        """The server's URL (``redis://127.0.0.1:PORT/0``)."""
        if not self.port:
            raise RuntimeError("the server was never started: it has no port yet")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id (to freeze it with SIGSTOP, as a stalled server)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING (the same port as before, if
        it ran before); a running server is left alone."""
        if self.running:
            return
        tries = 1 if self.port else PORT_TRIES
        for _ in range(tries):
            port = self.port or _free_port()
            failure = self._launch(port)
            if failure is None:
                self.port = port
                return
            if "already in use" not in failure or self.port:
                raise RuntimeError(f"redis-server on 127.0.0.1:{port} did not start: {failure}")
        raise RuntimeError(f"redis-server found no free port in {tries} tries")

    def stop(self) -> None:
        """Stop the server with SIGTERM (a clean shutdown; nothing is saved) and wait."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and wait until it is gone."""
        self._end(signal.SIGKILL)

    def flush(self) -> None:
        """Empty every database of the server (started again first if it is not running)."""
        self.start()
        with contextlib.closing(self.client()) as client:
            client.flushall()

    def client(self) -> redis.Redis:
        """A blocking client of the server (close it when done)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=START_TIMEOUT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the process ----------------------------------------------------------------------

    def _launch(self, port: int) -> str | None:
        """Run the server on ``port`` until it answers; why it did not, if it did not."""
        workdir = self._dir = tempfile.TemporaryDirectory(prefix="legnext-redis-")
        log = Path(workdir.name) / "redis.log"
        errors = Path(workdir.name) / "stderr.log"
        with errors.open("wb") as stderr:
            process = self._process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--protected-mode",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    workdir.name,
                    "--logfile",
                    str(log),
                    "--daemonize",
                    "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + START_TIMEOUT
        with contextlib.closing(
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0, socket_connect_timeout=1.0)
        ) as client:
            while True:
                if process.poll() is not None:
                    failure = _tail(log) or _tail(errors) or f"exit status {process.returncode}"
                    self._end(signal.SIGKILL)
                    return failure
                try:
                    # Its own pid: a port taken by another test run's server in the
                    # meantime answers PING too, and must never be flushed by this one.
                    info = client.info("server")
                except (redis.ConnectionError, redis.TimeoutError):
                    pass  # not listening yet
                else:
                    if info.get("process_id") == process.pid:
                        return None
                if time.monotonic() > deadline:
                    self._end(signal.SIGKILL)
                    return f"no answer to PING in {START_TIMEOUT:.0f} s"
                # Nothing tells a test when a process starts to listen: ask again shortly.
                time.sleep(0.01)

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(how)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            workdir, self._dir = self._dir, None
            if workdir is not None:
                workdir.cleanup()


def _free_port() -> int:
    """A port of 127.0.0.1 nothing listens on at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(log: Path) -> str:
    """The last lines of a log of the server, if it wrote one."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(lines[-3:])
