"""HTTP error answers: the three body shapes the sources disagree on (reference §6)."""

from __future__ import annotations

import json
from typing import Literal

from aiohttp import web

ErrorShape = Literal["envelope", "flat", "nested"]

AUTH_FAILED = "Failed to verify api key"
NOT_WHITELISTED = (
    "This feature is only available for whitelisted accounts. Please upgrade your plan "
    "or contact customer support to access this feature."
)
#: The prefix of every 400 about a request body.
INVALID_REQUEST = "Invalid request parameters"


class Reject(Exception):
    """Answer ``status`` with an error body saying ``message``; raised below a handler."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(shape: ErrorShape, code: int, message: str) -> bytes:
    """Serialise an error answer.

    - ``envelope``: the live task-shaped body (status ``failed``, zero strings, nulls,
      the message in ``error.message`` and an empty ``raw_message``), as captured on
      the 403 from ``/v1/edit``;
    - ``flat``: ``{code, message, raw_message, detail}`` of the docs' endpoint pages;
    - ``nested``: ``{"error": {code, message}}`` of the vendor skill and OAC.
    """
    body: dict[str, object]
    if shape == "flat":
        body = {"code": code, "message": message, "raw_message": message, "detail": None}
    elif shape == "nested":
        body = {"error": {"code": code, "message": message}}
    else:
        body = {
            "job_id": "",
            "model": "",
            "task_type": "",
            "status": "failed",
            "config": {"service_mode": "", "webhook_config": {"endpoint": "", "secret": ""}},
            "input": None,
            "output": None,
            "meta": None,
            "detail": None,
            "logs": None,
            "error": {"code": code, "raw_message": "", "message": message, "detail": None},
        }
    return json.dumps(body, separators=(",", ":")).encode()


def error_response(shape: ErrorShape, status: int, message: str) -> web.Response:
    """The answer ``status`` whose body, in ``shape``, says ``message``."""
    return web.Response(
        status=status, body=error_body(shape, status, message), content_type="application/json"
    )
