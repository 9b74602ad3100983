"""Webhook delivery, restricted to this machine unless told otherwise.

Example bodies in the vendor docs carry public URLs (``https://webhook.site/...``); a
test tool must never send traffic off the machine because of one. The decision is
made from the URL text alone, without DNS: IP literals in 127.0.0.0/8 or ``::1``, the
name ``localhost``, or a host the user allowed explicitly.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Literal

import attrs
from yarl import URL

if TYPE_CHECKING:
    from collections.abc import Collection

DeliveryOutcome = Literal["delivered", "failed", "refused"]


@attrs.frozen
class CallbackRecord:
    """One callback delivery attempt (or refusal), for tests to inspect.

    ``status`` is the receiver's HTTP status when one was received; ``error`` says why a
    delivery failed or was refused. ``body`` is the JSON value that was (or would have
    been) posted.
    """

    job_id: str
    url: str
    outcome: DeliveryOutcome
    delivery: int
    status: int | None = None
    error: str | None = None
    body: object = None


def callback_allowed(url: str, allowed_hosts: Collection[str]) -> bool:
    """Whether ``url`` may be contacted: loopback literal, ``localhost`` or allowed host."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return False
    host = parsed.host
    if parsed.scheme not in ("http", "https") or not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host in allowed_hosts:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: resolving it is exactly what we refuse to do
        return False
