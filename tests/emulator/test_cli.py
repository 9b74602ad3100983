"""``python -m legnext_async.emulator`` as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import legnext_async
from legnext_async.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.conftest import serving

ROOT = Path(legnext_async.__file__).resolve().parent.parent


async def start_cli(*options: str) -> asyncio.subprocess.Process:
    """``python -m legnext_async.emulator`` on a free port, accepting the key ``k``, 1,000
    times faster than real time, with ``options``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legnext_async.emulator",
        "--port",
        "0",
        "--api-key",
        "k",
        "--time-scale",
        "0.001",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_serves_and_exits_cleanly(signum: signal.Signals) -> None:
    """The CLI prints its base URL, answers requests, and exits 0 on a signal."""
    process = await start_cli()
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert line.startswith("http://127.0.0.1:")
        assert line.endswith("/api")
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{line}/v1/diffusion", json={"text": "x"}, headers={"x-api-key": "k"}
            ) as response:
                assert response.status == 200
            async with session.get(f"{line}/account/balance") as response:
                assert response.status == 401
        process.send_signal(signum)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cli_signs_callbacks_with_the_secret_it_is_given() -> None:
    """``--callback-secret`` signs each delivery as a receiver verifies it, and the secret
    is printed nowhere."""
    secret = "whsec-cli-0123456789"
    delivered: asyncio.Future[tuple[bytes, dict[str, str]]] = (
        asyncio.get_running_loop().create_future()
    )

    async def receive(request: web.Request) -> web.Response:
        if not delivered.done():
            delivered.set_result((await request.read(), dict(request.headers)))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/api/hook", receive)  # serving() yields the /api base URL
    async with serving(app) as hook_url:
        process = await start_cli("--callback-secret", secret)
        try:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{line}/v1/diffusion",
                    json={"text": "x", "callback": f"{hook_url}/hook"},
                    headers={"x-api-key": "k"},
                ) as response,
            ):
                assert response.status == 200
            body, headers = await asyncio.wait_for(delivered, 30)
            stamp = headers[TIMESTAMP_HEADER]
            assert headers[SIGNATURE_HEADER].removeprefix("sha256=") == sign(secret, stamp, body)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
            assert secret.encode() not in line.encode() + stdout + stderr
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_a_port_already_taken_is_said_with_what_to_do() -> None:
    """On a port another server holds, the CLI exits 2 and says the address, the reason and
    that ``--port 0`` picks a free port, without a traceback."""
    async with serving(web.Application()) as taken:
        port = taken.split(":")[2].split("/")[0]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "legnext_async", "emulator", "--port", port,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    said = stderr.decode()
    assert process.returncode == 2
    assert f"legnext emulator: error: cannot listen on 127.0.0.1:{port}:" in said
    assert "--port 0 picks a free port" in said
    assert "Traceback" not in said


async def test_the_request_log_file_says_every_request_as_it_is_answered(tmp_path: Path) -> None:
    """``--request-log FILE`` appends one JSON line per request while the emulator serves
    (so a shell sees which jobs were made), and never writes the key."""
    log = tmp_path / "requests.jsonl"
    process = await start_cli("--request-log", str(log))
    try:
        assert process.stdout is not None
        base = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        async with aiohttp.ClientSession(headers={"x-api-key": "k"}) as session:
            async with session.post(f"{base}/v1/diffusion", json={"text": "a cat"}) as answer:
                made = (await answer.json())["job_id"]
            async with session.get(f"{base}/v1/job/{made}") as answer:
                assert answer.status == 200
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert [(r["method"], r["path"], r["status"]) for r in lines] == [
        ("POST", "/api/v1/diffusion", 200),
        ("GET", f"/api/v1/job/{made}", 200),
    ]
    assert lines[0]["job_id"] == made
    assert lines[0]["body"] == {"text": "a cat"}
    assert '"k"' not in log.read_text()
