"""Job slots, learning and callbacks shared by the clients of one account, in Redis.

Each client given ``coordinator=RedisCoordinator(url)`` is a *worker* of its account's
group, under an id of its own. What Redis holds, under ``{namespace}:{account}:`` (the
account is a digest of the API key, never the key):

``workers``
    a sorted set: each live worker and when its lease ends (ms). A worker renews it every
    third of the lease; one that stops (killed, its machine lost, cut off) is *reaped* by
    the next worker to look once its lease has passed, with everything it held.
``slot``
    a hash: every job slot in use and its state: ``g`` granted (not sent yet), ``s`` sent,
    ``r`` running. A submission's slot is ``t:{worker}:{n}`` until its job is made, then
    ``j:{job_id}``: one slot per job, however many workers watch it (``holders:j:{job_id}``,
    a set of workers). The slots in use are the hash's length.
``queue``, ``ord``, ``order``
    submissions waiting for a slot, by the order they reached Redis (first come, first
    served across workers), and a counter for it.
``held:{worker}``
    the slots a worker holds (what reaping frees); each answer to a worker lists those
    granted to it and not sent yet (a message on ``wake:{worker}`` tells it to look).
``lost``, ``adopted``
    workers reaped whose unfinished stored jobs no worker has taken over yet, and which
    worker took over each such job until it watches it.
``lessons``
    429s and quiet finishes not yet applied to the learning, in the order they came.
``learn``
    a hash: what 429s and quiet finishes taught of the account's limit (``state``, the JSON
    of :meth:`JobSlots.learning`), its ``limit`` (absent: none known), and a version ``v``
    for compare-and-set.
``pace``, ``durations``
    the poll pace after 429s on status reads (for a minute), and the learned run times.
``tok:{token}``
    which worker issued a callback token (for two days): a delivery that reaches another
    worker is published on ``cb:{worker}``.

Everything but the learning, the run times and the tokens belongs to live workers: reaped,
it is gone. A Redis that restarts without its data is noticed (a worker finds itself
missing) and each live worker writes back what it holds and what it learned.

While Redis cannot be reached, a worker keeps the slots it holds and its jobs are polled
as usual, but it grants no new slot: submissions wait, in order, until Redis answers (the
log says so, once, and again when Redis is back).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from legnext_async._budget import JobSlots, SlotTicket
from legnext_async._coordination import Coordinator, Member, Membership
from legnext_async._exceptions import LegnextError, ValidationError
from legnext_async._validation import check_min_int
from legnext_async.webhooks import task_of

from ._common import REFUSED, RETRYABLE, connect, shown_url

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Sequence

    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

    from legnext_async._exceptions import RateLimitKind

__all__ = ["RedisCoordinator"]

logger = logging.getLogger("legnext_async")

#: Seconds a worker's slots outlive its last renewal (it renews every third of it).
DEFAULT_LEASE: Final = 30.0
#: Seconds between safety-net looks for a free slot while submissions wait (wake messages
#: are the fast path).
PUMP_EVERY: Final = 1.0
#: Milliseconds a shared poll pace lasts after the 429 that set it.
PACE_TTL_MS: Final = 60_000
#: Seconds a callback token's owner is remembered.
TOKEN_TTL: Final = 2 * 24 * 3600
#: Submissions the whole group has granted and unanswered at once while the account's limit
#: is unknown: few, so that finding it costs the 429s of those few, not one per submission.
GROUP_IN_FLIGHT: Final = 4
#: Seconds the worker's tasks may take to stop when its client closes.
STOP_TIMEOUT: Final = 5.0
#: Tries of a compare-and-set of the learning before giving up (and logging it).
LEARN_TRIES: Final = 20

# --- the scripts ----------------------------------------------------------------------------
# Every script takes ARGV[1] = the key prefix, ARGV[2] = now (ms), ARGV[3] = the worker.
# A worker that is not (any more) registered gets {'gone'} and nothing is done: it then
# registers again with all it holds (see Worker.register), and the script is run again.

_PRELUDE = f"""
local GROUP_IN_FLIGHT = {GROUP_IN_FLIGHT}
local P = ARGV[1]
local now = tonumber(ARGV[2])
local me = ARGV[3]
local W = P .. ':workers'
local SLOT = P .. ':slot'
local function owner(rid) return string.match(rid, '^t:([^:]+):') end
local function purge(w)
  redis.call('ZREM', W, w)
  for _, rid in ipairs(redis.call('SMEMBERS', P .. ':held:' .. w)) do
    if owner(rid) then
      redis.call('HDEL', SLOT, rid)
      redis.call('HDEL', P .. ':ord', rid)
    else
      local hk = P .. ':holders:' .. rid
      redis.call('SREM', hk, w)
      if redis.call('SCARD', hk) == 0 then redis.call('HDEL', SLOT, rid) end
    end
  end
  redis.call('DEL', P .. ':held:' .. w)
  redis.call('SADD', P .. ':lost', w)
  for _, rid in ipairs(redis.call('ZRANGE', P .. ':queue', 0, -1)) do
    if owner(rid) == w then
      redis.call('ZREM', P .. ':queue', rid)
      redis.call('HDEL', P .. ':ord', rid)
    end
  end
end
local function reap()
  local dead = redis.call('ZRANGEBYSCORE', W, '-inf', '(' .. now)
  for _, w in ipairs(dead) do purge(w) end
  return dead
end
local function unanswered()
  local n = 0
  for _, state in ipairs(redis.call('HVALS', SLOT)) do
    if state ~= 'r' then n = n + 1 end
  end
  return n
end
local function pump()
  local limit = tonumber(redis.call('HGET', P .. ':learn', 'limit') or '')
  local woken = {{}}
  while true do
    if limit == nil then
      if unanswered() >= GROUP_IN_FLIGHT then break end
    elseif redis.call('HLEN', SLOT) >= limit then
      break
    end
    local head = redis.call('ZRANGE', P .. ':queue', 0, 0)[1]
    if not head then break end
    local w = owner(head)
    redis.call('ZREM', P .. ':queue', head)
    redis.call('HSET', SLOT, head, 'g')
    redis.call('SADD', P .. ':held:' .. w, head)
    if w ~= me then woken[w] = true end
  end
  for w in pairs(woken) do redis.call('PUBLISH', P .. ':wake:' .. w, '1') end
