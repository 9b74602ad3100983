"""``legnext batch run``: a file of requests, checked first, run under keys, killed and run
again, interrupted, as a subprocess against an emulator in the test process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shlex
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from legnext_async.cli import ExitCode
from legnext_async.emulator import Emulator, Fault

from .cli_run import CLI_SCALE, cli_env, legnext, legnext_on_terminal
from .conftest import API_KEY, eventually
from .crash_driver import states

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

MASK = {"areas": [{"width": 500, "height": 500, "points": [10, 10, 10, 100, 100, 100, 100, 10]}]}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator on the CLI tests' clock, accepting only the test key."""
    async with Emulator(api_key=API_KEY, time_scale=CLI_SCALE, seed=9) as server:
        yield server


def inpaints(parent: str, count: int) -> list[dict[str, object]]:
    """``count`` inpaint requests, each with its own prompt (``line N``)."""
    return [
        {"op": "inpaint", "job_id": parent, "image_no": n % 4, "mask": MASK,
         "remix_prompt": f"line {n}"}
        for n in range(count)
    ]  # fmt: skip


def write_lines(path: Path, lines: Sequence[object]) -> Path:
    """A batch file: each item as one line (a string is written as it is)."""
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def created_by_prompt(emu: Emulator) -> dict[str, list[str]]:
    """The jobs the emulator created, by the ``remixPrompt`` of the request that made them."""
    made: dict[str, list[str]] = {}
    for record in emu.requests:
        if record.method == "POST" and record.job_id is not None:
            assert isinstance(record.body, dict)
            made.setdefault(record.body["remixPrompt"], []).append(record.job_id)
    return made


