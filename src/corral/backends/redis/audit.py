"""The audit log on Redis: one stream (``RegistryKeys.audit``), trimmed by age on
every append (``XADD ... MINID``), read newest first with ``XREVRANGE``.

A mixin of :class:`RedisBackend`: it uses the backend's plumbing, declared below.
"""

from __future__ import annotations

import re

from corral.backends.records import AuditRecord
from corral.backends.redis.plumbing import Plumbing
from corral.errors import ValidationError

__all__ = ["RedisAudit"]

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

#: Append and trim in one step, the cut-off from Redis's own clock at that moment: no
#: extra round trip, and no estimate that could run ahead and trim the new entry itself.
_APPEND = """
local t = redis.call('TIME')
local cutoff = math.max(0, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  - tonumber(ARGV[1]))
return redis.call('XADD', KEYS[1], 'MINID', cutoff, '*',
  'k', ARGV[2], 'a', ARGV[3], 't', ARGV[4], 'd', ARGV[5])
"""


def _record(entry_id: bytes, fields: dict[bytes, bytes]) -> AuditRecord:
    text = entry_id.decode()
    return AuditRecord(
        id=text,
        at=int(text.partition("-")[0]),
        key=fields.get(b"k", b"").decode(errors="replace"),
        action=fields.get(b"a", b"").decode(errors="replace"),
        target=fields.get(b"t", b"").decode(errors="replace"),
        detail=fields.get(b"d", b""),
    )


class RedisAudit(Plumbing):
    """Appending to and reading the audit stream (see the module docstring)."""

    async def add_audit(
        self, key: str, action: str, target: str, detail: bytes, keep_ms: int
    ) -> str:
        client = self._client_or_fail()
        stream = self._registry.audit
        # Retried like every call: after a lost reply the entry may be written twice,
        # which beats losing it.
        entry_id = await self._call(
            lambda: client.eval(_APPEND, 1, stream, keep_ms, key, action, target, detail)
        )
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    async def audit_entries(self, limit: int, before: str | None = None) -> list[AuditRecord]:
        client = self._client_or_fail()
        if before is not None:
            parts = before.split("-") if _STREAM_ID.fullmatch(before) else []
            if not parts or max(int(p) for p in parts) >= 2**64:
                raise ValidationError(
                    f"before: {before!r} is not an audit entry id (like 1733300000000-0)"
                )
            if not any(int(p) for p in parts):
                return []  # nothing is older (and Redis refuses the range)
        high = "+" if before is None else f"({before}"
        rows = await self._call(
            lambda: client.xrevrange(self._registry.audit, max=high, min="-", count=limit)
        )
        return [_record(entry_id, fields) for entry_id, fields in rows]
