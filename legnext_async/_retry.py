"""The one retry engine: which failed requests are tried again, and how long to wait.

Every retried request goes through :func:`retry_call`, driven by a :class:`RetryPolicy`:
full-jitter exponential backoff that honours ``Retry-After``, and one stop rule (out of
attempts, out of time, or asked by ``Retry-After`` to wait longer than ``max_retry_after``).
What may be tried again is a named predicate:

- :func:`is_retryable_read`: a read (status, balance) that met a connection error, a
  timeout, an unreadable body, 429 or 5xx;
- :func:`may_resend_submission`: a job-creating POST that provably made no job, because
  the connection failed before the request was sent or the service answered 429.

A poll run does not retry in a loop: its next read is its retry, so it takes only the wait
(:meth:`RetryPolicy.wait_for`) and the predicate :func:`is_retryable_read` from here, and
stops at its deadline.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final, TypeVar

import attrs
import tenacity

from ._clock import LOOP_CLOCK
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._clock import Clock

__all__ = ["RetryPolicy"]

R = TypeVar("R")

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
        timeout: seconds after the first try failed past which no new try starts.
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


def may_resend_submission(exc: BaseException) -> bool:
    """Whether a job-creating POST that failed with ``exc`` provably made no job, so that
    sending it again cannot make a second one: the connection failed before the request
    was sent, or the service answered 429 (it refuses before it creates).

    Anything else after sending (a timeout, a lost connection, a 5xx, an unreadable answer)
    may have made the job: the client raises ``SubmissionOutcomeUnknownError`` for those,
    which this predicate never retries either.
    """
    return isinstance(exc, RateLimitError) or (isinstance(exc, APIConnectionError) and not exc.sent)


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
    """Tenacity stop: out of attempts, out of time (since the first try failed, on the
    given clock), or asked by ``Retry-After`` to wait longer than ``max_retry_after``."""

    def __init__(self, policy: RetryPolicy, clock: Clock, started: float) -> None:
        self._policy = policy
        self._clock = clock
        self._started = started

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        policy = self._policy
        if retry_state.attempt_number >= policy.attempts:
            return True
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        hinted = asked_wait(exc)
        if hinted is not None and hinted > policy.max_retry_after:
            return True
        elapsed = self._clock.now() - self._started
        return elapsed + retry_state.upcoming_sleep > policy.timeout


async def retry_call(
    policy: RetryPolicy,
    call: Callable[[], Awaitable[R]],
    *,
    retry_if: Callable[[BaseException], bool],
    clock: Clock = LOOP_CLOCK,
) -> R:
    """``await call()``, tried again as ``policy`` says while ``retry_if(error)`` holds.

    The first try runs outside tenacity: most calls succeed, and building a retry loop for
    each would cost a fifth of a status read's CPU. Tenacity takes over after the first
    failure, which counts as its first attempt; the policy's ``timeout`` counts from then.
    The last error is raised as it is, never tenacity's ``RetryError``; ``CancelledError``
    (and any other ``BaseException``) passes at once.
    """
    try:
        return await call()
    except Exception as exc:
        if not retry_if(exc) or policy.attempts <= 1:
            raise
        first: Exception | None = exc
    started = clock.now()

    async def attempt() -> R:
        nonlocal first
        if first is not None:
            failure, first = first, None
            raise failure
        return await call()

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(retry_if),
        wait=_WaitFromPolicy(policy),
        stop=_StopFromPolicy(policy, clock, started),
        sleep=clock.sleep,
        reraise=True,
    )
    return await retrying(attempt)
