"""Building blocks of the SQLite transitions: each runs inside a caller's transaction.

The store's clock is read here, in :func:`clock_us`, and nowhere else.
"""

from __future__ import annotations

import bisect
import sqlite3
import time
from collections.abc import Iterable, Sequence

import orjson

from corral.backends.base import DURATION_BUCKETS, JobRecord, JobState, NewJob, Retention
from corral.backends.sqlite import queries as q

__all__ = [
    "add_error",
    "add_stat",
    "back_seq",
    "clock_us",
    "delete",
    "emit",
    "event_ids",
    "front_seq",
    "insert_jobs",
    "leased",
    "observe",
    "promote_due",
    "records",
    "retain",
    "stalled_error",
    "to_cancelled",
]

Conn = sqlite3.Connection


def clock_us() -> int:
    """The store's clock (this machine's), in microseconds."""
    return time.time_ns() // 1000


def delete(conn: Conn, queue: str, ids: Iterable[str]) -> int:
    """Delete these jobs with their errors and logs; returns how many ids were given."""
    listed = list(ids)
    if not listed:
        return 0
    args = (queue, orjson.dumps(listed).decode())
    conn.execute(q.DELETE_JOBS, args)
    conn.execute(q.DELETE_ERRORS, args)
    conn.execute(q.DELETE_LOGS, args)
    return len(listed)


def retain(conn: Conn, queue: str, state: str, retention: Retention, now_us: int) -> None:
    if retention.max_age is not None:
        cutoff = now_us - int(retention.max_age * 1_000_000)
        old = conn.execute(q.FINISHED_BEFORE, (queue, state, cutoff, 1000)).fetchall()
        delete(conn, queue, (r[0] for r in old))
    if retention.count is not None:
        excess = conn.execute(q.FINISHED_EXCESS, (queue, state, retention.count)).fetchall()
        delete(conn, queue, (r[0] for r in excess))


# Waiting order (as on Redis): priority, then the order jobs joined the line. A job that
# waits again joins at the back; one a worker hands back (shutdown, lease expired), at
# the front of its priority.


def back_seq(conn: Conn, queue: str, n: int = 1) -> int:
    """The first of ``n`` new sequence numbers (the back of the line); 0 for a queue
    never used (it has no jobs to line up behind)."""
    row = conn.execute(q.NEXT_SEQ, (n, queue)).fetchone()
    return 0 if row is None else int(row[0]) - n + 1


def front_seq(conn: Conn, queue: str, job_id: str) -> int:
    """A sequence number ahead of every waiting job of this job's priority and group."""
    priority, grp, seq = conn.execute(q.LINE_PLACE, (queue, job_id)).fetchone()
    if grp is None:
        head = conn.execute(q.HEAD_UNGROUPED, (queue, priority)).fetchone()[0]
    else:
        head = conn.execute(q.HEAD_GROUPED, (queue, grp, priority)).fetchone()[0]
    return int(head) - 1 if head is not None and head <= seq else int(seq)


def promote_due(conn: Conn, queue: str, now_ms: int) -> None:
    """Delayed jobs that are due join the back of the line, by due time."""
    due = conn.execute(q.DUE, (queue, now_ms)).fetchall()
    if due:
        first = back_seq(conn, queue, len(due))
        conn.executemany(q.TO_WAITING_AT, [(first + i, queue, row[0]) for i, row in enumerate(due)])


def add_error(conn: Conn, queue: str, job_id: str, error: bytes) -> None:
    conn.execute(q.ADD_ERROR, (queue, job_id, error))
    conn.execute(q.TRIM_ERRORS, (queue, job_id, queue, job_id))


def emit(conn: Conn, queue: str, event: str, *job_ids: str) -> None:
    """Append lifecycle events (the SQLite twin of Redis's pub/sub channel): one row
    per call, its ``job_id`` the jobs' ids separated by spaces (an id has none), as
    Redis publishes one message per batch. Readers split it (:func:`event_ids`)."""
    if job_ids:
        conn.execute(q.EMIT, (queue, " ".join(job_ids), event))


def event_ids(job_ids: str) -> list[str]:
    """The job ids of one ``events`` row (see :func:`emit`)."""
    return job_ids.split(" ")


def add_stat(conn: Conn, queue: str, name: str, value: float) -> None:
    conn.execute(q.ADD_STAT, (queue, name, value))


