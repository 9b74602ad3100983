"""The ``legnext`` command, run as a subprocess against an emulator in the test process."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shlex
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from legnext_async import JobRecord, RecordState, SQLiteJobStore
from legnext_async._catalog import ROUTES
from legnext_async.cli import ExitCode, build_parser, main
from legnext_async.cli._config import load_config
from legnext_async.cli._display import BatchStats, JobView, duration, expected_left
from legnext_async.emulator import Emulator, Fault

from .cli_run import CLI_SCALE, cli_env, legnext, legnext_on_terminal
from .conftest import API_KEY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

POLYGON = "500x500:10,10,10,100,100,100,100,10"
POINTS = [10, 10, 10, 100, 100, 100, 100, 10]
ESCAPE = "\x1b["


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator on the CLI tests' clock, accepting only the test key."""
    async with Emulator(api_key=API_KEY, time_scale=CLI_SCALE, seed=5) as server:
        yield server


@pytest.fixture
def parent(emu: Emulator) -> str:
    """A finished diffusion to follow up."""
    return emu.seed_job("diffusion", api_key=API_KEY)


def posts(emu: Emulator) -> list[dict[str, object]]:
    """The bodies of every job-creating POST the emulator received."""
    return [r.body for r in emu.requests if r.method == "POST" and isinstance(r.body, dict)]


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


# --- every endpoint, from the catalogue ------------------------------------------------


def test_every_endpoint_has_a_subcommand_in_the_apis_words() -> None:
    """Each route of the catalogue is a subcommand named by its path (upload-paint, ...)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(commands.choices, dict)
    for route in ROUTES:
        assert route.path in commands.choices


# --- job commands ------------------------------------------------------------------------


async def test_inpaint_submits_waits_and_prints_one_json_document(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """Piped, an inpaint prints one JSON document of the completed job, nothing else."""
    done = await legnext(
        "inpaint", parent, "--image", "0", "--polygon", POLYGON, "--prompt", "a tree",
        env=cli_env(tmp_path, emu),
    )  # fmt: skip
    assert done.status == 0, done.err
    (line,) = done.out.splitlines()
    document = json.loads(line)
    assert document["status"] == "completed"
    assert document["task_type"] == "inpaint"
    assert len(document["image_urls"]) == 4
    assert document["points"]["consumed"] == 120
    # The id was said on stderr as soon as the job existed, before the wait.
    job_id = document["job_id"]
    assert f"submitted job {job_id} (if cut short: legnext wait {job_id})" in done.err
    assert posts(emu) == [
        {
            "jobId": parent,
            "imageNo": 0,
            "mask": {"areas": [{"width": 500, "height": 500, "points": POINTS}]},
            "remixPrompt": "a tree",
        }
    ]  # fmt: skip
    assert ESCAPE not in done.text


async def test_a_mask_url_is_sent_as_the_mask(emu: Emulator, parent: str, tmp_path: Path) -> None:
    """``--mask-url`` sends ``{"url": ...}`` as the mask."""
    done = await legnext(
        "inpaint", parent, "--image", "2", "--mask-url", "https://example.com/m.png", "--no-wait",
        env=cli_env(tmp_path, emu),
    )  # fmt: skip
    assert done.status == 0, done.err
    assert posts(emu)[0]["mask"] == {"url": "https://example.com/m.png"}


async def test_no_wait_prints_the_job_id_at_once(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``--no-wait`` prints the new job's document (as the submission's answer showed it:
    the service's status, not a word of ours) and reads no status."""
    done = await legnext(
        "upscale", parent, "--image", "1", "--type", "creative", "--no-wait",
        env=cli_env(tmp_path, emu),
    )  # fmt: skip
    assert done.status == 0, done.err
    document = json.loads(done.out)
    assert document["status"] == "pending"
    assert document["task_type"] == "upscale"
    assert document["job_id"] in {job.job_id for job in emu.jobs}
    assert posts(emu)[0]["type"] == 1
    assert not [r for r in emu.requests if r.method == "GET"]


async def test_download_saves_the_outputs(emu: Emulator, parent: str, tmp_path: Path) -> None:
    """``--download DIR`` saves the four images and lists them in the document."""
    done = await legnext(
        "variation", parent, "--image", "3", "--download", str(tmp_path / "out"),
        env=cli_env(tmp_path, emu),
    )  # fmt: skip
    assert done.status == 0, done.err
    document = json.loads(done.out)
    assert sorted(Path(f).name for f in document["files"]) == [
        f"{document['job_id']}_{i}.png" for i in range(4)
    ]
    assert all(size > 0 for size in [Path(f).stat().st_size for f in document["files"]])  # noqa: ASYNC240


