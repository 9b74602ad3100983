"""Several workers on one account, coordinated through Redis (the ``[redis]`` extra).

- :class:`RedisCoordinator`: job slots drawn from one account-wide pool, what 429s teach
  about the account's limit, the poll pace and run times shared, callbacks routed to the
  worker that awaits them, and the jobs of a lost worker taken over.
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401 - only to say what is missing
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "legnext_async.redis needs the redis package: pip install 'legnext-async[redis]'"
    ) from exc

from ._coordinator import RedisCoordinator

__all__ = ["RedisCoordinator"]
