"""What a read-only key sees of a job: every value whose name looks secret is ``***``.

Names come from wherever the data has them: the task's parameter names for positional
arguments (when this server's app registers the task), keyword names, and dict keys at
any depth inside arguments, progress and a result. What has no name is shown: error
messages and tracebacks, log lines, a bare (non-dict) progress or result value, and the
positional arguments of a task this app does not register. Unreadable stored text
(``corrupt``) of arguments, progress and result is hidden whole, since nothing in it
can be told apart; an unreadable error entry is shown like any error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.job import Job

if TYPE_CHECKING:
    from corral.web.deps import Settings

__all__ = ["MASK", "mask", "mask_job"]

MASK = "***"


def mask(value: Any, settings: Settings) -> Any:
    """``value`` with every dict entry under a secret-looking key replaced, at any depth."""
    if isinstance(value, dict):
        return {
            k: MASK if settings.is_secret(str(k)) else mask(v, settings) for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v, settings) for v in value]
    return value


def _positional_names(job: Job, settings: Settings, count: int) -> list[str | None]:
    task = settings.corral.tasks.get(job.name)
    if task is None:
        return [None] * count
    rest = next(
        (p.name for p in task.signature.parameters.values() if p.kind is p.VAR_POSITIONAL), None
    )
    names = task.param_names
    return [names[i] if i < len(names) else rest for i in range(count)]


def mask_job(data: dict[str, Any], job: Job, settings: Settings) -> dict[str, Any]:
    """Mask ``data`` (``job.to_dict()``) in place for a read-only caller; returns it."""
    names = _positional_names(job, settings, len(data["args"]))
    data["args"] = [
        MASK if name is not None and settings.is_secret(name) else mask(value, settings)
        for name, value in zip(names, data["args"], strict=True)
    ]
    for field in ("kwargs", "progress", "result"):
        data[field] = mask(data[field], settings)
    data["corrupt"] = {
        field: raw if field == "errors" else MASK for field, raw in data["corrupt"].items()
    }
    return data
