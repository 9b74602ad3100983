"""Redis for an app whose workers share one Legnext account (the ``redis`` extra).

:class:`RedisCoordinator` makes the workers one client as far as the account can tell:
job slots from one account-wide pool (leases that a lost worker gives back), the limit
learned from a 429 known to all, the poll pace and run times shared, callbacks routed to
the worker awaiting them, and a lost worker's stored jobs taken over (its keys, their
lifetimes and its fallback rules: docs/multiworker.md). :class:`RedisJobStore` is a job
store that every worker of the app shares. Both need the ``redis`` package:
``pip install 'legnext-async[redis]'``.

**What the store keeps in Redis.** Every key is under ``NS``, the ``namespace`` given
(``"legnext"`` by default), and has no expiry:

``NS:store:job:KEY`` (a hash)
    The record under the idempotency key ``KEY``: fields ``attempt``, ``endpoint``,
    ``request`` (canonical JSON), ``state``, ``created_at``, ``updated_at``, ``sent_at``
    (Unix seconds), ``job_id``, ``points_frozen``, ``points_consumed``, ``files`` (a JSON
    list), ``task`` (the last status, the bytes the service sent) and
    ``callback_token``; a field that is ``None`` is absent. Kept until the key is claimed
    again after ``forget`` (then replaced) or its claim is discarded (never sent).
    Finished and forgotten records are kept, as in an SQLite store: delete them by hand
    when you no longer need them, with their entries in the sets and hashes below.
``NS:store:state:STATE`` (a sorted set per state)
    The keys of the records in ``STATE``, scored by ``created_at``: ``records()``, oldest
    first. A key moves from one set to another with its record's state.
``NS:store:job-ids`` and ``NS:store:tokens`` (hashes)
    Job id → key, and callback token → key: ``find()`` and ``find_token()``.
``NS:store:totals`` (a hash)
    ``committed`` and ``spent``: the points of every record (``totals()``), kept up to
    date by every change of a record.
``NS:store:values`` (a hash)
    What clients keep beside their records (learned run times).
``NS:store:epoch`` (a string)
    A random id, written by the first store to open the namespace. Its absence tells the
    stores that Redis lost its data (a restart without persistence, a flush): each then
    writes back the unfinished records it holds before it goes on.

Redis must keep these keys: run it with persistence (AOF, ``appendfsync everysec`` or
``always``) and with ``maxmemory-policy noeviction`` or a ``volatile-*`` policy (no key
here has an expiry, so those never evict them). One server, or a primary with replicas;
not Redis Cluster (the scripts touch keys they compute).

**When Redis is away** (down, restarting, a network cut, a timeout), an operation tries
again with growing waits for up to ``unavailable_timeout`` seconds before it raises
:class:`~legnext_async.StoreError`; a warning is logged once when Redis becomes
unreachable, and an info line when it answers again. Every script may run twice (a retry
after its answer was lost) with the same outcome: a claim run again by its own attempt
gets its own record back.

**When Redis loses its data** (it restarted without persistence), each store notices the
missing epoch and, before anything else, writes back the records it claimed or updated
that are not finished (submitting, unknown, pending or running: its client's live jobs),
so their keys stay held; an update of a record whose key is missing is written from then
on too. Other records (finished ones, those of workers that are gone) are lost with the
data, as they would be with an SQLite file deleted.
"""

try:
    import redis as _redis  # noqa: F401 - only to say which extra is missing
except ImportError as exc:  # pragma: no cover - the tests run with the extra
    raise ImportError(
        "legnext_async.redis needs the redis package: pip install 'legnext-async[redis]'"
    ) from exc

from ._coordinator import RedisCoordinator
from ._store import RedisJobStore

__all__ = ["RedisCoordinator", "RedisJobStore"]

# Public objects present themselves as legnext_async.redis.X, not as the private module
# that defines them.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(f"{__name__}._"):
        _value.__module__ = __name__
del _name, _value
