"""The audit log on SQLite: table ``audit`` (migration 8), trimmed by age in the
transaction of every append, read newest first by id.

A mixin of :class:`SQLiteBackend`.
"""

from __future__ import annotations

import sqlite3

from corral.backends.records import AuditRecord
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import clock_us
from corral.backends.sqlite.store import Store
from corral.errors import ValidationError

__all__ = ["SQLiteAudit"]

Conn = sqlite3.Connection
_NEWEST = 2**63 - 1


class SQLiteAudit:
    """Appending to and reading the audit table (see the module docstring)."""

    def _s(self) -> Store:
        raise NotImplementedError

    async def add_audit(
        self, key: str, action: str, target: str, detail: bytes, keep_ms: int
    ) -> str:
        def tx(conn: Conn) -> str:
            now = clock_us() // 1000
            conn.execute(q.TRIM_AUDIT, (now - keep_ms,))
            row = conn.execute(q.ADD_AUDIT, (now, key, action, target, detail)).fetchone()
            return str(row[0])

        return await self._s().write(tx)

    async def audit_entries(self, limit: int, before: str | None = None) -> list[AuditRecord]:
        if before is not None and not (before.isascii() and before.isdigit() and len(before) < 19):
            raise ValidationError(f"before: {before!r} is not an audit entry id (like 1234)")
        below = _NEWEST if before is None else int(before)

        def tx(conn: Conn) -> list[AuditRecord]:
            return [
                AuditRecord(str(row[0]), row[1], row[2], row[3], row[4], bytes(row[5]))
                for row in conn.execute(q.AUDIT_ENTRIES, (below, limit))
            ]

        return await self._s().read(tx)
