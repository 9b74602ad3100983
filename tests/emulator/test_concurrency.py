"""The per-key concurrency limit: reject with 429, or queue in ``pending``."""

from __future__ import annotations

from .conftest import OTHER_KEY, Api, EmulatorFactory

#: Diffusions of 1,000 virtual seconds (a real second): still running when the test looks.
LONG = {"diffusion": (1000.0, 1000.0)}


async def test_over_limit_is_429(make_emulator: EmulatorFactory, api: Api) -> None:
    """The seventh unfinished job of a key answers 429 and is not created or billed."""
    api.emulator = await make_emulator(
        concurrency_limit=6, extra_api_keys=[OTHER_KEY], durations=LONG
    )
    for _ in range(6):
        await api.create("diffusion", {"text": "x"})
    status, body = await api.post("diffusion", {"text": "x"})
    assert status == 429
    assert body["error"]["code"] == 429
    assert len(api.emulator.jobs) == 6
    assert api.emulator.balance(api.key or "").frozen == 6 * 80
    assert (await api.post("diffusion", {"text": "x"}, key=OTHER_KEY))[0] == 200


async def test_slot_frees_when_a_job_ends(make_emulator: EmulatorFactory, api: Api) -> None:
    """Once jobs finish, new ones are accepted again."""
    api.emulator = await make_emulator(concurrency_limit=1, durations=LONG)
    await api.create("diffusion", {"text": "x"})
    assert (await api.post("diffusion", {"text": "x"}))[0] == 429
    api.emulator.advance(3600)
    assert (await api.post("diffusion", {"text": "x"}))[0] == 200


async def test_failed_jobs_free_their_slot(make_emulator: EmulatorFactory, api: Api) -> None:
    """A failed job releases its slot like a completed one."""
    api.emulator = await make_emulator(concurrency_limit=1)
    api.emulator.fail_next()
    await api.create("diffusion", {"text": "x"})
    api.emulator.advance(3600)
    assert (await api.post("diffusion", {"text": "x"}))[0] == 200


async def test_queue_mode_keeps_extra_jobs_pending(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """In queue mode an extra job is created and billed but stays pending until a slot frees."""
    emu = await make_emulator(
        concurrency_limit=1, over_limit="queue", durations={"diffusion": (100.0, 100.0)}
    )
    api.emulator = emu
    first = (await api.create("diffusion", {"text": "x"}))["job_id"]
    second = await api.create("diffusion", {"text": "x"})
    assert second["meta"]["usage"]["frozen"] == 80
    emu.advance(50)
    assert (await api.job(first))["status"] == "processing"
    assert (await api.job(second["job_id"]))["status"] == "pending"
    emu.advance(60)
    assert (await api.job(first))["status"] == "completed"
    assert (await api.job(second["job_id"]))["status"] == "processing"
    emu.advance(200)
    assert (await api.job(second["job_id"]))["status"] == "completed"


async def test_queue_is_fifo(make_emulator: EmulatorFactory, api: Api) -> None:
    """Queued jobs start in submission order, each when the previous slot frees."""
    emu = await make_emulator(
        concurrency_limit=1, over_limit="queue", durations={"diffusion": (100.0, 100.0)}
    )
    api.emulator = emu
    ids = [(await api.create("diffusion", {"text": "x"}))["job_id"] for _ in range(3)]
    emu.advance(1000)
    starts = [emu.job(job_id).started_at or 0 for job_id in ids]
    assert starts == sorted(starts)
    assert starts[1] - starts[0] >= 100
    assert starts[2] - starts[1] >= 100


async def test_peak_active_is_the_most_jobs_holding_slots_at_once(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """peak_active counts jobs holding a slot together, not jobs in all or queued ones."""
    emu = await make_emulator(
        concurrency_limit=2, over_limit="queue", durations={"diffusion": (100.0, 100.0)}
    )
    api.emulator = emu
    assert emu.peak_active() == 0
    await api.create("diffusion", {"text": "x"})
    assert emu.peak_active() == 1
    for _ in range(4):
        await api.create("diffusion", {"text": "x"})
    emu.advance(1000)
    assert all(job.status == "completed" for job in emu.jobs)
    assert emu.peak_active() == 2
