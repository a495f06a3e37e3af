"""Flows: graphs of jobs that wait for one another.

One model: a :class:`Flow` is jobs (``task.call(...)``) with dependencies on other jobs
of the same flow. A job with dependencies waits ``blocked`` until each has ended, then
runs. When a dependency fails for good (or is cancelled), the edge's policy decides:
``"fail"`` (the default: the dependent fails, the dependency's error recorded as the
cause), ``"skip"`` (the dependent is cancelled without running) or ``"ignore"`` (it
runs anyway). A job reads its dependencies' outcomes by name through
:meth:`JobContext.dependencies <corral.context.JobContext.dependencies>`.

:func:`chain`, :func:`group` and :func:`chord` build the common shapes on the same
model::

    flow = chain(fetch.call(url), parse.call(), store.call())   # each gets the previous result
    flow = chord([page.call(n) for n in range(60)], total.call())  # fan out, then fan in
    run = await app.start_flow(flow)
    await run.wait(timeout=60); run.state, run.progress

The graph is checked when the flow starts: a cycle is an :class:`InvalidFlow` that
names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from corral import errors
from corral.backends.flow_records import FlowEdge, FlowJob, OnFailure
from corral.backends.records import NewJob
from corral.errors import InvalidFlow, ValidationError
from corral.policy import check_job_id
from corral.task import Call, new_job_id

__all__ = [
    "Dep",
    "Flow",
    "Node",
    "SpawnedChildren",
    "chain",
    "chord",
    "group",
    "prepare_children",
    "prepare_flow",
]

#: Longest flow id: job ids are ``<flow id>.<n>`` and at most 200 characters.
MAX_FLOW_ID = 180


@dataclass(frozen=True, slots=True)
class Dep:
    """A dependency with its policy: ``Dep(node, on_failure="ignore")`` in ``after=``.
    ``node`` is a :class:`Node` of the flow or its name."""

    node: Node | str
    on_failure: str = "fail"
    pass_result: bool = False


@dataclass(eq=False, slots=True)
class Node:
    """One job of a flow: its call, its name in the flow and what it waits for."""

    name: str
    call: Call
    after: list[Dep] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<Node {self.name} after={[_ref_name(d.node) for d in self.after]}>"


def _ref_name(ref: Node | str) -> str:
    return ref if isinstance(ref, str) else ref.name


class Flow:
    """A graph of jobs under construction (nothing is stored until it starts).
    ``fail_fast``: a job failing for good (unless every edge from it is ``ignore``)
    cancels every unfinished job of the flow (see ``Corral.start_flow``)."""

    def __init__(self, *, fail_fast: bool = False) -> None:
        self.nodes: list[Node] = []
        self._names: set[str] = set()
        self.fail_fast = fail_fast

    def __repr__(self) -> str:
        return f"<Flow {len(self.nodes)} jobs>"

    def add(
        self,
        call: Call,
        *,
        name: str | None = None,
        after: Iterable[Node | str | Dep] = (),
        on_failure: str = "fail",
        pass_result: bool = False,
    ) -> Node:
        """Add a job that runs after ``after`` (nodes, their names, or :class:`Dep`
        for a policy of its own). ``on_failure`` is the policy of the plain entries;
        ``pass_result`` (one dependency only) makes that dependency's result the
        job's first argument, put ahead of ``call``'s arguments. ``name`` (default:
        the task name's last part, numbered ``#2``... when taken) is how dependents
        read this job's outcome."""
        if not isinstance(call, Call):
            raise ValidationError(f"a flow job is a task.call(...), got {type(call).__name__}")
        deps = [d if isinstance(d, Dep) else Dep(d, on_failure, pass_result) for d in after]
        # By default a job is named after its task's last part ("pages.fetch": "fetch").
        default = call.task.name.rsplit(".", 1)[-1]
        node = Node(self._unique(name or default, given=name is not None), call, deps)
        self.nodes.append(node)
        return node

    def _unique(self, name: str, *, given: bool) -> str:
        if not isinstance(name, str) or not name:
            raise InvalidFlow(f"a flow job's name must be a non-empty string, got {name!r}")
        if name in self._names:
            if given:
                raise InvalidFlow(f"two jobs of the flow are named {name!r}")
            n = 2
            while f"{name}#{n}" in self._names:
                n += 1
            name = f"{name}#{n}"
        self._names.add(name)
        return name

    def _absorb(self, other: Flow, *, default_when_taken: bool = False) -> list[Node]:
        """Copy ``other``'s nodes in (renamed where their names are taken: numbered, or
        with ``default_when_taken`` numbered after the task's default name)."""
        renamed: dict[str, str] = {}
        copies: dict[int, Node] = {}
        for node in other.nodes:
            name = node.name
            if default_when_taken and name in self._names:
                name = node.call.task.name.rsplit(".", 1)[-1]
            copy = Node(self._unique(name, given=False), node.call, [])
            renamed[node.name] = copy.name
            copies[id(node)] = copy
        for node in other.nodes:
            copies[id(node)].after = [
                dataclasses.replace(
                    d,
                    node=copies.get(id(d.node), d.node)
                    if isinstance(d.node, Node)
                    else renamed.get(d.node, d.node),
                )
                for d in node.after
            ]
        new = [copies[id(n)] for n in other.nodes]
        self.nodes += new
        return new

    def sources(self) -> list[Node]:
        """Jobs that wait for nothing."""
        return [n for n in self.nodes if not n.after]

    def sinks(self) -> list[Node]:
        """Jobs nothing waits for."""
        needed = {_ref_name(d.node) for n in self.nodes for d in n.after}
        return [n for n in self.nodes if n.name not in needed]


Step = Call | Flow


def _as_flow(step: Step) -> Flow:
    if isinstance(step, Flow):
        return step
    flow = Flow()
    flow.add(step)
    return flow


def group(*steps: Step | Iterable[Step], fail_fast: bool = False) -> Flow:
    """Jobs (or flows) side by side, none waiting for another: a fan-out. Accepts
    calls or one iterable of them. ``fail_fast``: see :class:`Flow`."""
    items: list[Step] = []
    for step in steps:
        if isinstance(step, Call | Flow):
            items.append(step)
        else:
            items.extend(step)
    flow = Flow(fail_fast=fail_fast)
    for item in items:
        flow._absorb(_as_flow(item))
    return flow


def chain(*steps: Step, fail_fast: bool = False) -> Flow:
    """Steps one after another. A call after a call gets the previous job's result as
    its first argument; a step after a group waits for all of the group (read their
    results with ``ctx.dependencies()``). ``fail_fast``: see :class:`Flow`."""
    if not steps:
        raise InvalidFlow("chain() needs at least one step")
    flow = Flow(fail_fast=fail_fast)
    previous: list[Node] = []
    after_call = False
    for step in steps:
        if isinstance(step, Call):
            node = flow.add(step, after=previous, pass_result=after_call)
            previous, after_call = [node], True
            continue
        if not isinstance(step, Flow):
            raise ValidationError(f"chain() takes calls and flows, got {type(step).__name__}")
        before = {id(n) for n in step.sources()}
        copies = flow._absorb(step)
        for original, copy in zip(step.nodes, copies, strict=True):
            if id(original) in before:
                copy.after += [Dep(p) for p in previous]
        sink_names = {n.name for n in step.sinks()}
        previous = [c for o, c in zip(step.nodes, copies, strict=True) if o.name in sink_names]
        after_call = False
    return flow


def chord(header: Flow | Iterable[Step], callback: Call, *, fail_fast: bool = False) -> Flow:
    """``header`` (a group, or calls) then ``callback`` once all of it has ended: a
    fan-in. The callback reads the results with ``ctx.dependencies()``.
    ``fail_fast``: see :class:`Flow`."""
    return chain(
        header if isinstance(header, Flow) else group(header), callback, fail_fast=fail_fast
    )


def _policy(value: str, node: Node) -> OnFailure:
    try:
        return OnFailure(value)
    except ValueError:
        raise InvalidFlow(
            f"job {node.name!r}: on_failure must be one of "
            f"{', '.join(p.value for p in OnFailure)}, got {value!r}"
        ) from None


def _check_acyclic(nodes: Sequence[Node], index: dict[str, Node]) -> None:
    """InvalidFlow naming the first cycle found (``a -> b -> a``)."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for start in nodes:
        if start.name in state:
            continue
        path: list[str] = []
        stack: list[tuple[Node, int]] = [(start, 0)]
        state[start.name] = 1
        path.append(start.name)
        while stack:
            node, i = stack[-1]
            if i == len(node.after):
                stack.pop()
                state[node.name] = 2
                path.pop()
                continue
            stack[-1] = (node, i + 1)
            dep = index[_ref_name(node.after[i].node)]
            seen = state.get(dep.name)
            if seen == 1:
                cycle = [*path[path.index(dep.name) :], dep.name]
                raise InvalidFlow(
                    "the flow has a dependency cycle (each waits for the next): "
                    + " -> ".join(cycle)
                )
            if seen is None:
                state[dep.name] = 1
                path.append(dep.name)
                stack.append((dep, 0))


def _check_options(node: Node) -> None:
    opts = node.call.task._options
    if opts.job_id is not None:
        raise InvalidFlow(
            f"job {node.name!r}: a flow job cannot choose its job_id (give the flow a flow_id)"
        )
    if opts.dedupe_key is not None or opts.debounce is not None:
        raise InvalidFlow(f"job {node.name!r}: a flow job cannot have a dedupe key or debounce")
    if node.after and opts.delay is not None:
        raise InvalidFlow(f"job {node.name!r}: a job with dependencies cannot have a delay")


def prepare_flow(flow: Flow, flow_id: str | None = None) -> tuple[str, list[FlowJob]]:
    """Check and encode a flow: (its id, its jobs as the backend stores them).
    Raises InvalidFlow (a cycle, a dependency outside the flow...) or the errors of
    ``task.enqueue`` for a job's arguments; nothing is stored."""
    if not isinstance(flow, Flow):
        raise ValidationError(
            f"expected a Flow (chain, group, chord...), got {type(flow).__name__}"
        )
    if not flow.nodes:
        raise InvalidFlow("the flow has no jobs")
    flow_id = new_job_id() if flow_id is None else check_job_id(flow_id)
    if len(flow_id) > MAX_FLOW_ID:
        raise InvalidFlow(f"a flow id has at most {MAX_FLOW_ID} characters")
    index = {n.name: n for n in flow.nodes}
    members = {id(n) for n in flow.nodes}
    for node in flow.nodes:
        names = set()
        for dep in node.after:
            ref = dep.node
            if isinstance(ref, Node) and id(ref) not in members:
                raise InvalidFlow(f"job {node.name!r} depends on {ref.name!r}, not in this flow")
            if _ref_name(ref) not in index:
                raise InvalidFlow(f"job {node.name!r} depends on {ref!r}, not in this flow")
            if _ref_name(ref) in names:
                raise InvalidFlow(f"job {node.name!r} depends on {_ref_name(ref)!r} twice")
            names.add(_ref_name(ref))
        if sum(d.pass_result for d in node.after) > 1:
            raise InvalidFlow(f"job {node.name!r}: only one dependency can pass its result")
        _check_options(node)
    _check_acyclic(flow.nodes, index)
    placed: dict[str, tuple[str, str]] = {}
    encoded: list[tuple[Node, str, Any]] = []
    for n, node in enumerate(flow.nodes):
        call = node.call
        args: tuple[Any, ...] = call.args
        if any(d.pass_result for d in node.after):
            args = (None, *args)
        queue, new = call.task.prepare(args, call.kwargs)
        new = dataclasses.replace(new, id=f"{flow_id}.{n}", given_id=True)
        placed[node.name] = (queue, new.id)
        encoded.append((node, queue, new))
    jobs = [
        FlowJob(
            queue,
            new,
            tuple(
                FlowEdge(
                    _ref_name(d.node),
                    *placed[_ref_name(d.node)],
                    _policy(d.on_failure, node),
                    d.pass_result,
                )
                for d in node.after
            ),
            node.name,
        )
        for node, queue, new in encoded
    ]
    return flow_id, jobs


def prepare_children(children: Any, spawn_id: str, taken: Iterable[str]) -> list[FlowJob]:
    """The jobs a ``WaitForChildren`` names (calls, a group, or any :class:`Flow`:
    children may depend on one another, e.g. a chain), ready for ``Backend.park``: ids
    ``<spawn id>.<n>``, names not among ``taken`` (the outcomes the parent holds
    already, so a second wait adds to them; a taken name gets ``#2``...). The parent
    waits for every child. InvalidFlow when there is no child, or for what
    :func:`prepare_flow` refuses (a cycle...)."""
    flow = children if isinstance(children, Flow) else group(children)
    if not flow.nodes:
        raise InvalidFlow("WaitForChildren needs at least one child job")
    if flow.fail_fast:
        raise InvalidFlow(
            "WaitForChildren: children cannot fail fast (a failing child fails the parent "
            "by on_failure='fail'; its siblings run on)"
        )
    renamed = Flow()
    renamed._names = set(taken)
    renamed._absorb(flow, default_when_taken=True)
    return prepare_flow(renamed, spawn_id)[1]


@dataclass(frozen=True, slots=True)
class SpawnedChildren:
    """The children of a ``WaitForChildren`` raised by an isolated task, prepared in its
    child process (which has the tasks and their options; the worker could not rebuild
    the calls from JSON) and sent to the worker as JSON: ``spawn_id`` and the jobs as
    :func:`prepare_children` made them, or why they are not valid (``invalid``: the
    ValidationError's type name and message), which the worker's park raises."""

    spawn_id: str
    jobs: tuple[FlowJob, ...] = ()
    invalid: tuple[str, str] | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "spawn_id": self.spawn_id,
                "invalid": self.invalid,
                "jobs": [
                    [
                        j.queue,
                        {
                            **{f.name: getattr(j.job, f.name) for f in dataclasses.fields(NewJob)},
                            "data": j.job.data.decode(),
                            "options": j.job.options.decode(),
                        },
                        [
                            [e.name, e.queue, e.job_id, e.on_failure.value, e.pass_result]
                            for e in j.depends_on
                        ],
                        j.name,
                    ]
                    for j in self.jobs
                ],
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> SpawnedChildren:
        spec = orjson.loads(raw)
        jobs = tuple(
            FlowJob(
                queue,
                NewJob(**{**job, "data": job["data"].encode(), "options": job["options"].encode()}),
                tuple(FlowEdge(n, q, i, OnFailure(p), bool(r)) for n, q, i, p, r in edges),
                name,
            )
            for queue, job, edges, name in spec["jobs"]
        )
        invalid = spec["invalid"]
        return cls(spec["spawn_id"], jobs, None if invalid is None else (invalid[0], invalid[1]))

    def error(self) -> ValidationError | None:
        """The error the children were refused with in the child process, if any."""
        if self.invalid is None:
            return None
        kind = getattr(errors, self.invalid[0], None)
        if not (isinstance(kind, type) and issubclass(kind, ValidationError)):
            kind = ValidationError
        return kind(self.invalid[1])