end
-- Every slot granted to this worker and not sent yet: answered each time, never cleared,
-- so a grant whose answer was lost is seen with the next one.
local function granted()
  local got = {{}}
  for _, rid in ipairs(redis.call('SMEMBERS', P .. ':held:' .. me)) do
    if owner(rid) and redis.call('HGET', SLOT, rid) == 'g' then table.insert(got, rid) end
  end
  return got
end
-- The answer of a script that may grant: 'ok', the grants, the reaped, the queue, extra.
local function reply(dead, extra)
  return {{'ok', granted(), dead, redis.call('ZCARD', P .. ':queue'), extra or 0}}
end
local function enqueue(rid)
  if redis.call('ZSCORE', P .. ':queue', rid) or redis.call('HEXISTS', SLOT, rid) == 1 then
    return
  end
  local n = redis.call('INCR', P .. ':order')
  redis.call('ZADD', P .. ':queue', n, rid)
  redis.call('HSET', P .. ':ord', rid, n)
end
-- The group starts to wait (the queue was empty, ``was``, and is not): every other worker
-- is told now, not at its next beat, so that its jobs holding slots are watched and free them.
local function tell_if_waiting(was)
  if was == 0 and redis.call('ZCARD', P .. ':queue') > 0 then
    for _, w in ipairs(redis.call('ZRANGE', W, 0, -1)) do
      if w ~= me then redis.call('PUBLISH', P .. ':wake:' .. w, '1') end
    end
  end
end
local function hold(jid)
  redis.call('HSET', SLOT, jid, 'r')
  redis.call('SADD', P .. ':holders:' .. jid, me)
  redis.call('SADD', P .. ':held:' .. me, jid)
end
"""

_ALIVE = """
if not redis.call('ZSCORE', W, me) then return {'gone'} end
"""

#: ARGV[4] = lease end (ms), ARGV[5] = JSON {tickets: [[rid, state]], jobs, queue, learn,
#: limit, ceiling}.
_REGISTER = (
    _PRELUDE
    + """
local held = cjson.decode(ARGV[5])
redis.call('ZADD', W, tonumber(ARGV[4]), me)
for _, pair in ipairs(held.tickets) do
  redis.call('HSET', SLOT, pair[1], pair[2])
  redis.call('SADD', P .. ':held:' .. me, pair[1])
end
for _, jid in ipairs(held.jobs) do hold(jid) end
for _, rid in ipairs(held.queue) do enqueue(rid) end
local L = P .. ':learn'
if held.learn ~= cjson.null and redis.call('EXISTS', L) == 0 then
  redis.call('HSET', L, 'v', 1, 'state', held.learn)
  if held.limit ~= cjson.null then redis.call('HSET', L, 'limit', held.limit) end
end
-- A limit this worker was given is a ceiling for the whole group, whatever was stored.
if held.ceiling ~= cjson.null then
  local ceiling = tonumber(redis.call('HGET', L, 'ceiling') or '')
  if ceiling == nil or ceiling > held.ceiling then
    redis.call('HSET', L, 'ceiling', held.ceiling)
  end
  local stored = tonumber(redis.call('HGET', L, 'limit') or '')
  if stored == nil or stored > held.ceiling then
    redis.call('HSET', L, 'limit', held.ceiling)
    local state = redis.call('HGET', L, 'state')
    if state then
      local learned = cjson.decode(state)
      learned.limit = held.ceiling
      redis.call('HSET', L, 'state', cjson.encode(learned))
    end
    redis.call('HINCRBY', L, 'v', 1)
  end
end
local dead = reap()
pump()
return reply(dead)
"""
)

#: ARGV[4] = lease end (ms). Renews the lease; answers also the learning, the shared pace
#: and the workers lost whose jobs nobody took over yet.
_BEAT = (
    _PRELUDE
    + _ALIVE
    + """
redis.call('ZADD', W, tonumber(ARGV[4]), me)
local dead = reap()
pump()
local L = P .. ':learn'
local answer = reply(dead)
table.insert(answer, redis.call('HGET', L, 'state') or '')
table.insert(answer, redis.call('GET', P .. ':pace') or '')
table.insert(answer, redis.call('SMEMBERS', P .. ':lost'))
return answer
"""
)

_PUMP = (
    _PRELUDE
    + _ALIVE
    + """
local dead = reap()
pump()
return reply(dead)
"""
)

#: ARGV[4..] = the new submissions' slot ids, in order.
_ENQUEUE = (
    _PRELUDE
    + _ALIVE
    + """
local was = redis.call('ZCARD', P .. ':queue')
for i = 4, #ARGV do enqueue(ARGV[i]) end
local dead = reap()
pump()
tell_if_waiting(was)
return reply(dead)
"""
)

#: ARGV[4] = slot id. 1: the slot is still granted, now sent; 0: it was taken back (and
#: waits in line).
_SEND = (
    _PRELUDE
    + _ALIVE
    + """
local state = redis.call('HGET', SLOT, ARGV[4])
if state == 'g' then redis.call('HSET', SLOT, ARGV[4], 's') return {'ok', 1} end
if state == 's' then return {'ok', 1} end
local was = redis.call('ZCARD', P .. ':queue')
enqueue(ARGV[4])  -- taken back (it is in line already), or lost: in line again
tell_if_waiting(was)
return {'ok', 0}
"""
)

_UNSEND = (
    _PRELUDE
    + _ALIVE
    + """
if redis.call('HGET', SLOT, ARGV[4]) == 's' then redis.call('HSET', SLOT, ARGV[4], 'g') end
return {'ok'}
"""
)

#: ARGV[4] = the submission's slot id, ARGV[5] = the job's slot id.
_RUNNING = (
    _PRELUDE
    + _ALIVE
    + """
