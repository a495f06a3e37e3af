"""Flows on SQLite: creating a flow, and handing outcomes to dependents.

Every path that ends a job of a flow (complete, fail, cancel, abort, reap...) changes
its state, and a trigger (migration 11) then notes it in ``flow_settle``; the store
runs :func:`settle` at the end of every write transaction that changed rows, so the
outcome reaches the dependents (and, when one ends because of it, theirs) before the
transaction commits. All queues live in one database: no handoff is ever pending.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import orjson

from corral.backends.flow_records import (
    DependencyOutcome,
    FlowEdge,
    FlowJob,
    FlowRecord,
    OnFailure,
    decode_flow,
    encode_flow,
    heard_anew,
    retry_plan,
    spawn_order,
)
from corral.backends.sqlite.rows import (
    add_error,
    add_stat,
    back_seq,
    clock_us,
    emit,
    insert_jobs,
    leased,
    to_cancelled,
)
from corral.errors import JobNotFound

if TYPE_CHECKING:
    from corral.backends.sqlite.store import Store

__all__ = ["SQLiteFlows", "settle"]

Conn = sqlite3.Connection

_LAST_ERROR = (
    "SELECT error FROM job_errors WHERE queue = ? AND job_id = ? ORDER BY rowid DESC LIMIT 1"
)
_OPEN_EDGES = """
SELECT dep_queue, dep_id, name, policy, pass_result FROM flow_edges
WHERE queue = ? AND job_id = ? AND outcome IS NULL
"""
_RECORD_EDGE = """
UPDATE flow_edges SET outcome = ?, result = ?, error = ?
WHERE dep_queue = ? AND dep_id = ? AND name = ? AND outcome IS NULL
"""
_NEWEST_FLOWS = "SELECT id, spec FROM flows ORDER BY created_at DESC, id DESC LIMIT ?"
_FLOWS_BEFORE = (
    "SELECT id, spec FROM flows WHERE (created_at, id) < (?, ?)"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)
_STILL_OPEN = "SELECT 1 FROM flow_edges WHERE dep_queue = ? AND dep_id = ? AND outcome IS NULL"


#: Ids per ``IN (...)`` of one query (SQLite allows 32,766 parameters).
_IDS_PER_QUERY = 500

_DEPENDENCY_ERRORS = ("DependencyFailed", "DependencySkipped")


def _insert_edges(conn: Conn, queue: str, member: FlowJob, verb: str) -> None:
    """Store the edges of ``member`` (a job of ``queue``) to the jobs it depends on."""
    conn.executemany(
        f"{verb} INTO flow_edges (dep_queue, dep_id, name, queue, job_id, policy,"
        " pass_result) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                queue,
                member.job.id,
                e.name,
                e.queue,
                e.job_id,
                e.on_failure.value,
                int(e.pass_result),
            )
            for e in member.depends_on
        ],
    )


def _dependency_error(name: str, state: str, error: bytes | None, policy: str) -> bytes:
    # The cause kept is the original failure (a dependency error hands its own cause on),
    # so a long chain of failed dependents stores one error each, not nested ones.
    message = f"dependency {name} {state}"
    cause, origin = None, name
    if error:
        try:
            cause = orjson.loads(error)
            if cause.get("type") in _DEPENDENCY_ERRORS and isinstance(cause.get("cause"), dict):
                origin = str(cause.get("origin") or cause.get("dependency"))
                cause = cause["cause"]
            if origin != name:
                message += f" ({origin} failed first)"
            message += f": {cause.get('type', 'Error')}: {cause.get('message', '')}"
        except (orjson.JSONDecodeError, AttributeError):
            cause = None
    kind = "DependencySkipped" if policy == "skip" else "DependencyFailed"
    return orjson.dumps(
        {
            "type": kind,
            "message": message,
            "attempt": 0,
            "at": clock_us() // 1000,
            "dependency": name,
            "origin": origin,
            "cause": cause or False,
        }
    )


_FAIL_FAST_FLOW = """
SELECT f.id, f.spec FROM jobs j JOIN flows f ON f.id = j.flow
WHERE j.queue = ? AND j.id = ? AND json_extract(CAST(f.spec AS TEXT), '$.ff')
"""
_POLICIES = "SELECT policy FROM flow_edges WHERE queue = ? AND job_id = ?"


def _fail_fast(conn: Conn, queue: str, job_id: str, error: bytes | None) -> None:
    """A job of a fail-fast flow failed: unless every edge from it is ``ignore``, every
    unfinished job of the flow is cancelled (running ones asked to stop), each with a
    ``SiblingFailed`` error naming it."""
    row = conn.execute(_FAIL_FAST_FLOW, (queue, job_id)).fetchone()
    if row is None:
        return
    policies = [p for (p,) in conn.execute(_POLICIES, (queue, job_id))]
    if policies and all(p == "ignore" for p in policies):
        return
    record = decode_flow(row[0], bytes(row[1]))
    name = next((n for q, i, n in record.jobs if (q, i) == (queue, job_id)), job_id)
    message = f"job {name} ({job_id}) of the flow failed"
    cause = None
    if error:
        try:
            cause = orjson.loads(error)
            message += f": {cause.get('type', 'Error')}: {cause.get('message', '')}"
        except (orjson.JSONDecodeError, AttributeError):
            cause = None
    reason = orjson.dumps(
        {
            "type": "SiblingFailed",
            "message": f"cancelled (fail_fast): {message}",
            "attempt": 0,
            "at": clock_us() // 1000,
            "job": job_id,
            "name": name,
            "cause": cause or False,
        }
    )
    for member_queue, member_id, _ in record.jobs:
        found = conn.execute(
            "SELECT state, cancel_requested FROM jobs WHERE queue = ? AND id = ?",
            (member_queue, member_id),
        ).fetchone()
        if found is None:
            continue
        if found[0] in ("waiting", "delayed", "blocked"):
            add_error(conn, member_queue, member_id, reason)
            to_cancelled(conn, member_queue, member_id, clock_us())
        elif found[0] == "active" and not found[1]:
            add_error(conn, member_queue, member_id, reason)
            conn.execute(
                "UPDATE jobs SET cancel_requested = 1 WHERE queue = ? AND id = ?",
                (member_queue, member_id),
            )


def _hand(conn: Conn, queue: str, job_id: str, state: str) -> None:
    """One ended job's outcome reaches its dependents (see the module docstring)."""
    result = error = None
    if state == "completed":
        row = conn.execute("SELECT result FROM jobs WHERE queue = ? AND id = ?", (queue, job_id))
        result = (row.fetchone() or (None,))[0]
    else:
        error = (conn.execute(_LAST_ERROR, (queue, job_id)).fetchone() or (None,))[0]
        if state == "failed":
            _fail_fast(conn, queue, job_id, error)
    for dep_queue, dep_id, name, policy, pass_result in conn.execute(
        _OPEN_EDGES, (queue, job_id)
    ).fetchall():
        conn.execute(_RECORD_EDGE, (state, result, error, dep_queue, dep_id, name))
        row = conn.execute(
            "SELECT state, data FROM jobs WHERE queue = ? AND id = ?", (dep_queue, dep_id)
        ).fetchone()
        if row is None or row[0] != "blocked":
            continue
        data: bytes = row[1]
        if state != "completed" and policy != "ignore":
            add_error(conn, dep_queue, dep_id, _dependency_error(name, state, error, policy))
            now_us = clock_us()
            if policy == "skip":
                to_cancelled(conn, dep_queue, dep_id, now_us)
            else:
                conn.execute(
                    "UPDATE jobs SET state = 'failed', finished_at = ?, finished_us = ? "
                    "WHERE queue = ? AND id = ?",
                    (now_us // 1000, now_us, dep_queue, dep_id),
                )
                add_stat(conn, dep_queue, "failed", 1)
                emit(conn, dep_queue, "failed", dep_id)
            continue
        if pass_result and bytes(data).startswith(b"[[null"):
            data = b"[[" + (result or b"null") + bytes(data)[6:]
            conn.execute(
                "UPDATE jobs SET data = ? WHERE queue = ? AND id = ?", (data, dep_queue, dep_id)
            )
        if conn.execute(_STILL_OPEN, (dep_queue, dep_id)).fetchone() is None:
            conn.execute(
                "UPDATE jobs SET state = 'waiting', seq = ? WHERE queue = ? AND id = ?",
                (back_seq(conn, dep_queue), dep_queue, dep_id),
            )
            emit(conn, dep_queue, "waiting", dep_id)


def settle(conn: Conn) -> None:
    """Hand every outcome noted in ``flow_settle`` to its dependents, and those of the
    dependents that end on the way, until none is left (called by the store)."""
    while True:
        rows = conn.execute(
            "SELECT id, queue, job_id, state FROM flow_settle ORDER BY id LIMIT 500"
        ).fetchall()
        if not rows:
            return
        conn.execute("DELETE FROM flow_settle WHERE id <= ?", (rows[-1][0],))
        for _, queue, job_id, state in rows:
            _hand(conn, queue, job_id, state)


def insert_flow(conn: Conn, flow_id: str, jobs: Sequence[FlowJob], fail_fast: bool = False) -> bool:
    """Store a whole flow in this transaction (see Backend.add_flow)."""
    now_ms = clock_us() // 1000
    spec = encode_flow(list(jobs), now_ms, fail_fast)
    if (
        conn.execute(
            "INSERT OR IGNORE INTO flows (id, created_at, spec) VALUES (?, ?, ?)",
            (flow_id, now_ms, spec),
        ).rowcount
        == 0
    ):
        return False
    by_queue: dict[str, list[FlowJob]] = {}
    for j in jobs:
        by_queue.setdefault(j.queue, []).append(j)
    for queue, members in by_queue.items():
        insert_jobs(conn, queue=queue, jobs=[m.job for m in members])
        for m in members:
            state = "blocked" if m.depends_on else None
            conn.execute(
                "UPDATE jobs SET flow = ?, state = COALESCE(?, state) WHERE queue = ? AND id = ?",
                (flow_id, state, queue, m.job.id),
            )
            _insert_edges(conn, queue, m, "INSERT")
    return True


def retry_flow_jobs(
    conn: Conn, flow_id: str, roots: Collection[tuple[str, str]] | None = None
) -> int:
    """Put a flow's failed and cancelled jobs back (see Backend.retry_flow)."""
    row = conn.execute("SELECT spec FROM flows WHERE id = ?", (flow_id,)).fetchone()
    if row is None:
        raise JobNotFound(f"no flow {flow_id!r}")
    record = decode_flow(flow_id, bytes(row[0]))
    states = {}
    for queue, job_id, _ in record.jobs:
        found = conn.execute(
            "SELECT state FROM jobs WHERE queue = ? AND id = ?", (queue, job_id)
        ).fetchone()
        states[(queue, job_id)] = found[0] if found else ""
    again, deps = retry_plan(record, states, roots)
    for queue, job_id in again:
        for name, dep in deps.get((queue, job_id), []):
            if heard_anew(dep, again, states):
                conn.execute(
                    "UPDATE flow_edges SET outcome = NULL, result = NULL, error = NULL "
                    "WHERE dep_queue = ? AND dep_id = ? AND name = ?",
                    (queue, job_id, name),
                )
    for queue, job_id in again:
        waits = conn.execute(_STILL_OPEN, (queue, job_id)).fetchone() is not None
        conn.execute(
            "UPDATE jobs SET state = ?, seq = ?, attempts = 0, stalls = 0, finished_at = NULL,"
            " finished_us = NULL, cancel_requested = 0 WHERE queue = ? AND id = ?",
            ("blocked" if waits else "waiting", back_seq(conn, queue), queue, job_id),
        )
        if not waits:
            emit(conn, queue, "waiting", job_id)
    return len(again)


def park_job(
    conn: Conn,
    queue: str,
    job_id: str,
    token: str,
    spawn_id: str,
    children: Sequence[FlowJob],
    on_failure: OnFailure,
) -> bool:
    """Store a leased job's children and park it (see Backend.park)."""
    row = leased(conn, queue, job_id, token)
    if row is None:
        return False
    by_queue: dict[str, list[FlowJob]] = {}
    for child in children:
        by_queue.setdefault(child.queue, []).append(child)
    for child_queue, members in by_queue.items():
        created = insert_jobs(conn, queue=child_queue, jobs=[m.job for m in members])
        for m, stand_in in zip(members, created, strict=True):
            # A child waiting for other children (a chain, a chord...) starts blocked;
            # one stored by an earlier run of the same wait is left as it is.
            state = "blocked" if m.depends_on and stand_in is None else None
            conn.execute(
                "UPDATE jobs SET flow = ?, state = COALESCE(?, state) WHERE queue = ? AND id = ?",
                (spawn_id, state, child_queue, m.job.id),
            )
            _insert_edges(conn, child_queue, m, "INSERT OR IGNORE")
    conn.executemany(
        "INSERT OR IGNORE INTO flow_edges (dep_queue, dep_id, name, queue, job_id, policy,"
        " pass_result) VALUES (?, ?, ?, ?, ?, ?, 0)",
        [(queue, job_id, c.name, c.queue, c.job.id, on_failure.value) for c in children],
    )
    if row[0]:  # its cancellation was asked for meanwhile: honour it instead
        to_cancelled(conn, queue, job_id, clock_us())
        return True
    waits = conn.execute(_STILL_OPEN, (queue, job_id)).fetchone() is not None
    conn.execute(
        "UPDATE jobs SET state = ?, seq = ?, attempts = attempts - 1, token = NULL,"
        " lease_until = NULL WHERE queue = ? AND id = ?",
        ("blocked" if waits else "waiting", back_seq(conn, queue), queue, job_id),
    )
    if not waits:
        emit(conn, queue, "waiting", job_id)
    return True


class SQLiteFlows:
    """Flow creation and reads (see the module docstring)."""

    def _s(self) -> Store:
        raise NotImplementedError

    async def add_flow(
        self, flow_id: str, jobs: Sequence[FlowJob], fail_fast: bool = False
    ) -> bool:
        return await self._s().write(lambda conn: insert_flow(conn, flow_id, jobs, fail_fast))

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        def tx(conn: Conn) -> bytes | None:
            row = conn.execute("SELECT spec FROM flows WHERE id = ?", (flow_id,)).fetchone()
            return None if row is None else bytes(row[0])

        raw = await self._s().read(tx)
        return None if raw is None else decode_flow(flow_id, raw)

    async def list_flows(
        self, limit: int, before: tuple[int, str] | None = None
    ) -> list[FlowRecord]:
        def tx(conn: Conn) -> list[tuple[str, bytes]]:
            if before is None:
                rows = conn.execute(_NEWEST_FLOWS, (limit,))
            else:
                rows = conn.execute(_FLOWS_BEFORE, (*before, limit))
            return [(flow_id, bytes(spec)) for flow_id, spec in rows]

        return [decode_flow(flow_id, raw) for flow_id, raw in await self._s().read(tx)]

    async def dependency_outcomes(self, queue: str, job_id: str) -> dict[str, DependencyOutcome]:
        def tx(conn: Conn) -> dict[str, DependencyOutcome]:
            rows = conn.execute(
                "SELECT name, outcome, result, error FROM flow_edges "
                "WHERE dep_queue = ? AND dep_id = ? AND outcome IS NOT NULL",
                (queue, job_id),
            )
            return {n: DependencyOutcome(s, r, e) for n, s, r, e in rows}

        return await self._s().read(tx)

    async def spawned(self, queue: str, job_id: str) -> list[tuple[str, str, str]]:
        def tx(conn: Conn) -> list[tuple[str, str, str]]:
            rows = conn.execute(
                "SELECT queue, job_id, name FROM flow_edges WHERE dep_queue = ? AND dep_id = ?",
                (queue, job_id),
            )
            return [(q, i, n) for q, i, n in rows]

        return spawn_order(job_id, await self._s().read(tx))

    async def dependents(
        self, queue: str, job_ids: Sequence[str]
    ) -> list[tuple[str, str, FlowEdge]]:
        def tx(conn: Conn) -> list[tuple[str, str, FlowEdge]]:
            out = []
            for i in range(0, len(job_ids), _IDS_PER_QUERY):
                part = job_ids[i : i + _IDS_PER_QUERY]
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    "SELECT dep_queue, dep_id, name, job_id, policy, pass_result FROM flow_edges"
                    f" WHERE queue = ? AND job_id IN ({marks})",
                    (queue, *part),
                )
                out += [
                    (dq, di, FlowEdge(name, queue, j, OnFailure(policy), bool(passed)))
                    for dq, di, name, j, policy, passed in rows
                ]
            return out

        return await self._s().read(tx)

    async def retry_flow(
        self, flow_id: str, roots: Collection[tuple[str, str]] | None = None
    ) -> int:
        return await self._s().write(lambda conn: retry_flow_jobs(conn, flow_id, roots))

    async def park(
        self,
        queue: str,
        job_id: str,
        token: str,
        spawn_id: str,
        children: Sequence[FlowJob],
        on_failure: OnFailure = OnFailure.FAIL,
    ) -> bool:
        return await self._s().write(
            lambda conn: park_job(conn, queue, job_id, token, spawn_id, children, on_failure)
        )

    async def prune_flows(self, queue: str) -> int:
        return 0  # the record went with its last job (migration 14's trigger)

    async def pass_handoffs(self, queue: str) -> int:
        return 0  # every outcome reached its dependents in the transaction that ended it