async def test_a_prompt_endpoint_takes_its_prompt_positionally(
    emu: Emulator, tmp_path: Path
) -> None:
    """``legnext diffusion PROMPT`` sends the prompt as ``text``."""
    done = await legnext("diffusion", "a lighthouse --v 7", env=cli_env(tmp_path, emu))
    assert done.status == 0, done.err
    assert posts(emu) == [{"text": "a lighthouse --v 7"}]


# --- other commands ----------------------------------------------------------------------


async def test_status_reads_a_job_once(emu: Emulator, parent: str, tmp_path: Path) -> None:
    """``status JOB_ID`` prints the job as it is, with one status read."""
    done = await legnext("status", parent, env=cli_env(tmp_path, emu))
    assert done.status == 0, done.err
    assert json.loads(done.out)["job_id"] == parent
    assert len([r for r in emu.requests if r.method == "GET"]) == 1


async def test_wait_follows_a_job_made_elsewhere(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``wait JOB_ID`` waits for a job submitted by another process and prints it."""
    env = cli_env(tmp_path, emu)
    submitted = await legnext("reroll", parent, "--no-wait", env=env)
    job_id = json.loads(submitted.out)["job_id"]
    done = await legnext("wait", job_id, env=env)
    assert done.status == 0, done.err
    document = json.loads(done.out)
    assert (document["job_id"], document["status"]) == (job_id, "completed")


async def test_balance_prints_the_accounts_points(emu: Emulator, tmp_path: Path) -> None:
    """``balance`` prints the account's balance as one document."""
    done = await legnext("balance", env=cli_env(tmp_path, emu))
    assert done.status == 0, done.err
    assert json.loads(done.out)["available_credits"] == emu.balance(API_KEY).credits


async def test_download_command_saves_a_jobs_files(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``download JOB_ID --out DIR`` saves a completed job's four images."""
    done = await legnext(
        "download", parent, "--out", str(tmp_path / "o"), env=cli_env(tmp_path, emu)
    )
    assert done.status == 0, done.err
    assert len(json.loads(done.out)["files"]) == 4
    assert len(list((tmp_path / "o").glob(f"{parent}_*.png"))) == 4


async def test_jobs_lists_shows_and_forgets_what_a_store_holds(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``jobs`` lists a store's records, shows one by its key, and forgets one: a key
    whose job exists only with ``--force`` (the next run would pay for it again)."""
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(tmp_path / "jobs.db"))
    made = await legnext("pan", parent, "--image", "0", "--direction", "up", "--scale", "1.5",
                         "--key", "pan-1", env=env)  # fmt: skip
    assert made.status == 0, made.err
    listed = await legnext("jobs", env=env)
    (record,) = [json.loads(line) for line in listed.out.splitlines()]
    assert (record["key"], record["state"], record["endpoint"]) == ("pan-1", "completed", "pan")
    shown = await legnext("jobs", "pan-1", env=env)
    assert json.loads(shown.out)["job_id"] == json.loads(made.out)["job_id"]
    kept = await legnext("jobs", "--forget", "pan-1", env=env)
    assert kept.status == ExitCode.USAGE
    assert "holds job" in kept.err
    assert "--force" in kept.err
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        assert [r.state.value for r in await store.records()] == ["completed"]
    forgot = await legnext("jobs", "--forget", "pan-1", "--force", env=env)
    assert forgot.status == 0, forgot.err
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        assert [r.state.value for r in await store.records()] == ["forgotten"]


async def test_a_key_already_recorded_sends_nothing(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """The same command with the same ``--key`` and ``--store`` gets the recorded job back."""
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(tmp_path / "jobs.db"))
    args = ("outpaint", parent, "--image", "0", "--scale", "1.5", "--key", "k1")
    first, second = [await legnext(*args, env=env) for _ in range(2)]
    assert first.status == second.status == 0, second.err
    assert json.loads(first.out)["job_id"] == json.loads(second.out)["job_id"]
    assert len(posts(emu)) == 1


async def test_a_repeated_key_says_it_was_already_submitted(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """A command whose ``--key`` the store holds says so, and that nothing was sent, where
    the first run said it submitted; its document says ``already_submitted``."""
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(tmp_path / "jobs.db"))
    args = ("reroll", parent, "--key", "k1")
    first, second = [await legnext(*args, env=env) for _ in range(2)]
    assert first.status == second.status == 0, second.err
    job_id = json.loads(first.out)["job_id"]
    assert json.loads(first.out)["already_submitted"] is False
    assert f"submitted job {job_id}" in first.err
    assert json.loads(second.out)["already_submitted"] is True
    assert "submitted job" not in second.err
    assert (
        f"job {job_id} was already submitted under key 'k1' (recorded in {tmp_path / 'jobs.db'});"
        " nothing was sent"
    ) in second.err
    assert len(posts(emu)) == 1


async def test_a_repeated_key_with_no_wait_says_it_in_its_document(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``--no-wait`` with a key the store holds prints the job with ``already_submitted``."""
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(tmp_path / "jobs.db"))
    args = ("reroll", parent, "--key", "k1", "--no-wait")
    first, second = [await legnext(*args, env=env) for _ in range(2)]
    assert first.status == second.status == 0, second.err
    made, again = json.loads(first.out), json.loads(second.out)
    assert (made["job_id"], made["already_submitted"]) == (again["job_id"], False)
    assert again["already_submitted"] is True
    assert "nothing was sent" in second.err
    assert len(posts(emu)) == 1


async def test_a_key_conflict_names_the_command_that_frees_the_key(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """The same ``--key`` for other arguments exits 2 and says how to free the key with
    ``legnext jobs --forget``, not with a Python call; nothing is sent. The command said
    works as printed, even for a key that begins with "-"."""
    store = tmp_path / "my jobs.db"
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(store))
    made = await legnext("reroll", parent, "--key=-k1", "--no-wait", env=env)
    assert made.status == 0, made.err
    done = await legnext("variation", parent, "--image", "1", "--key=-k1", env=env)
    assert done.status == ExitCode.USAGE
    assert json.loads(done.out)["error"] == "IdempotencyConflictError"
    command = f"legnext jobs --store '{store}' --forget=-k1 --force"
    assert f"{command} first" in done.err
    assert "client.forget" not in done.text
    assert len(posts(emu)) == 1
    freed = await legnext(*shlex.split(command)[1:], env=env)
    assert freed.status == 0, freed.err
    assert "forgot key '-k1'" in freed.err


async def test_a_key_of_unknown_outcome_names_the_command_that_settles_it(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """A command whose ``--key`` is recorded as an unknown outcome exits 7 and says how to
    settle it with ``legnext jobs --forget``; nothing is sent again."""
    store = tmp_path / "jobs.db"
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(store))
    emu.add_fault(Fault.answer_lost("POST /api/v1/reroll"))
    lost = await legnext("reroll", parent, "--key", "k1", env=env)
    assert lost.status == ExitCode.UNKNOWN_OUTCOME, lost.err
    again = await legnext("reroll", parent, "--key", "k1", env=env)
    assert again.status == ExitCode.UNKNOWN_OUTCOME
    assert f"settle it: legnext jobs --store {store} --forget=k1" in again.err
    assert "client.forget" not in again.text
    assert len(posts(emu)) == 1


async def test_forgetting_a_key_the_store_does_not_hold_is_nothing_to_forget(
    emu: Emulator, tmp_path: Path
) -> None:
    """``jobs --forget`` of an unknown key says there is nothing to forget and exits 0 (the
    key is free, as asked), as ``client.forget`` returns ``None``."""
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        await store.open()
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(tmp_path / "jobs.db"))
    done = await legnext("jobs", "--forget", "nope", env=env)
    assert done.status == ExitCode.OK, done.err
    assert "nothing to forget: the store holds no record under key 'nope'" in done.err
    assert json.loads(done.out) == {"key": "nope", "forgotten": False, "state": None}


async def test_a_claim_still_submitting_is_forgotten_only_with_force(
    emu: Emulator, tmp_path: Path
) -> None:
    """A key claimed by a submission that may still be sending it is not freed by
    ``jobs --forget`` alone (the run sending it would pay a second time once the key is
    sent anew); ``--force`` frees it."""
    claim = JobRecord(
        key="k1",
        attempt="a1",
        endpoint="diffusion",
        request={"text": "a cat"},
        state=RecordState.SUBMITTING,
        created_at=time.time(),
        updated_at=time.time(),
    )
    async with SQLiteJobStore(tmp_path / "jobs.db") as store:
        await store.claim([claim])
    env = cli_env(tmp_path, emu, LEGNEXT_STORE=str(tmp_path / "jobs.db"))
    kept = await legnext("jobs", "--forget", "k1", env=env)
    assert kept.status == ExitCode.USAGE
    assert "may be sending it now" in kept.err
    forced = await legnext("jobs", "--forget", "k1", "--force", env=env)
    assert forced.status == ExitCode.OK, forced.err
    assert json.loads(forced.out) == {"key": "k1", "forgotten": True, "state": "submitting"}


async def test_batch_check_of_a_missing_file_is_one_json_document_when_piped(
    tmp_path: Path,
) -> None:
    """``batch check`` of a file that does not exist, piped, exits 2 with one JSON
    document on stdout, as every refusal is."""
    done = await legnext("batch", "check", str(tmp_path / "nope.jsonl"), env=cli_env(tmp_path))
    assert done.status == ExitCode.USAGE
    document = json.loads(done.out)
    assert document["exit_code"] == ExitCode.USAGE
    assert "nope.jsonl" in document["message"]


async def test_the_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    """``legnext emulator --port 0`` prints its base URL, serves, and exits 0 on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legnext_async", "emulator", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path),
    )  # fmt: skip
    assert process.stdout is not None
    url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api", url)
    env = cli_env(tmp_path, LEGNEXT_BASE_URL=url, LEGNEXT_API_KEY="any")
    balance = await legnext("balance", env=env)
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert balance.status == 0, balance.err


# --- exit codes --------------------------------------------------------------------------


async def test_a_key_without_a_store_says_which_option_is_missing(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``--key`` with no store exits 2 naming ``--store``, in the command's words; nothing is
    sent."""
    done = await legnext("reroll", parent, "--key", "k1", env=cli_env(tmp_path, emu))
    assert done.status == ExitCode.USAGE
    assert "--key: needs a job store: --store FILE" in done.err
    assert "LegnextClient" not in done.err
    assert posts(emu) == []


async def test_invalid_arguments_exit_2_and_send_nothing(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """An argument that breaks a limit exits 2, names the option, and sends nothing."""
    done = await legnext("inpaint", parent, "--image", "7", "--polygon", POLYGON,
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.USAGE
    assert "--image: must be from 0 to 3, got 7" in done.err
    assert emu.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("balance", "--json", "--bogus"), "unrecognized arguments: --bogus",
                     id="unknown-option"),
        pytest.param(("pan", "PARENT", "--image", "0", "--direction", "up", "--json"),
                     "the following arguments are required: --scale", id="missing-argument"),
        pytest.param(("inpaint", "--json", "PARENT", "--image", "x", "--polygon", POLYGON),
                     "--image: 'x' is not a whole number", id="bad-value"),
        pytest.param(("--json", "frobnicate"), "COMMAND: invalid choice: 'frobnicate'",
                     id="unknown-command"),
    ],
)  # fmt: skip
async def test_with_json_a_usage_error_is_one_json_document(
    emu: Emulator, parent: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """With ``--json`` anywhere, a command line the parser refuses prints one JSON document
    shaped as every other error, exits 2 and sends nothing."""
    args = tuple(parent if arg == "PARENT" else arg for arg in args)
    done = await legnext(*args, env=cli_env(tmp_path, emu))
    assert done.status == ExitCode.USAGE
    (line,) = done.out.splitlines()
    document = json.loads(line)
    assert document == {"error": "ValidationError", "message": document["message"], "exit_code": 2}
    assert document["message"].startswith(message)
    assert "usage: legnext" in done.err  # the person still gets argparse's text
    assert emu.requests == []


async def test_with_json_on_a_terminal_a_usage_error_is_json_too(tmp_path: Path) -> None:
    """On a terminal, ``--json`` still makes a refused command line a JSON document."""
    done = await legnext_on_terminal("balance", "--bogus", "--json", env=cli_env(tmp_path))
    assert done.status == ExitCode.USAGE
    assert (
        '{"error":"ValidationError","message":"unrecognized arguments: --bogus","exit_code":2}'
        in done.out
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("upscale", "PARENT", "--image", "0", "--type", "wild"),
                     "--type: must be one of subtle (0), creative (1), got 'wild'", id="type"),
        pytest.param(("pan", "PARENT", "--image", "0", "--scale", "1.5", "--direction", "north"),
                     "--direction: must be one of down (0), right (1), up (2), left (3),"
                     " got 'north'", id="direction"),
        pytest.param(("blend", "https://a.example/1.png", "https://a.example/2.png",
                      "--aspect-ratio", "4:5"),
                     "--aspect-ratio: must be one of 2:3 (portrait), 1:1 (square),"
                     " 3:2 (landscape), got '4:5'", id="aspect-ratio"),
    ],
)  # fmt: skip
async def test_a_bad_code_is_refused_with_the_values_it_takes(
    emu: Emulator, parent: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """A code that is no name or number of its field exits 2 with the values it takes, in
    the API's words (not the client's Python enum); nothing is sent."""
    args = tuple(parent if arg == "PARENT" else arg for arg in args)
    done = await legnext(*args, env=cli_env(tmp_path, emu))
    assert done.status == ExitCode.USAGE
    assert f"legnext: error: {message}\n" in done.err
    assert "Type." not in done.err
    assert emu.requests == []


async def test_a_code_by_name_is_sent_as_its_number(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """A code given by name (any case) is sent as the number the API takes."""
    done = await legnext("pan", parent, "--image", "0", "--direction", "LEFT", "--scale", "1.5",
                         "--no-wait", env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == 0, done.err
    assert posts(emu)[0]["direction"] == 3


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(("--image", "0", "--polygon", "500x500:1,2"), "Polygon.points", id="polygon"),
        pytest.param(("--image", "0", "--polygon", "big"), "WIDTHxHEIGHT", id="polygon-form"),
        pytest.param(("--image", "0"), "--polygon", id="no-mask"),
        pytest.param(("--image", "0", "--mask-url", "ftp://x/m.png"), "mask.url", id="mask-url"),
        pytest.param(
            ("--image", "0", "--polygon", POLYGON, "--prompt", ""), "--prompt", id="empty-prompt"
        ),
        pytest.param(
            ("--image", "0", "--polygon", POLYGON, "--callback", "x"), "--callback", id="callback"
        ),
    ],
)
def test_each_limit_is_checked_before_a_client_is_made(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
    named: str,
) -> None:
    """Every documented limit is checked first, naming the option, with nothing to send to."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("LEGNEXT_BASE_URL", closed_port_url())
    monkeypatch.setenv("LEGNEXT_API_KEY", API_KEY)
    try:
        status = main(["inpaint", "5dd94ec3-7282-4f04-9445-59e850ef1822", *args])
    except SystemExit as exit_:  # argparse's own refusals
        status = exit_.code  # type: ignore[assignment]
    assert status == ExitCode.USAGE
    assert named in capsys.readouterr().err


async def test_a_failed_job_exits_1_with_its_document(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """A job that ends ``failed`` exits 1; its document says failed and why."""
    emu.fail_next(message="the upstream refused")
    done = await legnext("inpaint", parent, "--image", "0", "--polygon", POLYGON,
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.FAILED
    document = json.loads(done.out)
    assert document["status"] == "failed"
    assert "the upstream refused" in document["error"]["message"]


async def test_a_wait_past_its_deadline_exits_3(emu: Emulator, parent: str, tmp_path: Path) -> None:
    """``--timeout`` shorter than the job exits 3 with the job id to resume from."""
    done = await legnext("inpaint", parent, "--image", "0", "--polygon", POLYGON,
                         "--timeout", "5", env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.TIMEOUT
    document = json.loads(done.out)
    assert document["error"] == "TaskTimeoutError"
    assert document["job_id"] in {job.job_id for job in emu.jobs}


@pytest.mark.parametrize(
    "key",
    [pytest.param("not-the-key", id="wrong-key"), pytest.param(None, id="no-key")],
)
async def test_a_refused_or_missing_key_exits_4(
    emu: Emulator, tmp_path: Path, key: str | None
) -> None:
    """A key the service refuses, or none at all, exits 4."""
    done = await legnext("balance", env=cli_env(tmp_path, emu, LEGNEXT_API_KEY=key))
    assert done.status == ExitCode.AUTH
    assert "LEGNEXT_API_KEY" in done.err if key is None else "401" in done.err


async def test_a_refused_spending_limit_exits_5_and_sends_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    """A job that would pass ``--max-points`` exits 5 before anything is sent."""
    done = await legnext("diffusion", "a cat", "--max-points", "50", env=cli_env(tmp_path, emu))
    assert done.status == ExitCode.SPENDING
    assert "max_points" in done.err
    assert posts(emu) == []


async def test_no_connection_exits_6(tmp_path: Path) -> None:
    """A service that cannot be reached exits 6 (with one try, at once)."""
    env = cli_env(tmp_path, LEGNEXT_BASE_URL=closed_port_url(), LEGNEXT_API_KEY=API_KEY)
    done = await legnext("balance", "--attempts", "1", env=env)
    assert done.status == ExitCode.NETWORK
    assert "could not connect" in done.err


async def test_a_lost_answer_exits_7(emu: Emulator, parent: str, tmp_path: Path) -> None:
    """A submission whose answer is lost exits 7 and is not sent again."""
    emu.add_fault(Fault.answer_lost("POST /api/v1/inpaint"))
    done = await legnext("inpaint", parent, "--image", "0", "--polygon", POLYGON,
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == ExitCode.UNKNOWN_OUTCOME
    assert "outcome is unknown" in done.err
    assert len(posts(emu)) == 1


async def test_an_unknown_job_exits_8(emu: Emulator, tmp_path: Path) -> None:
    """``status`` of a job the service does not know exits 8."""
    done = await legnext("status", "no-such-job", env=cli_env(tmp_path, emu))
    assert done.status == ExitCode.ERROR
    assert "404" in done.err


# --- the terminal --------------------------------------------------------------------------


async def test_a_terminal_shows_the_live_display(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """On a terminal, waiting redraws a line with the status and the time expected left."""
    done = await legnext_on_terminal(
        "inpaint", parent, "--image", "0", "--polygon", POLYGON, env=cli_env(tmp_path, emu)
    )
    assert done.status == 0, done.out
    assert ESCAPE in done.out  # redrawn in place
    assert re.search(r"queued; runs [\d.]+ s–[\d.]+ s once started|left", done.out)
    assert "completed" in done.out
    assert "actions  upscale 0,1,2,3" in done.out  # the result, for a person


async def test_json_on_a_terminal_has_no_display(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """``--json`` on a terminal prints the document alone, with no escape codes."""
    done = await legnext_on_terminal(
        "inpaint", parent, "--image", "0", "--polygon", POLYGON, "--json",
        env=cli_env(tmp_path, emu),
    )  # fmt: skip
    assert done.status == 0, done.out
    assert ESCAPE not in done.out
    assert json.loads(done.out)["status"] == "completed"


async def test_without_rich_the_terminal_gets_plain_lines_and_a_hint(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """Without the cli extra, a terminal gets the hint to install it and plain status lines."""
    blocker = tmp_path / "no_rich" / "rich"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('rich is not installed')\n")
    env = cli_env(tmp_path, emu)
    env["PYTHONPATH"] = f"{blocker.parent}:{env['PYTHONPATH']}"
    done = await legnext_on_terminal("reroll", parent, env=env)
    assert done.status == 0, done.out
    assert "pip install 'legnext-async[cli]'" in done.out
    assert ESCAPE not in done.out
    assert re.search(r"reroll \S+  completed", done.out)


async def test_the_key_is_never_printed_even_verbose(
    emu: Emulator, parent: str, tmp_path: Path
) -> None:
    """With ``--verbose`` the requests and settings are logged, and the key nowhere."""
    done = await legnext("inpaint", parent, "--image", "0", "--polygon", POLYGON, "--verbose",
                         env=cli_env(tmp_path, emu))  # fmt: skip
    assert done.status == 0, done.err
    assert "POST /v1/inpaint -> 200" in done.err
    assert "api_key = (set) (from environment)" in done.err
    assert API_KEY not in done.text


async def test_a_config_file_supplies_what_flags_and_variables_do_not(
    emu: Emulator, tmp_path: Path
) -> None:
    """The key and base URL may come from ``~/.config/legnext/config.toml``."""
    config = tmp_path / "config" / "legnext" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'api_key = "{API_KEY}"\nbase_url = "{emu.base_url}"\n')
    done = await legnext("balance", "--verbose", env=cli_env(tmp_path))
    assert done.status == 0, done.err
    assert f"base_url = {emu.base_url} (from {config})" in done.err
    assert API_KEY not in done.text


async def test_an_unknown_setting_in_the_config_file_exits_2(tmp_path: Path) -> None:
    """A misspelt setting in the config file is refused, named, and nothing runs."""
    config = tmp_path / "c.toml"
    config.write_text('base_ulr = "http://127.0.0.1:9/api"\n')
    done = await legnext("balance", "--config", str(config), env=cli_env(tmp_path))
    assert done.status == ExitCode.USAGE
    assert "unknown setting 'base_ulr'" in done.err


def test_flags_win_over_variables_which_win_over_the_file(tmp_path: Path) -> None:
    """Each setting comes from its flag, else its variable, else the config file."""
    path = tmp_path / "c.toml"
    path.write_text("max_points = 1\nmax_active_jobs = 2\ntimeout = 3.5\n")
    config = load_config(
        {"max_points": "10"},
        {"LEGNEXT_MAX_POINTS": "20", "LEGNEXT_MAX_ACTIVE_JOBS": "30"},
        str(path),
    )
    assert (config.get("max_points"), config.get("max_active_jobs"), config.get("timeout")) == (
        10,
        30,
        3.5,
    )
    assert config.sources["timeout"] == str(path)


# --- what the displays show -------------------------------------------------------------


@pytest.mark.parametrize(
    ("running_for", "left"),
    [
        pytest.param(None, (90.0, 120.0), id="queued"),
        pytest.param(30.0, (60.0, 90.0), id="running"),
        pytest.param(100.0, (0.0, 20.0), id="inside-the-window"),
        pytest.param(500.0, (0.0, 0.0), id="past-it"),
    ],
)
def test_time_left_comes_from_the_learned_window(
    running_for: float | None, left: tuple[float, float]
) -> None:
    """The time left is the task type's window less the time the job has run."""
    assert expected_left((90.0, 120.0), 1.0, running_for) == left


def test_time_left_is_in_real_seconds_on_a_scaled_clock() -> None:
    """A window in service seconds is shown in real seconds on a faster clock."""
    assert expected_left((90.0, 120.0), 0.01, None) == pytest.approx((0.9, 1.2))


def test_a_job_line_says_status_elapsed_and_time_left() -> None:
    """The live line of a running job shows its status, elapsed time and time left."""
    view = JobView("inpaint", "j1", (90.0, 120.0), 1.0, started=0.0)
    assert (
        view.line(now=5.0) == "inpaint j1  submitted  5.0 s  queued; runs 1m30s–2m00s once started"
    )
    view.running_since = 10.0
    view.status = "processing"
    assert view.line(now=40.0) == "inpaint j1  processing 40 s  about 1m00s–1m30s left"


def test_a_batch_line_says_counts_rate_time_left_and_points() -> None:
    """The batch line counts the lines, the rate per minute, the time left and the points."""
    stats = BatchStats(total=10, started=0.0, completed=3, failed=1, waited=4, points=360)
    assert stats.line(now=120.0) == (
        "4/10 done, 3 completed, 1 failed, 0 unknown, 2.0/min, ~3m00s left, 360 points"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(3.25, "3.2 s", id="seconds"),
        pytest.param(42, "42 s", id="tens"),
        pytest.param(185, "3m05s", id="minutes"),
        pytest.param(3720, "1h02m", id="hours"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    """Durations are shown in seconds, minutes or hours as they grow."""
    assert duration(seconds) == text


# --- the documentation ----------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def documented_errors() -> list[tuple[str, str]]:
    """Each ``$ legnext ...`` line of docs/cli.md that the page follows with an error, and
    that error line."""
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    return [
        (command.removeprefix("$ "), shown)
        for command, shown in itertools.pairwise(lines)
        if command.startswith("$ legnext ") and shown.startswith("legnext: error: ")
    ]


async def test_the_documented_errors_are_what_their_commands_print(
    emu: Emulator, tmp_path: Path
) -> None:
    """Each command the CLI page shows with an error prints that very error, exit code 2."""
    examples = documented_errors()
    assert examples  # the page shows at least one
    for command, shown in examples:
        done = await legnext(*shlex.split(command)[1:], env=cli_env(tmp_path, emu))
        assert done.status == ExitCode.USAGE, command
        assert shown in done.err.splitlines(), (command, done.err)
    assert emu.requests == []