redis.call('HDEL', SLOT, ARGV[4])
redis.call('HDEL', P .. ':ord', ARGV[4])
redis.call('SREM', P .. ':held:' .. me, ARGV[4])
hold(ARGV[5])
redis.call('HDEL', P .. ':adopted', ARGV[5])
pump()
return reply({})
"""
)

#: ARGV[4] = the job's slot id.
_OCCUPY = (
    _PRELUDE
    + _ALIVE
    + """
hold(ARGV[4])
redis.call('HDEL', P .. ':adopted', ARGV[4])
return {'ok'}
"""
)

#: ARGV[4..] = jobs' slot ids: those no live worker watches or adopted become this
#: worker's (``adopted``: the job's owner until it is watched). Run again (an answer lost),
#: it answers the same. No slot is taken: watching the job takes it.
_ADOPT = (
    _PRELUDE
    + _ALIVE
    + """
reap()
local A = P .. ':adopted'
local adopted = {}
for i = 4, #ARGV do
  local jid = ARGV[i]
  local hk = P .. ':holders:' .. jid
  local holders = redis.call('SCARD', hk)
  local watched_by_me = holders == 1 and redis.call('SISMEMBER', hk, me) == 1
  local owner_ = redis.call('HGET', A, jid)
  local owned = owner_ and owner_ ~= me and redis.call('ZSCORE', W, owner_)
  if watched_by_me then
    table.insert(adopted, jid)  -- watched already: nothing to note
  elseif holders == 0 and not owned then
    redis.call('HSET', A, jid, me)
    table.insert(adopted, jid)
  end
end
return {'ok', adopted}
"""
)

#: ARGV[4] = slot id. Answers whether a running job's end was a *quiet finish* (every slot
#: in use and submissions waiting), which the learning counts.
_RELEASE = (
    _PRELUDE
    + _ALIVE
    + """
local rid = ARGV[4]
local limit = tonumber(redis.call('HGET', P .. ':learn', 'limit') or '')
local full = limit ~= nil and redis.call('HLEN', SLOT) >= limit
  and redis.call('ZCARD', P .. ':queue') > 0
local quiet = 0
redis.call('SREM', P .. ':held:' .. me, rid)
if owner(rid) then
  redis.call('HDEL', SLOT, rid)
  redis.call('HDEL', P .. ':ord', rid)
  redis.call('ZREM', P .. ':queue', rid)
else
  local hk = P .. ':holders:' .. rid
  redis.call('SREM', hk, me)
  redis.call('HDEL', P .. ':adopted', rid)  -- watched, so taken over no longer
  if redis.call('SCARD', hk) == 0 and redis.call('HDEL', SLOT, rid) == 1 and full then
    quiet = 1
    redis.call('RPUSH', P .. ':lessons', 'q')
  end
end
local dead = reap()
pump()
return reply(dead, quiet)
"""
)

#: ARGV[4] = the refused submission's slot id, ARGV[5] = what the 429 said it limits,
#: ARGV[6] = an id of this refusal (a run again answers as the first run did). The
#: service was full: its limit is at most
#: the jobs running plus the other submissions in flight (``bound``). Every granted slot not
#: sent yet (any worker's) is taken back into the queue at its place, so a burst costs one
#: 429, and the limit is lowered to ``bound`` at once; the lesson is queued in ``lessons``
#: for the learning (in Python, compare-and-set).
_REFUSE = (
    _PRELUDE
    + _ALIVE
    + """
local rid = ARGV[4]
-- Run again (its answer was lost): the same answer, and nothing taught twice.
local once = P .. ':refused:' .. ARGV[6]
local before = redis.call('GET', once)
if before then return cjson.decode(before) end
local mine = redis.call('HGET', SLOT, rid)
local running, sent = 0, 0
local slots = redis.call('HGETALL', SLOT)
for i = 1, #slots, 2 do
  if slots[i + 1] == 'r' then running = running + 1
  elseif slots[i + 1] == 's' then sent = sent + 1 end
