"""Encodings shared by the backends (so each is written once)."""

from __future__ import annotations

from typing import Any

import orjson

from corral.backends.base import WorkerInfo

__all__ = ["decode_worker", "encode_worker", "raw_text"]


def encode_worker(info: WorkerInfo, ttl_ms: int) -> bytes:
    """A worker record as stored: JSON with its time-to-live."""
    return orjson.dumps(
        {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "queues": info.queues,
            "concurrency": info.concurrency,
            "started_at": info.started_at,
            "active": info.active,
            "processed": info.processed,
            "failed": info.failed,
            "stuck": info.stuck,
            "extra": info.extra,
            "jobs": info.jobs,
            "version": info.version,
            "children": info.children,
            "ttl_ms": ttl_ms,
        }
    )


def raw_text(raw: bytes | str) -> str:
    """Stored bytes as text, undecodable bytes replaced (so any value can be shown)."""
    return raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


def _jobs(value: Any) -> list[tuple[str, str]]:
    """The jobs a worker listed; absent (older workers) or malformed: none."""
    if not isinstance(value, list):
        return []
    return [
        (pair[0], pair[1])
        for pair in value
        if isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
    ]


def decode_worker(raw: bytes, remaining_ms: int, now_ms: int) -> WorkerInfo:
    """Rebuild a worker record; its last heartbeat is derived from the time left. An
    unreadable record (garbage in the store) is still a live worker, shown with host
    ``(unreadable record)`` and its raw text in ``extra["corrupt"]``, so one bad record
    does not fail the listing."""
    try:
        data: dict[str, Any] = orjson.loads(raw)
        return WorkerInfo(
            id=data["id"],
            host=data["host"],
            pid=data["pid"],
            queues=data["queues"],
            concurrency=data["concurrency"],
            started_at=data["started_at"],
            last_seen=now_ms - max(0, int(data.get("ttl_ms", 0)) - remaining_ms),
            active=data.get("active", 0),
            processed=data.get("processed", 0),
            failed=data.get("failed", 0),
            stuck=data.get("stuck", 0),
            extra=data.get("extra", {}),
            jobs=_jobs(data.get("jobs")),
            version=data.get("version") if isinstance(data.get("version"), str) else None,
            children=data["children"] if isinstance(data.get("children"), int) else 0,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return WorkerInfo(
            id="?",
            host="(unreadable record)",
            pid=0,
            queues=[],
            concurrency=0,
            started_at=0,
            last_seen=now_ms,
            extra={"corrupt": raw_text(raw)},
        )
