"""Worker registrations as stored (backends/wire.py): jobs and version round-trip, and
registrations of older workers (without them) or with malformed ones still read."""

from __future__ import annotations

import orjson

from corral.backends.records import WorkerInfo
from corral.backends.wire import decode_worker, encode_worker

OLD = {
    "id": "h:1:aa",
    "host": "h",
    "pid": 1,
    "queues": ["q"],
    "concurrency": 2,
    "started_at": 5,
    "active": 1,
    "processed": 3,
    "failed": 0,
    "extra": {},
    "ttl_ms": 1000,
}


def test_jobs_and_version_round_trip() -> None:
    info = WorkerInfo("h:1:aa", "h", 1, ["q"], 2, 5, 0, jobs=[("q", "j:1")], version="1.2.3")
    back = decode_worker(encode_worker(info, 1000), 1000, 777)
    assert (back.jobs, back.version, back.last_seen) == ([("q", "j:1")], "1.2.3", 777)


def test_an_old_registration_reads_with_no_jobs_and_no_version() -> None:
    back = decode_worker(orjson.dumps(OLD), 1000, 0)
    assert (back.id, back.active, back.jobs, back.version) == ("h:1:aa", 1, [], None)


def test_malformed_jobs_and_version_are_dropped_not_fatal() -> None:
    raw = orjson.dumps(OLD | {"jobs": [["q", "ok"], ["q"], "x", [1, 2]], "version": 3})
    back = decode_worker(raw, 1000, 0)
    assert (back.host, back.jobs, back.version) == ("h", [("q", "ok")], None)
    assert decode_worker(orjson.dumps(OLD | {"jobs": {"q": "j"}}), 0, 0).jobs == []