def read_results(path: Path) -> list[dict[str, Any]]:
    """The documents of a results file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_every_line_is_checked_before_anything_is_sent(emu: Emulator, tmp_path: Path) -> None:
    """A file with bad lines exits 2, names each line and field, and sends nothing."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    good = inpaints(parent, 1)[0]
    batch = write_lines(
        tmp_path / "b.jsonl",
        [good, {**good, "image_no": 9}, "", {"op": "fly"}, "{not json", {**good, "colour": 1}],
    )
    done = await legnext("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.USAGE
    assert "line 2: image_no: must be from 0 to 3, got 9" in done.err
    assert "line 4: op: must be one of" in done.err
    assert "line 5: not JSON" in done.err
    assert "line 6: colour: is not a field of inpaint" in done.err
    assert "nothing was sent" in done.err
    assert emu.requests == []


async def test_a_bad_code_in_a_line_is_named_with_the_values_it_takes(
    emu: Emulator, tmp_path: Path
) -> None:
    """A code a line gives as neither a name nor a number of its field is refused with the
    values it takes, the value said as JSON; nothing is sent."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(
        tmp_path / "b.jsonl",
        [
            {"op": "upscale", "job_id": parent, "image_no": 0, "type": True},
            {"op": "pan", "job_id": parent, "image_no": 0, "direction": "north", "scale": 1.5},
        ],
    )
    done = await legnext("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.USAGE
    assert "line 1: type: must be one of subtle (0), creative (1), got true\n" in done.err
    assert (
        "line 2: direction: must be one of down (0), right (1), up (2), left (3), got 'north'\n"
        in done.err
    )
    assert emu.requests == []


async def test_a_line_the_service_refuses_with_403_is_counted_as_refused(
    emu: Emulator, tmp_path: Path
) -> None:
    """A line answered 403 (here ``edit``, which the account may not use) is ``refused``, as
    a line the spending limit turns down is, not an error; the batch exits 4."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    edit = {
        "op": "edit", "job_id": parent, "image_no": 0, "canvas": {"width": 1024, "height": 1024},
        "img_pos": {"width": 512, "height": 512, "x": 0, "y": 0}, "remix_prompt": "a tree",
    }  # fmt: skip
    batch = write_lines(tmp_path / "b.jsonl", [edit, *inpaints(parent, 1)])
    done = await legnext("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.AUTH, done.err
    results = {r["line"]: r for r in read_results(tmp_path / "b.results.jsonl")}
    assert (results[1]["state"], results[2]["state"]) == ("refused", "completed")
    assert "403" in str(results[1]["error"])
    assert "2/2 done, 1 completed, 0 failed, 0 unknown, 1 refused" in done.err


async def test_skip_invalid_runs_the_valid_lines(emu: Emulator, tmp_path: Path) -> None:
    """With ``--skip-invalid`` the valid lines run, the invalid ones are in the results."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    lines: list[object] = [*inpaints(parent, 2), {"op": "inpaint", "job_id": parent}]
    batch = write_lines(tmp_path / "b.jsonl", lines)
    done = await legnext("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
                         "--skip-invalid", env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.FAILED
    results = {r["line"]: r for r in read_results(tmp_path / "b.results.jsonl")}
    assert {n: r["state"] for n, r in results.items()} == {
        1: "completed",
        2: "completed",
        3: "invalid",
    }
    assert "image_no" in str(results[3]["error"])


async def test_a_batch_saves_files_and_results_and_a_rerun_pays_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    """Every line's job is recorded, downloaded and written to the results; the same
    command run again sends no job."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(tmp_path / "nightly.jsonl", inpaints(parent, 5))
    args = ("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
            "--out", str(tmp_path / "out"))  # fmt: skip
    env = cli_env(tmp_path, emu)
    first = await legnext(*args, env=env)
    assert first.status == 0, first.err
    printed: list[dict[str, Any]] = [json.loads(line) for line in first.out.splitlines()]
    results = read_results(tmp_path / "nightly.results.jsonl")
    assert (
        sorted(r["line"] for r in results) == sorted(r["line"] for r in printed) == [1, 2, 3, 4, 5]
    )
    for result in results:
        assert result["state"] == "completed"
        assert str(result["key"]).startswith("nightly.jsonl:")
        assert len(result["image_urls"]) == 4
        assert result["points"] == {"frozen": 120, "consumed": 120}
        assert [Path(f).name for f in result["files"]] == [
            f"{result['job_id']}_{i}.png" for i in range(4)
        ]
    assert "progress: 5/5 done, 5 completed" in first.err  # plain lines when piped
    made = created_by_prompt(emu)
    again = await legnext(*args, env=env)
    assert again.status == 0, again.err
    assert created_by_prompt(emu) == made  # nothing sent twice
    assert len(read_results(tmp_path / "nightly.results.jsonl")) == 5


async def test_unknown_outcomes_are_listed_and_left_alone(emu: Emulator, tmp_path: Path) -> None:
    """A line whose answer was lost is listed at the end, exits 7, and a re-run leaves it."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    emu.add_fault(Fault.answer_lost("POST /api/v1/inpaint", after=1))
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, 3))
    args = ("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
            "--max-active-jobs", "1")  # fmt: skip
    env = cli_env(tmp_path, emu)
    first = await legnext(*args, env=env)
    assert first.status == ExitCode.UNKNOWN_OUTCOME
    assert "1 lines have an unknown outcome" in first.err
    assert "--forget KEY" in first.err
    posts = len(created_by_prompt(emu))
    again = await legnext(*args, env=env)
    assert again.status == ExitCode.UNKNOWN_OUTCOME
    assert len(created_by_prompt(emu)) == posts
    unknown = [r for r in read_results(tmp_path / "b.results.jsonl") if r["state"] == "unknown"]
    assert len(unknown) == 1


async def test_a_terminal_shows_the_batch_display(emu: Emulator, tmp_path: Path) -> None:
    """On a terminal the batch redraws its counts, rate, time left and points in place."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, 3))
    done = await legnext_on_terminal("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
                                     env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == 0, done.out
    assert "\x1b[" in done.out
    assert "3/3 done, 3 completed, 0 failed, 0 unknown" in done.out
    assert "360 points" in done.out
    assert "progress:" not in done.out


async def _run_killed(
    args: tuple[str, ...], env: Mapping[str, str], kill_after: int, rng: random.Random
) -> int:
    """Run ``legnext ARGS``; SIGKILL it at a random instant after ``kill_after`` results
    (or when it ends first). Its exit status."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legnext_async", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=dict(env),
    )  # fmt: skip
    assert process.stdout is not None
    ended = False
    try:
        for _ in range(kill_after):
            if not await process.stdout.readline():
                break
        if process.returncode is None:
            # A moment later, wherever the run is by then: the instant is the point.
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
        await process.stdout.read()
        ended = True
    finally:
        if not ended:
            # Only then: a second signal would reap the child under asyncio's watcher,
            # which then reports 255 for it.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        status = await process.wait()
    return status


async def test_a_batch_killed_at_random_and_run_again_pays_for_nothing_twice(
    emu: Emulator, tmp_path: Path
) -> None:
    """Killed with SIGKILL at random instants, then run to the end: no line made two jobs,
    and every line ends completed or listed as unknown."""
    rng = random.Random(1202)
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    # Some answers come late (the job made at once): kills land between POST and record.
    emu.add_fault(Fault.latency("POST /api/v1/inpaint", 0.1, commit=True, times=None,
                                probability=0.3))  # fmt: skip
    lines = 16
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, lines))
    db = tmp_path / "b.db"
    # Two jobs at a time: a run lasts long enough (about 1.5 s) for a kill to land in it.
    args = ("batch", "run", str(batch), "--store", str(db), "--out", str(tmp_path / "out"),
            "--max-active-jobs", "2")  # fmt: skip
    env = cli_env(tmp_path, emu)
    killed = 0
    for _ in range(4):
        # Lines completed before come back at once: the kill lands among the new ones.
        done_before = sum(state == "completed" for state, _ in states(db).values())
        status = await _run_killed(args, env, done_before + rng.randrange(0, 3), rng)
        killed += status == -signal.SIGKILL
    final = await legnext(*args, env=env)
    assert killed >= 3  # most runs were cut short (a run may end before its kill)
    assert final.status in (ExitCode.OK, ExitCode.UNKNOWN_OUTCOME), final.err
    made = created_by_prompt(emu)
    assert all(len(jobs) == 1 for jobs in made.values()), made
    results = read_results(tmp_path / "b.results.jsonl")
    assert sorted(r["line"] for r in results) == list(range(1, lines + 1))
    assert {r["state"] for r in results} <= {"completed", "unknown"}
    for result in results:
        if result["state"] == "completed":
            assert made[f"line {int(str(result['line'])) - 1}"] == [result["job_id"]]
    recorded = states(db)
    assert len(recorded) == lines
    with contextlib.closing(sqlite3.connect(db)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_ctrl_c_stops_submitting_and_a_rerun_continues(emu: Emulator, tmp_path: Path) -> None:
    """SIGINT during a batch exits 130, says how to continue, leaves a store that a re-run
    continues from without making any job twice."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    lines = 8
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, lines))
    db = tmp_path / "b.db"
    args = ("batch", "run", str(batch), "--store", str(db), "--max-active-jobs", "2")
    env = cli_env(tmp_path, emu)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legnext_async", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    first = await asyncio.wait_for(process.stdout.readline(), 30)
    assert json.loads(first)["state"] == "completed"
    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stdout.read(), 30)).decode()
    await asyncio.wait_for(process.wait(), 30)
    err = (await process.stderr.read()).decode()
    assert process.returncode == ExitCode.INTERRUPTED
    assert "run the same command again to continue" in err
    interrupted = states(db)
    assert len(interrupted) < lines  # submitting stopped
    assert not [k for k, (state, _) in interrupted.items() if state == "submitting"]
    # Every line the store holds as unknown is listed as unknown by the run itself.
    unknown_keys = {k for k, (state, _) in interrupted.items() if state == "unknown"}
    listed = {json.loads(line)["key"] for line in rest.splitlines() if '"unknown"' in line}
    assert unknown_keys <= listed
    done = await legnext(*args, env=env)
    assert done.status in (ExitCode.OK, ExitCode.UNKNOWN_OUTCOME), done.err
    made = created_by_prompt(emu)
    assert all(len(jobs) == 1 for jobs in made.values()), made
    assert len(states(db)) == lines


