"""A job store on a Redis server, shared by every worker of an app.

:class:`RedisJobStore` keeps the same :class:`~legnext_async.JobRecord` s, with the same
rules, as :class:`~legnext_async.SQLiteJobStore`, on a Redis server that several processes
and machines reach: a key claimed by one worker is held for all of them, and any worker
can ``resume()`` the jobs of another. Every change is one Lua script, which Redis runs
atomically (no other command runs in between), and a client's turn of claims, updates and
saved values is one script, one round trip.

Every key it writes, its type and how long it is kept, what Redis must be run with, and
what the store does when Redis is away or loses its data are in the docstring of
:mod:`legnext_async.redis` (shown in the API reference).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Final, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from legnext_async._clock import LOOP_CLOCK
from legnext_async._exceptions import StoreError, ValidationError
from legnext_async._store import (
    CanonicalRequest,
    JobRecord,
    JobStore,
    RecordState,
    StoredPoints,
    canonical_request,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from redis.commands.core import AsyncScript

    from legnext_async._clock import Clock

__all__ = ["RedisJobStore"]

T = TypeVar("T")

logger = logging.getLogger("legnext_async")

DEFAULT_NAMESPACE: Final = "legnext"
#: How long an operation keeps trying an unreachable Redis (seconds).
DEFAULT_UNAVAILABLE_TIMEOUT: Final = 30.0
#: How long one command may wait for its answer (seconds).
DEFAULT_SOCKET_TIMEOUT: Final = 10.0
#: How long connecting may take (seconds).
DEFAULT_SOCKET_CONNECT_TIMEOUT: Final = 5.0
#: The first wait before trying an unreachable Redis again, and the longest (seconds).
FIRST_WAIT: Final = 0.05
MAX_WAIT: Final = 2.0
#: Records read per round trip when listing.
READ_CHUNK: Final = 500
MAX_NAMESPACE_LENGTH: Final = 100

#: Every state, in the order of the state sets among a script's keys.
STATES: Final = tuple(RecordState)
_STATE_OF: Final = {state.value: state for state in RecordState}
#: A record's hash fields, in the order a script receives them after the key.
FIELDS: Final = (
    "attempt",
    "endpoint",
    "request",
    "state",
    "created_at",
    "updated_at",
    "job_id",
    "sent_at",
    "points_frozen",
    "points_consumed",
    "files",
    "task",
    "callback_token",
)

#: Connections a store keeps to Redis at most; more calls at once wait for one.
MAX_CONNECTIONS: Final = 32

#: Errors of a Redis that is away for now (down, restarting, loading, a replica being
#: promoted): worth trying again. A refused password is not.
_TRANSIENT: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
)
_REFUSED: Final = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)

# --- the scripts ----------------------------------------------------------------------------
# Each script gets the epoch key first and the epoch the store knows as ARGV[1], and does
# nothing but answer {0} when they differ (Redis lost its data, or another store noticed
# that first): the store then recovers and runs it again. Otherwise the answer is {1, ...}.
#
# Records travel back as one string each (see dump below), not as the hash's fields: a
# reply of one string is read at once, where a reply of 26 is read an element at a time
# (a hundred thousand records: a second rather than ten).

_DUMP: Final = f"""
local FIELDS = {{{", ".join(f"'{field}'" for field in FIELDS)}}}
local NF = #FIELDS

