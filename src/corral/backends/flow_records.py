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

from collections.abc import Collection, Iterable
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
    "heard_anew",
    "retry_plan",
    "spawn_order",
    "spawn_parent",
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
    roots: Collection[tuple[str, str]] | None = None,
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], list[tuple[str, tuple[str, str]]]]]:
    """What :meth:`Backend.retry_flow` puts back: (the failed and cancelled jobs, each
    job's dependencies as (edge name, (queue, id))). ``states``: every job's state
    (missing: removed). InvalidTransition while a job is unfinished, unless ``roots``
    are given: then only those of ``roots`` that ended failed or cancelled and their
    dependents that ended failed or cancelled through them, transitively, each only
    when nothing else it waits for failed it too (see :func:`_subgraph`); a root
    whose own dependency (not among the roots, not ``ignore``d) ended failed,
    cancelled or removed is left out, with what only it would have taken along."""
    deps: dict[tuple[str, str], list[tuple[str, tuple[str, str]]]] = {}
    for queue, job_id, edge in record.edges:
        deps.setdefault((queue, job_id), []).append((edge.name, (edge.queue, edge.job_id)))
    if roots is not None:
        return _subgraph(record, states, roots), deps
    unfinished = [k for k, s in states.items() if s not in _ENDED]
    if unfinished:
        queue, job_id = unfinished[0]
        raise InvalidTransition(
            f"flow {record.id!r} is still running (job {job_id!r} in {queue!r} is "
            f"{states[unfinished[0]]}); retry its failed jobs once it has ended"
        )
    again = {k for k, s in states.items() if s in ("failed", "cancelled")}
    return again, deps


def spawn_order(
    parent_id: str, edges: Iterable[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """The (queue, id, name) edges of ``parent_id`` that lead to children it spawned
    (ids ``<parent id>.s<k>.<n>``; a flow job's other dependencies are not), by wait
    ``k`` then child ``n``."""
    prefix = parent_id + ".s"

    def key(edge: tuple[str, str, str]) -> tuple[int, int]:
        wait, _, n = edge[1][len(prefix) :].partition(".")
        return int(wait), int(n)

    mine = []
    for edge in edges:
        rest = edge[1][len(prefix) :].split(".") if edge[1].startswith(prefix) else []
        if len(rest) == 2 and all(part.isdigit() for part in rest):
            mine.append(edge)
    return sorted(mine, key=key)


def spawn_parent(job_id: str) -> str | None:
    """The id of the job that spawned ``job_id`` if it is a child's (``<parent
    id>.s<k>.<n>``), else None. Only a candidate: a flow's job may have an id of that
    shape too; the parent's edge to the child (:meth:`Backend.dependents`) tells."""
    parent, _, rest = job_id.rpartition(".s")
    wait, dot, n = rest.partition(".")
    return parent if parent and dot and wait.isdigit() and n.isdigit() else None


def heard_anew(
    dep: tuple[str, str], again: set[tuple[str, str]], states: dict[tuple[str, str], str]
) -> bool:
    """Whether a job put back by a retry must forget the outcome it holds from ``dep``
    and wait for a new one: ``dep`` is put back with it, or is unfinished (put back by
    an earlier retry, e.g. each dependency of a fan-in retried on its own), so what it
    handed over before is old."""
    return dep in again or states.get(dep, "") not in _ENDED


_BADLY = ("failed", "cancelled")


def _subgraph(
    record: FlowRecord, states: dict[tuple[str, str], str], roots: Collection[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The failed or cancelled ``roots`` and the failed or cancelled jobs below them
    (through failed or cancelled jobs only), less any that another failed, cancelled
    or removed dependency outside the set would fail again (an edge other than
    ``ignore``). A root left out that way takes out what was below it only, so
    several roots retried together are what retrying each (dependencies first)
    would do, in one step."""
    below: dict[tuple[str, str], list[tuple[str, str]]] = {}
    above: dict[tuple[str, str], list[tuple[tuple[str, str], OnFailure]]] = {}
    for queue, job_id, edge in record.edges:
        dep = (edge.queue, edge.job_id)
        below.setdefault(dep, []).append((queue, job_id))
        above.setdefault((queue, job_id), []).append((dep, edge.on_failure))

    def failed_by_other(job: tuple[str, str], chosen: set[tuple[str, str]]) -> bool:
        return any(
            dep not in chosen
            and states.get(dep, "") in (*_BADLY, "")
            and policy is not OnFailure.IGNORE
            for dep, policy in above.get(job, [])
        )

    alive = {r for r in roots if states.get(r) in _BADLY}
    while True:
        chosen, todo = set(alive), list(alive)
        while todo:
            for dependent in below.get(todo.pop(), []):
                if dependent not in chosen and states.get(dependent) in _BADLY:
                    chosen.add(dependent)
                    todo.append(dependent)
        changed = True
        while changed:
            changed = False
            for job in sorted(chosen):
                if failed_by_other(job, chosen):
                    chosen.discard(job)
                    changed = True
        if alive <= chosen:
            return chosen
        alive &= chosen  # a root its own dependency failed: walk again without it


_ENDED = frozenset({"completed", "failed", "cancelled", ""})
