"""Per-job overrides (JobOptions) and per-task defaults (TaskConfig)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from corral.backends.base import Retention
from corral.errors import ConfigurationError, InvalidName, ValidationError
from corral.options import DEFAULT_COMPLETED, DEFAULT_FAILED, JobOptions, TaskConfig
from corral.policy import Backoff

# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize("delay", [-1, -0.001, timedelta(seconds=-5)])
def test_negative_delay_is_rejected(delay: object) -> None:
    with pytest.raises(ValidationError, match="delay must be >= 0"):
        JobOptions(delay=delay)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [True, "10", math.nan, math.inf, [1]])
def test_delay_of_the_wrong_type_is_rejected(delay: object) -> None:
    with pytest.raises(ValidationError, match="delay must be seconds"):
        JobOptions(delay=delay)  # type: ignore[arg-type]


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        JobOptions(delay=datetime(2030, 1, 1, 12, 0))


@pytest.mark.parametrize("attempts", [0, -1, True, False, 1.5, "3"])
def test_bad_attempts_are_rejected(attempts: object) -> None:
    with pytest.raises(ValidationError, match="attempts must be an integer >= 1") as info:
        JobOptions(attempts=attempts)  # type: ignore[arg-type]
    assert repr(attempts) in str(info.value)


def test_callable_backoff_per_job_is_rejected() -> None:
    with pytest.raises(ValidationError, match="callable backoff"):
        JobOptions(backoff=lambda retry, error: 1.0)


def test_backoff_object_and_number_per_job_are_accepted() -> None:
    assert JobOptions(backoff=Backoff(kind="fixed", base=2.0)).backoff.base == 2.0
    assert JobOptions(backoff=5).backoff == 5


@pytest.mark.parametrize("timeout", [0, -1, timedelta(0), math.nan, True, "5"])
def test_bad_timeout_is_rejected(timeout: object) -> None:
    with pytest.raises(ValidationError, match="timeout"):
        JobOptions(timeout=timeout)  # type: ignore[arg-type]


def test_bad_queue_job_id_and_priority_are_rejected() -> None:
    with pytest.raises(InvalidName, match="queue name"):
        JobOptions(queue="no spaces")
    with pytest.raises(InvalidName, match="job id"):
        JobOptions(job_id="a/b")
    with pytest.raises(ValidationError, match="out of range"):
        JobOptions(priority=1001)


# -- delay_ms --------------------------------------------------------------------------


def test_no_delay() -> None:
    assert JobOptions().delay_ms() == (0, 0)
    assert JobOptions(delay=0).delay_ms() == (0, 0)


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        (1, 1000),
        (1.5, 1500),
        (0.05, 50),
        (timedelta(seconds=2), 2000),
        (timedelta(minutes=1), 60000),
    ],
)
def test_relative_delay_in_ms(delay: object, expected: int) -> None:
    assert JobOptions(delay=delay).delay_ms() == (expected, 0)  # type: ignore[arg-type]


def test_aware_datetime_is_absolute_ms() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert JobOptions(delay=when).delay_ms() == (0, int(when.timestamp() * 1000))


def test_aware_datetime_in_another_zone_is_converted() -> None:
    utc = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    east = utc.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert JobOptions(delay=east).delay_ms() == JobOptions(delay=utc).delay_ms()
    assert JobOptions(delay=east).delay_ms()[1] == 1906545600000


def test_datetime_in_the_past_still_gives_a_positive_run_at() -> None:
    _, run_at = JobOptions(delay=datetime(1970, 1, 1, tzinfo=UTC)).delay_ms()
    assert run_at >= 1


# -- stored / merged -------------------------------------------------------------------


def test_stored_is_empty_without_worker_overrides() -> None:
    assert JobOptions().stored() == b""
    # queue, priority, delay and job id are applied at enqueue: nothing for the worker
    assert JobOptions(queue="q", priority=5, delay=3, job_id="x").stored() == b""


def test_stored_holds_attempts_timeout_and_backoff() -> None:
    options = JobOptions(attempts=7, timeout=timedelta(seconds=90), backoff="fixed")
    assert orjson.loads(options.stored()) == {
        "attempts": 7,
        "timeout": 90.0,
        "backoff": {"kind": "fixed", "base": 1.0, "cap": 3600.0, "jitter": True},
    }


def test_merged_takes_what_the_other_sets() -> None:
    base = JobOptions(queue="a", priority=1, attempts=2)
    merged = base.merged(JobOptions(priority=9, delay=5))
    assert (merged.queue, merged.priority, merged.attempts, merged.delay) == ("a", 9, 2, 5)
    assert base.priority == 1  # frozen: the original is untouched


# -- TaskConfig ------------------------------------------------------------------------


def _build(**overrides: object) -> TaskConfig:
    params: dict[str, object] = {
        "queue": "default",
        "priority": 0,
        "attempts": 3,
        "backoff": "exponential",
        "timeout": None,
        "completed": DEFAULT_COMPLETED,
        "failed": DEFAULT_FAILED,
    }
    params.update(overrides)
    return TaskConfig.build("jobs.thing", **params)  # type: ignore[arg-type]


def test_task_config_build_normalises() -> None:
    config = _build(backoff=2, timeout=timedelta(seconds=30))
    assert config.backoff == Backoff(kind="fixed", base=2.0, cap=2.0, jitter=False)
    assert config.timeout == 30.0


@pytest.mark.parametrize(
    "overrides",
    [
        {"queue": "bad queue"},
        {"priority": 5000},
        {"attempts": 0},
        {"timeout": -1},
    ],
)
def test_task_config_errors_are_configuration_errors_naming_the_task(
    overrides: dict[str, object],
) -> None:
    with pytest.raises(ConfigurationError, match=r"^task 'jobs\.thing': "):
        _build(**overrides)


def test_task_config_bad_backoff_names_the_task_too() -> None:
    with pytest.raises(ConfigurationError, match=r"^task 'jobs\.thing': .*'linear'"):
        _build(backoff="linear")


def test_for_job_applies_stored_overrides() -> None:
    config = _build(attempts=3, timeout=10.0)
    stored = JobOptions(attempts=9, timeout=1.5, backoff=0.25).stored()
    job = config.for_job(stored)
    assert (job.attempts, job.timeout) == (9, 1.5)
    assert job.backoff == Backoff(kind="fixed", base=0.25, cap=0.25, jitter=False)
    assert config.for_job(b"") is config


def test_default_retention() -> None:
    assert Retention(count=1000, max_age=86400.0) == DEFAULT_COMPLETED
    assert Retention() == DEFAULT_FAILED
