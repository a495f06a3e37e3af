"""A job hash both ways: the script arguments that store a job, and HGETALL decoded
into a :class:`JobRecord`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from corral.backends.base import JobRecord, JobState, NewJob

__all__ = ["job_row", "job_rows", "record_from_hash", "text", "waiting_order"]


def job_row(job: NewJob, request: str = "") -> list[Any]:
    """One job as add_job.lua reads it: a JSON array, so a batch is one argument.
    ``request`` (a nonce per enqueue call) is stored with a caller-chosen id only."""
    ext: dict[str, Any] = {}
    if request and job.given_id:
        ext["r"] = request
    if job.group:
        ext["g"] = job.group
    if job.dedupe_key:
        ext["k"] = job.dedupe_key
        if job.dedupe_ms:
            ext["w"] = job.dedupe_ms
        if job.debounce_ms:
            ext["d"] = job.debounce_ms
    if job.notify:
        ext["n"] = job.notify
    return [
        job.id,
        job.name,
        job.data.decode(),
        job.priority,
        job.delay_ms,
        job.run_at_ms,
        job.options.decode(),
        ext,
    ]


def job_rows(jobs: Sequence[NewJob], request: str = "") -> bytes:
    """A batch of jobs as enqueue.lua's one JSON argument (``request``: see job_row)."""
    return orjson.dumps([job_row(job, request) for job in jobs])


def text(value: object) -> str:
    """A reply value as text (replies are bytes; some helpers give str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: bytes | None) -> int | None:
    return None if value is None else int(value)


# common.lua: ws = (1000 - priority) * 2^42 + 2^41 + sequence; the priority is not stored.
_BAND = 4398046511104


def waiting_order(
    fifo: Sequence[bytes],
    plain: Sequence[tuple[bytes, float]],
    grouped: Sequence[tuple[bytes, float]],
) -> list[bytes]:
    """Waiting job ids in listing order, from the heads of the three places they wait:
    by priority, then ungrouped (the priority-0 list first) before grouped, then age."""
    keyed: list[tuple[tuple[int, int, int, float], bytes]]
    keyed = [((1000, 0, 0, i), m) for i, m in enumerate(fifo)]
    keyed += [((int(s) // _BAND, 0, 1, s), m) for m, s in plain]
    keyed += [((int(s) // _BAND, 1, 0, s), m) for m, s in grouped]
    keyed.sort(key=lambda pair: pair[0])
    return [m for _, m in keyed]


def _priority(h: dict[bytes, bytes]) -> int:
    if b"prio" in h:  # written by earlier versions
        return int(h[b"prio"])
    return 1000 - int(h[b"ws"]) // _BAND if b"ws" in h else 0


def stored_state(state: bytes | None, name: bytes | None) -> str:
    """A job's state from its hash's 'state' and 'name' fields, "" for no job. A job
    added waiting stores no state (add_job.lua, memory per waiting job): a hash with a
    name and no state is waiting; earlier versions stored 'waiting', read alike."""
    if state is not None:
        return state.decode()
    return "waiting" if name is not None else ""


def record_from_hash(
    queue: str, job_id: str, h: dict[bytes, bytes], errors: list[bytes], logs: list[bytes]
) -> JobRecord | None:
    state = stored_state(h.get(b"state"), h.get(b"name")) if h else ""
    if not state:
        return None
    return JobRecord(
        id=job_id,
        queue=queue,
        name=h[b"name"].decode(),
        state=JobState(state),
        data=h.get(b"data", b"[[],{}]"),
        priority=_priority(h),
        options=h.get(b"opts", b""),
        attempts=int(h.get(b"att", 0)),
        stalls=int(h.get(b"stalls", 0)),
        created_at=_int(h.get(b"ctime")),
        started_at=_int(h.get(b"stime")),
        finished_at=_int(h.get(b"ftime")),
        run_at=_int(h.get(b"rtime")),
        progress=h.get(b"prog"),
        result=h.get(b"res"),
        errors=errors,
        logs=logs,
        cancel_requested=h.get(b"cxl") == b"1",
        group=h[b"grp"].decode() if b"grp" in h else None,
        worker=h[b"wkr"].decode("utf-8", "replace") if b"wkr" in h else None,
        dedupe_key=h[b"ddk"].decode("utf-8", "replace") if b"ddk" in h else None,
        flow=h[b"fl"].decode("utf-8", "replace") if b"fl" in h else None,
    )
