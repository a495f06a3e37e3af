"""Keyset paging and bounded scans over one state of a queue on Redis.

A mixin of :class:`RedisBackend`. ``page.lua`` reads a page (ids, positions and
records) in one atomic step: one round trip, whatever the depth. Records come back as
one nested reply, not as a pipeline of three commands per job: redis-py parses a
pipeline's replies one command at a time, which cost 20 ms per 500 jobs.
"""

from __future__ import annotations

from typing import Any

from corral.backends.paging import PageSlice, Position, ScansPages, check_position
from corral.backends.records import JobState
from corral.backends.redis.records import record_from_hash
from corral.backends.redis.records import text as _text

__all__ = ["RedisPaging"]

_ZSET = (int, str)
_WAITING = (int, int, int, str, str)


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisPaging(ScansPages):
    """Paging and scans (see the module docstring)."""

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        raise NotImplementedError

    async def page_jobs(
        self, queue: str, state: JobState, after: Position | None, limit: int
    ) -> PageSlice:
        waiting = state is JobState.WAITING
        args: list[Any] = [state.value, limit + 1, limit]
        if after is not None:
            args += check_position(after, _WAITING if waiting else _ZSET, state)
        flat, raw = await self._run("page", queue, args)
        width = 5 if waiting else 2
        rows = [flat[i : i + width] for i in range(0, len(flat), width)]
        more = len(rows) > limit
        rows = rows[:limit]
        positions: list[Position]
        if waiting:
            positions = [
                (int(band), int(section), int(float(s)), _text(i), _text(nxt))
                for i, band, section, s, nxt in rows
            ]
        else:
            positions = [(int(float(s)), _text(i)) for i, s in rows]
        records = [
            record_from_hash(queue, str(p[-2 if waiting else -1]), _pairs(h), errors, logs)
            for p, (h, errors, logs) in zip(positions, raw, strict=True)
        ]
        kept = [
            (r, p)
            for r, p in zip(records, positions, strict=True)
            if r is not None and r.state is state
        ]
        return PageSlice(
            [r for r, _ in kept],
            [p for _, p in kept],
            positions[-1] if more else None,
            len(positions),
        )
