"""Scripted HTTP faults: what a flaky network or gateway does to one request.

A :class:`Fault` matches requests by method and path pattern and fires ``times``
times after skipping ``after`` matches. With ``commit=True`` the request is processed
first (a POST creates and bills its job) and only the *answer* suffers: the "job
created but answer lost" case that makes blind POST retries double-submit.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from datetime import datetime

FaultKind = Literal["status", "disconnect", "truncate", "garbage", "latency"]

_METHODS = frozenset({"*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _check_route(_: object, __: attrs.Attribute[str], value: str) -> None:
    method, _sep, path = value.partition(" ")
    if not path or method.upper() not in _METHODS or not path.startswith(("/", "*")):
        raise ValueError(f"route must look like 'POST /api/v1/inpaint', got {value!r}")


def _check_times(_: object, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError("times must be at least 1, or None for forever")


@attrs.frozen
class Fault:
    """One scripted misbehaviour.

    ``route`` is ``"METHOD /path"`` where the path is an ``fnmatch`` pattern and the
    method may be ``*`` (``"GET /api/v1/job/*"``, ``"* /api/v1/*"``). Kinds:

    - ``"status"``: answer ``status`` with ``body`` (default: an error body in the
      emulator's error shape) and a ``Retry-After`` header if ``retry_after`` is set
      (seconds, or an HTTP-date string / aware ``datetime``).
    - ``"disconnect"``: close the connection before sending any byte.
    - ``"truncate"``: send headers with a ``Content-Length`` larger than the body, half
      the body, then close. With ``commit`` the real answer is cut; else ``body``.
    - ``"garbage"``: answer ``status`` (200 unless set) with a non-JSON HTML body.
    - ``"latency"``: wait ``delay`` *real* seconds, then answer normally; with ``commit``
      the request is processed before the wait, so a timed-out client's job exists.

    ``times=None`` fires forever. Prefer the named constructors.
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

    @classmethod
    def http_status(
        cls,
        route: str,
        status: int,
        *,
        body: bytes | str | None = None,
        retry_after: float | str | datetime | None = None,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
    ) -> Fault:
        """Answer ``status`` (e.g. 429, 500, 502, 503) instead of the real answer."""
        return cls(route, "status", status, body, retry_after, 0.0, times, after, commit)

    @classmethod
    def disconnect(
        cls, route: str, *, times: int | None = 1, after: int = 0, commit: bool = False
    ) -> Fault:
        """Drop the connection without any response bytes."""
        return cls(route, "disconnect", times=times, after=after, commit=commit)

    @classmethod
    def truncated(
        cls,
        route: str,
        *,
        body: bytes | str | None = None,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
    ) -> Fault:
        """Send a body shorter than its ``Content-Length``, then close."""
        return cls(route, "truncate", body=body, times=times, after=after, commit=commit)

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
    ) -> Fault:
        """Answer with a body that is not JSON (an HTML proxy page by default)."""
        return cls(route, "garbage", status, body, times=times, after=after, commit=commit)

    @classmethod
    def latency(
        cls,
        route: str,
        seconds: float,
        *,
        times: int | None = 1,
        after: int = 0,
        commit: bool = False,
    ) -> Fault:
        """Hold the answer for ``seconds`` of real time."""
        return cls(route, "latency", delay=seconds, times=times, after=after, commit=commit)

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
    ) -> Fault:
        """Process the request (create and bill the job), then lose the answer.

        ``via`` says how: a dropped connection, a gateway ``status``, or ``delay``
        real seconds of silence (longer than the client's timeout).
        """
        if via == "status":
            return cls.http_status(route, status, times=times, after=after, commit=True)
        if via == "latency":
            return cls.latency(route, delay, times=times, after=after, commit=True)
        return cls.disconnect(route, times=times, after=after, commit=True)

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
    """The faults still armed, in the order they were added; the first match wins."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []

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
            rule.fired += 1
            if fault.times is not None and rule.fired >= fault.times:
                self._rules.remove(rule)
            return fault
        return None
