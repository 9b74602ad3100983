"""What ``legnext`` prints: one JSON document per job (piped, or ``--json``) or text lines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from pathlib import Path

    from legnext_async._models import Balance, Task
    from legnext_async._store import JobRecord

__all__ = [
    "balance_document",
    "emit",
    "record_document",
    "task_document",
    "task_lines",
]

_ACTIONS = ("upscale", "variation", "inpaint", "outpaint", "pan", "remix", "edit", "enhance")


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def task_document(task: Task, *, files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """A job as one JSON object: its status, outputs, actions, timings, points and files."""
    output = task.output
    meta = task.meta
    error = task.error
    document: dict[str, Any] = {
        "job_id": task.job_id,
        "task_type": task.task_type.value,
        "status": task.status.value,
        "image_url": output.image_url,
        "image_urls": list(output.image_urls),
        "video_urls": list(output.video_urls),
        "actions": output.available_actions.to_json(),
        "created_at": _time(meta.created_at),
        "started_at": _time(meta.started_at),
        "ended_at": _time(meta.ended_at),
        "run_seconds": meta.run_seconds,
        "points": {"frozen": meta.usage.frozen, "consumed": meta.usage.consume},
        "error": (
            {"code": error.code, "message": error.message or error.raw_message}
            if error is not None
            else None
        ),
        "files": [str(path) for path in files],
    }
    if task.task_type.family == "text":
        document["prompts"] = list(output.prompts)
        document["description"] = output.description
        document["prompt_en"] = output.prompt_en
        document["final_prompt"] = output.final_prompt
    return document


def record_document(record: JobRecord) -> dict[str, Any]:
    """A job store's record as one JSON object (the last task seen, if any, under ``task``)."""
    task = record.task
    return {
        "key": record.key,
        "state": record.state.value,
        "endpoint": record.endpoint,
        "job_id": record.job_id,
        "request": dict(record.request),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "sent_at": record.sent_at,
        "points": {"frozen": record.points_frozen, "consumed": record.points_consumed},
        "files": list(record.files),
        "task": task_document(task) if task is not None else None,
    }


def balance_document(balance: Balance) -> dict[str, Any]:
    """The account's balance as one JSON object."""
    return {
        "account_id": balance.account_id,
        "balance_usd": balance.balance_usd,
        "available_credits": balance.available_credits,
        "available_points": balance.available_points,
        "alert_threshold": balance.alert_threshold,
        "low_balance_alert": balance.low_balance_alert,
        "updated_at": _time(balance.updated_at),
    }


def emit(out: TextIO, document: Mapping[str, Any]) -> None:
    """Write ``document`` as one line of JSON, flushed (a reader may act on it at once)."""
    out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()


def _numbers(images: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in images)


def task_lines(task: Task, *, files: Iterable[str | Path] = ()) -> list[str]:
    """A job for a person: a status line, the outputs, the actions offered, the files."""
    meta = task.meta
    took = f" in {meta.run_seconds:.1f} s" if meta.run_seconds is not None else ""
    points = f", {meta.usage.consume} points" if meta.usage.consume else ""
    lines = [f"{task.task_type.value} {task.job_id}: {task.status.value}{took}{points}"]
    if task.error is not None:
        lines.append(f"  error {task.error.code}: {task.error.message or task.error.raw_message}")
    output = task.output
    urls = output.image_urls or output.video_urls
    kind = "video" if output.video_urls and not output.image_urls else "image"
    lines.extend(f"  {kind} {n}  {url}" for n, url in enumerate(urls))
    if not urls and output.image_url:
        lines.append(f"  image    {output.image_url}")
    lines.extend(f"  prompt   {prompt}" for prompt in output.prompts)
    if output.description:
        lines.append(f"  description  {output.description}")
    actions = output.available_actions
    offered = [
        f"{name} {_numbers(actions.images_for(name))}"
        for name in (*_ACTIONS, "extend", *actions.other)
        if actions.images_for(name)
    ]
    if actions.reroll:
        offered.append("reroll")
    if offered:
        lines.append("  actions  " + "; ".join(offered))
    lines.extend(f"  saved    {path}" for path in files)
    return lines