async def test_a_service_out_of_reach_is_a_network_error_and_a_run_again_completes(
    emu: Emulator, tmp_path: Path
) -> None:
    """With the service out of reach, no line is called failed: they end in errors, the
    exit code is the network's (6) and the summary says to run again; run again with the
    service back, every line completes, each job made once."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, 3))
    store = str(tmp_path / "b.db")
    away = cli_env(tmp_path, emu, LEGNEXT_BASE_URL="http://127.0.0.1:9/api")
    down = await legnext("batch", "run", str(batch), "--store", store, "--attempts", "1",
                         env=away)  # fmt: skip
    assert down.status == ExitCode.NETWORK, down.err
    assert "0 failed" in down.err
    assert "3 errors" in down.err
    assert "run the same command again" in down.err
    assert {r["state"] for r in read_results(tmp_path / "b.results.jsonl")} == {"error"}
    again = await legnext("batch", "run", str(batch), "--store", store, env=cli_env(tmp_path, emu))
    assert again.status == ExitCode.OK, again.err
    assert sorted(created_by_prompt(emu)) == ["line 0", "line 1", "line 2"]
    assert all(len(jobs) == 1 for jobs in created_by_prompt(emu).values())


async def test_a_batch_file_with_invalid_lines_is_one_json_document_when_piped(
    emu: Emulator, tmp_path: Path
) -> None:
    """``batch run`` (and ``batch check``) of a file with invalid lines, piped, print one
    JSON document naming each line, its field and the reason; nothing is sent."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    good = inpaints(parent, 1)[0]
    batch = write_lines(tmp_path / "b.jsonl", [good, {**good, "image_no": 9}])
    env = cli_env(tmp_path, emu)
    for command in (
        ("batch", "run", str(batch), "--store", str(tmp_path / "b.db"), "--json"),
        ("batch", "check", str(batch)),
    ):
        done = await legnext(*command, env=env)
        assert done.status == ExitCode.USAGE
        document = json.loads(done.out)
        assert document["error"] == "ValidationError"
        assert document["exit_code"] == ExitCode.USAGE
        assert document["invalid"] == [
            {"line": 2, "field": "image_no", "message": "must be from 0 to 3, got 9"}
        ]
    assert emu.requests == []


