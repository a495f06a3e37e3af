"""A flow drawn as a graph: each job a box in the column of its depth (a job stands right
of every job it waits for), each edge an arrow from the right side of the dependency's box
to the left side of the dependent's. Laid out here, on the server, as plain numbers the
template turns into SVG: no script is needed to draw it, and a refresh redraws it whole.

Within a column, jobs are ordered by the mean row of what they wait for (one pass of the
barycentre heuristic), which keeps chains straight and fans tidy. A column of more than
``COLUMN_BOXES`` jobs shows the first ones and one box for the rest ("975 more"), which
their arrows then join (once per pair of boxes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["Edge", "Graph", "Node", "columns", "layout"]

#: Box size and gaps, in SVG user units (pixels at 100 %).
NODE_W, NODE_H = 210, 56
COL_GAP, ROW_GAP, PAD = 96, 18, 12
#: Characters of a job's name, and of its second line (state · task · queue), shown in
#: its box (the whole name is its tooltip).
NAME_CHARS, TASK_CHARS = 24, 30
#: Boxes drawn per column: past this, the rest of the column is one box that counts
#: them by state (a 1,000-page fan-out stays a picture, not a 70,000-pixel scroll).
COLUMN_BOXES = 12


@dataclass(frozen=True, slots=True)
class Node:
    """One job's box: its column, top-left corner, its name (``label``: cut to fit),
    state, task and queue (``detail``, cut to fit) and link (None: removed)."""

    name: str
    depth: int
    x: int
    y: int
    label: str
    state: str
    detail: str
    href: str | None


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow from ``source`` to ``target`` (names): its end points and the cubic
    curve between them (SVG path data); ``policy`` is the edge's on_failure."""

    source: str
    target: str
    x1: int
    y1: int
    x2: int
    y2: int
    path: str
    policy: str
    pass_result: bool
    state: str


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    depth: int
    nodes: list[Node]
    edges: list[Edge]
    node_w: int = NODE_W
    node_h: int = NODE_H


def columns(flow: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The flow's jobs by depth: 0 for jobs that wait for nothing, else one more than
    the deepest job they wait for (the graph is acyclic)."""
    after: dict[str, list[str]] = {job["name"]: [] for job in flow["jobs"]}
    for edge in flow["edges"]:
        after[edge["to"]].append(edge["from"])
    depth: dict[str, int] = {}
    for start in after:
        stack = [start]
        while stack:
            name = stack[-1]
            pending = [d for d in after[name] if d not in depth]
            if pending:
                stack += pending
                continue
            stack.pop()
            depth[name] = 1 + max((depth[d] for d in after[name]), default=-1)
    out: list[list[dict[str, Any]]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for job in flow["jobs"]:
        out[depth[job["name"]]].append({**job, "after": after[job["name"]]})
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(flow: dict[str, Any], href: Any) -> Graph:
    """Boxes and arrows for ``flow`` (as :meth:`FlowRun.to_dict` gives it); ``href``
    makes a job's link from ``(queue, id)``."""
    cols = columns(flow)
    row: dict[str, float] = {}
    for col in cols:
        keyed = []
        for i, job in enumerate(col):
            mean = sum(row[d] for d in job["after"]) / len(job["after"]) if job["after"] else i
            keyed.append((mean, i, job))
        keyed.sort(key=lambda k: (k[0], k[1]))
        col[:] = [job for _, _, job in keyed]
        for i, job in enumerate(col):
            row[job["name"]] = i
    step = NODE_H + ROW_GAP
    nodes: dict[str, Node] = {}
    box_of: dict[str, str] = {}  # job name -> the name of the box that shows it
    tallest = max((min(len(c), COLUMN_BOXES) for c in cols), default=0)
    for depth, col in enumerate(cols):
        shown = col if len(col) <= COLUMN_BOXES else col[: COLUMN_BOXES - 1]
        top = PAD + (tallest - min(len(col), COLUMN_BOXES)) * step // 2
        for i, job in enumerate(shown):
            box_of[job["name"]] = job["name"]
            state = job["state"] or "removed"
            task = job.get("task") or ""
            where = f"{task} · {job['queue']}" if task else job["queue"]
            detail = _cut(where, max(TASK_CHARS - len(state) - 3, 8))  # "state · " first
            nodes[job["name"]] = Node(
                name=job["name"],
                depth=depth,
                x=PAD + depth * (NODE_W + COL_GAP),
                y=top + i * step,
                label=_cut(job["name"], NAME_CHARS),
                state=state,
                detail=detail,
                href=href(job["queue"], job["id"]) if job["state"] else None,
            )
        if len(shown) < len(col):
            rest = col[len(shown) :]
            key = f"+{depth}"  # no job name starts with "+" (names are KEY-shaped)
            counts = Counter(job["state"] or "removed" for job in rest)
            words = ", ".join(f"{n} {state}" for state, n in counts.most_common())
            nodes[key] = Node(
                name=key,
                depth=depth,
                x=PAD + depth * (NODE_W + COL_GAP),
                y=top + len(shown) * step,
                label=f"{len(rest):,} more jobs",
                state=counts.most_common(1)[0][0] if len(counts) == 1 else "mixed",
                detail=_cut(words, TASK_CHARS),
                href=None,
            )
            box_of.update((job["name"], key) for job in rest)
    policies: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in flow["edges"]:
        policies.setdefault((box_of[e["from"]], box_of[e["to"]]), []).append(e)
    edges = []
    for (source, target), group in policies.items():
        a, b = nodes[source], nodes[target]
        kinds = sorted({e["on_failure"] for e in group})
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        bend = (x2 - x1) // 2
        edges.append(
            Edge(
                source=a.name,
                target=b.name,
                x1=x1,
                y1=y1,
                x2=x2,
                y2=y2,
                path=f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}",
                policy=kinds[0] if len(kinds) == 1 else "/".join(kinds),
                pass_result=any(e["pass_result"] for e in group),
                state=a.state,
            )
        )
    return Graph(
        width=2 * PAD + len(cols) * NODE_W + max(len(cols) - 1, 0) * COL_GAP,
        height=2 * PAD + tallest * step - ROW_GAP if tallest else 2 * PAD,
        depth=len(cols),
        nodes=list(nodes.values()),
        edges=edges,
    )
