"""Why a job has not started: the facts a backend reads (:class:`WaitFacts`) turned
into an ordered list of :class:`Blocker` with plain-English messages.

Pure functions: no I/O, no clock of their own (the facts carry the store's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from corral.backends.records import JobState, RateWindow, WaitFacts

__all__ = ["Blocker", "BlockerKind", "blockers", "describe_ms"]

BlockerKind = Literal[
    "dependencies",
    "delayed",
    "paused",
    "no_worker",
    "concurrency",
    "group_cap",
    "rate_limit",
    "position",
]


@dataclass(frozen=True, slots=True)
class Blocker:
    """One reason a job has not started. ``until``: when it lifts by itself, if known
    (a delayed job's due time, a rate window's reset), in UTC."""

    kind: BlockerKind
    message: str
    until: datetime | None = None


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _clock(ms: int, now: int) -> str:
    """A time of day, with the date when it is not today's (UTC)."""
    at, today = _at(ms), _at(now)
    if at.date() == today.date():
        return at.strftime("%H:%M:%S UTC")
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_ms(ms: int) -> str:
    """A duration in words at a useful precision: ``"850 ms"``, ``"12 s"``,
    ``"4 min 10 s"``, ``"3 h 5 min"``, ``"2 d 4 h"``."""
    if ms < 1000:
        return f"{max(ms, 0)} ms"
    s = ms // 1000
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60)):
        if s >= size:
            rest = (s % size) // sub_size
            return f"{s // size} {unit}" + (f" {rest} {sub}" if rest else "")
    if s >= 60:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{s} s"


_PERIODS = {1000: "this second", 60_000: "this minute", 3_600_000: "this hour"}


def _rate(window: RateWindow, whose: str, now: int) -> Blocker:
    period = _PERIODS.get(window.window_ms, f"in the last {describe_ms(window.window_ms)}")
    message = f"{whose}rate limit: {window.count} of {window.max} jobs {period}"
    until = None
    if window.resets_at is not None:
        message += f"; the window resets at {_clock(window.resets_at, now)}"
        until = _at(window.resets_at)
    return Blocker("rate_limit", message, until)


def _queue_holds(facts: WaitFacts) -> list[Blocker]:
    """The queue is paused, or no live worker serves it."""
    out = []
    if facts.paused:
        out.append(Blocker("paused", f"the queue {facts.queue!r} is paused"))
    if facts.workers == 0:
        out.append(Blocker("no_worker", f"no live worker listens on queue {facts.queue!r}"))
    return out


def blockers(facts: WaitFacts) -> list[Blocker]:
    """Why the job of ``facts`` has not started, most fundamental first: a flow's
    dependencies (then only pause and workers: the rest will have changed), delayed,
    paused, no worker, the queue's concurrency cap, the group's cap, the queue's then
    the group's rate limit, then its place in line. Empty for a job that is running or
    finished, or waiting first in line with nothing holding it.

    A delayed job that is not due yet gets only what will still hold it when it is
    due (paused, no worker): limits and place in line will have changed by then.
    """
    if facts.state is JobState.BLOCKED:
        # A job of a flow: its dependencies first; what holds it once they have ended.
        wait = Blocker("dependencies", "it waits for its dependencies in its flow to end")
        return [wait, *_queue_holds(facts)]
    if facts.state not in (JobState.WAITING, JobState.DELAYED):
        return []
    now = facts.now
    out: list[Blocker] = []
    due = facts.run_at is not None and facts.run_at > now
    if facts.state is JobState.DELAYED and due:
        assert facts.run_at is not None
        verb = "it waits to retry" if facts.attempts > 0 else "it is delayed"
        when = f"{_clock(facts.run_at, now)} (in {describe_ms(facts.run_at - now)})"
        out.append(Blocker("delayed", f"{verb} until {when}", _at(facts.run_at)))
    out += _queue_holds(facts)
    if facts.state is JobState.DELAYED and due:
        return out
    if facts.max_active is not None and facts.active >= facts.max_active:
        out.append(
            Blocker(
                "concurrency",
                f"concurrency cap: {facts.active} of {facts.max_active} jobs of the queue "
                "are running",
            )
        )
    group = facts.group
    gmax = facts.group_max_active
    if group is not None and gmax is not None and facts.group_active >= gmax:
        out.append(
            Blocker(
                "group_cap",
                f"group cap: {facts.group_active} of {gmax} jobs of group {group!r} are running",
            )
        )
    if facts.rate is not None and facts.rate.full:
        out.append(_rate(facts.rate, "", now))
    if group is not None and facts.group_rate is not None and facts.group_rate.full:
        out.append(_rate(facts.group_rate, f"group {group!r} ", now))
    if facts.position:
        n = facts.position
        ahead = "at least " if facts.position_at_least else ""
        jobs = f"{ahead}{n:,} job is" if n == 1 else f"{ahead}{n:,} jobs are"
        out.append(Blocker("position", f"{jobs} ahead of it in line"))
    return out
