"""``LEGNEXT_TIME_SCALE``: an unchanged program runs on the stand-alone emulator's clock."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import pytest

import legnext_async
from legnext_async import LegnextClient, PollPolicy, ValidationError

ROOT = Path(legnext_async.__file__).resolve().parent.parent


def test_a_default_policy_takes_the_scale_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``PollPolicy()`` runs on ``$LEGNEXT_TIME_SCALE`` when it is set."""
    monkeypatch.setenv("LEGNEXT_TIME_SCALE", "0.01")
    assert PollPolicy().time_scale == 0.01


def test_a_client_without_a_policy_takes_the_scale_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client given no poll policy waits on the environment's time scale."""
    monkeypatch.setenv("LEGNEXT_TIME_SCALE", "0.005")
    client = LegnextClient(api_key="k", base_url="http://127.0.0.1:9/api")
    assert client.poll.time_scale == 0.005


def test_an_explicit_scale_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``time_scale`` given in code is kept whatever the environment says."""
    monkeypatch.setenv("LEGNEXT_TIME_SCALE", "0.01")
    assert PollPolicy(time_scale=0.5).time_scale == 0.5


@pytest.mark.parametrize("value", [pytest.param(None, id="unset"), pytest.param(" ", id="empty")])
def test_without_the_variable_the_scale_is_real_time(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Unset or empty, the variable leaves the schedule on the real service's clock."""
    if value is None:
        monkeypatch.delenv("LEGNEXT_TIME_SCALE", raising=False)
    else:
        monkeypatch.setenv("LEGNEXT_TIME_SCALE", value)
    assert PollPolicy().time_scale == 1.0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("fast", id="text"),
        pytest.param("0", id="zero"),
        pytest.param("-0.01", id="negative"),
        pytest.param("nan", id="nan"),
        pytest.param("inf", id="infinite"),
    ],
)
def test_an_invalid_scale_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A value that is not a number above 0 raises ValidationError naming the variable."""
    monkeypatch.setenv("LEGNEXT_TIME_SCALE", value)
    with pytest.raises(ValidationError, match=f"above 0.*got '{value}'") as caught:
        PollPolicy()
    assert caught.value.field == "LEGNEXT_TIME_SCALE"


async def test_the_stand_alone_emulator_prints_what_an_unchanged_program_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The environment printed by ``python -m legnext_async.emulator`` lets a client built with
    no arguments run a job on the emulator's clock (a diffusion in well under a second)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legnext_async.emulator",
        "--port",
        "0",
        "--time-scale",
        "0.001",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        export = shlex.split((await asyncio.wait_for(process.stdout.readline(), 20)).decode())
        assert export[0] == "export"
        for assignment in export[1:]:
            name, _, value = assignment.partition("=")
            monkeypatch.setenv(name, value)
        async with LegnextClient() as client:
            assert client.base_url == base_url
            # Real time would make the first read 24 s after the submission.
            result = await asyncio.wait_for(await client.diffusion("a lighthouse"), 10)
        assert result.image_urls
    finally:
        process.terminate()
        await process.wait()
