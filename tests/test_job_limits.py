"""Which 429 teaches a limit of active jobs, and how a learned limit comes back.

The rules are checked on :class:`JobSlots` itself, driven step by step by :class:`Account`
(plain data, no clock, no event loop), then end to end against the emulator.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
from typing import TYPE_CHECKING

import pytest

from legnext_async import LegnextClient, RateLimitError, RetryPolicy
from legnext_async._budget import MAX_DOUBLINGS, JobSlots
from legnext_async._exceptions import rate_limit_kind
from legnext_async.emulator import Emulator, Fault
from legnext_async.emulator._errors import error_body

from .conftest import API_KEY, FAST_RETRY, MASK, SCALE, fast_poll

if TYPE_CHECKING:
    from collections.abc import Mapping

    from legnext_async._budget import SlotTicket
    from legnext_async._exceptions import RateLimitKind
    from legnext_async.emulator._errors import ErrorShape

JOB_LIMIT_MESSAGE = "Concurrent task limit reached (6); try again later"
RATE_LIMIT_MESSAGE = "Too many requests: rate limit exceeded"


class Account:
    """A service account in plain data that runs ``limit`` jobs at once and refuses more.

    It drives a :class:`JobSlots` the way the client does, one explicit step at a time:
    every granted submission is sent in order, then the oldest running job finishes.
    ``noise`` answers chosen POSTs (numbered from 1) with a 429 of the given kind whatever
    the load; ``others`` counts jobs another program runs on the same account; ``says`` is
    the kind of the account's own 429s.
    """

    def __init__(
        self,
        slots: JobSlots,
        limit: int,
        *,
        noise: Mapping[int, RateLimitKind] | None = None,
        others: int = 0,
        says: RateLimitKind = "jobs",
    ) -> None:
        self.slots = slots
        self.says: RateLimitKind = says
        self.limit = limit
        self.noise = dict(noise or {})
        self.others = others
        self.posts = 0
        self.too_many = 0
        self.peak = 0
        self.running: collections.deque[SlotTicket] = collections.deque()
        #: The client's limit after each finished job.
        self.limits: list[int | None] = []

    def run(self, jobs: int) -> None:
        """Submit ``jobs`` submissions and run them all to the end."""
        tickets = [self.slots.enqueue() for _ in range(jobs)]
        while any(ticket.state != "done" for ticket in tickets):
            for ticket in tickets:
                if ticket.state == "granted":
                    self.post(ticket)
            if self.running:
                self.slots.release(self.running.popleft())
                self.limits.append(self.slots.limit)

    def post(self, ticket: SlotTicket) -> None:
        """Answer one submission: a job, or a 429 (scripted noise, or the account is full)."""
        assert self.slots.mark_sent(ticket)
        self.posts += 1
        kind = self.noise.get(self.posts)
        if kind is None and len(self.running) + self.others >= self.limit:
            kind = self.says
        if kind is None:
            self.slots.mark_running(ticket)
            self.running.append(ticket)
            self.peak = max(self.peak, len(self.running))
            return
        self.too_many += 1
        if not self.slots.refused(ticket, kind):
            self.slots.unsend(ticket)  # as the client does: keep the slot, back off, resend


def raises_after(limits: list[int | None], low: int, high: int) -> list[int]:
    """The finishes (counted from 1) after which the limit went from ``low`` to ``high``."""
    return [
        n
        for n, (was, now) in enumerate(itertools.pairwise([None, *limits]), start=1)
        if (was, now) == (low, high)
    ]


# --- which limit a 429 is about -----------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "kind"),
    [
        pytest.param((JOB_LIMIT_MESSAGE,), "jobs", id="emulator-job-limit"),
        pytest.param(("concurrency limit exceeded",), "jobs", id="concurrency"),
        pytest.param(("You have too many running tasks",), "jobs", id="running-tasks"),
        pytest.param(("max active jobs reached",), "jobs", id="active-jobs"),
        pytest.param(("Task limit reached",), "jobs", id="task-limit"),
        pytest.param((RATE_LIMIT_MESSAGE,), "rate", id="emulator-rate-limit"),
        pytest.param(("rate_limit_exceeded",), "rate", id="rate-limit-code-word"),
        pytest.param(("Request was throttled",), "rate", id="throttled"),
        pytest.param(("Limit: 60 requests per minute",), "rate", id="per-minute"),
        pytest.param(("Too many requests, slow down",), "rate", id="too-many-requests"),
        pytest.param(("Too Many Requests",), "unknown", id="reason-phrase-only"),
        pytest.param(("429 Too Many Requests",), "unknown", id="status-line-only"),
        pytest.param(("Too many concurrent requests",), "unknown", id="both"),
        pytest.param(("Concurrent task limit", "rate limit"), "unknown", id="both-fields"),
        pytest.param(("Quota exceeded",), "unknown", id="neither"),
        pytest.param(("", ""), "unknown", id="empty"),
        pytest.param(("", JOB_LIMIT_MESSAGE), "jobs", id="raw-message-only"),
    ],
)
def test_the_kind_of_a_429_comes_from_its_words(texts: tuple[str, ...], kind: str) -> None:
    """Job words mean the active-job limit, rate words the request rate, else unknown."""
    assert rate_limit_kind(*texts) == kind


@pytest.mark.parametrize("shape", ["flat", "nested", "envelope"])
@pytest.mark.parametrize(
    ("message", "kind"),
    [
        pytest.param(JOB_LIMIT_MESSAGE, "jobs", id="job-limit"),
        pytest.param(RATE_LIMIT_MESSAGE, "rate", id="rate-limit"),
        pytest.param("Too Many Requests", "unknown", id="bare"),
    ],
)
async def test_rate_limit_error_kind_is_read_from_every_body_shape(
    emulator: Emulator, shape: ErrorShape, message: str, kind: str
) -> None:
    """A 429 in any of the three error body shapes carries the kind its message says."""
    body = error_body(shape, 429, message)
    emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 429, body=body))
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.get_task("job-1")
    assert info.value.kind == kind


async def test_a_429_without_a_json_body_is_of_unknown_kind(emulator: Emulator) -> None:
    """A gateway's HTML 429 says nothing about which limit it is."""
    html = "<html><body><h1>429 Too Many Requests</h1>rate limiting</body></html>"
    emulator.add_fault(Fault.http_status("GET /api/v1/job/*", 429, body=html))
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.get_task("job-1")
    assert info.value.kind == "unknown"


