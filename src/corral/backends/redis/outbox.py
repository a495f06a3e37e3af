"""The notification outbox on Redis, and the little shared state deliveries keep.

Entries are written by the scripts that end a job (``outbox`` in
``lua/includes/common.lua``) into the queue's ``outbox`` sorted set, scored by when
they may be taken; ``lua/outbox_take.lua`` takes due ones and holds them. Endpoint
states and windowed counters live under the ``{notify}`` hash tag.

A mixin of :class:`RedisBackend`: it uses the backend's plumbing, declared below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from corral.backends.records import COUNTER_KEPT_MS, OutboxEntry
from corral.backends.redis.plumbing import Plumbing

__all__ = ["RedisOutbox", "entry_from_json"]


def _ms(value: Any) -> int | None:
    return None if value in (None, False, "") else int(value)


def _bytes(value: Any) -> bytes | None:
    return None if value in (None, False) else str(value).encode()


def entry_from_json(queue: str, raw: bytes) -> OutboxEntry:
    """An entry as ``outbox`` in common.lua writes it (a JSON array)."""
    job_id, event, task, att, ctime, stime, ftime, res, err, opts, _ = orjson.loads(raw)
    return OutboxEntry(
        ref=raw,
        queue=queue,
        job_id=job_id,
        event=event,
        task=task or "",
        attempt=int(att or 0),
        created_at=_ms(ctime),
        started_at=_ms(stime),
        finished_at=_ms(ftime),
        result=_bytes(res),
        error=_bytes(err),
        options=_bytes(opts) or b"",
    )


class RedisOutbox(Plumbing):
    """Taking and acknowledging outbox entries; endpoint states and counters."""

    async def take_outbox(self, queue: str, limit: int, hold_ms: int) -> list[OutboxEntry]:
        raw = await self._run("outbox_take", queue, [limit, hold_ms])
        return [entry_from_json(queue, item) for item in raw]

    async def ack_outbox(self, queue: str, refs: Sequence[bytes]) -> None:
        if not refs:
            return
        client, key = self._client_or_fail(), self._k(queue).base + "outbox"
        await self._call(lambda: client.zrem(key, *refs))

    async def outbox_size(self, queue: str) -> int:
        client, key = self._client_or_fail(), self._k(queue).base + "outbox"
        return int(await self._call(lambda: client.zcard(key)))

    async def bump_counter(self, name: str, window_ms: int) -> tuple[int, int]:
        client = self._client_or_fail()
        window = f"{self._registry.window_prefix}{name}"

        async def open_window() -> Any:
            # The first bump opens the window: its end is the marker's value, the marker
            # lives until exactly then (PXAT: a PX counted from the SET would outlive
            # the end by the round trip since TIME, and a bump just after the end
            # would still count in the old window).
            now = await self.time_ms()
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(window, now + window_ms, nx=True, pxat=now + window_ms)
                pipe.get(window)
                return (await pipe.execute())[1]

        end_text = await self._call(open_window)
        if end_text is None:  # the window ended between the two commands
            end_text = await self._call(open_window)
        end = int(end_text)
        key = f"{self._registry.counter_prefix}{name}:{end}"

        async def bump() -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpireat(key, end + max(window_ms, COUNTER_KEPT_MS))
                return await pipe.execute()

        # Repeated after a lost reply: the count may then be one too high, which only
        # folds one more notification into a digest.
        count, _ = await self._call(bump)
        return int(count), end

    async def read_counter(self, name: str, window_end: int) -> int:
        client = self._client_or_fail()
        key = f"{self._registry.counter_prefix}{name}:{window_end}"
        value = await self._call(lambda: client.get(key))
        return 0 if value is None else int(value)

    async def set_endpoint(self, key: str, state: bytes | None) -> None:
        client, name = self._client_or_fail(), self._registry.endpoints
        if state is None:
            await self._call(lambda: client.hdel(name, key))
        else:
            await self._call(lambda: client.hset(name, key, state))

    async def endpoints(self) -> dict[str, bytes]:
        client = self._client_or_fail()
        raw = await self._call(lambda: client.hgetall(self._registry.endpoints))
        return {k.decode(): v for k, v in raw.items()}
