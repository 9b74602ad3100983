"""Draw ``docs/_static/poll-schedule.svg``: when a handle reads the status of one inpaint.

The job is submitted at 0 s, starts running at 1 s and runs 105 s (it ends at 106 s). The
two lower lanes come from the client's own schedule (``legnext_async._polling.next_delay``)
with the default run-time window of an inpaint and with a window learned from earlier jobs;
the two upper lanes are the fixed intervals other clients use, for comparison. Jitter is
left out so the picture is the same on every run.

Run from the repository root: ``python docs/_scripts/plot_schedule.py``. The SVG is written
by hand (no plotting library), so the docs build needs nothing extra.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from xml.sax.saxutils import escape

import attrs

from legnext_async import PollPolicy, Task, TaskStatus, TaskType
from legnext_async._models import Meta
from legnext_async._polling import DurationModel, PollState, next_delay

OUT: Final = Path(__file__).resolve().parent.parent / "_static" / "poll-schedule.svg"

#: The service's clock at submission (whole seconds, as the service writes them).
SERVICE_T0: Final = datetime(2026, 1, 12, 7, 42, 28, tzinfo=UTC)
START: Final = 1.0
RUN: Final = 105.0
END: Final = START + RUN
#: Run times of earlier inpaints the client saw finish, for the "learned" lane.
LEARNED_RUNS: Final = (101.0, 104.0, 107.0, 110.0)

# Drawing geometry, in SVG user units.
WIDTH: Final = 960
LEFT: Final = 250
RIGHT: Final = 800
T_MAX: Final = 130.0
LANE_H: Final = 54
TOP: Final = 96


@attrs.frozen
class Lane:
    """One row of the picture: a way of polling and the reads it makes."""

    label: str
    detail: str
    reads: tuple[float, ...]
    window: tuple[float, float] | None = None


def task_at(t: float) -> Task:
    """The job as a status read at client time ``t`` would see it."""
    started = SERVICE_T0 + timedelta(seconds=START) if t >= START else None
    ended = SERVICE_T0 + timedelta(seconds=END) if t >= END else None
    if t < START:
        status = TaskStatus.PENDING
    elif t < END:
        status = TaskStatus.PROCESSING
    else:
        status = TaskStatus.COMPLETED
    meta = Meta(created_at=SERVICE_T0, started_at=started, ended_at=ended)
    return Task(job_id="inpaint", task_type=TaskType.INPAINT, status=status, meta=meta)


def schedule_reads(durations: DurationModel, policy: PollPolicy) -> tuple[float, ...]:
    """The read times a handle makes, as ``TaskHandle`` drives ``next_delay`` (no jitter).

    The submission's answer (``pending``) seeds the schedule without a read; each read then
    updates the state the way ``TaskHandle._observe`` does.
    """
    state = PollState(task_type=TaskType.INPAINT, submitted_at=0.0)
    offset = SERVICE_T0.timestamp()  # the service's clock minus the client's
    now = 0.0
    task = task_at(now)
    reads: list[float] = []
    while not task.is_finished:
        now += next_delay(policy, durations, state, task, now, offset)
        task = task_at(now)
        reads.append(now)
        state.last_read_at = now
        if task.status.is_queued:
            state.last_queued_at = now
        elif state.first_running_at is None:
            state.first_running_at = now
    return tuple(reads)


def fixed_reads(first: float, interval: float) -> tuple[float, ...]:
    """Reads at ``first`` and every ``interval`` after, up to the one that sees the end."""
    reads = [first]
    while reads[-1] < END:
        reads.append(reads[-1] + interval)
    return tuple(reads)


def learned_model() -> DurationModel:
    """A duration model that has seen :data:`LEARNED_RUNS`."""
    model = DurationModel()
    for run in LEARNED_RUNS:
        model.observe(
            Task(
                job_id="earlier",
                task_type=TaskType.INPAINT,
                status=TaskStatus.COMPLETED,
                meta=Meta(started_at=SERVICE_T0, ended_at=SERVICE_T0 + timedelta(seconds=run)),
            )
        )
    return model


def lanes() -> list[Lane]:
    """The four rows, top to bottom."""
    policy = PollPolicy()
    default = DurationModel()
    learned = learned_model()
    d_low, d_high = default.window(TaskType.INPAINT)
    l_low, l_high = learned.window(TaskType.INPAINT)
    return [
        Lane("Fixed 3 s interval", "the official SDK's default", fixed_reads(3.0, 3.0)),
        Lane("10 s, then every 5 s", "the vendor's example script", fixed_reads(10.0, 5.0)),
        Lane(
            "PollPolicy() defaults",
            f"window {d_low:g}–{d_high:g} s after start",
            schedule_reads(default, policy),
            (START + d_low, START + d_high),
        ),
        Lane(
            "After learning",
            f"{len(LEARNED_RUNS)} runs of {min(LEARNED_RUNS):g}–{max(LEARNED_RUNS):g} s seen",
            schedule_reads(learned, policy),
            (START + l_low, START + l_high),
        ),
    ]


def x_of(t: float) -> float:
    """The x coordinate of time ``t`` (seconds)."""
    return LEFT + (RIGHT - LEFT) * t / T_MAX


def text(x: float, y: float, body: str, **attributes: str) -> str:
    """An SVG ``<text>`` element; attribute names use ``_`` for ``-``."""
    attrs_text = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{attrs_text}>{escape(body)}</text>'


def render(rows: list[Lane]) -> str:
    """The whole SVG document."""
    height = TOP + LANE_H * len(rows) + 88
    axis_y = TOP + LANE_H * len(rows) + 8
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="13"'
        ' role="img" aria-labelledby="title">',
        '<title id="title">Status reads of one inpaint under four poll schedules</title>',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        text(
            20,
            28,
            "Status reads of one inpaint: submitted at 0 s, running from 1 s, done at 106 s",
            font_size="16",
            font_weight="bold",
            fill="#222",
        ),
    ]
    # The job itself: queued, then running.
    job_y = 52
    out.append(text(20, job_y + 12, "The job", font_weight="bold", fill="#222"))
    out.append(
        f'<rect x="{x_of(0):.1f}" y="{job_y}" width="{x_of(START) - x_of(0):.1f}"'
        ' height="16" fill="#d0d0d0"/>'
    )
    out.append(
        f'<rect x="{x_of(START):.1f}" y="{job_y}" width="{x_of(END) - x_of(START):.1f}"'
        ' height="16" fill="#8a8a8a"/>'
    )
    out.append(text(x_of(START) + 6, job_y + 12.5, "processing (105 s)", fill="#ffffff"))
    for index, lane in enumerate(rows):
        top = TOP + LANE_H * index
        mid = top + LANE_H / 2
        if index % 2 == 0:
            out.append(f'<rect x="0" y="{top}" width="{WIDTH}" height="{LANE_H}" fill="#f6f7f9"/>')
        if lane.window is not None:
            low, high = lane.window
            out.append(
                f'<rect x="{x_of(low):.1f}" y="{top + 6}" width="{x_of(high) - x_of(low):.1f}"'
                f' height="{LANE_H - 12}" fill="#bcd7f5" stroke="#5b8fd1" stroke-width="1"/>'
            )
        out.append(text(20, mid - 3, lane.label, font_weight="bold", fill="#222"))
        out.append(text(20, mid + 14, lane.detail, fill="#555", font_size="12"))
        out.append(
            f'<line x1="{x_of(0):.1f}" y1="{mid}" x2="{x_of(T_MAX):.1f}" y2="{mid}"'
            ' stroke="#c4c4c4"/>'
        )
        for read in lane.reads:
            seen = read >= END
            colour = "#2e7d32" if seen else "#1f3b73"
            out.append(
                f'<line x1="{x_of(read):.1f}" y1="{mid - 11}" x2="{x_of(read):.1f}"'
                f' y2="{mid + 11}" stroke="{colour}" stroke-width="{2.5 if seen else 2}"/>'
            )
        lag = lane.reads[-1] - END
        out.append(
            text(RIGHT + 18, mid - 3, f"{len(lane.reads)} reads", font_weight="bold", fill="#222")
        )
        out.append(text(RIGHT + 18, mid + 14, f"seen {lag:g} s late", fill="#555"))

    # When the job ends, across every lane (drawn over the lanes' backgrounds).
    out.append(
        f'<line x1="{x_of(END):.1f}" y1="{job_y}" x2="{x_of(END):.1f}" y2="{axis_y}"'
        ' stroke="#2e7d32" stroke-width="1.5" stroke-dasharray="5 4"/>'
    )
    out.append(text(x_of(END) + 4, job_y + 12.5, "ends", fill="#2e7d32"))

    # The time axis.
    out.append(
        f'<line x1="{x_of(0):.1f}" y1="{axis_y}" x2="{x_of(T_MAX):.1f}" y2="{axis_y}"'
        ' stroke="#222"/>'
    )
    for second in range(0, int(T_MAX) + 1, 10):
        x = x_of(second)
        out.append(
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 5}" stroke="#222"/>'
        )
        out.append(text(x, axis_y + 19, f"{second}", text_anchor="middle", fill="#222"))
    out.append(text(x_of(T_MAX / 2), axis_y + 38, "seconds after submission", text_anchor="middle"))

    # Legend.
    legend_y = axis_y + 64
    out.append(
        f'<rect x="20" y="{legend_y - 11}" width="22" height="14" fill="#bcd7f5" stroke="#5b8fd1"/>'
    )
    out.append(text(48, legend_y, "predicted window: started_at + [low, high]", fill="#222"))
    out.append(
        f'<line x1="350" y1="{legend_y - 12}" x2="350" y2="{legend_y + 3}" stroke="#1f3b73"'
        ' stroke-width="2"/>'
    )
    out.append(text(358, legend_y, "a status read", fill="#222"))
    out.append(
        f'<line x1="470" y1="{legend_y - 12}" x2="470" y2="{legend_y + 3}" stroke="#2e7d32"'
        ' stroke-width="2.5"/>'
    )
    out.append(text(478, legend_y, "the read that sees completed", fill="#222"))
    out.append(text(700, legend_y, "(jitter left out)", fill="#555", font_size="12"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    """Write the SVG and print the read times of each lane."""
    rows = lanes()
    OUT.write_text(render(rows), encoding="utf-8")
    for lane in rows:
        times = ", ".join(f"{t:g}" for t in lane.reads)
        print(f"{lane.label}: {len(lane.reads)} reads at {times}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
