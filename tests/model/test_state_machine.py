"""Model-based test of the Backend protocol: a Hypothesis state machine, on every backend.

Random sequences of protocol calls (enqueue, claim, renew, complete, fail, release,
abort, update, cancel, retry, promote, reap_stalled, and letting the clock run) are
played against a real backend and against a small Python model of one queue. Each
rule checks its own result (which jobs a claim hands out and in what order, which
tokens are accepted, that a rejected call changes nothing); after every step the
store's view (``list_jobs`` for each state, ``counts``, ``stats``) must match the
model: each job in exactly one state, once, with the attempts and stalls the model
expects. At the end every acknowledged job must still exist and be drivable to a
terminal state.

Leases come from a bundle of every lease ever handed out (plus forged tokens), so
most are stale; a rule may instead act with the ``current`` lease of an active job,
a ``superseded`` one (an older token of a job claimed again), or the lease of a job
whose cancellation was requested. Job-id rules may likewise aim at a job in a state
where they do something.

What the model assumes, all from ``corral.backends.base`` and the conformance suite:

* A token is current from the claim that issued it until the job's next transition
  (complete, fail, abort, release, or a reap). A lease that ran out but was not reaped
  is still held: fencing is by token; leases only matter to ``reap_stalled``.
* Leases and delays run by the store's clock, which this test cannot see. Each call is
  bracketed with ``time.monotonic()``: a deadline set during [t0, t1] is asserted
  passed only once more than 1.5 times its length has gone by since t1, and asserted
  pending only while less than half of it has gone by since t0. In between, either
  outcome is accepted and the model is resynchronised from the store.
* Waiting jobs are claimed (and listed) by priority, then in line order. A job joins
  the back of its priority when it is enqueued, retried (``fail`` with no delay,
  ``retry``), promoted or found due; one a worker hands back (``release``, a reap)
  goes to the front, and several handed back in one call keep the order given. Where
  that order is the store's to know (delayed jobs due in one claim, leases reaped
  together), the model checks they joined at the right end and takes their order from
  the store.
* A cancel-requested job ends ``cancelled`` when its worker releases, fails (retrying)
  or stalls; when it is dead-lettered (``retry_in_ms=None``) either ``failed`` or
  ``cancelled`` is accepted.
* ``retry`` resets attempts to 0; what it does to the stall counter is not specified,
  so the model takes it from the store (0 or unchanged).

No retention limits and no remove/clean/drain: every created job stays.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from corral.backends.base import Backend, Completion, JobRecord, JobState, NewJob, Retention
from corral.errors import InvalidTransition, JobNotFound
from tests.contract.conftest import new_job
from tests.redis_server import RedisServer

Q = "q"
SHORT = 40  # ms: a lease or delay that runs out during one advance_clock
LONG = 60_000  # ms: one that never runs out during an example
KEEP = Retention()
WORKER = "w-model"
ERROR = b'{"type":"ModelError","message":"boom"}'
REASON = b'{"type":"Cancelled","message":"asked to stop"}'
TERMINAL = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)

SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

priorities = st.sampled_from([0, 1, -1])
delays = st.sampled_from([0, 0, SHORT, LONG])
lease_lengths = st.sampled_from([SHORT, LONG])
lease_modes = st.sampled_from(["drawn", "current", "superseded", "cancelling"])


@dataclass(frozen=True)
class Window:
    """A deadline the store set at some instant in [t0, t1] (monotonic s), plus ``ms``."""

    t0: float
    t1: float
    ms: int

    def passed(self, s0: float, s1: float) -> bool | None:
        """At a store instant inside [s0, s1]: True if the deadline has certainly
        passed, False if it certainly has not, None when it cannot be told."""
        if s0 - self.t1 > self.ms * 1.5 / 1000:
            return True
        if s1 - self.t0 < self.ms * 0.5 / 1000:
            return False
        return None

    @property
    def certain_at(self) -> float:
        """The monotonic time from which ``passed`` answers True."""
        return self.t1 + self.ms * 1.5 / 1000 + 0.002

    def surely_before(self, other: Window) -> bool:
        """True when this deadline is certainly earlier than ``other`` (1 ms rounding)."""
        return self.t1 + self.ms / 1000 + 0.002 < other.t0 + other.ms / 1000


@dataclass
class ModelJob:
    id: str
    priority: int
    seq: int  # enqueue order (picks "the next job" for rules; not the line)
    state: JobState
    line: int = 0  # place in line within its priority while waiting: lowest goes first
    attempts: int = 0
    stalls: int = 0
    claims: int = 0  # every claim ever, so attempts can never exceed it
    token: str | None = None  # the current token while active
    tokens: list[str] = field(default_factory=list)  # every token issued, oldest first
    lease: Window | None = None  # while active
    due: Window | None = None  # while delayed
    cancel_requested: bool = False
    finished: int = 0  # index of the call that finished it (list order of terminal states)

    @property
    def key(self) -> tuple[int, int]:
        return (-self.priority, self.line)


class BackendMachine(RuleBasedStateMachine):
    """Drives one backend (built by ``make_backend``) against the model."""

    job_ids = Bundle("job_ids")
    leases = Bundle("leases")  # (job_id, token) from every claim: current and stale

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.backend = self.make_backend()
        self.jobs: dict[str, ModelJob] = {}
        self.tokens: set[str] = set()
        self.next_id = 0
        self.next_line = 0
        self.forged = 0
        # stats(): completions, dead letters, fail() retries, stall requeues
        self.totals = {"completed": 0, "failed": 0, "retried": 0, "requeued": 0}
        self.calls = 0
        # True from a backend call until the invariant passed: teardown only drives the
        # jobs to the end after a clean step (never on top of a failure being reported).
        self.dirty = False
        try:
            self.run(self.backend.connect())
        except BaseException:
            self.loop.close()
            raise

    def make_backend(self) -> Backend:
        raise NotImplementedError

    # -- plumbing -----------------------------------------------------------------------

    def run(self, coro):
        self.dirty = True
        return self.loop.run_until_complete(coro)

    def timed(self, coro):
        t0 = time.monotonic()
        result = self.run(coro)
        return result, t0, time.monotonic()

    def get(self, job_id: str) -> JobRecord | None:
        return self.run(self.backend.get(Q, job_id))

    def snapshot(self, ids) -> dict[str, JobRecord | None]:
        return {i: self.get(i) for i in sorted(set(ids))}

    def current(self, job_id: str, token: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.state is JobState.ACTIVE and job.token == token

    def nearest(self, job_id: str, candidates: list[ModelJob]) -> ModelJob | None:
        """The first candidate at or after ``job_id`` in enqueue order, wrapping round."""
        drawn = self.jobs.get(job_id)
        start = drawn.seq if drawn is not None else 0
        ordered = sorted(candidates, key=lambda j: (j.seq < start, j.seq))
        return ordered[0] if ordered else None

    def pick(self, lease: tuple[str, str], mode: str) -> tuple[str, str]:
        """The lease a rule acts with. Bundles hold mostly stale leases after a while, so
        besides the ``drawn`` one a rule may ask for the ``current`` lease of an active
        job, the current lease of a ``cancelling`` one (cancel requested), or a
        ``superseded`` one: an earlier token of a job that was claimed again and is
        active under a newer token (the lease a stalled worker still holds). The job is
        the drawn lease's or the next one in enqueue order; the drawn lease when there
        is none."""
        if mode == "drawn":
            return lease
        active = self.in_state(JobState.ACTIVE)
        if mode == "superseded":
            active = [j for j in active if len(j.tokens) > 1]
        elif mode == "cancelling":
            active = [j for j in active if j.cancel_requested]
        job = self.nearest(lease[0], active)
        if job is None:
            return lease
        return (job.id, job.tokens[-2] if mode == "superseded" else job.token)

    def aim(self, job_id: str, states: tuple[JobState, ...] | None) -> str:
        """The drawn job, or with ``states`` the nearest job in one of them (if any)."""
        if states is None:
            return job_id
        job = self.nearest(job_id, [j for j in self.jobs.values() if j.state in states])
        return job_id if job is None else job.id

    def in_state(self, state: JobState) -> list[ModelJob]:
        return [j for j in self.jobs.values() if j.state is state]

    def finish(self, job: ModelJob, state: JobState) -> None:
        if state in (JobState.COMPLETED, JobState.FAILED):
            self.totals[state.value] += 1
        job.state, job.token, job.lease, job.due = state, None, None, None
        job.cancel_requested = False
        job.finished = self.calls

    def requeue(self, job: ModelJob, *, give_back: bool, front: bool = False) -> None:
        if front:
            self.to_front(job)
        else:
            self.to_back(job)
        job.state, job.token, job.lease, job.due = JobState.WAITING, None, None, None
        job.cancel_requested = False
        if give_back:
            job.attempts -= 1

    def to_back(self, job: ModelJob) -> None:
        self.next_line += 1
        job.line = self.next_line

    def to_front(self, job: ModelJob) -> None:
        band = [j.line for j in self.in_state(JobState.WAITING) if j.priority == job.priority]
        job.line = min(band, default=job.line) - 1

    def place_from_store(self, moved: list[ModelJob], *, front: bool) -> None:
        """``moved`` (now waiting) joined the line in one call in an order only the store
        knows: check they stand at the front (or back) of their priority, and take their
        order from the store."""
        if not moved:
            return
        listed = self.run(self.backend.list_jobs(Q, JobState.WAITING, 0, 10_000))
        pos = {r.id: n for n, r in enumerate(listed)}
        ids = {j.id for j in moved}
        for job in moved:
            for other in self.in_state(JobState.WAITING):
                if other.priority == job.priority and other.id not in ids:
                    ahead = pos[job.id] < pos[other.id]
                    assert ahead is front, (job.id, other.id, "front" if front else "back")
        ordered = sorted(moved, key=lambda j: pos[j.id])
        for job in reversed(ordered) if front else ordered:
            self.to_front(job) if front else self.to_back(job)

    def fresh(self, priority: int, delay_ms: int) -> NewJob:
        self.next_id += 1
        job_id = f"j{self.next_id}"
        return new_job(
            job_id, data=orjson.dumps([[job_id], {}]), priority=priority, delay_ms=delay_ms
        )

    def add(self, job: NewJob, t0: float, t1: float) -> None:
        model = ModelJob(job.id, job.priority, len(self.jobs), JobState.WAITING)
        self.to_back(model)
        if job.delay_ms:
            model.state, model.due = JobState.DELAYED, Window(t0, t1, job.delay_ms)
        self.jobs[job.id] = model

    # -- producer -----------------------------------------------------------------------

    @initialize(
        target=job_ids, specs=st.lists(st.tuples(priorities, delays), min_size=2, max_size=8)
    )
    def seed(self, specs):
        """Every example starts with some jobs (swarm testing may switch ``enqueue`` off)."""
        assert self.get("missing") is None
        with pytest.raises(JobNotFound):
            self.run(self.backend.cancel(Q, "missing"))
        assert self.run(self.backend.retry(Q, ["missing"])) == [False]
        assert self.run(self.backend.promote(Q, "missing")) is False
        return multiple(*self.do_enqueue(specs, repeat_first=False))

    @initialize(target=leases, count=st.integers(0, 3), lease_ms=lease_lengths)
    def seed_claims(self, count, lease_ms):
        """Some examples start with jobs in hand (``claim`` may be switched off too)."""
        return multiple(*self.padded(self.do_claim(count, lease_ms) if count else [], count))

    @rule(
        target=job_ids,
        specs=st.lists(st.tuples(priorities, delays), min_size=1, max_size=3),
        repeat_first=st.booleans(),
    )
    def enqueue(self, specs, repeat_first):
        """Fresh ids (optionally the first one twice in the same call: the second is a no-op)."""
        return multiple(*self.do_enqueue(specs, repeat_first))

    def do_enqueue(self, specs: list[tuple[int, int]], repeat_first: bool) -> list[str]:
        jobs = [self.fresh(p, d) for p, d in specs]
        batch = list(jobs)
        if repeat_first:
            batch.append(new_job(jobs[0].id, name="t.dup", priority=9, delay_ms=LONG))
        created, t0, t1 = self.timed(self.backend.enqueue(Q, batch))
        assert created == [None] * len(jobs) + [jobs[0].id] * repeat_first
        for job in jobs:
            self.add(job, t0, t1)
        if repeat_first:
            record = self.get(jobs[0].id)
            assert record is not None
            assert (record.name, record.priority) == ("t.x", jobs[0].priority)
        return [j.id for j in jobs]

    @rule(
        target=job_ids,
        existing=job_ids,
        others=st.lists(priorities, max_size=2),
        at=st.integers(0, 2),
    )
    def enqueue_existing_id(self, existing, others, at):
        """Re-using an id returns False and leaves that job untouched, whatever its state."""
        jobs = [self.fresh(p, 0) for p in others]
        at = min(at, len(jobs))
        dup = new_job(existing, name="t.dup", data=b"[[0],{}]", priority=9, delay_ms=LONG)
        before = self.get(existing)
        created, t0, t1 = self.timed(self.backend.enqueue(Q, [*jobs[:at], dup, *jobs[at:]]))
        assert created == [None] * at + [existing] + [None] * (len(jobs) - at)
        assert self.get(existing) == before
        for job in jobs:
            self.add(job, t0, t1)
        return multiple(*(j.id for j in jobs))

    # -- worker -------------------------------------------------------------------------

    @rule(target=leases, count=st.integers(1, 3), lease_ms=lease_lengths)
    def claim(self, count, lease_ms):
        return multiple(*self.padded(self.do_claim(count, lease_ms), count))

    def padded(self, got: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
        """Exactly ``count`` leases: the ones claimed, then forged tokens on existing jobs.

        How many jobs a claim gets can depend on timing (a delayed job just due, a lease
        just reaped); Hypothesis needs the bundles to grow the same way on every replay.
        The forged leases are stale tokens like any other.
        """
        ids = sorted(self.jobs, key=lambda i: self.jobs[i].seq)
        forged = []
        for _ in range(count - len(got)):
            self.forged += 1
            job_id = ids[self.forged % len(ids)] if ids else "missing"
            forged.append((job_id, f"forged:{self.forged}"))
        return got + forged

    def do_claim(self, count: int, lease_ms: int) -> list[tuple[str, str]]:
        waiting = self.in_state(JobState.WAITING)
        delayed = self.in_state(JobState.DELAYED)
        (got, due_in), s0, s1 = self.timed(self.backend.claim(Q, count, lease_ms, WORKER))
        ids = [c.id for c in got]
        assert len(set(ids)) == len(ids) <= count
        # Which delayed jobs were due at the claim? Ask the store about the unsure ones.
        due, not_due = [], []
        for job in delayed:
            passed = job.due.passed(s0, s1)
            if passed is None and job.id in ids:
                passed = True
            elif passed is None:
                record = self.get(job.id)
                assert record is not None
                assert record.state in (JobState.DELAYED, JobState.WAITING), record.state
                passed = record.state is JobState.WAITING
            (due if passed else not_due).append(job)
        assert not {j.id for j in not_due} & set(ids), "claimed a delayed job before it was due"

        # Due jobs join the back of their priority, among themselves by due time.
        def place(job: ModelJob) -> tuple[int, ...]:
            return job.key if job.state is JobState.WAITING else (-job.priority, 1 << 62)

        expected = sorted(waiting + due, key=place)[:count]
        taken = [self.jobs[i] for i in ids]
        assert [place(j) for j in taken] == [place(j) for j in expected], (
            "not the first jobs by priority, then in line"
        )
        joined = [j for j in due if j.id not in ids]
        for job in taken:
            if job.due is not None:
                assert not any(
                    o.priority == job.priority and o.due.surely_before(job.due) for o in joined
                ), "a job due later was claimed first"
        for job in due:
            job.state, job.due = JobState.WAITING, None
        for c in got:
            job = self.jobs[c.id]
            assert (c.queue, c.name) == (Q, "t.x")
            assert c.data == orjson.dumps([[c.id], {}])
            assert c.attempt == job.attempts + 1
            assert c.stalls == job.stalls
            assert c.token and c.token not in self.tokens, "a token was handed out twice"
            self.tokens.add(c.token)
            job.tokens.append(c.token)
            job.state, job.token, job.lease = JobState.ACTIVE, c.token, Window(s0, s1, lease_ms)
            job.attempts += 1
            job.claims += 1
        if not got:
            left = self.in_state(JobState.DELAYED)
            if left:
                assert due_in is not None
                assert 0 <= due_in <= min(j.due.ms for j in left) + 1
            else:
                assert due_in is None
        self.place_from_store(joined, front=False)
        return [(c.id, c.token) for c in got]

    @rule(first=leases, more=st.lists(leases, max_size=2), mode=lease_modes, lease_ms=lease_lengths)
    def renew(self, first, more, mode, lease_ms):
        items = [self.pick(lease, mode) for lease in (first, *more)]
        held = [i for i, t in items if self.current(i, t)]
        before = self.snapshot(i for i, _ in items)
        (lost, cancel), s0, s1 = self.timed(self.backend.renew(Q, items, lease_ms))
        assert set(lost) == {i for i, t in items if not self.current(i, t)}
        assert set(cancel) == {i for i in held if self.jobs[i].cancel_requested}
        for job_id in held:
            self.jobs[job_id].lease = Window(s0, s1, lease_ms)
        assert self.snapshot(i for i, _ in items) == before  # renew changes no record field

    @rule(first=leases, more=st.lists(leases, max_size=2), mode=lease_modes)
    def complete(self, first, more, mode):
        self.do_complete([self.pick(lease, mode) for lease in (first, *more)])

    def do_complete(self, items: list[tuple[str, str]]) -> None:
        self.calls += 1
        expected, done = [], []
        for job_id, token in items:  # one atomic call, items in order: a repeat is stale
            ok = self.current(job_id, token) and job_id not in done
            expected.append(ok)
            if ok:
                done.append(job_id)
        results = [orjson.dumps(f"{i}:{self.calls}:{n}") for n, (i, _) in enumerate(items)]
        stale = [i for i, _ in items if i not in done]
        before = self.snapshot(stale)
        batch = [Completion(i, t, r) for (i, t), r in zip(items, results, strict=True)]
        assert self.run(self.backend.complete(Q, batch, KEEP)) == expected
        assert self.snapshot(stale) == before
        for (job_id, _), result, ok in zip(items, results, expected, strict=True):
            if ok:
                self.finish(self.jobs[job_id], JobState.COMPLETED)
                record = self.get(job_id)
                assert record is not None
                assert record.result == result
                assert record.finished_at is not None

    @rule(
        lease=leases,
        retry_in_ms=st.sampled_from([0, None, SHORT, LONG]),
        count_attempt=st.booleans(),
        mode=lease_modes,
    )
    def fail(self, lease, retry_in_ms, count_attempt, mode):
        job_id, token = self.pick(lease, mode)
        if not self.current(job_id, token):
            before = self.get(job_id)
            failed = self.run(
                self.backend.fail(
                    Q, job_id, token, ERROR, retry_in_ms, KEEP, count_attempt=count_attempt
                )
            )
            assert failed is False
            assert self.get(job_id) == before  # not even the error is recorded
            return
        job = self.jobs[job_id]
        self.calls += 1
        failed, s0, s1 = self.timed(
            self.backend.fail(
                Q, job_id, token, ERROR, retry_in_ms, KEEP, count_attempt=count_attempt
            )
        )
        assert failed is True
        record = self.get(job_id)
        assert record is not None
        assert record.errors[-1:] == [ERROR]
        if job.cancel_requested:
            allowed = [JobState.CANCELLED]
            if retry_in_ms is None:
                allowed.append(JobState.FAILED)
            assert record.state in allowed
            self.finish(job, record.state)
        elif retry_in_ms is None:
            self.finish(job, JobState.FAILED)
        else:
            self.requeue(job, give_back=not count_attempt)
            self.totals["retried"] += 1
            if retry_in_ms:
                job.state, job.due = JobState.DELAYED, Window(s0, s1, retry_in_ms)
        assert record.state is job.state

    @rule(lease=leases, mode=lease_modes)
    def abort(self, lease, mode):
        job_id, token = self.pick(lease, mode)
        before = self.get(job_id)
        held = self.current(job_id, token)
        if held:
            self.calls += 1
        assert self.run(self.backend.abort(Q, job_id, token, REASON)) is held
        record = self.get(job_id)
        if held:
            self.finish(self.jobs[job_id], JobState.CANCELLED)
            assert record is not None
            assert record.state is JobState.CANCELLED
            assert record.errors[-1:] == [REASON]
        else:
            assert record == before

    @rule(first=leases, more=st.lists(leases, max_size=2), mode=lease_modes)
    def release(self, first, more, mode):
        items = [self.pick(lease, mode) for lease in (first, *more)]
        self.calls += 1
        released = []  # backwards, as the store does it: each goes to the front
        for job_id, token in reversed(items):
            if self.current(job_id, token) and job_id not in released:
                released.append(job_id)
        stale = [i for i, _ in items if i not in released]
        before = self.snapshot(stale)
        assert self.run(self.backend.release(Q, items)) == len(released)
        assert self.snapshot(stale) == before
        for job_id in released:
            job = self.jobs[job_id]
            if job.cancel_requested:
                self.finish(job, JobState.CANCELLED)
            else:
                self.requeue(job, give_back=True, front=True)

    @rule(lease=leases, mode=lease_modes)
    def update(self, lease, mode):
        job_id, token = self.pick(lease, mode)
        before = self.get(job_id)
        held = self.current(job_id, token)
        progress = orjson.dumps({"step": self.calls})
        ok = self.run(self.backend.update(Q, job_id, token, progress=progress, logs=["line"]))
        assert ok is held
        record = self.get(job_id)
        if held:
            assert record is not None
            assert record.progress == progress
            assert record.logs[-1:] == [b"line"]
        else:
            assert record == before

    @rule(max_stalls=st.integers(0, 2))
    def reap_stalled(self, max_stalls):
        self.do_reap(max_stalls)

    def do_reap(self, max_stalls: int) -> None:
        active = self.in_state(JobState.ACTIVE)
        self.calls += 1
        (requeued, failed), s0, s1 = self.timed(self.backend.reap_stalled(Q, max_stalls))
        touched = set(requeued) | set(failed)
        back = []
        assert len(touched) == len(requeued) + len(failed), (requeued, failed)
        assert touched <= {j.id for j in active}, "reaped a job that was not active"
        for job in active:
            expired = job.lease.passed(s0, s1)
            if expired is False:
                assert job.id not in touched, f"{job.id} reaped while its lease was live"
                continue
            if job.cancel_requested:  # ends cancelled, in neither list
                assert job.id not in touched
                record = self.get(job.id)
                assert record is not None
                ok = [JobState.CANCELLED] if expired else [JobState.ACTIVE, JobState.CANCELLED]
                assert record.state in ok, (job.id, record.state)
                if record.state is JobState.CANCELLED:
                    assert record.stalls in (job.stalls, job.stalls + 1)
                    job.stalls = record.stalls
                    self.finish(job, JobState.CANCELLED)
                continue
            if job.id not in touched:
                assert expired is None, f"{job.id}'s lease ran out but it was not reaped"
                continue
            job.stalls += 1
            if job.stalls > max_stalls:
                assert job.id in failed, (job.id, requeued, failed)
                self.finish(job, JobState.FAILED)
                record = self.get(job.id)
                assert record is not None
                assert orjson.loads(record.errors[-1])["type"] == "Stalled"
            else:
                assert job.id in requeued, (job.id, requeued, failed)
                self.requeue(job, give_back=True, front=True)
                back.append(job)
                self.totals["requeued"] += 1
        self.place_from_store(back, front=True)  # among themselves: by lease deadline

    @rule()
    def advance_clock(self):
        """Wait until every short lease and delay has certainly run out (a crashed worker
        is a lease left to expire). Always enabled, so that which rules can run never
        depends on timing; sleeps only as long as needed."""
        self.wait_out_short_deadlines()

    def wait_out_short_deadlines(self) -> None:
        pending = [j.lease or j.due for j in self.jobs.values() if j.lease or j.due]
        until = max((w.certain_at for w in pending if w.ms == SHORT), default=0.0)
        if until > time.monotonic():
            time.sleep(until - time.monotonic())

    # -- control ------------------------------------------------------------------------

    @rule(job_id=job_ids, aim=st.sampled_from([None, (JobState.ACTIVE,)]))
    def cancel(self, job_id, aim):
        job_id = self.aim(job_id, aim)
        job = self.jobs[job_id]
        if job.state in (JobState.COMPLETED, JobState.FAILED):
            before = self.get(job_id)
            with pytest.raises(InvalidTransition):
                self.run(self.backend.cancel(Q, job_id))
            assert self.get(job_id) == before
            return
        self.calls += 1
        state = self.run(self.backend.cancel(Q, job_id))
        if job.state is JobState.ACTIVE:
            assert state is JobState.ACTIVE
            job.cancel_requested = True
        else:
            assert state is JobState.CANCELLED
            if job.state is not JobState.CANCELLED:  # cancelling a cancelled job is a no-op
                self.finish(job, JobState.CANCELLED)

    @rule(
        first=job_ids,
        more=st.lists(job_ids, max_size=2),
        aim=st.sampled_from([None, (JobState.FAILED, JobState.CANCELLED)]),
    )
    def retry(self, first, more, aim):
        ids = [self.aim(job_id, aim) for job_id in (first, *more)]
        expected, requeued = [], []
        for job_id in ids:
            ok = self.jobs[job_id].state in (JobState.FAILED, JobState.CANCELLED)
            ok = ok and job_id not in requeued
            expected.append(ok)
            if ok:
                requeued.append(job_id)
        assert self.run(self.backend.retry(Q, ids)) == expected
        for job_id in requeued:
            job = self.jobs[job_id]
            self.requeue(job, give_back=False)
            job.attempts = 0
            record = self.get(job_id)
            assert record is not None
            assert record.stalls in (0, job.stalls)
            job.stalls = record.stalls

    @rule(job_id=job_ids, aim=st.sampled_from([None, (JobState.DELAYED,)]))
    def promote(self, job_id, aim):
        job_id = self.aim(job_id, aim)
        job = self.jobs[job_id]
        delayed = job.state is JobState.DELAYED
        assert self.run(self.backend.promote(Q, job_id)) is delayed
        if delayed:
            self.to_back(job)
            job.state, job.due = JobState.WAITING, None

    # -- invariant ----------------------------------------------------------------------

    @invariant()
    def store_matches_model(self):
        counts = self.run(self.backend.counts(Q))
        s0 = time.monotonic()
        listed = {  # a state both sides count empty need not be listed
            s: self.run(self.backend.list_jobs(Q, s, 0, 10_000))
            if counts.get(s.value) or self.in_state(s)
            else []
            for s in JobState
        }
        s1 = time.monotonic()
        seen: dict[str, JobRecord] = {}
        for state, records in listed.items():
            for record in records:
                assert record.id not in seen, f"{record.id} listed twice"
                assert (record.state, record.queue) == (state, Q)
                seen[record.id] = record
        assert set(seen) == set(self.jobs), "a job was lost or appeared from nowhere"
        early = []
        for job_id, job in self.jobs.items():
            record = seen[job_id]
            if (
                job.state is JobState.DELAYED
                and record.state is JobState.WAITING
                and job.due.passed(s0, s1) is not False
            ):
                job.state, job.due = JobState.WAITING, None  # a due job may be promoted early
                early.append(job)
            assert record.state is job.state, (job_id, record.state, job.state)
            assert record.attempts == job.attempts, (job_id, record.attempts, job.attempts)
            assert 0 <= record.attempts <= job.claims
            assert record.stalls == job.stalls, (job_id, record.stalls, job.stalls)
            if job.state is JobState.ACTIVE:
                assert record.cancel_requested is job.cancel_requested
            if job.state in TERMINAL:
                assert record.finished_at is not None
        waiting = [r.id for r in listed[JobState.WAITING]]
        if early:  # joined the line at a time the model did not see: take the store's order
            for n, job_id in enumerate(waiting):
                self.jobs[job_id].line = n
            self.next_line = max(self.next_line, len(waiting))
        assert waiting == [
            j.id for j in sorted(self.in_state(JobState.WAITING), key=lambda j: j.key)
        ]
        delayed = [self.jobs[r.id] for r in listed[JobState.DELAYED]]
        for n, early in enumerate(delayed):
            for late in delayed[n + 1 :]:
                assert not late.due.surely_before(early.due), "delayed jobs not by due time"
        for state in TERMINAL:
            finished = [self.jobs[r.id].finished for r in listed[state]]
            assert finished == sorted(finished, reverse=True), f"{state} not newest first"
        expected = {s.value: len(self.in_state(s)) for s in JobState}
        assert counts == {**expected, "paused": 0}
        stats = self.run(self.backend.stats(Q))
        assert (stats.completed, stats.failed) == (self.totals["completed"], self.totals["failed"])
        assert sum(stats.buckets) == stats.completed
        assert stats.duration_sum >= 0
        # "Failed attempts that were retried": whether a stall counts is not specified.
        retried = self.totals["retried"]
        assert retried <= stats.retried <= retried + self.totals["requeued"]
        self.dirty = False

    # -- the end ------------------------------------------------------------------------

    def drive_to_terminal(self) -> None:
        """Let short leases and delays run out, reap, then finish every job that is left."""
        self.wait_out_short_deadlines()
        self.do_reap(max_stalls=1_000)  # every short lease certainly ran out
        self.store_matches_model()
        held = [(j.id, j.token) for j in self.in_state(JobState.ACTIVE)]
        if held:
            self.do_complete(held)
        for job in self.in_state(JobState.DELAYED):
            self.promote(job.id, None)
        waiting = self.in_state(JobState.WAITING)
        if waiting:
            claimed = self.do_claim(len(waiting) + 1, LONG)
            assert {i for i, _ in claimed} == {j.id for j in waiting}
            self.do_complete(claimed)
        self.store_matches_model()
        assert all(j.state in TERMINAL for j in self.jobs.values())

    def teardown(self):
        try:
            if not self.dirty:
                self.drive_to_terminal()
        finally:
            try:
                self.loop.run_until_complete(self.backend.close())
            finally:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.close()


@pytest.mark.slow
def test_backend_state_machine_redis(redis_server: RedisServer) -> None:
    from corral.backends.redis import RedisBackend

    url = redis_server.url

    class RedisMachine(BackendMachine):
        def make_backend(self) -> Backend:
            # A fresh key prefix per example instead of FLUSHALL: same server, empty store.
            return RedisBackend(url, prefix=f"m{uuid.uuid4().hex}")

    run_state_machine_as_test(RedisMachine, settings=SETTINGS)


@pytest.mark.slow
def test_backend_state_machine_sqlite(tmp_path: Path) -> None:
    from corral.backends.sqlite import SQLiteBackend

    class SQLiteMachine(BackendMachine):
        def make_backend(self) -> Backend:
            return SQLiteBackend(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")

    run_state_machine_as_test(SQLiteMachine, settings=SETTINGS)
