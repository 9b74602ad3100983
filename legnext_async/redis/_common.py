"""What the Redis parts share: the connection, the errors that mean "try again", safe URLs."""

from __future__ import annotations

import urllib.parse
from typing import Final

import redis.asyncio as aioredis
import redis.exceptions

__all__ = ["RETRYABLE", "connect", "safe_url"]

#: Errors after which Redis may answer again (it restarts, the network heals).
RETRYABLE: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    OSError,
)


def connect(url: str, socket_timeout: float) -> aioredis.Redis:
    """A client of ``url`` answering text (made in the running loop, connected when used)."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )


def safe_url(url: str) -> str:
    """``url`` without its password (fit for logs and reprs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))