-- The record at hash as one string: per field, its length plus one as 4 bytes (big
-- endian), then its bytes; 0 and nothing for an absent field. No record: every field
-- absent.
local function dump(hash)
  local values = redis.call('HMGET', hash, unpack(FIELDS))
  local parts = {{}}
  for i = 1, NF do
    local value = values[i]
    if value then
      parts[#parts + 1] = struct.pack('>I4', #value + 1)
      parts[#parts + 1] = value
    else
      parts[#parts + 1] = struct.pack('>I4', 0)
    end
  end
  return table.concat(parts)
end
"""

_COMMON: Final = (
    _DUMP
    + f"""
local STATES = {{{", ".join(f"'{state.value}'" for state in STATES)}}}
local epoch_key, totals_key, ids_key = KEYS[1], KEYS[2], KEYS[3]
local tokens_key, values_key = KEYS[4], KEYS[5]
local zsets = {{}}
for i, name in ipairs(STATES) do zsets[name] = KEYS[5 + i] end
local FIRST = 5 + #STATES
if redis.call('GET', epoch_key) ~= ARGV[1] then return {{0}} end

-- Points a record counts in the totals: committed (consumed once finished, frozen
-- before) and spent (consumed).
local function points(state, frozen, consumed)
  frozen = tonumber(frozen) or 0
  consumed = tonumber(consumed) or 0
  if state == 'completed' or state == 'failed' then return consumed, consumed end
  return frozen, consumed
end

-- fields: a record's INDEXED fields (below).
local function count(sign, fields)
  local committed, spent = points(fields[1], fields[4], fields[5])
  if committed ~= 0 then
    redis.call('HINCRBY', totals_key, 'committed', string.format('%d', sign * committed))
  end
  if spent ~= 0 then
    redis.call('HINCRBY', totals_key, 'spent', string.format('%d', sign * spent))
  end
end

local INDEXED = {{'state', 'created_at', 'job_id', 'points_frozen', 'points_consumed',
  'callback_token'}}

-- Take the record at hash out of the state sets, the indexes and the totals.
local function unindex(hash, key)
  local old = redis.call('HMGET', hash, unpack(INDEXED))
  if not old[1] then return end
  local z = zsets[old[1]]
  if z then redis.call('ZREM', z, key) end
  if old[3] and redis.call('HGET', ids_key, old[3]) == key then
    redis.call('HDEL', ids_key, old[3])
  end
  if old[6] and redis.call('HGET', tokens_key, old[6]) == key then
    redis.call('HDEL', tokens_key, old[6])
  end
  count(-1, old)
end

-- Put the record at hash into them.
local function index(hash, key)
  local new = redis.call('HMGET', hash, unpack(INDEXED))
  local z = zsets[new[1]]
  if z then redis.call('ZADD', z, new[2], key) end
  if new[3] then redis.call('HSET', ids_key, new[3], key) end
  if new[6] then redis.call('HSET', tokens_key, new[6], key) end
  count(1, new)
end

-- Write the record whose key is ARGV[base] (its fields follow; '' is absent, else the
-- value after a leading '=') at hash, in place of whatever was there.
local function store(hash, base)
  local key = ARGV[base]
  unindex(hash, key)
  redis.call('DEL', hash)
  local args = {{}}
  for i = 1, NF do
    local value = ARGV[base + i]
    if value ~= '' then
      args[#args + 1] = FIELDS[i]
      args[#args + 1] = string.sub(value, 2)
    end
  end
  redis.call('HSET', hash, unpack(args))
  index(hash, key)
end
"""
)

#: Claims, then updates, then saved values. ARGV: epoch, claims, updates, restoring
#: ('1': an update of a missing key is written), values, then each record (key and
#: fields), then name and value pairs. KEYS after the fixed ones: each record's hash.
#: Answers {1, holders, written}: per claim 1 (held by the given attempt) or the holder's
#: fields; per update 1 (written) or 0.
_WRITE: Final = (
    _COMMON
    + """
local claims, updates = tonumber(ARGV[2]), tonumber(ARGV[3])
local restoring, values = ARGV[4] == '1', tonumber(ARGV[5])
local arg = 6
local holders = {}
for i = 1, claims do
  local hash = KEYS[FIRST + i]
  local held = redis.call('HMGET', hash, 'attempt', 'state')
  if not held[1] or held[2] == 'forgotten' then
    store(hash, arg)
    holders[i] = 1
  elseif held[1] == string.sub(ARGV[arg + 1], 2) then
    holders[i] = 1  -- this claim, run again after its answer was lost
  else
    holders[i] = dump(hash)
  end
  arg = arg + 1 + NF
end
local written = {}
for i = 1, updates do
  local hash = KEYS[FIRST + claims + i]
  local held = redis.call('HMGET', hash, 'attempt', 'state')
  if (held[1] == string.sub(ARGV[arg + 1], 2) and held[2] ~= 'forgotten')
      or (restoring and not held[1]) then
    store(hash, arg)
    written[i] = 1
  else
    written[i] = 0
  end
  arg = arg + 1 + NF
end
for i = 1, values do
  redis.call('HSET', values_key, ARGV[arg], ARGV[arg + 1])
  arg = arg + 2
end
return {1, holders, written}
"""
)

#: Remove the record at the first record key if ARGV[2] is its key, ARGV[3] its attempt
#: and it is still submitting.
_DISCARD: Final = (
    _COMMON
    + """
local hash = KEYS[FIRST + 1]
local held = redis.call('HMGET', hash, 'attempt', 'state')
if held[1] == ARGV[3] and held[2] == 'submitting' then
  unindex(hash, ARGV[2])
  redis.call('DEL', hash)
end
return {1}
"""
)

#: Mark the record at the first record key (key ARGV[2]) forgotten at ARGV[3]; answers
#: {1, the record before}.
_FORGET: Final = (
    _COMMON
    + """
local hash = KEYS[FIRST + 1]
local before = dump(hash)
if redis.call('EXISTS', hash) == 1 then
  unindex(hash, ARGV[2])
  redis.call('HSET', hash, 'state', 'forgotten', 'updated_at', ARGV[3])
  index(hash, ARGV[2])
end
return {1, before}
"""
)

#: Reads, each after the same epoch check. KEYS[1] is the epoch key.
_GET: Final = (
    _DUMP
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
return {1, dump(KEYS[2])}
"""
)

#: The record whose key the index hash KEYS[2] holds for ARGV[2]; ARGV[3] is the prefix
#: of record keys. Answers {1, key, record} or {1}.
_FIND: Final = (
    _DUMP
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local key = redis.call('HGET', KEYS[2], ARGV[2])
if not key then return {1} end
return {1, key, dump(ARGV[3] .. key)}
"""
)

#: The first ARGV[2] + 1 (all if -1) members of each state set among KEYS[2...], with
#: their scores, as one string: per member, its score and its name, each after its
#: length as 4 bytes.
_LIST: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local stop = tonumber(ARGV[2])
local parts = {}
for i = 2, #KEYS do
  local found = redis.call('ZRANGE', KEYS[i], 0, stop, 'WITHSCORES')
  for j = 1, #found, 2 do
    parts[#parts + 1] = struct.pack('>I4', #found[j + 1])
    parts[#parts + 1] = found[j + 1]
    parts[#parts + 1] = struct.pack('>I4', #found[j])
    parts[#parts + 1] = found[j]
  end
end
return {1, table.concat(parts)}
"""

#: The records at KEYS, one after another (see dump).
_DUMP_MANY: Final = (
    _DUMP
    + """
local parts = {}
for i = 1, #KEYS do parts[i] = dump(KEYS[i]) end
return table.concat(parts)
"""
)

#: The value ARGV[2] of the hash KEYS[2] (totals, values): HMGET of ARGV[2...].
_READ: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
return {1, redis.call('HMGET', KEYS[2], unpack(ARGV, 2))}
"""

#: The epoch: the one written already, else ARGV[1].
_OPEN: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

_SCRIPTS: Final = {
    "write": _WRITE,
    "discard": _DISCARD,
    "forget": _FORGET,
    "get": _GET,
    "find": _FIND,
    "list": _LIST,
    "dump": _DUMP_MANY,
    "read": _READ,
    "open": _OPEN,
}


class _Link:
    """A connection pool and its scripts, of one event loop."""

    __slots__ = ("client", "loop", "recovering", "scripts")

    def __init__(self, client: redis.asyncio.Redis, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.scripts: dict[str, AsyncScript] = {
            name: client.register_script(text) for name, text in _SCRIPTS.items()
        }
        #: The write-back after a data loss, while it runs (others wait for it).
        self.recovering: asyncio.Future[None] | None = None


class RedisJobStore(JobStore):
    """A :class:`~legnext_async.JobStore` on a Redis server, for several workers at once.

    The same rules as :class:`~legnext_async.SQLiteJobStore`, shared by every process
    that opens a store of the same ``url`` and ``namespace``: one POST per idempotency key
    across all of them, ``resume()`` on any of them. What Redis holds, for how long, and
    what happens when it is unreachable or loses its data: see :mod:`legnext_async.redis`.

    The connection is made on first use, inside the running event loop (a store used by
    one event loop after another connects again in each); ``close()`` ends it. Needs
    the ``redis`` extra (``pip install 'legnext-async[redis]'``).

    Args:
        url: the server, as ``redis://[[user]:password@]host[:port][/db]``,
            ``rediss://…`` (TLS) or ``unix:///path/to/socket``. Its password is never shown
            in reprs, logs or errors.
        namespace: the prefix of every key (see :mod:`legnext_async.redis`); stores of one
            app share it, apps that must not see each other's jobs do not.
        unavailable_timeout: seconds an operation keeps trying a Redis it cannot reach
            before it raises :class:`~legnext_async.StoreError` (0: at once).
        socket_timeout: seconds one command may wait for its answer.
        socket_connect_timeout: seconds connecting may take.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        unavailable_timeout: float = DEFAULT_UNAVAILABLE_TIMEOUT,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_SOCKET_CONNECT_TIMEOUT,
    ) -> None:
        self._url = url
        self.url = _check_url(url)
        self.namespace = _check_namespace(namespace)
        for name, value in (
            ("unavailable_timeout", unavailable_timeout),
            ("socket_timeout", socket_timeout),
            ("socket_connect_timeout", socket_connect_timeout),
        ):
            if not value >= 0:  # NaN too
                raise ValidationError(name, f"must be a number of seconds >= 0, got {value!r}")
        if socket_timeout <= 0:
            raise ValidationError("socket_timeout", "must be positive")
        if socket_connect_timeout <= 0:
            raise ValidationError("socket_connect_timeout", "must be positive")
        self.unavailable_timeout = float(unavailable_timeout)
        self.socket_timeout = float(socket_timeout)
        self.socket_connect_timeout = float(socket_connect_timeout)
        self._secrets = _secrets_of(url)
        prefix = f"{self.namespace}:store:"
        self._job_prefix = prefix + "job:"
        #: The fixed keys every changing script gets first, in the order _COMMON reads.
        self._fixed = [
            prefix + "epoch",
            prefix + "totals",
            prefix + "job-ids",
            prefix + "tokens",
            prefix + "values",
            *(prefix + "state:" + state.value for state in STATES),
        ]
        self._link: _Link | None = None
        #: The epoch this store has seen, once opened.
        self._epoch: str | None = None
        #: The unfinished records this store claimed or wrote, by key: what it writes
        #: back if Redis loses its data. Bounded by the client's live jobs.
        self._held: dict[str, JobRecord] = {}
        #: Whether Redis was unreachable at the last try (logged once per outage).
        self._unreachable = False
        self._clock: Clock = LOOP_CLOCK

    def __repr__(self) -> str:
        return f"<RedisJobStore {self.url} namespace={self.namespace!r}>"

    def use_clock(self, clock: Clock) -> None:
        """Time the waits between tries by ``clock`` (tests: a fake one)."""
        self._clock = clock

    # --- the connection -----------------------------------------------------------------

    def _linked(self) -> _Link:
        loop = asyncio.get_running_loop()
        link = self._link
        if link is None or link.loop is not loop:
            # A pool of an earlier loop cannot be closed from this one; its loop closed
            # its sockets when it shut down (the client closes its store then).
            # A blocking pool: a burst of submissions waits for one of its connections
            # instead of failing with "Too many connections" (which would read as Redis
            # being away).
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self._url,
                max_connections=MAX_CONNECTIONS,
                timeout=None,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_connect_timeout,
                # Tries are made here, timed by unavailable_timeout, not inside redis-py.
                retry=Retry(NoBackoff(), 0),
                decode_responses=False,
            )
            client = redis.asyncio.Redis.from_pool(pool)
            link = self._link = _Link(client, loop)
        return link

    async def open(self) -> None:
        await self._opened()

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if link.loop is running:
            await link.client.aclose()

    async def _opened(self) -> str:
        """The epoch, after writing it if nobody has (the first use of a namespace)."""
        epoch = self._epoch
        if epoch is None:
            epoch = self._epoch = await self._open_epoch()
        return epoch

    async def _open_epoch(self) -> str:
        fresh = secrets.token_hex(16)
        found = await self._call(_script("open", self._fixed[:1], [fresh]))
        return _text(found)

    async def _call(self, operation: Callable[[_Link], Awaitable[T]]) -> T:
        """``operation`` on this loop's connection, tried again while Redis is away (for up
        to ``unavailable_timeout`` seconds); a Redis error as :class:`StoreError`."""
        deadline: float | None = None
        wait = FIRST_WAIT
        while True:
            try:
                result = await operation(self._linked())
            except _REFUSED as exc:
                raise self._error("refused the connection", exc) from exc
            except _TRANSIENT as exc:
                now = self._clock.now()
                if deadline is None:
                    deadline = now + self.unavailable_timeout
                if not self._unreachable:
                    self._unreachable = True
                    logger.warning(
                        "job store: Redis at %s is unreachable (%s); trying again for up to %g s",
                        self.url,
                        self._scrub(f"{type(exc).__name__}: {exc}"),
                        self.unavailable_timeout,
                    )
                if now >= deadline:
                    raise self._error(
                        f"unreachable for {self.unavailable_timeout:g} s", exc
                    ) from exc
                await self._clock.sleep(min(wait * (0.5 + random.random() / 2), deadline - now))
                wait = min(wait * 2, MAX_WAIT)
                continue
            except redis.exceptions.RedisError as exc:
                raise self._error("failed", exc) from exc
            if self._unreachable:
                self._unreachable = False
                logger.info("job store: Redis at %s answers again", self.url)
            return result

    async def _checked(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script that checks the epoch: after a data loss, once the records are
        written back, run it again; its answer after the status."""
        while True:
            epoch = await self._opened()
            reply = await self._call(_script(script, keys, [epoch, *args]))
            if reply[0] == 1:
                return reply
            await self._recover(epoch)

    async def _recover(self, seen: str) -> None:
        """Redis lost the epoch ``seen``: write a new one, and write back the unfinished
        records of this store, once (other operations wait for it)."""
        link = self._linked()
        running = link.recovering
        if running is not None and not running.done():
            await asyncio.shield(running)
            return
        if self._epoch != seen:
            return  # recovered already
        running = link.recovering = asyncio.ensure_future(self._write_back())
        await asyncio.shield(running)

    async def _write_back(self) -> None:
        logger.warning(
            "job store: Redis at %s lost its data (a restart without persistence?): writing"
            " back the %d unfinished records of this store",
            self.url,
            len(self._held),
        )
        while True:
            epoch = await self._open_epoch()
            held = list(self._held.values())
            if held:
                keys, args = self._write_arguments([], held, [], restoring=True)
                reply = await self._call(_script("write", keys, [epoch, *args]))
                if reply[0] != 1:
                    continue  # lost again, meanwhile
                self._note_written(held, reply[2])
            # Only now: operations of the new epoch find the records written back.
            self._epoch = epoch
            return

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(
            f"job store: Redis at {self.url} {what}: " + self._scrub(f"{type(exc).__name__}: {exc}")
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # --- reads --------------------------------------------------------------------------

    async def get(self, key: str) -> JobRecord | None:
        reply = await self._checked("get", [self._fixed[0], self._job_prefix + key], [])
        return self._decoded(key, reply[1])

    async def find(self, job_id: str) -> JobRecord | None:
        found = await self._find(self._fixed[2], job_id)
        return found if found is not None and found.job_id == job_id else None

    async def find_token(self, token: str) -> JobRecord | None:
        found = await self._find(self._fixed[3], token)
        return found if found is not None and found.callback_token == token else None

    async def _find(self, index: str, value: str) -> JobRecord | None:
        reply = await self._checked("find", [self._fixed[0], index], [value, self._job_prefix])
        if len(reply) < 3:
            return None
        return self._decoded(_text(reply[1]), reply[2])

    async def records(self, *states: RecordState, limit: int | None = None) -> list[JobRecord]:
        wanted = tuple(dict.fromkeys(states)) or STATES
        if limit is not None and limit <= 0:
            return []
        keys = [self._fixed[0], *(self._fixed[5 + STATES.index(state)] for state in wanted)]
        reply = await self._checked("list", keys, [-1 if limit is None else limit - 1])
        listed = reply[1]
        members: list[tuple[float, bytes]] = []
        at, end = 0, len(listed)
        while at < end:
            score, at = _framed(listed, at)
            member, at = _framed(listed, at)
            members.append((float(score), member))
        # Oldest first, ties by key (as SQLite orders them), across the states asked.
        members.sort()
        if limit is not None:
            del members[limit:]
        names = [member.decode() for _, member in members]
        records: list[JobRecord] = []
        allowed = set(wanted)
        for start in range(0, len(names), READ_CHUNK):
            chunk = names[start : start + READ_CHUNK]
            # Records read in runs, each a short script: Redis serves others in between.
            dumped = await self._call(
                _script("dump", [self._job_prefix + name for name in chunk], [])
            )
            at = 0
            for name in chunk:
                values, at = _fields_of(dumped, at)
                found = self._decoded(name, values)
                # Discarded, or moved to another state, since the list was read: left out.
                if found is not None and found.state in allowed:
                    records.append(found)
        return records

    async def totals(self) -> StoredPoints:
        reply = await self._checked("read", self._fixed[:2], ["committed", "spent"])
        committed, spent = (int(value or 0) for value in reply[1])
        return StoredPoints(committed=committed, spent=spent)

    async def load(self, name: str) -> str | None:
        reply = await self._checked("read", [self._fixed[0], self._fixed[4]], [name])
        value = reply[1][0]
        return None if value is None else _text(value)

    def _decoded(self, key: str, dumped: bytes | list[bytes | None]) -> JobRecord | None:
        """The record of ``key`` from a script's answer (one record, or its fields already
        taken apart); ``None`` if there was none."""
        try:
            values = dumped if isinstance(dumped, list) else _fields_of(dumped, 0)[0]
            if values[0] is None:
                return None
            return _record(key, values)
        except (IndexError, ValueError, TypeError) as exc:
            raise StoreError(
                f"job store: Redis at {self.url}: the record {key!r} is unreadable: {exc!r}"
            ) from exc

    # --- writes -------------------------------------------------------------------------

    async def claim(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        return await self.write(records, ())

    async def put(self, records: Sequence[JobRecord]) -> None:
        await self.write((), records)

    async def save(self, name: str, value: str) -> None:
        await self.write((), (), [(name, value)])

    async def write(
        self,
        claims: Sequence[JobRecord],
        records: Sequence[JobRecord],
        values: Sequence[tuple[str, str]] = (),
    ) -> list[JobRecord]:
        """:meth:`claim` ``claims``, :meth:`put` ``records`` and :meth:`save` ``values`` in
        one script (one round trip, nothing else runs in between); the records that hold
        the claimed keys."""
        if not (claims or records or values):
            return []
        # The last version of each submission.
        latest = list({(record.key, record.attempt): record for record in records}.values())
        restoring = False
        while True:
            epoch = await self._opened()
            keys, args = self._write_arguments(claims, latest, values, restoring=restoring)
            reply = await self._call(_script("write", keys, [epoch, *args]))
            if reply[0] == 1:
                break
            await self._recover(epoch)
            # Redis lost its data: an update of a record whose key is now missing is the
            # latest news of a job of this client, and is written.
            restoring = True
        held = [
            mine if holder == 1 else self._holder(mine, holder)
            for mine, holder in zip(claims, reply[1], strict=True)
        ]
        for mine, holder in zip(claims, held, strict=True):
            if holder is mine:
                self._held[mine.key] = mine
        self._note_written(latest, reply[2])
        return held

    def _holder(self, mine: JobRecord, fields: Any) -> JobRecord:
        holder = self._decoded(mine.key, fields)
        if holder is None:  # the script answers the holder's fields: never empty
            raise StoreError(f"job store: Redis at {self.url}: no holder of {mine.key!r}")
        return holder

    def _note_written(self, records: Sequence[JobRecord], written: Sequence[int]) -> None:
        """Keep the unfinished records just written, for a write-back; drop the others."""
        for record, done in zip(records, written, strict=True):
            if done and record.state in _HELD_STATES:
                self._held[record.key] = record
            else:
                mine = self._held.get(record.key)
                if mine is not None and mine.attempt == record.attempt:
                    del self._held[record.key]

    def _write_arguments(
        self,
        claims: Sequence[JobRecord],
        records: Sequence[JobRecord],
        values: Sequence[tuple[str, str]],
        *,
        restoring: bool,
    ) -> tuple[list[str], list[Any]]:
        """The keys and the arguments (after the epoch) of the write script."""
        keys = [*self._fixed, *(self._job_prefix + record.key for record in claims)]
        keys.extend(self._job_prefix + record.key for record in records)
        args: list[Any] = [
            len(claims),
            len(records),
            "1" if restoring else "0",
            len(values),
        ]
        for record in (*claims, *records):
            args.extend(_fields(record))
        for name, value in values:
            args.extend((name, value))
        return keys, args

    async def discard(self, key: str, attempt: str) -> None:
        await self._checked("discard", [*self._fixed, self._job_prefix + key], [key, attempt])
        mine = self._held.get(key)
        if mine is not None and mine.attempt == attempt:
            del self._held[key]

    async def forget(self, key: str) -> JobRecord | None:
        reply = await self._checked(
            "forget", [*self._fixed, self._job_prefix + key], [key, repr(time.time())]
        )
        self._held.pop(key, None)
        return self._decoded(key, reply[1])


def _script(
    name: str, keys: Sequence[str], args: Sequence[Any]
) -> Callable[[_Link], Awaitable[Any]]:
    """The operation that runs the script ``name`` (for :meth:`RedisJobStore._call`)."""

    def run(link: _Link) -> Awaitable[Any]:
        return link.scripts[name](keys=keys, args=args)

    return run


#: The states of records a store writes back after a data loss: a job that may still
#: run, or a key whose outcome nobody knows.
_HELD_STATES: Final = frozenset(
    (RecordState.SUBMITTING, RecordState.UNKNOWN, RecordState.PENDING, RecordState.RUNNING)
)


def _fields(record: JobRecord) -> list[object]:
    """The record's key, then each of :data:`FIELDS` as the scripts take it: ``""`` for
    ``None``, else the value after ``"="``."""
    values: Iterable[str | bytes | None] = (
        record.attempt,
        record.endpoint,
        canonical_request(record.request),
        record.state.value,
        repr(float(record.created_at)),
        repr(float(record.updated_at)),
        record.job_id,
        None if record.sent_at is None else repr(float(record.sent_at)),
        None if record.points_frozen is None else str(int(record.points_frozen)),
        None if record.points_consumed is None else str(int(record.points_consumed)),
        json.dumps(list(record.files), ensure_ascii=False),
        record.task_body,
        record.callback_token,
    )
    out: list[object] = [record.key]
    for value in values:
        if value is None:
            out.append(b"")
        elif isinstance(value, bytes):
            out.append(b"=" + value)
        else:
            out.append("=" + value)
    return out


def _framed(blob: bytes, at: int) -> tuple[bytes, int]:
    """The string at ``at`` of a script's answer (after its length as 4 bytes), and where
    the next one starts."""
    size = int.from_bytes(blob[at : at + 4], "big")
    start = at + 4
    if start + size > len(blob):
        raise ValueError("a script's answer ends early")
    return blob[start : start + size], start + size


def _fields_of(blob: bytes, at: int) -> tuple[list[bytes | None], int]:
    """The fields of the record dumped at ``at`` (``None``: absent), and where the next
    record starts."""
    values: list[bytes | None] = []
    for _ in FIELDS:
        size = int.from_bytes(blob[at : at + 4], "big")
        at += 4
        if size:
            values.append(blob[at : at + size - 1])
            at += size - 1
        else:
            values.append(None)
    if at > len(blob):
        raise ValueError("a script's answer ends early")
    return values, at


def _record(key: str, values: Sequence[bytes | None]) -> JobRecord:
    """The record of ``key`` from its fields, in the order of :data:`FIELDS`."""
    (attempt, endpoint, request, state, created, updated, job_id, sent, frozen) = values[:9]
    consumed, files, task, token = values[9:]
    if attempt is None or endpoint is None or request is None or state is None:
        raise ValueError("a required field is missing")
    if created is None or updated is None:
        raise ValueError("a time is missing")
    return JobRecord(
        key=key,
        attempt=attempt.decode(),
        endpoint=endpoint.decode(),
        request=CanonicalRequest(request.decode()),
        state=_STATE_OF.get(state.decode(), RecordState.UNKNOWN),
        created_at=float(created),
        updated_at=float(updated),
        job_id=None if job_id is None else job_id.decode(),
        sent_at=None if sent is None else float(sent),
        points_frozen=None if frozen is None else int(frozen),
        points_consumed=None if consumed is None else int(consumed),
        files=tuple(json.loads(files)) if files and files != b"[]" else (),
        task_body=task,
        callback_token=None if token is None else token.decode(),
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _check_url(url: object) -> str:
    """The URL as shown: scheme, host, port and path, without user, password or query."""
    if not isinstance(url, str):
        raise ValidationError("url", f"must be a string, got {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("url", "is not a valid URL") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValidationError("url", "must be a redis://, rediss:// or unix:// URL")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    where = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{where}{parts.path}"


def _secrets_of(url: str) -> list[str]:
    """The password of ``url`` (in the user part or the query), as written and decoded."""
    parts = urllib.parse.urlsplit(url)
    found = []
    if parts.password:
        found += [parts.password, urllib.parse.unquote(parts.password)]
    for name, value in urllib.parse.parse_qsl(parts.query):
        if name == "password" and value:
            found.append(value)
    return sorted(set(found), key=len, reverse=True)


def _check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise ValidationError("namespace", f"must be a string, got {type(namespace).__name__}")
    if not namespace or not namespace.isprintable() or namespace != namespace.strip():
        raise ValidationError("namespace", "must be printable text without surrounding spaces")
    if len(namespace) > MAX_NAMESPACE_LENGTH:
        raise ValidationError(
            "namespace",
            f"must be at most {MAX_NAMESPACE_LENGTH} characters, got {len(namespace)}",
        )
    return namespace
