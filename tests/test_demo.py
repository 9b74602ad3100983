"""The README's first command: ``python -m legnext_async demo`` against the emulator."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from legnext_async.__main__ import demo, main

URL = re.compile(r"^  (http://127\.0\.0\.1:\d+/files/\S+_[0-3]\.png)$", re.MULTILINE)


async def test_demo_prints_four_urls_and_the_actions() -> None:
    """The demo runs a diffusion and an inpaint and prints four image URLs and the actions."""
    out = io.StringIO()
    assert await demo(out) == 0
    text = out.getvalue()
    assert len(URL.findall(text)) == 4
    assert "inpaint" in text
    assert "completed" in text
    assert re.search(r"upscale\s+images \[0, 1, 2, 3\]", text)
    assert re.search(r"reroll\s+True", text)


def test_demo_command_runs_as_a_module() -> None:
    """``python -m legnext_async demo`` exits 0 and prints the inpaint's URLs."""
    finished = subprocess.run(
        [sys.executable, "-m", "legnext_async", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert len(URL.findall(finished.stdout)) == 4
    assert finished.stderr == ""


def test_unknown_command_is_refused() -> None:
    """An unknown subcommand exits with argparse's usage error."""
    with pytest.raises(SystemExit) as caught:
        main(["fly"])
    assert caught.value.code == 2
