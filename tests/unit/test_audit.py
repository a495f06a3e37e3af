"""Corral's audit entry points: retention, field checks, paging arguments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral import ConfigurationError, Corral
from corral.audit import AuditEntry


@pytest.mark.parametrize("retention", [timedelta(0), timedelta(days=-1), 0, -5, "30d", None, True])
def test_a_bad_audit_retention_is_named(tmp_path: Path, retention: object) -> None:
    with pytest.raises(ConfigurationError, match="audit_retention must be a positive"):
        Corral(f"sqlite:///{tmp_path / 'a.db'}", audit_retention=retention)  # type: ignore[arg-type]


def test_audit_retention_takes_a_timedelta_or_seconds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert Corral(url).audit_retention == timedelta(days=30)
    assert Corral(url, audit_retention=90).audit_retention == timedelta(seconds=90)
    assert Corral(url, audit_retention=timedelta(hours=1)).audit_retention == timedelta(hours=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "job.retry", "q"), "audit key must be 1 to 200"),
        (("k" * 201, "job.retry", "q"), "audit key must be 1 to 200"),
        ((None, "job.retry", "q"), "audit key must be text"),
        (("ops", "Job Retry", "q"), "audit action must be lower-case"),
        (("ops", "", "q"), "audit action must be lower-case"),
        (("ops", "job.retry", "t" * 501), "audit target must be 1 to 500"),
        (("ops", "job.retry", "q", {"x": object()}), "audit detail is not JSON"),
        (("ops", "job.retry", "q", "x" * 9000), "audit detail is 9002 bytes encoded"),
    ],
)
async def test_a_bad_entry_is_refused_naming_the_field(
    tmp_path: Path, args: tuple, message: str
) -> None:
    app = Corral(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with pytest.raises(ValueError, match=message):
            await app.record_audit(*args)
        assert await app.audit_entries() == []
    finally:
        await app.close()


@pytest.mark.parametrize("limit", [0, 1001, -1, True, 2.5, "10"])
async def test_a_bad_limit_is_refused(tmp_path: Path, limit: object) -> None:
    app = Corral(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with pytest.raises(ValueError, match="limit must be an integer from 1 to 1000"):
            await app.audit_entries(limit)  # type: ignore[arg-type]
    finally:
        await app.close()


def test_entries_decode_their_detail_and_time(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        first = app.record_audit_sync("ops", "queue.pause", "emails", {"reason": "smtp down"})
        app.record_audit_sync("ci", "job.retry", "emails/j1")
        entries = app.audit_entries_sync(limit=5)
        older = app.audit_entries_sync(before=entries[0].id)
    finally:
        app.close_sync()
    assert [(e.key, e.action, e.target, e.detail) for e in entries] == [
        ("ci", "job.retry", "emails/j1", None),
        ("ops", "queue.pause", "emails", {"reason": "smtp down"}),
    ]
    assert [e.id for e in older] == [first]
    assert isinstance(entries[0], AuditEntry)
    assert abs(entries[0].at - datetime.now(UTC)) < timedelta(minutes=1)
    assert entries[1].to_dict()["detail"] == {"reason": "smtp down"}