# --- JobSlots, step by step ---------------------------------------------------------------


def test_a_rate_429_keeps_the_submission_in_its_slot() -> None:
    """A request-rate 429 takes back no slot and lowers no limit: the caller just resends."""
    slots = JobSlots(limit=2)
    first, second, third = slots.enqueue(), slots.enqueue(), slots.enqueue()
    assert slots.mark_sent(first)
    slots.mark_running(first)
    assert slots.mark_sent(second)
    assert not slots.refused(second, "rate")
    slots.unsend(second)
    assert (second.state, third.state) == ("granted", "waiting")
    assert (slots.limit, slots.rate_limited, slots.discoveries) == (2, 1, 0)


def test_rate_429s_never_lower_a_learned_limit() -> None:
    """Rate 429s on every tenth submission leave the limit where the account's 429s put it."""
    slots = JobSlots()
    noise: dict[int, RateLimitKind] = dict.fromkeys(range(3, 400, 10), "rate")
    account = Account(slots, limit=6, noise=noise)
    account.run(300)
    rate_429s = sum(1 for n in noise if n <= account.posts)
    assert slots.rate_limited == rate_429s
    assert min(limit for limit in account.limits if limit is not None) == 6
    assert account.peak == 6
    assert account.too_many - rate_429s == slots.discoveries  # the rest taught the limit


def test_an_ambiguous_429_lowers_the_limit_and_it_climbs_back() -> None:
    """A 429 that says no limit, while 2 jobs run, sets the limit to 2; it is 6 again after
    4 finishes, one step per finish, because 6 had held before."""
    slots = JobSlots()
    account = Account(slots, limit=6)
    account.run(30)
    assert (slots.limit, slots.proven) == (6, 6)
    account.noise = {account.posts + 3: "unknown"}  # the next batch's third POST
    account.limits.clear()
    account.run(30)
    assert account.limits[:5] == [3, 4, 5, 6, 6]
    assert slots.recoveries == 4
    assert slots.proven == 6


def test_ambiguous_noise_costs_a_step_won_back_at_the_next_finish() -> None:
    """Ambiguous 429s on every seventh submission each lower the limit by one, and the next
    finish puts it back: no wait grows, so the limit is 6 after every finish."""
    slots = JobSlots()
    account = Account(slots, limit=6)
    account.run(30)
    start = account.posts
    account.noise = dict.fromkeys(range(start + 7, start + 1000, 7), "unknown")
    account.limits.clear()
    lessons, recoveries = slots.discoveries, slots.recoveries
    account.run(500)
    noise = sum(1 for n in account.noise if n <= account.posts)
    assert set(account.limits) == {6}
    assert slots.discoveries - lessons == noise
    assert slots.recoveries - recoveries == noise


