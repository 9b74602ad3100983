"""The errors that end a wait for a job: they carry the job's :class:`Task`.

They sit above ``_models.py`` (which raises :class:`ValidationError` from
``_exceptions.py``), so that no module imports one that imports it back. The whole tree of
errors is drawn in ``_exceptions.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._exceptions import LegnextError

if TYPE_CHECKING:
    from ._models import Task

__all__ = ["TaskFailedError", "TaskTimeoutError"]


class TaskFailedError(LegnextError):
    """The job ended with status ``failed``.

    ``task`` is the final :class:`Task`; ``code`` and ``message`` its error.
    """

    def __init__(self, task: Task) -> None:
        error = task.error
        code = error.code if error else 0
        message = (error.message or error.raw_message) if error else ""
        super().__init__(f"job {task.job_id} failed (code {code}): {message or 'no message'}")
        self.task = task
        self.job_id = task.job_id
        self.code = code
        self.message = message


class TaskTimeoutError(LegnextError, TimeoutError):
    """Waiting for a job passed its deadline; the job itself may still finish.

    Resume with ``client.task(err.job_id)``. ``last_task`` is the last status seen, if any.
    """

    def __init__(self, job_id: str, timeout: float, last_task: Task | None = None) -> None:
        status = f", last status {last_task.status.value}" if last_task else ""
        super().__init__(f"job {job_id} did not finish within {timeout:g} s{status}")
        self.job_id = job_id
        self.timeout = timeout
        self.last_task = last_task
