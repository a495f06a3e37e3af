"""Names, priorities and backoff: the pure rules in corral.policy."""

from __future__ import annotations

import random

import pytest

from corral.errors import ConfigurationError, InvalidName, ValidationError
from corral.policy import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    Backoff,
    backoff_from_json,
    check_job_id,
    check_priority,
    check_queue_name,
    check_task_name,
    coerce_backoff,
)

# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "a", "0", "emails", "a.b:c-d_e", "Queue-1", "x" * 100])
def test_queue_name_accepts(name: str) -> None:
    assert check_queue_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "-a", "_a", ".a", "a b", "a/b", "a{b}", "é", "a\n", "x" * 101, "a*"],
)
def test_queue_name_rejects_with_the_value_in_the_message(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        check_queue_name(name)
    assert repr(name) in str(info.value)
    assert "queue name" in str(info.value)


@pytest.mark.parametrize("value", [None, 123, b"emails", ["a"]])
def test_queue_name_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidName, match="queue name"):
        check_queue_name(value)


@pytest.mark.parametrize(
    "name", ["send", "_private", "app.tasks.send_email", "a:b-c", "T" + "x" * 199]
)
def test_task_name_accepts(name: str) -> None:
    assert check_task_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "1abc", "-x", "mod.test.<locals>.fn", "a b", "x" * 201, "a/b"]
)
def test_task_name_rejects_with_the_value_in_the_message(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        check_task_name(name)
    assert repr(name) in str(info.value)
    assert "task name" in str(info.value)


@pytest.mark.parametrize(
    "job_id", ["abc", "0", "user@example.com", "order:42", "a=b+c", "A-b_c.d", "9" * 200]
)
def test_job_id_accepts(job_id: str) -> None:
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize("job_id", ["", "-a", "@a", "a b", "a/b", "a#b", "x" * 201, 7])
def test_job_id_rejects_with_the_value_in_the_message(job_id: object) -> None:
    with pytest.raises(InvalidName) as info:
        check_job_id(job_id)
    assert repr(job_id) in str(info.value)
    assert "job id" in str(info.value)


def test_invalid_name_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        check_queue_name("")


# -- priority ------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [MIN_PRIORITY, -1, 0, 1, MAX_PRIORITY])
def test_priority_in_range(priority: int) -> None:
    assert check_priority(priority) == priority


def test_priority_bounds_are_plus_minus_1000() -> None:
    assert (MIN_PRIORITY, MAX_PRIORITY) == (-1000, 1000)


@pytest.mark.parametrize("priority", [MIN_PRIORITY - 1, MAX_PRIORITY + 1, 10**9])
def test_priority_out_of_range(priority: int) -> None:
    with pytest.raises(ValidationError, match=r"out of range \[-1000, 1000\]") as info:
        check_priority(priority)
    assert str(priority) in str(info.value)


@pytest.mark.parametrize("priority", [True, 1.0, "1", None])
def test_priority_must_be_an_int(priority: object) -> None:
    with pytest.raises(ValidationError, match="integer"):
        check_priority(priority)


# -- Backoff -------------------------------------------------------------------------


def test_fixed_backoff_is_constant() -> None:
    policy = Backoff(kind="fixed", base=2.5, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [2.5] * 5


def test_exponential_backoff_doubles() -> None:
    policy = Backoff(kind="exponential", base=1.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_exponential_backoff_scales_with_base() -> None:
    policy = Backoff(kind="exponential", base=0.5, jitter=False)
    assert [policy.delay(n) for n in range(1, 4)] == [0.5, 1.0, 2.0]


def test_backoff_is_capped() -> None:
    policy = Backoff(kind="exponential", base=1.0, cap=10.0, jitter=False)
    assert policy.delay(4) == 8.0
    assert policy.delay(5) == 10.0
    assert policy.delay(50) == 10.0
    # huge retry numbers do not overflow
    assert policy.delay(10_000) == 10.0


def test_fixed_backoff_is_capped_too() -> None:
    assert Backoff(kind="fixed", base=30.0, cap=5.0, jitter=False).delay(1) == 5.0


def test_default_backoff_is_exponential_one_second_capped_at_an_hour_with_jitter() -> None:
    policy = Backoff()
    assert (policy.kind, policy.base, policy.cap, policy.jitter) == (
        "exponential",
        1.0,
        3600.0,
        True,
    )


def test_jitter_stays_within_half_to_full_wait() -> None:
    policy = Backoff(kind="exponential", base=1.0, cap=60.0, jitter=True)
    plain = Backoff(kind="exponential", base=1.0, cap=60.0, jitter=False)
    rng = random.Random(1234)
    for retry in range(1, 12):
        wait = plain.delay(retry)
        for _ in range(50):
            got = policy.delay(retry, rng)
            assert wait / 2 <= got <= wait, (retry, got)


def test_jitter_actually_varies() -> None:
    policy = Backoff(kind="fixed", base=10.0, jitter=True)
    rng = random.Random(7)
    values = {policy.delay(1, rng) for _ in range(20)}
    assert len(values) > 10


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    policy = Backoff(kind="exponential", base=1.0, jitter=True)
    first = [policy.delay(n, random.Random(42)) for n in range(1, 8)]
    second = [policy.delay(n, random.Random(42)) for n in range(1, 8)]
    assert first == second


def test_zero_base_means_no_wait_even_with_jitter() -> None:
    assert Backoff(kind="fixed", base=0.0, jitter=True).delay(3, random.Random(0)) == 0.0


def test_backoff_rejects_unknown_kind() -> None:
    with pytest.raises(ConfigurationError, match="'linear'"):
        Backoff(kind="linear")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["base", "cap"])
def test_backoff_rejects_negative_times(field: str) -> None:
    with pytest.raises(ConfigurationError, match=">= 0"):
        Backoff(**{field: -1.0})  # type: ignore[arg-type]


def test_backoff_json_round_trip() -> None:
    policy = Backoff(kind="fixed", base=3.0, cap=9.0, jitter=False)
    assert backoff_from_json(policy.to_json()) == policy


def test_backoff_from_json_defaults_and_errors() -> None:
    assert backoff_from_json({}) == Backoff()
    with pytest.raises(ConfigurationError, match="object"):
        backoff_from_json([1, 2])


# -- coerce_backoff -------------------------------------------------------------------


def test_coerce_fixed_and_exponential_strings() -> None:
    assert coerce_backoff("fixed") == Backoff(kind="fixed")
    assert coerce_backoff("exponential") == Backoff(kind="exponential")


@pytest.mark.parametrize("seconds", [0, 2, 0.05, 7.5])
def test_coerce_number_is_fixed_without_jitter(seconds: float) -> None:
    policy = coerce_backoff(seconds)
    assert policy == Backoff(kind="fixed", base=float(seconds), cap=float(seconds), jitter=False)
    assert isinstance(policy, Backoff)
    assert policy.delay(1) == policy.delay(9) == float(seconds)


def test_coerce_keeps_a_backoff_and_a_callable() -> None:
    policy = Backoff(kind="fixed", base=4.0)
    assert coerce_backoff(policy) is policy

    def custom(retry: int, error: BaseException) -> float:
        return retry * 1.5

    assert coerce_backoff(custom) is custom


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("linear", "'linear'"),
        ("Fixed", "'Fixed'"),
        ("", "''"),
        (-1, "-1"),
        (-0.5, "-0.5"),
        (True, "True"),
        (None, "None"),
        ([1, 2], "[1, 2]"),
    ],
)
def test_coerce_rejects_bad_values_naming_them(spec: object, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        coerce_backoff(spec)  # type: ignore[arg-type]
    assert shown in str(info.value)
