"""executor.failure_outcome: retry or dead-letter, by attempts, signals and backoff."""

from __future__ import annotations

import random

import orjson
import pytest

from corral.backends.base import Retention
from corral.errors import (
    InvalidArguments,
    JobTimeout,
    NoRetry,
    Retry,
    SerializationError,
    UnknownTask,
)
from corral.options import TaskConfig
from corral.policy import Backoff
from corral.worker.executor import Kind, error_record, failure_outcome


def _config(attempts: int = 3, backoff: object = None) -> TaskConfig:
    return TaskConfig(
        name="t.job",
        attempts=attempts,
        backoff=backoff or Backoff(kind="fixed", base=2.0, jitter=False),
        completed=Retention(),
        failed=Retention(),
    )


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _rng() -> random.Random:
    return random.Random(0)


@pytest.mark.parametrize("attempt", [1, 2])
def test_error_with_attempts_left_retries_after_the_backoff(attempt: int) -> None:
    outcome = failure_outcome(_raised(ValueError("boom")), _config(3), attempt, _rng())
    assert outcome.kind is Kind.RETRY
    assert outcome.retry_in_ms == 2000
    assert outcome.count_attempt is True
    assert outcome.error_text == "ValueError: boom"


def test_last_attempt_fails() -> None:
    outcome = failure_outcome(_raised(ValueError("boom")), _config(3), 3, _rng())
    assert outcome.kind is Kind.FAILED
    assert outcome.error_text == "ValueError: boom"


def test_single_attempt_task_fails_at_once() -> None:
    assert failure_outcome(ValueError("x"), _config(1), 1, _rng()).kind is Kind.FAILED


def test_exponential_backoff_with_jitter_is_used_for_the_wait() -> None:
    config = _config(10, Backoff(kind="exponential", base=1.0, jitter=True))
    for retry, full in [(1, 1000), (2, 2000), (3, 4000)]:
        outcome = failure_outcome(ValueError("x"), config, retry, _rng())
        assert outcome.kind is Kind.RETRY
        assert full // 2 <= outcome.retry_in_ms <= full


def test_callable_backoff_gets_retry_and_error() -> None:
    seen: list[tuple[int, BaseException]] = []

    def backoff(retry: int, error: BaseException) -> float:
        seen.append((retry, error))
        return 0.25 * retry

    error = ValueError("x")
    outcome = failure_outcome(error, _config(5, backoff), 2, _rng())
    assert outcome.kind is Kind.RETRY
    assert outcome.retry_in_ms == 500
    assert seen == [(2, error)]


def test_callable_backoff_that_fails_falls_back_to_the_default() -> None:
    def backoff(retry: int, error: BaseException) -> float:
        raise RuntimeError("bad backoff")

    outcome = failure_outcome(ValueError("x"), _config(5, backoff), 1, _rng())
    assert outcome.kind is Kind.RETRY
    assert 500 <= outcome.retry_in_ms <= 1000  # default: exponential 1 s with jitter


def test_negative_callable_backoff_is_clamped_to_zero() -> None:
    outcome = failure_outcome(ValueError("x"), _config(5, lambda r, e: -3), 1, _rng())
    assert (outcome.kind, outcome.retry_in_ms) == (Kind.RETRY, 0)


def test_no_retry_is_permanent_even_with_attempts_left() -> None:
    outcome = failure_outcome(_raised(NoRetry("give up")), _config(5), 1, _rng())
    assert outcome.kind is Kind.FAILED
    record = orjson.loads(outcome.error)
    assert record["type"] == "corral.errors.NoRetry"
    assert record["message"] == "give up"
    assert record["attempt"] == 1
    assert record["traceback"] is None


@pytest.mark.parametrize(
    "error",
    [UnknownTask("nope"), InvalidArguments("bad args"), SerializationError("not json")],
)
def test_engine_errors_are_permanent(error: Exception) -> None:
    assert failure_outcome(error, _config(5), 1, _rng()).kind is Kind.FAILED


def test_timeout_is_retried_like_any_error() -> None:
    outcome = failure_outcome(JobTimeout("too slow"), _config(2), 1, _rng())
    assert outcome.kind is Kind.RETRY


def test_unknown_task_without_config_fails() -> None:
    outcome = failure_outcome(ValueError("x"), None, 1, _rng())
    assert outcome.kind is Kind.FAILED


def test_retry_with_delay_overrides_the_backoff() -> None:
    outcome = failure_outcome(Retry(delay=0.1), _config(3), 1, _rng())
    assert outcome.kind is Kind.RETRY
    assert outcome.retry_in_ms == 100
    assert outcome.count_attempt is True


def test_retry_without_delay_uses_the_backoff() -> None:
    outcome = failure_outcome(Retry(), _config(3), 2, _rng())
    assert (outcome.kind, outcome.retry_in_ms) == (Kind.RETRY, 2000)
    assert "retry requested by the task" in outcome.error_text


def test_retry_on_the_last_attempt_fails() -> None:
    outcome = failure_outcome(Retry(delay=0.1), _config(3), 3, _rng())
    assert outcome.kind is Kind.FAILED


def test_retry_without_counting_the_attempt_retries_even_on_the_last_attempt() -> None:
    outcome = failure_outcome(
        Retry("rate limited", delay=0.1, count_attempt=False), _config(3), 3, _rng()
    )
    assert outcome.kind is Kind.RETRY
    assert outcome.retry_in_ms == 100
    assert outcome.count_attempt is False


def test_error_record_fields() -> None:
    record = orjson.loads(error_record(_raised(KeyError("missing")), 2))
    assert record["type"] == "KeyError"
    assert record["message"] == "'missing'"
    assert record["attempt"] == 2
    assert isinstance(record["at"], int) and record["at"] > 0
    assert "Traceback (most recent call last)" in record["traceback"]
    assert "_raised" in record["traceback"]


def test_error_record_qualifies_non_builtin_types() -> None:
    class Custom(Exception):
        pass

    record = orjson.loads(error_record(Custom("c"), 1))
    assert (
        record["type"]
        == f"{__name__}.test_error_record_qualifies_non_builtin_types.<locals>.Custom"
    )
