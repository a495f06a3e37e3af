"""Per-task defaults and per-job overrides, and how they combine.

A job stores only the overrides given when it was enqueued; the worker combines
them with the defaults of the task it has registered. A producer that only knows a
task's name (CLI, HTTP, another service) therefore gets the task's defaults too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from corral.backends.base import Retention
from corral.errors import ConfigurationError, ValidationError
from corral.policy import (
    Backoff,
    BackoffSpec,
    backoff_from_json,
    check_job_id,
    check_key,
    check_priority,
    check_queue_name,
    coerce_backoff,
)

__all__ = ["DEFAULT_COMPLETED", "DEFAULT_FAILED", "Isolation", "JobOptions", "TaskConfig"]

#: Completed (and cancelled) jobs: the last 1,000, for up to a day.
DEFAULT_COMPLETED = Retention(count=1000, max_age=86400.0)
#: Failed jobs are the dead-letter set: kept until retried or removed.
DEFAULT_FAILED = Retention()

Delay = float | int | timedelta | datetime


def _positive_seconds(name: str, value: float | int | timedelta | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a number of seconds, got {value!r}")
    if value <= 0:
        raise ValidationError(f"{name} must be > 0 seconds, got {value!r}")
    return float(value)


def _attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"attempts must be an integer >= 1, got {value!r}")
    return value


_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
_UNITS.update({f"{u}b": n for u, n in list(_UNITS.items()) if u not in ("", "b")})
_UNITS.update({"ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3})
_UNITS["gib"] = 1024**3


def parse_bytes(name: str, value: object) -> int:
    """A size: an int of bytes, or text like ``"256MB"``, ``"1.5GiB"``, ``"512k"``
    (k/M/G are powers of 1000, Ki/Mi/Gi of 1024)."""
    number: float
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(digits) :]
        try:
            number = float(digits) * _UNITS[unit]
        except (ValueError, KeyError):
            raise ValidationError(
                f"{name} must be bytes or a size like '256MB' or '1GiB', got {value!r}"
            ) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValidationError(f"{name} must be bytes or a size like '256MB', got {value!r}")
    if not math.isfinite(number) or number < 1024 * 1024:
        raise ValidationError(f"{name} must be at least 1 MiB, got {value!r}")
    return int(number)


@dataclass(frozen=True, slots=True, kw_only=True)
class Isolation:
    """How the jobs of a task registered with ``isolation="process"`` run: in a
    child process of the worker, killed past ``memory_limit`` bytes of resident
    memory; a child is replaced after ``max_tasks_per_child`` jobs."""

    memory_limit: int | None = None
    max_tasks_per_child: int | None = None

    @classmethod
    def build(
        cls, isolation: str | None, memory_limit: int | str | None, max_tasks_per_child: int | None
    ) -> Isolation | None:
        if isolation is None:
            given = [
                name
                for name, value in (
                    ("memory_limit", memory_limit),
                    ("max_tasks_per_child", max_tasks_per_child),
                )
                if value is not None
            ]
            if given:
                raise ConfigurationError(
                    f"{', '.join(given)} applies to isolated tasks: add isolation='process'"
                )
            return None
        if isolation != "process":
            raise ConfigurationError(f"isolation must be 'process' or None, got {isolation!r}")
        if max_tasks_per_child is not None and (
            isinstance(max_tasks_per_child, bool)
            or not isinstance(max_tasks_per_child, int)
            or max_tasks_per_child < 1
        ):
            raise ConfigurationError(
                f"max_tasks_per_child must be an integer >= 1, got {max_tasks_per_child!r}"
            )
        limit = None if memory_limit is None else parse_bytes("memory_limit", memory_limit)
        return cls(memory_limit=limit, max_tasks_per_child=max_tasks_per_child)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskConfig:
    """The defaults a task was registered with (see ``Corral.task``)."""

    name: str
    queue: str = "default"
    priority: int = 0
    attempts: int = 3
    backoff: Backoff | Any = field(default_factory=Backoff)
    timeout: float | None = None
    completed: Retention = DEFAULT_COMPLETED
    failed: Retention = DEFAULT_FAILED
    #: Set for ``isolation="process"``: the job runs in a child process.
    isolation: Isolation | None = None

    @classmethod
    def build(
        cls,
        name: str,
        *,
        queue: str,
        priority: int,
        attempts: int,
        backoff: BackoffSpec,
        timeout: float | timedelta | None,
        completed: Retention,
        failed: Retention,
        isolation: str | None = None,
        memory_limit: int | str | None = None,
        max_tasks_per_child: int | None = None,
    ) -> TaskConfig:
        try:
            return cls(
                name=name,
                queue=check_queue_name(queue),
                priority=check_priority(priority),
                attempts=_attempts(attempts),
                backoff=coerce_backoff(backoff),
                timeout=_positive_seconds("timeout", timeout),
                completed=completed,
                failed=failed,
                isolation=Isolation.build(isolation, memory_limit, max_tasks_per_child),
            )
        except (ValidationError, ConfigurationError) as exc:
            raise ConfigurationError(f"task {name!r}: {exc}") from None

    def for_job(self, options: bytes) -> TaskConfig:
        """This config with a stored job's overrides applied."""
        if not options:
            return self
        data = orjson.loads(options)
        changes: dict[str, Any] = {}
        if "attempts" in data:
            changes["attempts"] = int(data["attempts"])
        if "timeout" in data:
            changes["timeout"] = data["timeout"]
        if "backoff" in data:
            changes["backoff"] = backoff_from_json(data["backoff"])
        return replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """Per-job overrides given at enqueue time; ``None`` means "use the task's"."""

    queue: str | None = None
    priority: int | None = None
    delay: Delay | None = None
    attempts: int | None = None
    backoff: Any = None
    timeout: float | timedelta | None = None
    job_id: str | None = None
    group: str | None = None
    dedupe_key: str | None = None
    dedupe_window: float | timedelta | None = None
    debounce: float | timedelta | None = None
    notify: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue_name(self.queue)
        if self.priority is not None:
            check_priority(self.priority)
        if self.attempts is not None:
            _attempts(self.attempts)
        if self.job_id is not None:
            check_job_id(self.job_id)
        if self.backoff is not None:
            if callable(self.backoff) and not isinstance(self.backoff, Backoff):
                raise ValidationError(
                    "a callable backoff can only be a task default (it cannot be stored in a job)"
                )
            try:
                coerce_backoff(self.backoff)
            except ConfigurationError as exc:
                raise ValidationError(str(exc)) from None
        _positive_seconds("timeout", self.timeout)
        self.delay_ms()
        if self.group is not None:
            check_key("group", self.group)
        if self.dedupe_key is not None:
            check_key("dedupe_key", self.dedupe_key)
        _positive_seconds("dedupe_window", self.dedupe_window)
        _positive_seconds("debounce", self.debounce)

    def check_dedupe(self) -> None:
        """Refuse combinations that cannot mean anything (checked once all options
        are merged, since a task default and a per-job override may combine)."""
        if self.dedupe_key is None and (self.dedupe_window or self.debounce):
            raise ValidationError("dedupe_window and debounce need a dedupe_key")
        if self.dedupe_window is not None and self.debounce is not None:
            raise ValidationError(
                "give dedupe_window or debounce, not both: a debounced job holds its key "
                "until it starts"
            )
        if self.debounce is not None and self.delay is not None:
            raise ValidationError("debounce sets the job's start: do not give a delay too")

    def dedupe_fields(self) -> dict[str, Any]:
        """The group/dedupe fields of a NewJob."""
        window = _positive_seconds("dedupe_window", self.dedupe_window)
        debounce = _positive_seconds("debounce", self.debounce)
        return {
            "group": self.group or "",
            "dedupe_key": self.dedupe_key or "",
            "dedupe_ms": 0 if window is None else max(1, int(window * 1000)),
            "debounce_ms": 0 if debounce is None else max(1, int(debounce * 1000)),
        }

    def merged(self, other: JobOptions) -> JobOptions:
        """These options with every field ``other`` sets taken from ``other``."""
        changes = {
            name: getattr(other, name)
            for name in JobOptions.__dataclass_fields__
            if getattr(other, name) is not None
        }
        return replace(self, **changes)

    def delay_ms(self) -> tuple[int, int]:
        """(relative delay ms, absolute run-at ms) for the backend; zeros when unset."""
        delay = self.delay
        if delay is None:
            return 0, 0
        if isinstance(delay, datetime):
            if delay.tzinfo is None:
                raise ValidationError(
                    "delay as a datetime must be timezone-aware (e.g. datetime.now(timezone.utc))"
                )
            return 0, max(1, int(delay.astimezone(UTC).timestamp() * 1000))
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
        ):
            raise ValidationError(
                f"delay must be seconds, a timedelta or a datetime, got {delay!r}"
            )
        if delay < 0:
            raise ValidationError(f"delay must be >= 0 seconds, got {delay!r}")
        return int(delay * 1000), 0

    def stored(self) -> bytes:
        """The overrides the worker needs, as JSON text (``b""`` when none)."""
        data: dict[str, Any] = {}
        if self.attempts is not None:
            data["attempts"] = self.attempts
        if self.timeout is not None:
            data["timeout"] = _positive_seconds("timeout", self.timeout)
        if self.backoff is not None:
            backoff = coerce_backoff(self.backoff)
            assert isinstance(backoff, Backoff)
            data["backoff"] = backoff.to_json()
        if self.notify:
            from corral.notify.registry import target_json

            data["notify"] = [target_json(target) for target in self.notify]
        return orjson.dumps(data) if data else b""
