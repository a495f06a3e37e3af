"""The audit log (Backend.add_audit / audit_entries), the same on every backend."""

from __future__ import annotations

import asyncio

import pytest

from corral.backends.base import Backend
from corral.errors import ValidationError

DAY_MS = 86_400_000


async def _add(backend: Backend, n: int, keep_ms: int = DAY_MS) -> list[str]:
    return [
        await backend.add_audit(f"key{i}", "job.retry", f"q/j{i}", b'{"i":%d}' % i, keep_ms)
        for i in range(n)
    ]


async def test_entries_come_back_newest_first_with_every_field(backend: Backend) -> None:
    before = await backend.time_ms()
    ids = await _add(backend, 3)
    await backend.add_audit("ops", "queue.pause", "emails", b"", DAY_MS)
    after = await backend.time_ms()
    entries = await backend.audit_entries(10)
    assert [e.id for e in entries][1:] == ids[::-1]
    newest = entries[0]
    assert (newest.key, newest.action, newest.target, newest.detail) == (
        "ops",
        "queue.pause",
        "emails",
        b"",
    )
    assert (entries[1].key, entries[1].target, entries[1].detail) == ("key2", "q/j2", b'{"i":2}')
    assert all(before <= e.at <= after for e in entries)
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)


async def test_pages_by_before_neither_skip_nor_repeat(backend: Backend) -> None:
    ids = await _add(backend, 5)
    first = await backend.audit_entries(2)
    assert [e.id for e in first] == [ids[4], ids[3]]
    second = await backend.audit_entries(2, before=first[-1].id)
    assert [e.id for e in second] == [ids[2], ids[1]]
    # New entries meanwhile change nothing for a page anchored on an older one.
    await _add(backend, 2)
    third = await backend.audit_entries(2, before=second[-1].id)
    assert [e.id for e in third] == [ids[0]]
    assert await backend.audit_entries(2, before=ids[0]) == []


async def test_an_append_drops_entries_past_their_keeping(backend: Backend) -> None:
    await _add(backend, 3)
    last = (await backend.audit_entries(1))[0]
    # Wait for the store's clock to pass the last entry by 2 ms (the store's own time).
    async with asyncio.timeout(2):
        while await backend.time_ms() < last.at + 2:
            await asyncio.sleep(0.001)
    newest = await backend.add_audit("ops", "queue.clean", "q", b"", 1)
    assert [e.id for e in await backend.audit_entries(10)] == [newest]


async def test_entries_within_their_keeping_stay(backend: Backend) -> None:
    ids = await _add(backend, 3)
    newest = await backend.add_audit("ops", "queue.clean", "q", b"", 60_000)
    assert [e.id for e in await backend.audit_entries(10)] == [newest, *ids[::-1]]


@pytest.mark.parametrize(
    "before", ["nope", "", "1-2-3", "-1", "12345678901234567890123-0", "18446744073709551616-0"]
)
async def test_a_before_no_entry_can_have_is_refused(backend: Backend, before: str) -> None:
    with pytest.raises(ValidationError, match="before"):
        await backend.audit_entries(5, before=before)


async def test_nothing_is_older_than_the_first_possible_id(backend: Backend) -> None:
    await _add(backend, 1)
    first = "0" if backend.__class__.__name__.startswith("SQLite") else "0-0"
    assert await backend.audit_entries(5, before=first) == []
