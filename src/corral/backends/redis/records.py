"""Decoding a job hash (HGETALL) into a :class:`JobRecord`."""

from __future__ import annotations

from corral.backends.base import JobRecord, JobState

__all__ = ["record_from_hash", "text"]


def text(value: object) -> str:
    """A reply value as text (replies are bytes; some helpers give str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def record_from_hash(
    queue: str, job_id: str, h: dict[bytes, bytes], errors: list[bytes], logs: list[bytes]
) -> JobRecord | None:
    if not h or b"state" not in h:
        return None
    return JobRecord(
        id=job_id,
        queue=queue,
        name=h[b"name"].decode(),
        state=JobState(h[b"state"].decode()),
        data=h.get(b"data", b"[[],{}]"),
        priority=int(h.get(b"prio", 0)),
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
    )