def test_a_limit_learned_from_noise_at_the_start_climbs_to_the_account_limit() -> None:
    """An ambiguous 429 on the second submission teaches a limit of 1; with nothing known to
    work it climbs one step per turnover and reaches the account's 6 after 16 finishes."""
    slots = JobSlots()
    account = Account(slots, limit=6, noise={2: "unknown"})
    account.run(100)
    assert account.limits[0] == 1
    assert account.limits.index(6) + 1 == 16  # 2 + 2 + 3 + 4 + 5 finishes
    assert (slots.limit, slots.proven) == (6, 6)


def test_a_true_limit_is_found_again_after_each_refused_probe() -> None:
    """On a 6-job account a probe of 7 costs one 429 and the limit returns to 6; the first
    probe comes after 12 finishes, the next ones 24, 48, 96 more, then every 32 turnovers."""
    slots = JobSlots()
    account = Account(slots, limit=6)
    account.run(1000)
    probes = raises_after(account.limits, 6, 7)
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert probes[0] == 12
    assert gaps == [24, 48, 96, 192, 192, 192, 192]
    assert 6 << MAX_DOUBLINGS == 192
    assert account.limits[-1] == 6
    assert slots.probes == len(probes)
    assert slots.failed_probes == len(probes) + 1  # the first lesson refused a 7th too
    assert account.too_many == 1 + len(probes)  # the first lesson, then one per probe


def test_a_429_naming_the_job_limit_lowers_the_level_known_to_work() -> None:
    """When another program takes 3 of 6 jobs, this one settles at 3 with rare probes, and
    takes the room back once the other program stops."""
    slots = JobSlots()
    account = Account(slots, limit=6)
    account.run(30)
    account.others = 3
    account.run(200)
    assert (slots.limit, slots.proven) == (3, 3)
    refused_while_shared = account.too_many
    account.others = 0
    account.limits.clear()
    account.run(300)
    assert (slots.limit, slots.proven) == (6, 6)
    assert account.limits.index(6) < 6 << MAX_DOUBLINGS
    assert refused_while_shared < 12


def test_climbs_refused_at_once_back_off_and_then_the_level_is_forgotten() -> None:
    """Sharing one of 6 jobs with another program, on an account whose 429s name no limit:
    each climb back to 6 refused at once waits twice as long as the one before; after the
    sixth, 6 no longer counts as working and is only probed, as rarely as a level refused at
    every probe."""
    slots = JobSlots()
    account = Account(slots, limit=6, says="unknown")
    account.run(30)
    account.others = 1
    account.limits.clear()
    account.run(600)
    climbs = raises_after(account.limits, 5, 6)
    gaps = [b - a for a, b in itertools.pairwise(climbs)]
    assert gaps[:4] == [4, 8, 16, 32]  # the waits of climbs 3 to 6, in finishes
    assert gaps[4:]
    assert set(gaps[4:]) == {5 << MAX_DOUBLINGS}  # then probes, 160 finishes apart
    assert (slots.limit, slots.proven) == (5, 5)


def test_a_given_limit_never_changes_when_the_account_has_room() -> None:
    """With max_active_jobs 6 on a 10-job account, the limit stays 6 and nothing probes."""
    slots = JobSlots(limit=6)
    account = Account(slots, limit=10)
    account.run(500)
    assert set(account.limits) == {6}
    assert (account.too_many, slots.probes, account.peak) == (0, 0, 6)


def test_a_given_limit_is_a_ceiling_the_limit_climbs_back_to() -> None:
    """A 429 may lower a given limit while another program runs; it comes back to exactly
    the given limit, never above."""
    slots = JobSlots(limit=6)
    account = Account(slots, limit=6, others=2)
    account.run(100)
    assert slots.limit == 4
    account.others = 0
    account.run(400)
    assert slots.limit == 6
    assert max(limit or 0 for limit in account.limits) == 6
    assert account.peak == 6


