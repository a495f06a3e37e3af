"""The audit log on Redis: one stream (``RegistryKeys.audit``), trimmed by age on
every append (``XADD ... MINID``), read newest first with ``XREVRANGE``.

A mixin of :class:`RedisBackend`: it uses the backend's plumbing, declared below.
"""

from __future__ import annotations

import re
import time

from corral.backends.records import AuditRecord
from corral.backends.redis.plumbing import Plumbing
from corral.errors import ValidationError

__all__ = ["RedisAudit"]

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

#: Seconds one reading of Redis's clock places the trim cut-offs of later appends
#: (advanced by this process's monotonic clock): a cut-off needs no TIME round trip
#: of its own, and a retention of hours cannot tell a few ms of drift.
_CLOCK_REUSE = 10.0


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

    #: (time.monotonic(), Redis's clock in ms) at the last reading (see _CLOCK_REUSE).
    _audit_clock: tuple[float, float] | None = None

    async def _redis_ms(self) -> int:
        """Redis's clock now (ms), read at most every _CLOCK_REUSE seconds. Not behind
        it (but for clock drift over those seconds): the local moment is taken before
        TIME is sent, and the reading keeps its microseconds."""
        now = time.monotonic()
        clock = self._audit_clock
        if clock is None or not 0 <= now - clock[0] <= _CLOCK_REUSE:
            client = self._client_or_fail()
            seconds, micros = await self._call(client.time)
            clock = self._audit_clock = (now, int(seconds) * 1000 + int(micros) / 1000)
        return int(clock[1] + (now - clock[0]) * 1000)

    async def add_audit(
        self, key: str, action: str, target: str, detail: bytes, keep_ms: int
    ) -> str:
        client = self._client_or_fail()
        # The entry's id is Redis's clock ('*'); the cut-off is read from it too.
        cutoff = max(0, await self._redis_ms() - keep_ms)
        fields = {"k": key, "a": action, "t": target, "d": detail}
        stream = self._registry.audit
        # Retried like every call: after a lost reply the entry may be written twice,
        # which beats losing it.
        entry_id = await self._call(
            lambda: client.xadd(stream, fields, minid=cutoff, approximate=False)  # type: ignore[arg-type]
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
