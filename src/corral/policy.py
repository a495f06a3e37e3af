"""Pure rules shared by every backend and the worker: names, priorities, backoff.

Nothing here does I/O, so each rule is written once and unit-tested directly.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from corral.errors import ConfigurationError, InvalidName, ValidationError

__all__ = [
    "JOB_ID",
    "KEY",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "QUEUE_NAME",
    "TASK_NAME",
    "Backoff",
    "BackoffSpec",
    "backoff_from_json",
    "check_job_id",
    "check_key",
    "check_priority",
    "check_queue_name",
    "check_task_name",
    "coerce_backoff",
]

MIN_PRIORITY = -1000
MAX_PRIORITY = 1000

#: The name rules as regular expressions (whole-string), also published in the OpenAPI
#: document so clients can check names before they send them.
QUEUE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}"
TASK_NAME = r"[A-Za-z_][A-Za-z0-9_.:-]{0,199}"
JOB_ID = r"[A-Za-z0-9][A-Za-z0-9_.:@=+-]{0,199}"
KEY = r"[A-Za-z0-9][A-Za-z0-9_.:@=+/#-]{0,199}"

_QUEUE = re.compile(QUEUE_NAME)
_TASK = re.compile(TASK_NAME)
_JOB_ID = re.compile(JOB_ID)
_KEY = re.compile(KEY)


def _check(kind: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidName(f"invalid {kind} {value!r}: {rule}")
    return value


def check_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name, else raise InvalidName."""
    return _check(
        "queue name",
        name,
        _QUEUE,
        "use 1-100 of A-Z a-z 0-9 _ . : - starting with a letter or digit",
    )


def check_task_name(name: object) -> str:
    """Return ``name`` if it is a valid task name, else raise InvalidName."""
    return _check(
        "task name", name, _TASK, "use 1-200 of A-Z a-z 0-9 _ . : - starting with a letter or _"
    )


def check_job_id(job_id: object) -> str:
    """Return ``job_id`` if it is a valid job id, else raise InvalidName."""
    return _check(
        "job id",
        job_id,
        _JOB_ID,
        "use 1-200 of A-Z a-z 0-9 _ . : @ = + - starting with a letter or digit",
    )


def check_key(kind: str, key: object) -> str:
    """Return ``key`` if it is a valid group name or dedupe key, else raise InvalidName."""
    return _check(
        kind,
        key,
        _KEY,
        "use 1-200 of A-Z a-z 0-9 _ . : @ = + / # - starting with a letter or digit",
    )


def check_priority(priority: object) -> int:
    """Return ``priority`` if it is an int in [-1000, 1000] (higher runs first)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError(f"priority must be an integer, got {priority!r}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValidationError(
            f"priority {priority} is out of range [{MIN_PRIORITY}, {MAX_PRIORITY}]"
        )
    return priority


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retry number ``n`` (1 = the first retry).

    ``fixed``: always ``base`` seconds. ``exponential``: ``base * 2**(n-1)``.
    Both are capped at ``cap`` seconds; with ``jitter`` the wait is drawn uniformly
    from [wait/2, wait] so that jobs failing together do not retry together.
    """

    kind: Literal["fixed", "exponential"] = "exponential"
    base: float = 1.0
    cap: float = 3600.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential"):
            raise ConfigurationError(
                f"backoff kind must be 'fixed' or 'exponential', got {self.kind!r}"
            )
        if self.base < 0 or self.cap < 0:
            raise ConfigurationError("backoff base and cap must be >= 0 seconds")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        wait = self.base if self.kind == "fixed" else self.base * 2 ** min(retry - 1, 60)
        wait = min(wait, self.cap)
        if self.jitter and wait > 0:
            wait = (rng or random).uniform(wait / 2, wait)
        return wait

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "base": self.base, "cap": self.cap, "jitter": self.jitter}


#: What ``backoff=`` accepts: "fixed", "exponential", a number of seconds (fixed,
#: no jitter), a Backoff, or a callable ``(retry, error) -> seconds``.
BackoffSpec = Backoff | str | float | int | Callable[[int, BaseException], float]


def coerce_backoff(spec: BackoffSpec) -> Backoff | Callable[[int, BaseException], float]:
    """Normalise a ``backoff=`` argument; raises ConfigurationError naming the value."""
    if isinstance(spec, Backoff):
        return spec
    if isinstance(spec, str):
        if spec == "fixed":
            return Backoff(kind="fixed")
        if spec == "exponential":
            return Backoff(kind="exponential")
        raise ConfigurationError(f"backoff must be 'fixed' or 'exponential', got {spec!r}")
    if isinstance(spec, bool):
        raise ConfigurationError(f"backoff must be a number of seconds, got {spec!r}")
    if isinstance(spec, int | float):
        if spec < 0:
            raise ConfigurationError(f"backoff must be >= 0 seconds, got {spec!r}")
        return Backoff(kind="fixed", base=float(spec), cap=float(spec), jitter=False)
    if callable(spec):
        return spec
    raise ConfigurationError(f"unsupported backoff {spec!r}")


def backoff_from_json(value: Any) -> Backoff:
    """Rebuild a Backoff stored in a job's options."""
    if not isinstance(value, dict):
        raise ConfigurationError(f"stored backoff must be an object, got {value!r}")
    return Backoff(
        kind=value.get("kind", "exponential"),
        base=float(value.get("base", 1.0)),
        cap=float(value.get("cap", 3600.0)),
        jitter=bool(value.get("jitter", True)),
    )