def test_each_change_of_the_limit_is_logged_with_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The INFO lines say which 429 taught what, from how many jobs, and why a raise came."""
    slots = JobSlots()
    with caplog.at_level(logging.INFO, logger="legnext_async"):
        Account(slots, limit=6).run(20)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0].startswith(
        "active-job limit unknown -> 6: a 429 naming the active-job limit answered a"
        " submission while 6 jobs ran and 0 other submissions were in flight"
    )
    assert lines[1].startswith(
        "active-job limit 6 -> 7: 12 jobs finished with every slot in use and no 429"
        " since the limit last changed (probing: 7 at once is untested)"
    )
    assert lines[2].startswith("active-job limit 7 -> 6: a 429 naming the active-job limit")
    assert len(lines) == 3


# --- end to end ---------------------------------------------------------------------------


def created_prompts(emulator: Emulator) -> list[str]:
    """The prompts of the inpaints the emulator created, sorted."""
    return sorted(
        r.body["remixPrompt"]
        for r in emulator.requests
        if r.method == "POST" and r.status == 200 and isinstance(r.body, dict)
    )


async def inpaint_all(client: LegnextClient, parent: str, count: int) -> None:
    """Submit ``count`` inpaints at once and await them all."""

    async def one(n: int) -> None:
        await (await client.inpaint(parent, 0, mask=MASK, remix_prompt=f"p{n}"))

    await asyncio.gather(*(one(n) for n in range(count)))


async def test_rate_429s_on_submissions_teach_no_limit(emulator: Emulator) -> None:
    """Rate 429s answering submissions while jobs run leave the client unlimited; each
    refused submission is resent and every job is made exactly once."""
    body = json.dumps({"code": 429, "message": RATE_LIMIT_MESSAGE, "raw_message": ""})
    emulator.add_fault(Fault.http_status("POST /api/v1/inpaint", 429, body=body, after=2, times=3))
    parent = emulator.seed_job("diffusion")
    async with LegnextClient(
        api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=FAST_RETRY
    ) as client:
        await inpaint_all(client, parent, 5)
        slots = client._slots
        assert (slots.limit, slots.discoveries, slots.rate_limited) == (None, 0, 3)
    assert created_prompts(emulator) == [f"p{n}" for n in range(5)]


async def test_an_ambiguous_429_under_a_given_limit_is_recovered_from() -> None:
    """A 429 with no word of which limit lowers max_active_jobs=3 for a while; the batch
    ends back at 3, every job made once."""
    async with Emulator(
        api_key=API_KEY, time_scale=SCALE, seed=21, concurrency_limit=3, over_limit="reject"
    ) as emulator:
        emulator.add_fault(Fault.http_status("POST /api/v1/inpaint", 429, after=4))
        parent = emulator.seed_job("diffusion")
        async with LegnextClient(
            api_key=API_KEY,
            base_url=emulator.base_url,
            poll=fast_poll(),
            retry=FAST_RETRY,
            max_active_jobs=3,
        ) as client:
            await inpaint_all(client, parent, 12)
            slots = client._slots
            assert slots.discoveries == 1
            assert slots.recoveries >= 1
            assert (slots.limit, slots.probes) == (3, 0)
        assert created_prompts(emulator) == sorted(f"p{n}" for n in range(12))
        assert [r.status for r in emulator.requests if r.method == "POST"].count(429) == 1


async def test_time_in_line_for_a_slot_is_not_retry_time() -> None:
    """A submission that waited for a slot longer than the retry timeout is still retried
    after a 429 that teaches nothing, and lands."""
    async with Emulator(
        api_key=API_KEY, time_scale=SCALE, seed=3, concurrency_limit=1, over_limit="reject"
    ) as emulator:
        # POST 2 is refused for the account's limit and waits ~0.5 s for job 1 to end; POST 3
        # then meets a 429 that names no limit while nothing of ours runs: back off, resend.
        emulator.add_fault(Fault.http_status("POST /api/v1/inpaint", 429, after=2))
        parent = emulator.seed_job("diffusion")
        policy = RetryPolicy(attempts=5, timeout=0.2, initial_wait=0.01, max_wait=0.05)
        async with LegnextClient(
            api_key=API_KEY, base_url=emulator.base_url, poll=fast_poll(), retry=policy
        ) as client:
            await inpaint_all(client, parent, 2)
        statuses = [r.status for r in emulator.requests if r.method == "POST"]
        assert statuses == [200, 429, 429, 200]
        assert created_prompts(emulator) == ["p0", "p1"]


def test_each_level_keeps_its_own_refusals() -> None:
    """When the account drops from 6 jobs to 5 and back, the climb back to 6 is not held up
    by the many refusals of 7, and 7 is not probed again soon because 6 held."""
    slots = JobSlots()
    account = Account(slots, limit=6)
    account.run(1000)  # 7 refused at every probe: probes now 192 finishes apart
    assert slots._refusals == {7: MAX_DOUBLINGS}
    account.limit = 5
    account.run(60)
    assert slots.limit == 5
    account.limit = 6
    account.limits.clear()
    account.run(400)
    assert account.limits.index(6) < 6 << 2  # 6 comes back within a few turnovers
    (first_probe, *_) = raises_after(account.limits, 6, 7)
    assert first_probe >= 6 << MAX_DOUBLINGS  # 7 keeps its refusals
