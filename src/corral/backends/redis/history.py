"""Reading the outcome history on Redis (the counts are written by the complete, fail
and reap scripts, see ``history_add`` in ``lua/includes/common.lua``).

A mixin of :class:`RedisBackend`: it uses the backend's plumbing, declared below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corral.backends.records import DURATION_BUCKETS, HistoryWindow, check_history_window
from corral.backends.redis.keys import HISTORY_PER_KEY
from corral.backends.redis.plumbing import Plumbing

__all__ = ["RedisHistory"]

_WIDTH = len(DURATION_BUCKETS) + 2  # failed, then one count per duration bucket


def _place(field: bytes, first: int, count: int) -> int:
    """Where a history field ``<slot>:f`` or ``<slot>:<bucket>`` counts in the flat row."""
    slot, _, kind = field.partition(b":")
    at = int(slot) - first
    if not 0 <= at < count:
        return -1
    return at * _WIDTH + (0 if kind == b"f" else int(kind) + 1)


class RedisHistory(Plumbing):
    """The history read (see the module docstring)."""

    async def history(self, queues: Sequence[str], step: int, count: int) -> HistoryWindow:
        check_history_window(step, count)
        last = await self.time_ms() // step
        first = last - count + 1
        # One hash per hour (minutes) or day (quarter hours): a slot from each one the
        # window spans names them.
        per = HISTORY_PER_KEY[step]
        held = range(first - first % per, last + 1, per)

        def add(pipe: Any) -> None:
            for queue in queues:
                keys = self._k(queue)
                for slot in held:
                    pipe.hgetall(keys.history(step, slot))

        replies = await self._pipelined(add)
        # Every queue's fields have the same few names: parse each name once, to its
        # place in a flat row of count * _WIDTH counts (-1: outside the window).
        places: dict[bytes, int] = {}
        slots: dict[str, list[tuple[int, ...]]] = {}
        per_queue = len(held)
        for index, queue in enumerate(queues):
            flat = [0] * (count * _WIDTH)
            for reply in replies[index * per_queue : (index + 1) * per_queue]:
                for field, value in reply.items():
                    place = places.get(field)
                    if place is None:
                        place = places[field] = _place(field, first, count)
                    if place >= 0:
                        flat[place] += int(value)
            slots[queue] = [tuple(flat[i : i + _WIDTH]) for i in range(0, len(flat), _WIDTH)]
        return HistoryWindow(start=first * step, step=step, slots=slots)
