"""Flows never hang and never run early: a Hypothesis state machine on every backend.

Random flows (acyclic graphs of up to 6 jobs over two queues, a random policy per
edge) are added, and random steps run them against a real backend: claim a job and
complete it, fail it for good or end it cancelled; cancel any job; pass the Redis
handoffs; retry a flow's failed jobs. After every step (handoffs passed) each job of
every flow must be consistent with its dependencies:

* ``blocked`` only while some dependency has not ended (never a hang);
* waiting, running or completed only once every dependency has ended, each either
  completed or behind an ``ignore`` edge (never early);
* ended by a dependency (``DependencyFailed`` / ``DependencySkipped``) only when a
  dependency behind a ``fail`` / ``skip`` edge did not complete.

At the end, running every claimable job to completion leaves every flow ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from corral.backends.base import (
    KEEP_ALL,
    Backend,
    Completion,
    FlowEdge,
    FlowJob,
    JobState,
    NewJob,
    OnFailure,
)
from corral.errors import InvalidTransition
from tests.redis_server import RedisServer

QUEUES = ("fa", "fb")
ERROR = b'{"type":"ModelError","message":"boom"}'
REASON = b'{"type":"Cancelled","message":"asked to stop"}'
ENDED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)

SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def graphs(draw: st.DrawFn) -> list[tuple[str, list[tuple[int, str]]]]:
    """Per job: its queue and its dependencies (earlier jobs: acyclic) with a policy."""
    size = draw(st.integers(1, 6))
    jobs = []
    for i in range(size):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        jobs.append(
            (
                draw(st.sampled_from(QUEUES)),
                [
                    (d, draw(st.sampled_from(["fail", "fail", "skip", "ignore"])))
                    for d in sorted(deps)
                ],
            )
        )
    return jobs


@dataclass
class ModelFlow:
    id: str
    jobs: list[tuple[str, str]]  # (queue, id)
    deps: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    fail_fast: bool = False
    retried: bool = False
    cancelled: set[int] = field(default_factory=set)  # by the cancel rule


class FlowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.backend = self.make_backend()
        self.flows: list[ModelFlow] = []
        self.loop.run_until_complete(self.backend.connect())

    def make_backend(self) -> Backend:
        raise NotImplementedError

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    # -- rules ----------------------------------------------------------------------------

    @rule(graph=graphs(), fail_fast=st.booleans())
    def add_flow(self, graph: list[tuple[str, list[tuple[int, str]]]], fail_fast: bool) -> None:
        flow_id = f"f{len(self.flows)}"
        ids = [(queue, f"{flow_id}.{i}") for i, (queue, _) in enumerate(graph)]
        jobs = [
            FlowJob(
                queue,
                NewJob(id=ids[i][1], name="t.x", data=b"[[],{}]"),
                tuple(FlowEdge(f"j{d}", *ids[d], OnFailure(policy)) for d, policy in deps),
                f"j{i}",
            )
            for i, (queue, deps) in enumerate(graph)
        ]
        assert self.run(self.backend.add_flow(flow_id, jobs, fail_fast))
        deps = {i: deps for i, (_, deps) in enumerate(graph)}
        self.flows.append(ModelFlow(flow_id, ids, deps, fail_fast))

    @rule(queue=st.sampled_from(QUEUES), how=st.sampled_from(["complete", "fail", "abort"]))
    def step(self, queue: str, how: str) -> None:
        jobs, _ = self.run(self.backend.claim(queue, 1, 60_000, "w"))
        for job in jobs:
            if how == "complete":
                done = Completion(job.id, job.token, b'"ok"')
                assert self.run(self.backend.complete(queue, [done], KEEP_ALL)) == [True]
            elif how == "fail":
                assert self.run(self.backend.fail(queue, job.id, job.token, ERROR, None, KEEP_ALL))
            else:
                assert self.run(self.backend.abort(queue, job.id, job.token, REASON))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.flows:
            return
        flow = data.draw(st.sampled_from(self.flows))
        queue, job_id = data.draw(st.sampled_from(flow.jobs))
        with contextlib.suppress(InvalidTransition):  # already completed or failed
            self.run(self.backend.cancel(queue, job_id))
            flow.cancelled.add(flow.jobs.index((queue, job_id)))

    @rule(queue=st.sampled_from(QUEUES))
    def pass_handoffs(self, queue: str) -> None:
        self.run(self.backend.pass_handoffs(queue))

    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        if not self.flows:
            return
        flow = data.draw(st.sampled_from(self.flows))
        self.pass_all()
        try:
            self.run(self.backend.retry_flow(flow.id))
            flow.retried = True
        except InvalidTransition:
            assert not self.ended(flow)

    @rule(data=st.data())
    def retry_one(self, data: st.DataObject) -> None:
        """job.retry(): one job and what failed through it, the flow running or not."""
        if not self.flows:
            return
        flow = data.draw(st.sampled_from(self.flows))
        root = data.draw(st.sampled_from(flow.jobs))
        self.pass_all()
        if self.run(self.backend.retry_flow(flow.id, [root])):
            flow.retried = True

    @rule(data=st.data())
    def retry_some(self, data: st.DataObject) -> None:
        """A bulk retry: several jobs of a flow (in any order, any state) in one call."""
        if not self.flows:
            return
        flow = data.draw(st.sampled_from(self.flows))
        roots = data.draw(st.lists(st.sampled_from(flow.jobs), min_size=1, max_size=4))
        self.pass_all()
        if self.run(self.backend.retry_flow(flow.id, roots)):
            flow.retried = True

    # -- checks ---------------------------------------------------------------------------

    def pass_all(self) -> None:
        for _ in range(3):  # an outcome handed over may end a job with dependents in turn
            for queue in QUEUES:
                self.run(self.backend.pass_handoffs(queue))

    def states(self, flow: ModelFlow) -> list[tuple[JobState, list[bytes]]]:
        out = []
        for queue, job_id in flow.jobs:
            record = self.run(self.backend.get(queue, job_id))
            assert record is not None
            out.append((record.state, record.errors))
        return out

    def ended(self, flow: ModelFlow) -> bool:
        return all(state in ENDED for state, _ in self.states(flow))

    @invariant()
    def a_failure_cancels_a_fail_fast_flow(self) -> None:
        """In a fail-fast flow (never retried), a job that failed, unless every edge from
        it is ignore, leaves no job of the flow waiting or blocked."""
        self.pass_all()
        for flow in self.flows:
            if not flow.fail_fast or flow.retried:
                continue
            states = self.states(flow)
            policies: dict[int, list[str]] = {i: [] for i in range(len(states))}
            for deps in flow.deps.values():
                for d, policy in deps:
                    policies[d].append(policy)
            fired = [
                i
                for i, (state, _) in enumerate(states)
                if state is JobState.FAILED
                and not (policies[i] and all(p == "ignore" for p in policies[i]))
            ]
            if fired:
                left = [
                    flow.jobs[i]
                    for i, (state, _) in enumerate(states)
                    if state in (JobState.WAITING, JobState.BLOCKED)
                ]
                assert not left, f"{flow.id}: {flow.jobs[fired[0]]} failed, {left} still wait"

    @invariant()
    def dependencies_are_respected(self) -> None:
        self.pass_all()
        for flow in self.flows:
            states = self.states(flow)
            for i, (state, errors) in enumerate(states):
                deps = flow.deps[i]
                dep_states = [(states[d][0], policy) for d, policy in deps]
                unfinished = [s for s, _ in dep_states if s not in ENDED]
                if state is JobState.BLOCKED:
                    assert unfinished, f"{flow.id}.{i} is blocked with every dependency ended"
                    continue
                last = orjson.loads(errors[-1]) if errors else {}
                kind = last.get("type")
                if kind in ("DependencyFailed", "DependencySkipped") and i in flow.cancelled:
                    continue  # cancelled by hand after a retry: the error is older
                if kind in ("DependencyFailed", "DependencySkipped"):
                    wanted = "fail" if kind == "DependencyFailed" else "skip"
                    assert any(
                        s is not JobState.COMPLETED and p == wanted
                        for s, p in dep_states
                        if s in ENDED
                    ), f"{flow.id}.{i} ended by a dependency that did not end that way"
                    continue
                if state in (JobState.WAITING, JobState.ACTIVE, JobState.COMPLETED):
                    # An ``ignore`` edge released its dependent when the dependency
                    # failed: retrying that dependency later does not hold back a
                    # dependent that ran (or waits to run) anyway.
                    held = [
                        s
                        for s, p in dep_states
                        if s not in ENDED and not (flow.retried and p == "ignore")
                    ]
                    assert not held, f"{flow.id}.{i} is {state} before its dependencies"
                    assert all(s is JobState.COMPLETED or p == "ignore" for s, p in dep_states), (
                        f"{flow.id}.{i} ran although a fail/skip dependency did not complete"
                    )

    def teardown(self) -> None:
        try:
            for _ in range(50):  # run everything that can run: every flow must end
                moved = False
                for queue in QUEUES:
                    jobs, _ = self.run(self.backend.claim(queue, 100, 60_000, "w"))
                    if jobs:
                        moved = True
                        items = [Completion(j.id, j.token, b'"ok"') for j in jobs]
                        self.run(self.backend.complete(queue, items, KEEP_ALL))
                self.pass_all()
                if not moved:
                    break
            for flow in self.flows:
                assert self.ended(flow), f"flow {flow.id} did not end: {self.states(flow)}"
        finally:
            self.run(self.backend.close())
            self.loop.close()


def test_flow_state_machine_redis(redis_server: RedisServer) -> None:
    from corral.backends.redis import RedisBackend

    url = redis_server.url

    class RedisFlows(FlowMachine):
        def make_backend(self) -> Backend:
            return RedisBackend(url, prefix=f"m{uuid.uuid4().hex}")

    run_state_machine_as_test(RedisFlows, settings=SETTINGS)


def test_flow_state_machine_sqlite(tmp_path: Path) -> None:
    from corral.backends.sqlite import SQLiteBackend

    class SQLiteFlows(FlowMachine):
        def make_backend(self) -> Backend:
            return SQLiteBackend(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")

    run_state_machine_as_test(SQLiteFlows, settings=SETTINGS)
