"""Scripted HTTP faults: what a flaky network or gateway does to one request.

A :class:`Fault` matches requests by method and path pattern and fires ``times``
times after skipping ``after`` matches, on every match or, with ``probability`` below 1,
on a random share of them drawn from the emulator's seeded generator. With
``commit=True`` the request is processed first (a POST creates and bills its job) and only
the *answer* suffers: the "job created but answer lost" case that makes blind POST retries
double-submit.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

if TYPE_CHECKING:
    import random
    from datetime import datetime

FaultKind = Literal["status", "disconnect", "truncate", "garbage", "latency", "slow"]

#: The message of :meth:`Fault.rate_limited`'s 429: a request-rate limit, unlike the
#: emulator's own 429 for an account past its limit of unfinished jobs.
RATE_LIMITED_MESSAGE: Final = "Too many requests: rate limit exceeded"

_METHODS = frozenset({"*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _check_route(_: object, __: attrs.Attribute[str], value: str) -> None:
    method, _sep, path = value.partition(" ")
    if not path or method.upper() not in _METHODS or not path.startswith(("/", "*")):
        raise ValueError(f"route must look like 'POST /api/v1/inpaint', got {value!r}")


def _check_times(_: object, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError("times must be at least 1, or None for forever")


def _check_probability(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"probability must be in (0, 1], got {value!r}")


@attrs.frozen
class Fault:
    """One scripted misbehaviour.

    ``route`` is ``"METHOD /path"`` where the path is an ``fnmatch`` pattern and the
    method may be ``*`` (``"GET /api/v1/job/*"``, ``"* /api/v1/*"``). Kinds:

    - ``"status"``: answer ``status`` with ``body`` (default: an error body in the
      emulator's error shape saying ``message``, or the status's reason phrase) and a
      ``Retry-After`` header if ``retry_after`` is set (seconds, or an HTTP-date string /
      aware ``datetime``).
    - ``"disconnect"``: close the connection before sending any byte.
    - ``"truncate"``: send headers with a ``Content-Length`` larger than the body, half
      the body, then close. With ``commit`` the real answer is cut; else ``body``.
    - ``"garbage"``: answer ``status`` (200 unless set) with a non-JSON HTML body.
    - ``"latency"``: wait ``delay`` *real* seconds, then answer normally; with ``commit``
      the request is processed before the wait, so a timed-out client's job exists.
    - ``"slow"``: the real answer, its body trickled in ``pieces`` parts spread over
      ``delay`` *real* seconds (headers at once). The request is always processed.

    ``times=None`` fires forever. ``probability`` (0 < p <= 1) makes each match past
    ``after`` fire only with that chance, drawn from the emulator's generator (seeded by its
    ``seed``), so a soak with random faults is repeatable; a match that does not fire is
    offered to the next armed fault. ``times`` counts firings, not matches. Prefer the named
    constructors.
    """

    route: str = attrs.field(validator=_check_route)
    kind: FaultKind
    status: int | None = None
    body: bytes | str | None = None
    retry_after: float | str | datetime | None = None
    delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    times: int | None = attrs.field(default=1, validator=_check_times)
    after: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    commit: bool = False
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    message: str | None = None
    pieces: int = attrs.field(default=16, validator=attrs.validators.ge(1))

    @classmethod
    def http_status(
        cls,
        route: str,
        status: int,
        *,
        body: bytes | str | None = None,
        message: str | None = None,
        retry_after: float | str | datetime | None = None,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
        probability: float = 1.0,
    ) -> Fault:
        """Answer ``status`` (e.g. 429, 500, 502, 503) instead of the real answer.

        Without ``body`` the answer is an error body in the emulator's error shape, saying
        ``message`` (default: the status's reason phrase).
        """
        return cls(
            route,
            "status",
            status=status,
            body=body,
            message=message,
            retry_after=retry_after,
            times=times,
            after=after,
            commit=commit,
            probability=probability,
        )

    @classmethod
    def rate_limited(
        cls,
        route: str,
        *,
        probability: float = 1.0,
        times: int | None = None,
        after: int = 0,
        retry_after: float | str | datetime | None = None,
    ) -> Fault:
        """Answer 429 for a request-rate limit, on every match or a random share of them.

        The body, in the emulator's error shape, says "Too many requests: rate limit
        exceeded", unlike the 429 of an account past its limit of unfinished jobs
        ("Concurrent task limit reached (6); ..."). The request is not processed: a POST
        creates no job. Fires forever unless ``times`` is given.
        """
        return cls.http_status(
            route,
            429,
            message=RATE_LIMITED_MESSAGE,
            retry_after=retry_after,
            times=times,
            after=after,
            probability=probability,
        )

    @classmethod
    def disconnect(
        cls,
        route: str,
        *,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
        probability: float = 1.0,
    ) -> Fault:
        """Drop the connection without any response bytes."""
        return cls(
            route, "disconnect", times=times, after=after, commit=commit, probability=probability
        )

    @classmethod
    def truncated(
        cls,
        route: str,
        *,
        body: bytes | str | None = None,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
        probability: float = 1.0,
    ) -> Fault:
        """Send a body shorter than its ``Content-Length``, then close.

        With ``commit`` the real answer is cut after half its body, its status and headers
        intact: for output files (``"GET /files/*"``) that is a download cut short.
        """
        return cls(
            route,
            "truncate",
            body=body,
            times=times,
            after=after,
            commit=commit,
            probability=probability,
        )

    @classmethod
    def garbage(
        cls,
        route: str,
        *,
        status: int = 200,
        body: bytes | str | None = None,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
        probability: float = 1.0,
    ) -> Fault:
        """Answer with a body that is not JSON (an HTML proxy page by default)."""
        return cls(
            route,
            "garbage",
            status=status,
            body=body,
            times=times,
            after=after,
            commit=commit,
            probability=probability,
        )

    @classmethod
    def latency(
        cls,
        route: str,
        seconds: float,
        *,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
        probability: float = 1.0,
    ) -> Fault:
        """Hold the answer for ``seconds`` of real time."""
        return cls(
            route,
            "latency",
            delay=seconds,
            times=times,
            after=after,
            commit=commit,
            probability=probability,
        )

    @classmethod
    def slow(
        cls,
        route: str,
        seconds: float,
        *,
        pieces: int = 16,
        times: int | None = 1,
        after: int = 0,
        probability: float = 1.0,
    ) -> Fault:
        """Answer normally, but send the body in ``pieces`` parts over ``seconds`` real
        seconds: a slow download (``"GET /files/*"``) rather than a late answer."""
        return cls(
            route,
            "slow",
            delay=seconds,
            pieces=pieces,
            times=times,
            after=after,
            commit=True,
            probability=probability,
        )

    @classmethod
    def answer_lost(
        cls,
        route: str,
        *,
        via: Literal["disconnect", "status", "latency"] = "disconnect",
        status: int = 502,
        delay: float = 30.0,
        times: int | None = 1,
        after: int = 0,
        probability: float = 1.0,
    ) -> Fault:
        """Process the request (create and bill the job), then lose the answer.

        ``via`` says how: a dropped connection, a gateway ``status``, or ``delay``
        real seconds of silence (longer than the client's timeout).
        """
        common: dict[str, Any] = {
            "times": times,
            "after": after,
            "commit": True,
            "probability": probability,
        }
        if via == "status":
            return cls.http_status(route, status, **common)
        if via == "latency":
            return cls.latency(route, delay, **common)
        return cls.disconnect(route, **common)

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault's route pattern covers the request."""
        want, _, pattern = self.route.partition(" ")
        return want in ("*", method.upper()) and fnmatch.fnmatchcase(path, pattern)


@attrs.define
class _Rule:
    fault: Fault
    seen: int = 0
    fired: int = 0


class FaultPlan:
    """The faults still armed, in the order they were added; the first that fires wins.

    ``rng`` draws for faults with a ``probability`` below 1 (faults that always fire draw
    nothing, so adding one does not shift the draws of the others).
    """

    def __init__(self, rng: random.Random) -> None:
        self._rules: list[_Rule] = []
        self._rng = rng

    def add(self, fault: Fault) -> None:
        """Arm ``fault``."""
        self._rules.append(_Rule(fault))

    def clear(self) -> None:
        """Disarm every fault."""
        self._rules.clear()

    @property
    def armed(self) -> tuple[Fault, ...]:
        """Faults that may still fire."""
        return tuple(rule.fault for rule in self._rules)

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, counting the match; ``None`` if none."""
        for rule in self._rules:
            fault = rule.fault
            if not fault.matches(method, path):
                continue
            rule.seen += 1
            if rule.seen <= fault.after:
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            rule.fired += 1
            if fault.times is not None and rule.fired >= fault.times:
                self._rules.remove(rule)
            return fault
        return None