async def test_a_403_on_a_status_read_is_an_error_of_a_job_that_was_made(
    emu: Emulator, tmp_path: Path
) -> None:
    """A line whose job was made, then whose status reads are answered 403, is not
    ``refused`` (the job exists, and is paid for): it ends in an error naming its job, and
    a run again waits for that job instead of sending the line anew."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, 1))
    store = str(tmp_path / "b.db")
    emu.add_fault(Fault.http_status("GET /api/v1/job/*", 403, times=None))
    first = await legnext("batch", "run", str(batch), "--store", store, env=cli_env(tmp_path, emu))
    assert first.status == ExitCode.AUTH, first.err
    [result] = read_results(tmp_path / "b.results.jsonl")
    [made] = created_by_prompt(emu)["line 0"]
    assert (result["state"], result["job_id"]) == ("error", made)
    assert "0 refused" not in first.err
    assert "1 errors" in first.err
    emu.clear_faults()
    again = await legnext("batch", "run", str(batch), "--store", store, env=cli_env(tmp_path, emu))
    assert again.status == ExitCode.OK, again.err
    assert created_by_prompt(emu) == {"line 0": [made]}


async def test_lines_whose_jobs_are_lost_are_named_with_the_command_that_frees_them(
    emu: Emulator, tmp_path: Path
) -> None:
    """A line whose job the service answers 404 for (past retention) is not told to run
    again (that cannot help): the summary names it with the command that frees its key,
    and that command, run as printed, frees it without --force."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, 1))
    store = str(tmp_path / "b.db")
    emu.add_fault(Fault.http_status("GET /api/v1/job/*", 404, times=None))
    env = cli_env(tmp_path, emu)
    done = await legnext("batch", "run", str(batch), "--store", store, env=env)
    assert done.status == ExitCode.ERROR, done.err
    assert "no longer known to the service" in done.err
    assert "run the same command again to take them up" not in done.err
    [command] = [line.split("  ", 2)[2] for line in done.err.splitlines() if "--forget=" in line]
    freed = await legnext(*shlex.split(command)[1:], env=env)
    assert freed.status == 0, freed.err
    assert states(Path(store))[read_results(tmp_path / "b.results.jsonl")[0]["key"]][0] == (
        "forgotten"
    )


async def test_ctrl_c_while_a_completed_jobs_files_download_records_the_line(
    emu: Emulator, tmp_path: Path
) -> None:
    """SIGINT while a completed job's files are downloading: the line is in the results
    (its download interrupted) and in the count, and a run again saves its files without
    making the job again."""
    parent = emu.seed_job("diffusion", api_key=API_KEY)
    batch = write_lines(tmp_path / "b.jsonl", inpaints(parent, 1))
    args = ("batch", "run", str(batch), "--store", str(tmp_path / "b.db"),
            "--out", str(tmp_path / "out"))  # fmt: skip
    emu.add_fault(Fault.slow("GET /files/*", 30.0, pieces=30, times=4))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legnext_async", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path, emu),
    )  # fmt: skip

    out = tmp_path / "out"

    async def downloading() -> bool:
        return out.is_dir() and any(name.endswith(".part") for name in os.listdir(out))

    await eventually(downloading, "a file of the completed job is being written")
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == ExitCode.INTERRUPTED, err.decode()
    [result] = read_results(tmp_path / "b.results.jsonl")
    assert (result["state"], result["error"]) == ("download_failed", "interrupted")
    assert "1 of 1 lines ended" in err.decode()
    emu.clear_faults()
    again = await legnext(*args, env=cli_env(tmp_path, emu))
    assert again.status == ExitCode.OK, again.err
    assert len(os.listdir(tmp_path / "out")) == 4
    assert len(created_by_prompt(emu)["line 0"]) == 1
