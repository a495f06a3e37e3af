"""What the job page shows, worked out from a job: its progress bar, its timeline and
its options. Pure functions of the job's fields, so the templates stay simple."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from corral.backends.base import JobState
from corral.job import Job
from corral.task import Task

__all__ = ["Bar", "Step", "bar_of", "options_of", "timeline_of"]

#: Dict keys a progress value uses for "how far" and "out of how many".
_DONE = ("current", "done", "completed", "processed", "count", "step", "page", "item", "n")
_TOTAL = ("total", "steps", "pages", "items", "of", "max", "size")


@dataclass(frozen=True, slots=True)
class Bar:
    """A progress bar: ``percent`` (0-100) and the label beside it."""

    percent: float
    label: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _pick(data: dict[str, Any], words: tuple[str, ...], skip: str = "") -> tuple[str, float]:
    """The first numeric entry whose key (lower case, without ``_``) is or starts or ends
    with one of ``words``: ``totalPages`` and ``pages_total`` both count as totals."""
    for key, value in data.items():
        name = str(key).lower().replace("_", "")
        number = _number(value)
        if key == skip or number is None:
            continue
        if any(name == w or name.startswith(w) or name.endswith(w) for w in words):
            return str(key), number
    return "", -1.0


def bar_of(progress: Any) -> Bar | None:
    """A bar for a progress value that reads as one: a number 0-100 (a percentage), a
    dict with ``percent``, or a dict with a count and a total (``{"currentPage": 25,
    "totalPages": 60}``). Anything else has no bar (the page shows the value)."""
    number = _number(progress)
    if number is not None:
        return Bar(min(max(number, 0.0), 100.0), f"{number:g}%") if 0 <= number <= 100 else None
    if not isinstance(progress, dict):
        return None
    percent = _number(progress.get("percent", progress.get("percentage")))
    if percent is not None and 0 <= percent <= 100:
        return Bar(percent, f"{percent:g}%")
    total_key, total = _pick(progress, _TOTAL)
    done_key, done = _pick(progress, _DONE, skip=total_key)
    if not total_key or not done_key or total <= 0 or done < 0:
        return None
    share = min(done / total, 1.0) * 100
    return Bar(share, f"{done:g} of {total:g} ({share:.0f}%)")


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the timeline: what happened, when, and the attempt's error if any."""

    label: str
    at: datetime | None
    kind: str = ""  # ok, bad, warn, info: the dot's colour
    detail: str = ""
    error: dict[str, Any] | None = None
    worker: str = ""


def _ms(value: Any) -> datetime | None:
    number = _number(value)
    return None if number is None else datetime.fromtimestamp(number / 1000, tz=UTC)


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 1:
        return f"took {seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"took {seconds:.1f} s"
    return f"took {seconds / 60:.1f} min"


def timeline_of(job: Job, errors: list[dict[str, Any]]) -> list[Step]:
    """Created, due, each failed attempt (with its error), the latest attempt's start
    and the end. Earlier attempts' start times are not stored: only their failures."""
    steps = [Step("Created", job.created_at, "info")]
    if job.run_at is not None and job.created_at is not None and job.run_at > job.created_at:
        steps.append(Step("Retry due" if errors else "Due", job.run_at, "warn"))
    for error in errors:
        attempt = error.get("attempt", "?")
        steps.append(
            Step(
                f"Attempt {attempt} failed",
                _ms(error.get("at")),
                "bad",
                f"{error.get('type', 'Error')}: {error.get('message', '')}",
                error,
                str(error.get("worker") or ""),
            )
        )
    state = job.state
    if job.started_at is not None and state is not JobState.WAITING:
        running = "running now" if state is JobState.ACTIVE else ""
        steps.append(
            Step(
                f"Attempt {job.attempts} started",
                job.started_at,
                "info",
                running,
                worker=job.worker or "",
            )
        )
    end = {
        JobState.COMPLETED: ("Completed", "ok"),
        JobState.FAILED: ("Failed for good", "bad"),
        JobState.CANCELLED: ("Cancelled", "muted"),
    }.get(state)
    if end is not None:
        label, kind = end
        took = _took(job.started_at, job.finished_at) if state is JobState.COMPLETED else ""
        steps.append(Step(label, job.finished_at, kind, took))
    # Errors come from the worker's clock, the rest from the store's: order by time.
    never = datetime.max.replace(tzinfo=UTC)
    return steps[:1] + sorted(steps[1:], key=lambda step: step.at or never)


def options_of(job: Job, task: Task[Any, Any] | None) -> list[tuple[str, str]]:
    """(name, value) rows: the job's own settings, each per-job override, and the
    registered task's defaults where the job has none."""
    stored = job.options
    rows = [("Priority", str(job.priority)), ("Group", job.group or "—")]
    if job.dedupe_key:
        rows.append(("Dedupe key", job.dedupe_key))
    config = task.config if task is not None else None
    attempts = stored.get("attempts", config.attempts if config else None)
    rows.append(("Attempts", "—" if attempts is None else f"{job.attempts} of {attempts}"))
    timeout = stored.get("timeout", config.timeout if config else None)
    rows.append(("Timeout", "none" if timeout is None else f"{timeout:g} s"))
    if "backoff" in stored:
        rows.append(("Backoff", str(stored["backoff"])))
    if job.stalls:
        rows.append(("Stalls", str(job.stalls)))
    overridden = sorted(k for k in ("attempts", "timeout", "backoff") if k in stored)
    source = ", ".join(overridden) + " set for this job" if overridden else "the task's defaults"
    rows.append(("Settings from", source if config or overridden else "the worker's task"))
    return rows
