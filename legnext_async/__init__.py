"""An asyncio client for the Legnext API (Midjourney jobs), with a local emulator.

Start with :class:`LegnextClient`; the emulator lives in :mod:`legnext_async.emulator`.
"""

from ._batch import BatchItem, BatchProgress
from ._client import LegnextClient
from ._coordination import Coordinator
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    DownloadError,
    DownloadExpiredError,
    EndpointNotFoundError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InvalidRequestError,
    LegnextError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    SpendingLimitError,
    StoreError,
    SubmissionOutcomeUnknownError,
    TransportError,
    ValidationError,
)
from ._handle import TaskHandle
from ._models import (
    AvailableActions,
    Balance,
    BlendAspectRatio,
    Canvas,
    ImagePosition,
    Mask,
    Meta,
    Output,
    PanDirection,
    Polygon,
    RawJSON,
    RemixMode,
    Task,
    TaskError,
    TaskStatus,
    TaskType,
    UpscaleType,
    Usage,
    VariationType,
    VideoType,
)
from ._polling import PollPolicy
from ._results import ImageResult, TaskResult, TextResult, VideoResult
from ._retry import RetryPolicy
from ._spending import PointTotals
from ._store import (
    JobRecord,
    JobStore,
    MemoryJobStore,
    RecordState,
    SQLiteJobStore,
    StoredPoints,
)
from ._task_errors import TaskFailedError, TaskTimeoutError
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "AvailableActions",
    "Balance",
    "BatchItem",
    "BatchProgress",
    "BlendAspectRatio",
    "Canvas",
    "ClientClosedError",
    "Coordinator",
    "DownloadError",
    "DownloadExpiredError",
    "EndpointNotFoundError",
    "IdempotencyConflictError",
    "ImagePosition",
    "ImageResult",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "JobRecord",
    "JobStore",
    "LegnextClient",
    "LegnextError",
    "MalformedResponseError",
    "Mask",
    "MemoryJobStore",
    "Meta",
    "NotFoundError",
    "Output",
    "PanDirection",
    "PermissionDeniedError",
    "PointTotals",
    "PollPolicy",
    "Polygon",
    "RateLimitError",
    "RawJSON",
    "RecordState",
    "RemixMode",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SQLiteJobStore",
    "ServerError",
    "SpendingLimitError",
    "StoreError",
    "StoredPoints",
    "SubmissionOutcomeUnknownError",
    "Task",
    "TaskError",
    "TaskFailedError",
    "TaskHandle",
    "TaskResult",
    "TaskStatus",
    "TaskTimeoutError",
    "TaskType",
    "TextResult",
    "TransportError",
    "UpscaleType",
    "Usage",
    "ValidationError",
    "VariationType",
    "VideoResult",
    "VideoType",
    "__version__",
]

# Public objects present themselves as legnext_async.X (in reprs, tracebacks, pickles and
# the docs), not as the private module that defines them; a new export gets this too.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(f"{__name__}._"):
        _value.__module__ = __name__
del _name, _value
