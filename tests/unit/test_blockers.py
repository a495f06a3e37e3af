"""The pure wording of blockers (corral.blockers), beyond what the contract tests
produce from real situations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from corral.backends.records import JobState, RateWindow, WaitFacts
from corral.blockers import blockers, describe_ms

NOW = int(datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC).timestamp() * 1000)
BASE = WaitFacts(
    queue="q",
    job_id="j",
    state=JobState.WAITING,
    now=NOW,
    run_at=None,
    attempts=0,
    group=None,
    paused=False,
    active=0,
    max_active=None,
    rate=None,
    group_active=0,
    group_max_active=None,
    group_rate=None,
    workers=1,
    position=0,
)


@pytest.mark.parametrize(
    ("ms", "words"),
    [
        (0, "0 ms"),
        (850, "850 ms"),
        (12_000, "12 s"),
        (60_000, "1 min"),
        (250_000, "4 min 10 s"),
        (3_600_000, "1 h"),
        (11_100_000, "3 h 5 min"),
        (187_200_000, "2 d 4 h"),
    ],
)
def test_describe_ms(ms: int, words: str) -> None:
    assert describe_ms(ms) == words


def test_every_kind_at_once_in_order() -> None:
    facts = replace(
        BASE,
        paused=True,
        workers=0,
        group="acme",
        active=3,
        max_active=3,
        group_active=2,
        group_max_active=2,
        rate=RateWindow(10, 10, 60_000, NOW + 10_000),
        group_rate=RateWindow(1, 1, 1000, NOW + 500),
        position=312,
    )
    got = blockers(facts)
    assert [(b.kind, b.message) for b in got] == [
        ("paused", "the queue 'q' is paused"),
        ("no_worker", "no live worker listens on queue 'q'"),
        ("concurrency", "concurrency cap: 3 of 3 jobs of the queue are running"),
        ("group_cap", "group cap: 2 of 2 jobs of group 'acme' are running"),
        ("rate_limit", "rate limit: 10 of 10 jobs this minute; the window resets at 12:00:10 UTC"),
        (
            "rate_limit",
            "group 'acme' rate limit: 1 of 1 jobs this second; the window resets at 12:00:00 UTC",
        ),
        ("position", "312 jobs are ahead of it in line"),
    ]
    assert got[4].until == datetime(2026, 12, 4, 12, 0, 10, tzinfo=UTC)


def test_delayed_to_another_day_names_the_date_and_skips_passing_limits() -> None:
    run_at = NOW + 2 * 86_400_000
    facts = replace(
        BASE,
        state=JobState.DELAYED,
        run_at=run_at,
        position=None,
        max_active=1,
        active=1,
        paused=True,
    )
    assert [(b.kind, b.message) for b in blockers(facts)] == [
        ("delayed", "it is delayed until 2026-12-06 12:00:00 UTC (in 2 d)"),
        ("paused", "the queue 'q' is paused"),
    ]


def test_an_overdue_delayed_job_is_held_like_a_waiting_one() -> None:
    facts = replace(
        BASE, state=JobState.DELAYED, run_at=NOW - 5, position=None, max_active=1, active=1
    )
    assert [b.kind for b in blockers(facts)] == ["concurrency"]


def test_a_huge_line_is_counted_up_to_the_bound() -> None:
    facts = replace(BASE, position=100_000, position_at_least=True)
    assert blockers(facts)[0].message == "at least 100,000 jobs are ahead of it in line"
    assert blockers(replace(BASE, position=1234))[0].message == "1,234 jobs are ahead of it in line"


def test_a_window_of_another_length_is_named() -> None:
    facts = replace(BASE, rate=RateWindow(5, 5, 90_000, None))
    assert blockers(facts)[0].message == "rate limit: 5 of 5 jobs in the last 1 min 30 s"
    assert blockers(facts)[0].until is None


@pytest.mark.parametrize("state", [JobState.ACTIVE, *[s for s in JobState if s.terminal]])
def test_running_or_finished_jobs_have_none(state: JobState) -> None:
    assert blockers(replace(BASE, state=state, paused=True, workers=0)) == []