def _stand_in(conn: Conn, queue: str, job: NewJob, now: int) -> str | None:
    """The job that stands for this add instead of a new one (see ``NewJob``), after
    debouncing it when asked; None when the add should create its job."""
    if conn.execute(q.JOB_EXISTS, (queue, job.id)).fetchone():
        return job.id
    row = conn.execute(q.DEDUPE_HOLDER, (queue, job.dedupe_key)).fetchone()
    if row is None:
        return None
    holder, expires_at, state = row
    if job.debounce_ms:
        if state not in ("waiting", "delayed"):
            return None
        run_at = now + job.debounce_ms
        conn.execute(
            q.DEBOUNCE,
            (job.name, job.data, job.options, job.notify or None, run_at, queue, holder),
        )
        emit(conn, queue, "debounced", holder)
        return str(holder)
    if state is None:
        return None
    # A window holds the key for its length; otherwise until the job finishes.
    held = expires_at > now if expires_at is not None else state in ("waiting", "delayed", "active")
    return str(holder) if held else None


def insert_jobs(conn: Conn, *, queue: str, jobs: Sequence[NewJob]) -> list[str | None]:
    """Store new jobs (waiting, or delayed). Per job: None when created, else the id
    of the job that stands for it (the existing one with that id, or the holder of
    its dedupe key)."""
    conn.execute(q.REGISTER_QUEUE, (queue,))
    seq = back_seq(conn, queue, len(jobs)) - 1
    now = clock_us() // 1000
    out: list[str | None] = []
    added: list[str] = []
    for job in jobs:
        seq += 1
        if job.dedupe_key:
            stand_in = _stand_in(conn, queue, job, now)
            if stand_in is not None:
                out.append(stand_in)
                continue
        delay_ms = job.debounce_ms or job.delay_ms
        run_at = (not job.debounce_ms and job.run_at_ms) or (now + delay_ms if delay_ms > 0 else 0)
        state = "delayed" if run_at > now else "waiting"
        cursor = conn.execute(
            q.INSERT_JOB,
            (
                queue,
                job.id,
                job.name,
                job.data,
                state,
                job.priority,
                seq,
                job.options,
                now,
                run_at or None,
                job.group or None,
                job.dedupe_key or None,
                job.notify or None,
            ),
        )
        if cursor.rowcount != 1:
            out.append(job.id)
            continue
        out.append(None)
        if job.dedupe_key:
            expires_at = now + job.dedupe_ms if job.dedupe_ms else None
            conn.execute(q.HOLD_DEDUPE, (queue, job.dedupe_key, job.id, expires_at))
        added.append(job.id)
    emit(conn, queue, "added", *added)
    return out


def observe(conn: Conn, queue: str, durations: Sequence[float]) -> dict[int, int]:
    """Count completions and their run times into the queue's histogram; returns the
    count per duration bucket."""
    counts: dict[int, int] = {}
    for seconds in durations:
        index = bisect.bisect_left(DURATION_BUCKETS, seconds)
        counts[index] = counts.get(index, 0) + 1
    add_stat(conn, queue, "completed", len(durations))
    add_stat(conn, queue, "duration_sum", sum(durations))
    for index, n in counts.items():
        add_stat(conn, queue, f"b{index}", n)
    return counts


def to_cancelled(conn: Conn, queue: str, job_id: str, now_us: int) -> None:
    conn.execute(q.TO_CANCELLED, (now_us // 1000, now_us, queue, job_id))
    emit(conn, queue, "cancelled", job_id)


def leased(conn: Conn, queue: str, job_id: str, token: str) -> tuple[int] | None:
    row: tuple[int] | None = conn.execute(q.LEASED, (queue, job_id, token)).fetchone()
    return row


def stalled_error(
    stalls: int, max_stalls: int, attempts: int, now_us: int, worker: str | None = None
) -> bytes:
    message = (
        f"lease expired {stalls} times (worker died or was blocked); max_stalls is {max_stalls}"
    )
    record: dict[str, object] = {
        "type": "Stalled",
        "message": message,
        "attempt": attempts,
        "at": now_us // 1000,
    }
    if worker is not None:
        record["worker"] = worker
    return orjson.dumps(record)


def records(conn: Conn, queue: str, ids: Sequence[str]) -> list[JobRecord | None]:
    out: list[JobRecord | None] = []
    for job_id in ids:
        row = conn.execute(q.GET_JOB, (queue, job_id)).fetchone()
        if row is None:
            out.append(None)
            continue
        errors = [r[0] for r in conn.execute(q.GET_ERRORS, (queue, job_id))]
        logs = [r[0].encode() for r in conn.execute(q.GET_LOGS, (queue, job_id))]
        out.append(
            JobRecord(
                id=row[0],
                queue=queue,
                name=row[1],
                state=JobState(row[2]),
                data=row[3],
                priority=row[4],
                options=row[5] or b"",
                attempts=row[6],
                stalls=row[7],
                created_at=row[8],
                started_at=row[9],
                finished_at=row[10],
                run_at=row[11],
                progress=row[12],
                result=row[13],
                errors=errors,
                logs=logs,
                cancel_requested=bool(row[14]),
                group=row[15],
                worker=row[16],
                dedupe_key=row[17],
                flow=row[18],
            )
        )
    return out
