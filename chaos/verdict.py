"""Counting losses and duplicates from the ledger and the final job records.

lost: an acknowledged enqueue whose job did not end in the expected state.
duplicate: a job with more than one execution that finished its body (outcome ok).
explained: the job's record shows a stall (its lease expired), or an extra execution
ran in a worker that was killed or crashed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chaos.ledger import Execution, Ledger
from corral import Corral, JobState

__all__ = ["Check", "JobView", "Result", "Tally", "read_jobs", "tally", "wait_drained"]

FINISHED = ("completed", "failed", "cancelled")
UNFINISHED = ("waiting", "active", "delayed")


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    state: str
    attempts: int
    stalls: int
    result: Any
    errors: list[dict[str, Any]]


def read_jobs(client: Corral, queue: str) -> dict[str, JobView]:
    """Every job of ``queue`` as stored now, read page by page per state."""
    jobs: dict[str, JobView] = {}
    q = client.queue(queue)
    for state in JobState:
        offset = 0
        while True:
            page = q.jobs_sync(state, offset=offset, limit=5000)
            for job in page:
                jobs[job.id] = JobView(
                    job.id, job.state.value, job.attempts, job.stalls, job.return_value, job.errors
                )
            if len(page) < 5000:
                break
            offset += len(page)
    return jobs


def wait_drained(client: Corral, queue: str, total: int, timeout: float) -> float | None:
    """Wait until nothing of ``queue`` is waiting, active or delayed and at least
    ``total`` jobs finished; returns the time.time() it happened, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            counts = client.queue(queue).counts_sync()
        except Exception:  # the backend may be down for a moment in some scenarios
            time.sleep(0.2)
            continue
        if sum(counts[s] for s in UNFINISHED) == 0 and sum(counts[s] for s in FINISHED) >= total:
            return time.time()
        time.sleep(0.05)
    return None


@dataclass
class Tally:
    jobs: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    explained: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    #: duplicates whose extra executions all ran in distinct crashed workers
    crash_bounded: list[str] = field(default_factory=list)
    #: completed jobs whose stored result is not a finished execution's id
    foreign_results: list[str] = field(default_factory=list)
    executions: dict[str, list[Execution]] = field(default_factory=dict)

    def oks(self, job_id: str) -> list[Execution]:
        return [e for e in self.executions.get(job_id, []) if e.outcome == "ok"]


def tally(
    ledger: Ledger,
    jobs: dict[str, JobView],
    *,
    ids: list[str] | None = None,
    expected: str = "completed",
    crashed: set[int] | None = None,
) -> Tally:
    """Compare acknowledged enqueues (``ids``, default: the ledger's) with the records."""
    crashed = ledger.crashed_pids() if crashed is None else crashed
    ids = ledger.enqueued_ids() if ids is None else ids
    t = Tally(jobs=len(ids), executions=ledger.executions())
    for job_id in ids:
        view = jobs.get(job_id)
        if view is None or view.state != expected:
            t.lost.append(job_id)
        oks = t.oks(job_id)
        accepted = view.result if view is not None and view.state == "completed" else None
        if accepted is not None and accepted not in {e.exec_id for e in oks}:
            t.foreign_results.append(job_id)
        if len(oks) <= 1:
            continue
        t.duplicates.append(job_id)
        extras = [e for e in oks if e.exec_id != accepted]
        in_crashed = [e.pid for e in extras if e.pid in crashed]
        if (view is not None and view.stalls >= 1) or in_crashed:
            t.explained.append(job_id)
        else:
            t.unexplained.append(job_id)
        if len(in_crashed) == len(extras) == len(set(in_crashed)):
            t.crash_bounded.append(job_id)
    return t


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Result:
    """One scenario run on one backend: the figures and the checks behind its verdict."""

    scenario: str
    backend: str
    jobs: int = 0
    faults: int = 0
    lost: int = 0
    duplicates: int = 0
    explained: int = 0
    unexplained: int = 0
    recovery_s: float | None = None
    wall_s: float = 0.0
    #: For scenarios with a producer: the enqueues that raised, and the slowest that did not.
    producer_errors: int | None = None
    slowest_enqueue_s: float | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks) and bool(self.checks)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def absorb(self, t: Tally) -> None:
        self.jobs += t.jobs
        self.lost += len(t.lost)
        self.duplicates += len(t.duplicates)
        self.explained += len(t.explained)
        self.unexplained += len(t.unexplained)

    def summary(self) -> str:
        rec = "-" if self.recovery_s is None else f"{self.recovery_s:.1f}s"
        line = (
            f"{self.scenario}[{self.backend}] jobs={self.jobs} faults={self.faults} "
            f"lost={self.lost} dup={self.duplicates} explained={self.explained} "
            f"unexplained={self.unexplained} recovery={rec} wall={self.wall_s:.1f}s "
        )
        if self.producer_errors is not None:
            slowest = self.slowest_enqueue_s or 0.0
            line += f"producer_errors={self.producer_errors} slowest_enqueue={slowest:.2f}s "
        line += f"-> {self.verdict}"
        failed = [c for c in self.checks if not c.ok]
        if failed:
            line += "\n    failed: " + "; ".join(f"{c.name} ({c.detail})" for c in failed)
        return line