end
local others = sent - ((mine == 's') and 1 or 0)
local bound = running + others
if bound == 0 then return {'ok', 0, 0, 0, {}} end
local was = redis.call('ZCARD', P .. ':queue')
local L = P .. ':learn'
local limit = tonumber(redis.call('HGET', L, 'limit') or '')
if limit == nil or bound < limit then redis.call('HSET', L, 'limit', bound) end
-- What it teaches is applied in order with the others by the next relearn (any worker's).
local lesson = table.concat({'r', bound, running, others, ARGV[5]}, ' ')
redis.call('RPUSH', P .. ':lessons', lesson)
local taken = {}
for i = 1, #slots, 2 do
  local other = slots[i]
  if (slots[i + 1] == 'g' or other == rid) and owner(other) then
    local w = owner(other)
    redis.call('HDEL', SLOT, other)
    redis.call('SREM', P .. ':held:' .. w, other)
    local n = redis.call('HGET', P .. ':ord', other) or redis.call('INCR', P .. ':order')
    redis.call('ZADD', P .. ':queue', n, other)
    if w == me then table.insert(taken, other) end
  end
end
pump()
tell_if_waiting(was)
local answer = {'ok', bound, running, others, taken}
redis.call('SET', once, cjson.encode(answer), 'PX', 600000)
return answer
"""
)

#: ARGV[4..] = lost workers whose jobs this worker took over.
_ADOPTED = (
    _PRELUDE
    + """
for i = 4, #ARGV do redis.call('SREM', P .. ':lost', ARGV[i]) end
return {'ok'}
"""
)

#: A worker leaves the group with nothing that may run: everything it held is let go.
_LEAVE = (
    _PRELUDE
    + """
purge(me)
redis.call('SREM', P .. ':lost', me)  -- it left: nothing of it to take over
pump()
return {'ok'}
"""
)

#: ARGV[4] = the version read, ARGV[5] = the new state, ARGV[6] = the new limit ('' none:
#: a limit once known is never dropped), ARGV[7] = how many lessons it applied.
_LEARN = (
    _PRELUDE
    + """
local L = P .. ':learn'
local LESSONS = P .. ':lessons'
if (redis.call('HGET', L, 'v') or '0') ~= ARGV[4] then return {'ok', 0} end
local applied = tonumber(ARGV[7])
redis.call('HSET', L, 'v', tonumber(ARGV[4]) + 1, 'state', ARGV[5])
if applied > 0 then redis.call('LTRIM', LESSONS, applied, -1) end
if ARGV[6] ~= '' then
  local new = tonumber(ARGV[6])
  local ceiling = tonumber(redis.call('HGET', L, 'ceiling') or '')
  if ceiling ~= nil and new > ceiling then new = ceiling end
  local stored = tonumber(redis.call('HGET', L, 'limit') or '')
  -- A 429 whose lesson came after the ones applied lowered the limit already: keep it.
  if redis.call('LLEN', LESSONS) > 0 and stored ~= nil and stored < new then new = stored end
  redis.call('HSET', L, 'limit', new)
end
pump()
return {'ok', 1}
"""
)

#: ARGV[4] = the factor: kept if it is the highest of the last minute.
_PACE = (
    _PRELUDE
    + """
local k = P .. ':pace'
if tonumber(ARGV[4]) > tonumber(redis.call('GET', k) or '0') then
  redis.call('SET', k, ARGV[4], 'PX', tonumber(ARGV[5]))
end
return {'ok'}
"""
)

#: ARGV[4] = token, ARGV[5] = the delivery. Published to the token's worker if it lives.
_ROUTE = (
    _PRELUDE
    + """
local w = redis.call('GET', P .. ':tok:' .. ARGV[4])
if not w or w == me then return {'ok', 0} end
local until_ = tonumber(redis.call('ZSCORE', W, w) or '')
if until_ == nil or until_ < now then return {'ok', 0} end
return {'ok', redis.call('PUBLISH', P .. ':cb:' .. w, ARGV[5])}
"""
)


class _Ticket(SlotTicket):
    """A slot ticket with the id of its slot in Redis."""

    __slots__ = ("rid",)

    def __init__(self, order: int, rid: str) -> None:
        super().__init__(order)
        self.rid = rid


class _Op:
    """One script call of the worker's queue, and what to do with its answer."""

    __slots__ = ("args", "done", "fail", "script")

    def __init__(
        self,
        script: str,
        args: Sequence[str | int],
        done: Callable[[list[Any]], None] | None = None,
        fail: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.script = script
        self.args = args
        self.done = done
        #: Told why the call failed for good (Redis answered an error): its caller waits.
        self.fail = fail


class SharedSlots(JobSlots):
    """Job slots granted from the account-wide pool in Redis (see the module docstring).

    Same interface as :class:`JobSlots`; the local counts are this worker's, and
    :attr:`limit` and the learning counters are the group's, as last seen.
    """

    def __init__(self, worker: _Worker, ceiling: int | None) -> None:
        super().__init__(ceiling)
        self._worker = worker
        self._tickets: dict[str, _Ticket] = {}
        #: Local watchers of each job's slot (one slot per job in Redis).
        self._jobs: dict[str, int] = {}
        self._numbers = itertools.count()
        #: Submissions of the whole group waiting for a slot, as Redis last said.
        self.group_waiting = 0

    @property
    def held(self) -> int:
        """Slots this worker holds: granted, sent, or of a job it watches."""
        return self._held

    @property
    def waiting(self) -> int:
        """Submissions waiting for a slot: this worker's, or else the group's as last seen
        (the engine keeps the jobs holding slots watched while anyone waits)."""
        return self._waiting or self.group_waiting

    @property
    def local_waiting(self) -> int:
        """This worker's submissions waiting for a slot."""
        return self._waiting

    # --- what the client and the engine call ---------------------------------------------

    def enqueue(self) -> SlotTicket:
        ticket = _Ticket(next(self._orders), f"t:{self._worker.id}:{next(self._numbers)}")
        self._tickets[ticket.rid] = ticket
        self._waiting += 1
        self._worker.enqueue(ticket.rid)
        return ticket

    async def wait_granted(self, ticket: SlotTicket) -> None:
        while ticket.state == "waiting":
            if self.on_wait is not None:
                self.on_wait()
            ticket.future = future = asyncio.get_running_loop().create_future()
            try:
                await future
            except asyncio.CancelledError:
                self.release(ticket)
                raise

    def mark_sent(self, ticket: SlotTicket) -> bool:
        raise NotImplementedError("shared slots are sent with send_turn()")  # pragma: no cover

    async def send_turn(self, ticket: SlotTicket) -> bool:
        if ticket.state != "granted":
            return False
        assert isinstance(ticket, _Ticket)
        return bool(
            await self._worker.call(_SEND, [ticket.rid], lambda r: self._sent_answer(ticket, r))
        )

    def _sent_answer(self, ticket: _Ticket, answer: list[Any]) -> bool:
        # Run in the worker's order of answers, so a grant that follows is seen after this.
        if ticket.state != "granted":
            return False
        if answer[1]:
            ticket.state = "sent"
            self._sent += 1
            return True
        self._taken_back(ticket)
        return False

    def unsend(self, ticket: SlotTicket) -> None:
        if ticket.state == "sent":
            assert isinstance(ticket, _Ticket)
            ticket.state = "granted"
            self._sent -= 1
            self._worker.queue(_Op(_UNSEND, [ticket.rid]))

    def mark_running(self, ticket: SlotTicket, job_id: str = "") -> None:
        if ticket.state != "sent":
            return
        assert isinstance(ticket, _Ticket)
        ticket.state = "running"
        self._sent -= 1
        self._running += 1
        del self._tickets[ticket.rid]
        submission, ticket.rid = ticket.rid, f"j:{job_id}"
        if self._watch(ticket.rid):
            self._worker.queue(_Op(_RUNNING, [submission, ticket.rid], self._worker.pumped))
        else:
            self._worker.queue(_Op(_RELEASE, [submission], self._worker.released))

    def occupy(self, job_id: str = "") -> SlotTicket:
        ticket = _Ticket(next(self._orders), f"j:{job_id}")
        ticket.state = "running"
        self._held += 1
        self._running += 1
        if self._watch(ticket.rid):
            self._worker.queue(_Op(_OCCUPY, [ticket.rid]))
        return ticket

    def _watch(self, rid: str) -> bool:
        """Count one more local watcher of a job's slot; whether it is the first."""
        n = self._jobs.get(rid, 0)
        self._jobs[rid] = n + 1
        return n == 0

    def release(self, ticket: SlotTicket) -> None:
        state = ticket.state
        if state == "done":
            return
        assert isinstance(ticket, _Ticket)
        ticket.state = "done"
        if state == "waiting":
            self._waiting -= 1
        else:
            self._held -= 1
            if state == "sent":
                self._sent -= 1
            elif state == "running":
                self._running -= 1
        rid = ticket.rid
        if state == "running":
            n = self._jobs.pop(rid, 1) - 1
            if n:
                self._jobs[rid] = n
                return
        else:
            self._tickets.pop(rid, None)
        self._worker.queue(_Op(_RELEASE, [rid], self._worker.released))

    async def refuse(self, ticket: SlotTicket, kind: RateLimitKind = "unknown") -> bool:
        if kind == "rate":
            self.rate_limited += 1
            return False
        assert isinstance(ticket, _Ticket)
        refusal = uuid.uuid4().hex
        answer = await self._worker.call(_REFUSE, [ticket.rid, kind, refusal], self._refused_answer)
        if int(answer[1]) == 0:
            return False
        # The lesson waits in Redis until some worker applies it; this one does it now.
        await asyncio.shield(self._worker.relearn())
        return True

    def refused(self, ticket: SlotTicket, kind: RateLimitKind = "unknown") -> bool:
        raise NotImplementedError("shared slots learn with refuse()")  # pragma: no cover

    def _refused_answer(self, answer: list[Any]) -> list[Any]:
        for rid in answer[4]:
            ticket = self._tickets.get(rid)
            if ticket is not None and ticket.state in ("granted", "sent"):
                if ticket.state == "sent":
                    self._sent -= 1
                    ticket.state = "granted"
                self._taken_back(ticket)
        return answer

    # --- what the worker calls --------------------------------------------------------------

    def _taken_back(self, ticket: _Ticket) -> None:
        """A granted ticket went back into the queue (in Redis already)."""
        ticket.state = "waiting"
        ticket.future = None
        self._held -= 1
        self._waiting += 1

    def granted(self, rids: Sequence[str]) -> None:
        """Redis granted these slots to this worker."""
        for rid in rids:
            ticket = self._tickets.get(rid)
            if ticket is None:
                # Given up while its grant was on its way: give the slot back.
                self._worker.queue(_Op(_RELEASE, [rid], self._worker.released))
                continue
            if ticket.state != "waiting":
                continue
            ticket.state = "granted"
            self._waiting -= 1
            self._held += 1
            future = ticket.future
            if future is not None and not future.done():
                future.set_result(None)

    def holdings(self) -> dict[str, Any]:
        """All this worker holds and waits for, to register again (see ``_REGISTER``)."""
        tickets = [
            [rid, "g" if t.state == "granted" else "s"]
            for rid, t in self._tickets.items()
            if t.state in ("granted", "sent")
        ]
        waiting = sorted(
            (t for t in self._tickets.values() if t.state == "waiting"), key=lambda t: t.order
        )
        return {"tickets": tickets, "jobs": list(self._jobs), "queue": [t.rid for t in waiting]}


class _Worker(Membership):
    """One client's membership of its account's group: the queue of script calls sent to
    Redis in order (one pipeline per turn), the lease renewals, and the subscriptions."""

    def __init__(self, coordinator: RedisCoordinator, member: Member) -> None:
        self.coordinator = coordinator
        self.member = member
        self.id = uuid.uuid4().hex[:16]
        self.prefix = f"{coordinator.namespace}:{member.account}"
        #: The account's limit, if known: the coordinator's, else the client's.
        self.ceiling = coordinator.max_active_jobs or member.max_active_jobs
        self.slots: SharedSlots = SharedSlots(self, self.ceiling)
        member.pace.on_throttle = self._throttled
        self._ops: list[_Op] = []
        self._kick: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._registered = False
        self._next_beat = 0.0
        self._next_pump = 0.0
        self._unreachable_since: float | None = None
        self._refused_said = False
        self._learning = asyncio.Lock()
        self._saved_durations = ""
        self._adopting: asyncio.Task[None] | None = None
        self._adopt_again = False
        self._lost: set[str] = set()
        self._background: set[asyncio.Task[object]] = set()
        self._stopping = False
        #: The loop in which the client left the group (nothing is sent there any more).
        self._left: asyncio.AbstractEventLoop | None = None

    # --- the queue of calls ----------------------------------------------------------------

    def queue(self, op: _Op) -> None:
        """Send ``op`` with the next turn, after every op queued before it."""
        if self._left is asyncio.get_running_loop():
            # The client left this loop's group: nothing is sent any more.
            if op.fail is not None:
                op.fail(LegnextError("the client closed"))
            return
        self._start()
        self._ops.append(op)
        assert self._kick is not None
        self._kick.set()

    async def call(
        self, script: str, args: Sequence[str | int], done: Callable[[list[Any]], Any]
    ) -> Any:
        """Queue a call and wait for ``done(answer)``, run in the order of answers."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def settle(answer: list[Any]) -> None:
            if not future.done():
                future.set_result(done(answer))

        def fail(error: BaseException) -> None:
            if not future.done():
                future.set_exception(
                    LegnextError(f"redis coordinator: Redis refused a call: {error}")
                )

        self.queue(_Op(script, args, settle, fail))
        return await future

    def enqueue(self, rid: str) -> None:
        ops = self._ops
        if ops and ops[-1].script is _ENQUEUE and len(ops[-1].args) < 500:
            assert isinstance(ops[-1].args, list)
            ops[-1].args.append(rid)
            return
        self.queue(_Op(_ENQUEUE, [rid], self.pumped))

    def enter(self) -> None:
        self._left = None
        self._start()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop or self._left is loop:
            return
        self._loop = loop
        self._stopping = False
        self._kick = asyncio.Event()
        self._redis = connect(self.coordinator.url, self.coordinator.socket_timeout)
        self._scripts = {}
        self._registered = False
        self._tasks = [
            loop.create_task(self._run(), name="legnext-redis-worker"),
            loop.create_task(self._listen(), name="legnext-redis-listener"),
        ]

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` in a task the worker keeps (the loop holds tasks only weakly);
        dropped once the client has left."""
        if self._loop is None:
            work.close()
            return
        task = self._loop.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _now_ms(self) -> int:
        return int(self.coordinator.clock() * 1000)

    def _lease_end(self) -> int:
        return self._now_ms() + int(self.coordinator.lease * 1000)

    # --- the turns ---------------------------------------------------------------------------

    async def _run(self) -> None:
        kick = self._kick
        assert kick is not None
        backoff = errors_backoff = 0.05
        while not self._stopping:
            now = time.monotonic()
            beat = not self._registered or now >= self._next_beat
            pump = self.slots.local_waiting > 0 and now >= self._next_pump
            if not self._ops and not beat and not pump:
                due = self._next_beat
                if self.slots.local_waiting:
                    due = min(due, self._next_pump)
                # (Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that
                # comes as the event is set, and the worker would never stop.)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, due - now)):
                        await kick.wait()
                kick.clear()
                continue
            kick.clear()
            batch, self._ops = self._ops, []
            if not self._registered:
                batch.insert(0, self._register_op())
            elif beat:
                batch.insert(0, _Op(_BEAT, [self._lease_end()], self._beaten))
            elif pump and not any(op.script in (_PUMP, _ENQUEUE) for op in batch):
                batch.append(_Op(_PUMP, [], self.pumped))
            try:
                answers = await self._execute(batch)
            except REFUSED as exc:
                # Wrong credentials or rights: waiting will not help. Calls awaited fail
                # (a submission then raises, unsent); the rest is tried again slowly, in
                # case the server's users are fixed.
                self._refused(exc, batch)
                await asyncio.sleep(2.0)
                continue
            except RETRYABLE as exc:
                # Retried in order once Redis answers (a BEAT or REGISTER is made afresh
                # then); whether Redis lost this worker meanwhile, its answers will say.
                self._ops[:0] = [op for op in batch if op.script not in (_BEAT, _REGISTER)]
                self._unreachable(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self._reachable()
            if beat or not self._registered:
                self._next_beat = now + self.coordinator.lease / 3
            if pump or any(op.script in (_PUMP, _ENQUEUE) for op in batch):
                self._next_pump = now + PUMP_EVERY
            gone: list[_Op] = []
            retry: list[_Op] = []
            failed = False
            for op, answer in zip(batch, answers, strict=True):
                if isinstance(answer, BaseException):
                    # Redis ran the call and answered an error (out of memory, a script
                    # killed): its caller hears of it; a registration is tried again later.
                    logger.error("redis coordinator: a call failed: %s", answer)
                    failed = True
                    if op.fail is not None:
                        op.fail(answer)
                    elif op.script not in (_BEAT, _REGISTER):
                        retry.append(op)  # nobody waits on it, but what it does is needed
                    continue
                if answer[0] == "gone":
                    gone.append(op)
                    continue
                if op.done is not None:
                    try:
                        op.done(answer)
                    except Exception:
                        logger.exception("redis coordinator: an answer could not be taken")
            if gone:
                if self._registered:
                    logger.warning(
                        "redis coordinator: this worker was missing from Redis (restarted, or"
                        " cut off longer than the lease): registering again what it holds"
                    )
                self._registered = False
                self._ops[:0] = [op for op in gone if op.script not in (_BEAT, _REGISTER)]
            if failed:
                self._ops[:0] = retry
                await asyncio.sleep(errors_backoff)
                errors_backoff = min(errors_backoff * 2, 2.0)
            else:
                errors_backoff = 0.05

    async def _execute(self, batch: list[_Op]) -> list[Any]:
        redis_ = self._redis
        assert redis_ is not None
        async with redis_.pipeline(transaction=False) as pipe:
            for op in batch:
                script = self._scripts.get(op.script)
                if script is None:
                    script = self._scripts[op.script] = redis_.register_script(op.script)
                await script(args=[self.prefix, self._now_ms(), self.id, *op.args], client=pipe)
            answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers

    def _register_op(self) -> _Op:
        held = self.slots.holdings()
        learned = self.slots.learning()
        held["learn"] = json.dumps(learned)
        held["limit"] = learned["limit"]
        held["ceiling"] = self.ceiling
        return _Op(_REGISTER, [self._lease_end(), json.dumps(held)], self._registered_answer)

    def _registered_answer(self, answer: list[Any]) -> None:
        first = self._saved_durations == ""
        self._registered = True
        self.pumped(answer)
        if first:
            self._saved_durations = "-"
            self.queue(_Op(_PUMP, [], self.pumped))
            self._spawn(self._load_durations())
            self._adopt_orphans([])

    def _beaten(self, answer: list[Any]) -> None:
        self.pumped(answer)
        state, pace, lost = answer[5], answer[6], answer[7]
        if lost:
            self._adopt_orphans(list(lost))
        if state:
            with contextlib.suppress(ValueError):
                self.slots.adopt_learning(json.loads(state))
        if pace:
            with contextlib.suppress(ValueError):
                self.member.pace.share(float(pace))
        self._spawn(self._save_durations())

    def pumped(self, answer: list[Any]) -> None:
        """An answer with this worker's grants, the workers reaped meanwhile and the
        group's queue."""
        slots = self.slots
        slots.granted(answer[1])
        was, slots.group_waiting = slots.group_waiting, int(answer[3])
        if slots.group_waiting and not was and slots.on_wait is not None:
            # Others began to wait: keep the jobs holding slots here watched (jobs made
            # while they wait see ``waiting`` and are watched from the start).
            slots.on_wait()
        if answer[2]:
            logger.warning(
                "redis coordinator: reaped %d worker(s) whose lease ran out; their slots are free",
                len(answer[2]),
            )
            self._adopt_orphans(list(answer[2]))

    def released(self, answer: list[Any]) -> None:
        self.pumped(answer)
        if answer[4]:
            self._spawn(self.relearn())

    # --- learning ------------------------------------------------------------------------------

    async def relearn(self) -> None:
        """Apply the lessons waiting in Redis (429s and quiet finishes of every worker, in
        the order they came) to the group's learning, compare-and-set."""
        redis_ = self._redis
        if redis_ is None:
            return  # the client left meanwhile
        async with self._learning:
            for _ in range(LEARN_TRIES):
                try:
                    async with redis_.pipeline(transaction=True) as pipe:
                        pipe.hmget(f"{self.prefix}:learn", ["v", "state", "ceiling"])
                        pipe.lrange(f"{self.prefix}:lessons", 0, -1)
                        (version, state, group_ceiling), lessons = await pipe.execute()
                    if not lessons:
                        return
                    # The lowest limit any worker was given holds for the whole group.
                    ceilings = [c for c in (self.ceiling, group_ceiling) if c]
                    ceiling = min(int(c) for c in ceilings) if ceilings else None
                    learner = JobSlots(ceiling)
                    learner.adopt_learning(json.loads(state) if state else self.slots.learning())
                    for lesson in lessons:
                        _apply(learner, lesson)
                    if ceiling is not None and (learner.limit is None or learner.limit > ceiling):
                        learner.limit = ceiling
                    learned = learner.learning()
                    limit = "" if learner.limit is None else str(learner.limit)
                    done = await self.call(
                        _LEARN,
                        [str(version or "0"), json.dumps(learned), limit, len(lessons)],
                        lambda answer: answer[1],
                    )
                except (*RETRYABLE, LegnextError) as exc:
                    if not self._stopping:
                        logger.warning(
                            "redis coordinator: could not share what was learned: %s", exc
                        )
                    return
                if done:
                    self.slots.adopt_learning(learned)
                    return
            logger.warning("redis coordinator: the learning changed too often to update")

    def _throttled(self, factor: float) -> None:
        self.queue(_Op(_PACE, [repr(factor), PACE_TTL_MS]))

    async def _load_durations(self) -> None:
        redis_ = self._redis
        if redis_ is None:
            return
        with contextlib.suppress(*RETRYABLE, ValueError):
            saved = await redis_.get(f"{self.prefix}:durations")
            if saved:
                data = json.loads(saved)
                if isinstance(data, dict):
                    self.member.durations.restore(data)

    async def _save_durations(self) -> None:
        text = json.dumps(self.member.durations.to_json())
        if text in (self._saved_durations, "{}"):
            return
        redis_ = self._redis
        if redis_ is None:
            return
        with contextlib.suppress(*RETRYABLE):
            await redis_.set(f"{self.prefix}:durations", text)
            self._saved_durations = text

    def _adopt_orphans(self, lost: list[str]) -> None:
        """Take over the unfinished stored jobs nobody watches (the client's store says
        which), then tell Redis that ``lost`` workers' jobs were taken over. A call while
        one runs makes it run once more after."""
        adopt = self.member.adopt_orphans
        if adopt is None:
            return
        self._lost.update(lost)
        if self._adopting is not None and not self._adopting.done():
            self._adopt_again = True
            return
        if self._loop is None:
            return
        self._adopting = self._loop.create_task(self._adopt_round(adopt))

    async def _adopt_round(self, adopt: Callable[[], Awaitable[object]]) -> None:
        while True:
            self._adopt_again = False
            lost, self._lost = sorted(self._lost), set()
            try:
                await adopt()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("redis coordinator: taking over the jobs of a lost worker failed")
                self._lost.update(lost)  # tried again with the next beat that lists them
                return
            if lost:
                self.queue(_Op(_ADOPTED, lost))
            if not self._adopt_again:
                return

    # --- reachability --------------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            logger.warning(
                "redis coordinator: %s cannot be reached (%s): keeping the %d job slot(s) held"
                " here and polling their jobs; %d submission(s) wait until Redis answers",
                self.coordinator.shown_url,
                type(exc).__name__,
                self.slots.held,
                self.slots.local_waiting,
            )

    def _refused(self, exc: BaseException, batch: list[_Op]) -> None:
        if not self._refused_said:
            self._refused_said = True
            logger.error(
                "redis coordinator: %s refused this worker (%s): check the URL's user and"
                " password; submissions fail until it accepts them",
                self.coordinator.shown_url,
                type(exc).__name__,
            )
        kept = []
        for op in batch:
            if op.fail is not None:
                op.fail(exc)
            elif op.script not in (_BEAT, _REGISTER):
                kept.append(op)
        self._ops[:0] = kept

    def _reachable(self) -> None:
        self._refused_said = False
        since = self._unreachable_since
        if since is not None:
            self._unreachable_since = None
            logger.info(
                "redis coordinator: %s answers again after %.1f s",
                self.coordinator.shown_url,
                time.monotonic() - since,
            )

    # --- callbacks -----------------------------------------------------------------------------

    def issued(self, token: str) -> None:
        self._start()
        if self._redis is not None:
            self._spawn(self._own(token))

    async def _own(self, token: str) -> None:
        redis_ = self._redis
        if redis_ is None:
            return
        with contextlib.suppress(*RETRYABLE):
            await redis_.set(f"{self.prefix}:tok:{token}", self.id, ex=TOKEN_TTL)

    async def route(self, token: str, body: bytes, *, signed: bool) -> bool:
        self._start()
        message = json.dumps(
            {"token": token, "signed": signed, "body": base64.b64encode(body).decode()}
        )
        try:
            # Bounded: the receiver answers the service at once; with Redis away, the
            # delivery falls back to the job's record (and the waiter's polling).
            async with asyncio.timeout(self.coordinator.socket_timeout):
                taken = await self.call(_ROUTE, [token, message], lambda answer: answer[1])
        except (TimeoutError, LegnextError):
            return False
        return bool(taken)

    async def _listen(self) -> None:
        """Wake-ups (a slot granted by another worker) and deliveries routed here."""
        wake = f"{self.prefix}:wake:{self.id}"
        routed = f"{self.prefix}:cb:{self.id}"
        backoff = 0.05
        while not self._stopping:
            redis_ = self._redis
            assert redis_ is not None
            try:
                async with redis_.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(wake, routed)
                    backoff = 0.05
                    while not self._stopping:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None:
                            continue
                        if message["channel"] == wake:
                            self.queue(_Op(_PUMP, [], self.pumped))
                        else:
                            await self._routed(message["data"])
            except Exception as exc:
                # Redis away (or refusing): listen again after a while; the safety-net
                # pumps and the waiters' polling cover what a missed message would say.
                if not isinstance(exc, RETRYABLE):
                    logger.warning("redis coordinator: listening failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _routed(self, data: str) -> None:
        deliver = self.member.deliver
        if deliver is None:
            return
        try:
            message = json.loads(data)
            body = base64.b64decode(message["body"])
            token, signed = str(message["token"]), bool(message["signed"])
        except (ValueError, KeyError, TypeError):
            logger.warning("redis coordinator: an unreadable routed delivery was dropped")
            return
        task = task_of(body)
        if task is not None:
            await deliver(token, task, signed)

    # --- adoption and leaving ------------------------------------------------------------------

    async def adopt(self, job_ids: list[str]) -> set[str]:
        self._start()
        adopted: set[str] = set()
        for start in range(0, len(job_ids), 1000):
            chunk = [f"j:{job_id}" for job_id in job_ids[start : start + 1000]]
            answer = await self.call(_ADOPT, chunk, lambda answer: answer[1])
            adopted.update(rid[2:] for rid in answer)
        return adopted

    async def leave(self) -> None:
        self._left = self._loop
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self._background]
        if self._adopting is not None:
            tasks.append(self._adopting)
        self._tasks = []
        self._background.clear()
        # The flag ends the loops even where a cancellation is lost (redis-py may swallow
        # one that lands in a pipeline); the wait is bounded for the same reason.
        # It stays set until the worker starts again (in a new loop): a loop whose
        # cancellation was lost still ends at its next look at it (within a second).
        self._stopping = True
        if self._kick is not None:
            self._kick.set()
        for task in tasks:
            task.cancel()
        # Calls nobody will send any more: their callers hear so now.
        pending, self._ops = self._ops, []
        for op in pending:
            if op.fail is not None:
                op.fail(LegnextError("the client closed"))
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        redis_ = self._redis
        self._redis = None
        self._loop = None
        if redis_ is not None:
            with contextlib.suppress(*RETRYABLE):
                await self._give_back(redis_)
            with contextlib.suppress(*RETRYABLE):
                await redis_.aclose()

    async def _give_back(self, redis_: aioredis.Redis) -> None:
        """Leaving: a worker with no job that may run leaves the group at once; one with
        such jobs gives back only the places of submissions never sent, and the slots of
        the rest stay counted until its lease runs out (or another worker adopts them)."""
        tickets = self.slots._tickets
        may_run = bool(self.slots._jobs) or any(t.state == "sent" for t in tickets.values())
        if not may_run:
            await redis_.register_script(_LEAVE)(args=[self.prefix, self._now_ms(), self.id])
            return
        unsent = [rid for rid, t in tickets.items() if t.state != "sent"]
        if unsent:
            script = redis_.register_script(_RELEASE)
            async with redis_.pipeline(transaction=False) as pipe:
                for rid in unsent:
                    await script(args=[self.prefix, self._now_ms(), self.id, rid], client=pipe)
                await pipe.execute(raise_on_error=False)


def _apply(learner: JobSlots, lesson: str) -> None:
    """One lesson of ``lessons``: ``q`` (a quiet finish) or ``r BOUND RUNNING OTHERS KIND``
    (a 429 on a submission); anything else is skipped."""
    match lesson.split():
        case ["q"]:
            learner.quiet_finish()
        case ["r", bound, running, others, kind] if kind in ("jobs", "unknown"):
            with contextlib.suppress(ValueError):
                learner.learn(int(bound), kind, int(running), int(others))  # type: ignore[arg-type]


class RedisCoordinator(Coordinator):
    """Share job slots, learning and callbacks between the clients of one account in Redis.

    Give one to each client: ``LegnextClient(coordinator=RedisCoordinator(url))``, in every
    worker process; see the module docstring of ``legnext_async.redis._coordinator`` (and
    docs/multiworker.md) for what Redis holds.

    Args:
        url: the Redis server (``redis://``, ``rediss://`` or ``unix://``); a password in it
            is never shown.
        namespace: the prefix of every key; the account (a digest of the API key) follows.
        lease: seconds a worker's slots outlive it when it stops renewing them (killed, cut
            off); it renews every third of that.
        max_active_jobs: the account's limit of running jobs, if known (or the client's
            ``max_active_jobs``, if this is ``None``); ``None`` in both: learned from the
            service's 429s, once for the whole group.
        socket_timeout: seconds a Redis call may take before it counts as unreachable.
        clock: Unix seconds (tests give a fake one); leases are compared across workers,
            whose clocks must agree to well within ``lease``.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "legnext",
        lease: float = DEFAULT_LEASE,
        max_active_jobs: int | None = None,
        socket_timeout: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.shown_url = shown_url(url)
        if not namespace:
            raise ValidationError("namespace", "must be a non-empty string")
        if not lease > 0:
            raise ValidationError("lease", f"must be positive, got {lease}")
        if max_active_jobs is not None:
            check_min_int(max_active_jobs, "max_active_jobs", 1)
        if not socket_timeout > 0:
            raise ValidationError("socket_timeout", f"must be positive, got {socket_timeout}")
        self.url = url
        self.namespace = namespace
        self.lease = float(lease)
        self.max_active_jobs = max_active_jobs
        self.socket_timeout = float(socket_timeout)
        self.clock = clock or time.time
        self._worker: _Worker | None = None

    def __repr__(self) -> str:
        return f"<RedisCoordinator {self.shown_url!r} namespace={self.namespace!r}>"

    def join(self, member: Member) -> Membership:
        if self._worker is not None:
            raise ValidationError("coordinator", "this RedisCoordinator serves another client")
        self._worker = _Worker(self, member)
        return self._worker
