"""What crosses the backend seam for flows (graphs of dependent jobs).

A flow is stored as its jobs and its edges. A job with dependencies starts
``blocked``; each edge carries the name the dependent knows its dependency by, the
policy applied when that dependency does not complete, and whether the dependency's
result replaces the dependent's first argument (``chain``). When a dependency ends,
its outcome is copied onto each dependent in the same atomic step that records it
(Redis: for a dependent in another queue, through the handoff list of the
dependency's queue, applied idempotently by :meth:`Backend.pass_handoffs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import orjson

from corral.backends.records import NewJob
from corral.errors import InvalidTransition

__all__ = [
    "DependencyOutcome",
    "FlowEdge",
    "FlowJob",
    "FlowRecord",
    "OnFailure",
    "decode_flow",
    "encode_flow",
    "retry_plan",
]


class OnFailure(StrEnum):
    """What a dependent does when a dependency ends failed or cancelled.

    ``fail`` (the default): the dependent ends ``failed``, the dependency's error
    recorded as its own. ``skip``: the dependent ends ``cancelled`` (it never runs).
    ``ignore``: the outcome is recorded and the dependent runs anyway.
    """

    FAIL = "fail"
    SKIP = "skip"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class FlowEdge:
    """``name``: how the dependent refers to the dependency (unique per dependent);
    ``queue``/``job_id``: the dependency, a job of the same flow. ``pass_result``:
    the dependency's result (JSON ``null`` if it has none) replaces the dependent's
    first argument, which must be ``None`` when stored."""

    name: str
    queue: str
    job_id: str
    on_failure: OnFailure = OnFailure.FAIL
    pass_result: bool = False


@dataclass(frozen=True, slots=True)
class FlowJob:
    """One job of a flow: where it goes, the job itself, what it waits for, and its
    name in the flow (its dependents' edges use it; "" = the task name)."""

    queue: str
    job: NewJob
    depends_on: tuple[FlowEdge, ...] = ()
    name: str = ""


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A stored flow: its jobs ``(queue, id, name in the flow)`` and edges
    ``(dependent queue, dependent id, FlowEdge)``; ``created_at`` in store ms."""

    id: str
    created_at: int
    jobs: list[tuple[str, str, str]]
    edges: list[tuple[str, str, FlowEdge]]
    #: A job failing for good (not ``ignore``d by every edge from it) cancels every
    #: unfinished job of the flow (``start_flow(..., fail_fast=True)``).
    fail_fast: bool = False


@dataclass(frozen=True, slots=True)
class DependencyOutcome:
    """A dependency's outcome as its dependent received it: ``state`` (completed,
    failed or cancelled), the result (JSON text) or last error (JSON text)."""

    state: str
    result: bytes | None
    error: bytes | None


def encode_flow(jobs: list[FlowJob], created_at: int, fail_fast: bool = False) -> bytes:
    """The stored form of a flow (JSON): what :func:`decode_flow` reads back."""

    return orjson.dumps(
        {
            "at": created_at,
            **({"ff": True} if fail_fast else {}),
            "jobs": [[j.queue, j.job.id, j.name or j.job.name] for j in jobs],
            "edges": [
                [j.queue, j.job.id, e.name, e.queue, e.job_id, e.on_failure.value, e.pass_result]
                for j in jobs
                for e in j.depends_on
            ],
        }
    )


def decode_flow(flow_id: str, raw: bytes) -> FlowRecord:
    """A flow from its stored form."""

    spec = orjson.loads(raw)
    return FlowRecord(
        id=flow_id,
        created_at=int(spec["at"]),
        jobs=[(q, i, n) for q, i, n in spec["jobs"]],
        edges=[
            (dq, di, FlowEdge(name, q, i, OnFailure(policy), bool(passed)))
            for dq, di, name, q, i, policy, passed in spec["edges"]
        ],
        fail_fast=bool(spec.get("ff")),
    )


def retry_plan(
    record: FlowRecord,
    states: dict[tuple[str, str], str],
    root: tuple[str, str] | None = None,
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], list[tuple[str, tuple[str, str]]]]]:
    """What :meth:`Backend.retry_flow` puts back: (the failed and cancelled jobs, each
    job's dependencies as (edge name, (queue, id))). ``states``: every job's state
    (missing: removed). InvalidTransition while a job is unfinished, unless ``root``
    is given: then only ``root`` (when failed or cancelled) and its dependents that
    ended failed or cancelled through it, transitively, each only when nothing else
    it waits for failed it too (see :func:`_subgraph`); nothing when a dependency of
    ``root`` itself ended failed, cancelled or removed (not ``ignore``d)."""
    deps: dict[tuple[str, str], list[tuple[str, tuple[str, str]]]] = {}
    for queue, job_id, edge in record.edges:
        deps.setdefault((queue, job_id), []).append((edge.name, (edge.queue, edge.job_id)))
    if root is not None:
        return _subgraph(record, states, root), deps
    unfinished = [k for k, s in states.items() if s not in _ENDED]
    if unfinished:
        queue, job_id = unfinished[0]
        raise InvalidTransition(
            f"flow {record.id!r} is still running (job {job_id!r} in {queue!r} is "
            f"{states[unfinished[0]]}); retry its failed jobs once it has ended"
        )
    again = {k for k, s in states.items() if s in ("failed", "cancelled")}
    return again, deps


def _subgraph(
    record: FlowRecord, states: dict[tuple[str, str], str], root: tuple[str, str]
) -> set[tuple[str, str]]:
    """``root`` and the failed or cancelled jobs below it (through failed or cancelled
    jobs only), less any that another failed, cancelled or removed dependency outside
    the set would fail again (an edge other than ``ignore``)."""
    ended_badly = ("failed", "cancelled")
    if states.get(root) not in ended_badly:
        return set()
    below: dict[tuple[str, str], list[tuple[str, str]]] = {}
    above: dict[tuple[str, str], list[tuple[tuple[str, str], OnFailure]]] = {}
    for queue, job_id, edge in record.edges:
        dep = (edge.queue, edge.job_id)
        below.setdefault(dep, []).append((queue, job_id))
        above.setdefault((queue, job_id), []).append((dep, edge.on_failure))
    if any(
        states.get(dep, "") in ("failed", "cancelled", "") and policy is not OnFailure.IGNORE
        for dep, policy in above.get(root, [])
    ):
        return set()  # a dependency of its own failed it: that one is to be retried
    chosen, todo = {root}, [root]
    while todo:
        for dependent in below.get(todo.pop(), []):
            if dependent not in chosen and states.get(dependent) in ended_badly:
                chosen.add(dependent)
                todo.append(dependent)
    changed = True
    while changed:
        changed = False
        for job in sorted(chosen - {root}):
            blocked_by_other = any(
                dep not in chosen
                and states.get(dep, "") in ("failed", "cancelled", "")
                and policy is not OnFailure.IGNORE
                for dep, policy in above.get(job, [])
            )
            if blocked_by_other:
                chosen.discard(job)
                changed = True
    return chosen


_ENDED = frozenset({"completed", "failed", "cancelled", ""})
