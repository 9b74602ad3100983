"""The exit codes of ``legnext``, and which error ends with which."""

from __future__ import annotations

import enum

from legnext_async._exceptions import (
    AuthenticationError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SpendingLimitError,
    SubmissionOutcomeUnknownError,
    TransportError,
    ValidationError,
)
from legnext_async._task_errors import TaskFailedError, TaskTimeoutError

__all__ = ["ExitCode", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """What a run of ``legnext`` ended with (documented in ``docs/cli.md``)."""

    #: Everything asked for succeeded (forgetting a key the store does not hold too).
    OK = 0
    #: A job ended ``failed`` (in a batch: at least one line failed or was skipped).
    FAILED = 1
    #: Invalid arguments, a malformed batch file or configuration: nothing was sent.
    USAGE = 2
    #: A wait passed its deadline; the job may still finish (``legnext wait JOB_ID``).
    TIMEOUT = 3
    #: The API key is missing, or the service refused it (401, 403); in a batch, a line
    #: was refused with 403 (and none failed).
    AUTH = 4
    #: The spending limit (``--max-points``) refused a job before it was sent, or the
    #: account's balance does not cover it (402); in a batch, a line was refused so (and
    #: none failed).
    SPENDING = 5
    #: No usable answer from the service: connection, timeout, 429, 5xx, unreadable body.
    NETWORK = 6
    #: A submission was sent and its answer lost: a job may exist and be billed.
    UNKNOWN_OUTCOME = 7
    #: Any other error: an unknown job (404), a download or job store that failed.
    ERROR = 8
    #: Stopped by Ctrl-C (SIGINT); run the same command again to continue.
    INTERRUPTED = 130


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for a run that ``error`` ended."""
    if isinstance(error, TaskFailedError):
        return ExitCode.FAILED
    if isinstance(error, TaskTimeoutError):
        return ExitCode.TIMEOUT
    if isinstance(error, ValidationError):
        return ExitCode.AUTH if error.field == "api_key" else ExitCode.USAGE
    if isinstance(error, InvalidRequestError | IdempotencyConflictError):
        return ExitCode.USAGE
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return ExitCode.AUTH
    if isinstance(error, SpendingLimitError | InsufficientCreditsError):
        return ExitCode.SPENDING
    if isinstance(error, SubmissionOutcomeUnknownError):
        return ExitCode.UNKNOWN_OUTCOME
    if isinstance(error, TransportError | ServerError | RateLimitError):
        return ExitCode.NETWORK
    return ExitCode.ERROR
