"""What the coordinator shares with the store: the errors that mean "try again", the
connection, and the URL as it may be shown."""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from ._store import _REFUSED, _TRANSIENT, _check_url

__all__ = ["REFUSED", "RETRYABLE", "connect", "shown_url"]

#: Errors after which Redis may answer again (it restarts, loads, the network heals).
RETRYABLE: Final = (*_TRANSIENT, OSError)
#: Errors of credentials or rights Redis refuses (caught before :data:`RETRYABLE`: redis-py
#: makes them connection errors).
REFUSED: Final = _REFUSED

#: ``url`` as logs and reprs may show it: no user, password or query (a bad URL raises
#: :class:`~legnext_async.ValidationError` naming ``url``).
shown_url = _check_url


def connect(url: str, socket_timeout: float) -> aioredis.Redis:
    """A client of ``url`` answering text (made in the running loop, connected when used)."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
