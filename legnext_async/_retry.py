"""Which failed requests are retried, and how long to wait between tries.

Reads (status and balance GETs) are retried on connection errors, timeouts, unreadable
bodies, 429 and 5xx, with full-jitter exponential backoff that honours ``Retry-After``.
Job-creating POSTs are retried only when no job can exist: the connection failed before
the request was sent, or the server answered 429.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

import attrs
import tenacity

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["RetryPolicy"]

DEFAULT_ATTEMPTS: Final = 6
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_INITIAL_WAIT: Final = 0.5
DEFAULT_MAX_WAIT: Final = 15.0
DEFAULT_MAX_RETRY_AFTER: Final = 120.0


@attrs.frozen
class RetryPolicy:
    """How a failed request is retried.

    Attributes:
        attempts: tries in all, the first included (1 turns retrying off).
        timeout: seconds after the first try past which no new try starts.
        initial_wait: the backoff's first ceiling; each retry doubles it, and the wait is
            drawn uniformly below it (full jitter), so clients never retry in step.
        max_wait: the backoff's largest ceiling.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one (``999999``, a
            date years ahead) ends the retries and the :class:`RateLimitError` (carrying
            ``retry_after``) reaches the caller. A ``Retry-After`` that is not a finite
            number (``inf``, ``nan``) or a date counts as absent: the backoff applies.
    """

    attempts: int = attrs.field(default=DEFAULT_ATTEMPTS, validator=attrs.validators.ge(1))
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=attrs.validators.ge(0))
    initial_wait: float = attrs.field(
        default=DEFAULT_INITIAL_WAIT, validator=attrs.validators.ge(0)
    )
    max_wait: float = attrs.field(default=DEFAULT_MAX_WAIT, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(
        default=DEFAULT_MAX_RETRY_AFTER, validator=attrs.validators.ge(0)
    )

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """The wait before retry ``retry_number`` (1 for the first retry), without hints."""
        ceiling = min(self.max_wait, self.initial_wait * 2 ** (retry_number - 1))
        return (rng or random).uniform(0, ceiling)

    def wait_for(self, exc: BaseException | None, retry_number: int) -> float:
        """The wait before the next retry after ``exc``: ``Retry-After`` if it gave one.

        The result may be longer than the policy allows (``inf`` even); callers compare it
        with ``max_retry_after`` and ``timeout`` before sleeping. It is never NaN.
        """
        hinted = asked_wait(exc)
        return self.backoff(retry_number) if hinted is None else hinted


NO_RETRY: Final = RetryPolicy(attempts=1)


def is_retryable_read(exc: BaseException) -> bool:
    """Whether a failed read may simply be tried again."""
    return isinstance(
        exc,
        APIConnectionError
        | APITimeoutError
        | MalformedResponseError
        | RateLimitError
        | ServerError,
    )


def asked_wait(exc: BaseException | None) -> float | None:
    """The wait a failure asked for (its ``retry_after``), if it is a number of at least 0.

    NaN and negative values count as no hint; ``inf`` is kept (longer than any policy).
    """
    retry_after = getattr(exc, "retry_after", None)
    if (
        isinstance(retry_after, int | float)
        and not isinstance(retry_after, bool)
        and retry_after >= 0  # False for NaN
    ):
        return float(retry_after)
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds from delta-seconds or an HTTP date.

    ``None`` if absent, unreadable, or not finite (``inf``, ``nan``, ``1e999``: no HTTP
    value, so no hint). A time in the past counts as 0. A huge value (``999999``, a date in
    year 9999) is returned as it is: callers bound what they honour.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, with the source's zone unknown
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class _WaitFromPolicy(tenacity.wait.wait_base):
    """Tenacity wait: ``Retry-After`` when the server gave one, else full-jitter backoff.

    Waits longer than the policy allows stop the retrying (see :class:`_StopFromPolicy`).
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        return self._policy.wait_for(exc, retry_state.attempt_number)


class _StopFromPolicy(tenacity.stop.stop_base):
    """Tenacity stop: out of attempts, out of time, or asked to wait too long."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        policy = self._policy
        if retry_state.attempt_number >= policy.attempts:
            return True
        upcoming = retry_state.upcoming_sleep
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        hinted = asked_wait(exc)
        if hinted is not None and hinted > policy.max_retry_after:
            return True
        elapsed = retry_state.seconds_since_start or 0.0
        return elapsed + upcoming > policy.timeout


def retrying(
    policy: RetryPolicy,
    predicate: Callable[[BaseException], bool],
    *,
    sleep: Callable[[float], object],
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.AsyncRetrying:
    """A tenacity loop for ``policy`` that re-raises the last error itself (never RetryError)."""
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(predicate),
        wait=_WaitFromPolicy(policy),
        stop=_StopFromPolicy(policy),
        sleep=sleep,  # type: ignore[arg-type]
        before_sleep=before_sleep,
        reraise=True,
    )
