"""Flows on Redis: creating a flow's jobs, and passing outcomes between queues.

Within one queue an outcome reaches its dependents in the script that records it
(``flow_note`` in ``lua/includes/common.lua``). A dependent in another queue may
live on another Redis Cluster node, which no script can reach: the ending script
adds the outcome to its own queue's ``handoff`` set (same slot, same atomic step),
and :meth:`RedisFlows.pass_handoffs` (the worker's maintenance loop) applies it on
the dependent's queue with ``flow_settle.lua``, which ignores an outcome its edge
already received, then deletes it. A crash between the two steps leaves the entry
to be taken again once its hold ends; applying it twice changes nothing.

A mixin of :class:`RedisBackend`: it uses the backend's plumbing, declared below.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from corral.backends.flow_records import (
    DependencyOutcome,
    FlowJob,
    FlowRecord,
    OnFailure,
    decode_flow,
    encode_flow,
    retry_plan,
)
from corral.backends.redis.plumbing import Plumbing
from corral.backends.redis.records import job_row
from corral.errors import JobNotFound

__all__ = ["RedisFlows"]

#: Handoffs taken per round, and how long a taken one is held from other workers (ms).
_HANDOFF_BATCH = 500
_HANDOFF_HOLD_MS = 30_000
_NO_RECORD = FlowRecord("", 0, [], [])


class RedisFlows(Plumbing):
    """Flow creation, reads and the cross-queue handoff."""

    async def add_flow(self, flow_id: str, jobs: Sequence[FlowJob]) -> bool:
        client = self._client_or_fail()
        key = self._registry.flow_prefix + flow_id
        now_ms = await self.time_ms()
        spec = encode_flow(list(jobs), now_ms)
        new = await self._call(lambda: client.set(key, spec, nx=True))
        stored = now_ms if new else (await self.get_flow(flow_id) or _NO_RECORD).created_at
        # NX: the first start's time stays (a repeated start lists a flow stored by an
        # older version, which had no listing).
        index = self._registry.flow_index
        await self._call(lambda: client.zadd(index, {flow_id: stored}, nx=True))
        dependents: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
        for j in jobs:
            base = self._k(j.queue).base
            for e in j.depends_on:
                dependents[(e.queue, e.job_id)].append(
                    [j.queue, base, j.job.id, e.name, e.on_failure.value, int(e.pass_result)]
                )
        blocked: dict[str, list[Any]] = defaultdict(list)
        roots: dict[str, list[Any]] = defaultdict(list)
        for j in jobs:
            mine = dependents.get((j.queue, j.job.id))
            item = [job_row(j.job), orjson.dumps(mine).decode() if mine else "", len(j.depends_on)]
            (blocked if j.depends_on else roots)[j.queue].append(item)
        if len(set(blocked) | set(roots)) == 1:  # one queue: one atomic step
            for queue, items in roots.items():
                blocked[queue].extend(items)
            roots.clear()
        # Blocked jobs first: no job can end before every dependent of it exists.
        for phase in (blocked, roots):
            for queue, items in phase.items():
                fresh = await self._follow_new(queue)
                _, unlisted = await self._run(
                    "flow_add", queue, [flow_id, orjson.dumps(items).decode()]
                )
                await self._register(queue, fresh or bool(unlisted))
        return bool(new)

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        client = self._client_or_fail()
        raw = await self._call(lambda: client.get(self._registry.flow_prefix + flow_id))
        return None if raw is None else decode_flow(flow_id, raw)

    async def list_flows(
        self, limit: int, before: tuple[int, str] | None = None
    ) -> list[FlowRecord]:
        client, index = self._client_or_fail(), self._registry.flow_index
        top: int | str = "+inf" if before is None else before[0]
        ids: list[str] = []
        skip = 0
        while len(ids) < limit:
            want = limit - len(ids) + 1
            rows = await self._call(
                functools.partial(
                    client.zrevrangebyscore, index, top, "-inf", skip, want, withscores=True
                )
            )
            for member, score in rows:
                flow_id = member.decode()
                if before is None or (int(score), flow_id) < before:
                    ids.append(flow_id)
            if len(rows) < want:
                break
            skip += len(rows)
        ids = ids[:limit]
        if not ids:
            return []
        prefix = self._registry.flow_prefix
        raws = await self._call(lambda: client.mget([prefix + i for i in ids]))
        return [decode_flow(i, raw) for i, raw in zip(ids, raws, strict=True) if raw is not None]

    async def dependency_outcomes(self, queue: str, job_id: str) -> dict[str, DependencyOutcome]:
        client = self._client_or_fail()
        fields = await self._call(lambda: client.hgetall(self._k(queue).job(job_id)))
        out = {}
        for field, value in fields.items():
            if field.startswith(b"d:"):
                state, result, error = orjson.loads(value)
                out[field[2:].decode()] = DependencyOutcome(
                    state, result.encode() if result else None, error.encode() if error else None
                )
        return out

    async def pass_handoffs(self, queue: str) -> int:
        taken = await self._run("handoff_take", queue, [_HANDOFF_BATCH, _HANDOFF_HOLD_MS])
        if not taken:
            return 0
        by_target: dict[str, list[bytes]] = defaultdict(list)
        for entry in taken:
            by_target[orjson.loads(entry)[0]].append(entry)
        for target, entries in by_target.items():
            await self._run("flow_settle", target, list(entries))
        client, key = self._client_or_fail(), self._k(queue).base + "handoff"
        await self._call(lambda: client.zrem(key, *taken))
        return len(taken)

    async def park(
        self,
        queue: str,
        job_id: str,
        token: str,
        spawn_id: str,
        children: Sequence[FlowJob],
        on_failure: OnFailure = OnFailure.FAIL,
    ) -> bool:
        parent = [queue, self._k(queue).base, job_id]
        by_queue: dict[str, list[Any]] = defaultdict(list)
        for child in children:
            fdn = orjson.dumps([[*parent, child.name, on_failure.value, 0]]).decode()
            by_queue[child.queue].append([job_row(child.job), fdn, 0])
        # Children in other queues first (no script reaches two slots): the park
        # below counts only the outcomes still missing, so one that ends before it
        # is not waited for.
        for other, items in by_queue.items():
            if other != queue:
                fresh = await self._follow_new(other)
                _, unlisted = await self._run(
                    "flow_add", other, [spawn_id, orjson.dumps(items).decode()]
                )
                await self._register(other, fresh or bool(unlisted))
        names = orjson.dumps([c.name for c in children]).decode()
        mine = orjson.dumps(by_queue.get(queue, [])).decode()
        reply = await self._run("park", queue, [job_id, token, spawn_id, names, mine])
        return int(reply) != 0

    async def retry_flow(self, flow_id: str) -> int:
        record = await self.get_flow(flow_id)
        if record is None:
            raise JobNotFound(f"no flow {flow_id!r}")
        client = self._client_or_fail()

        async def read(queue: str, job_id: str) -> Any:
            key = self._k(queue).job(job_id)
            return await self._call(lambda: client.hmget(key, "state", "fgen"))

        keys = [(q, i) for q, i, _ in record.jobs]
        replies = await asyncio.gather(*(read(q, i) for q, i in keys))
        states = {k: (r[0] or b"").decode() for k, r in zip(keys, replies, strict=True)}
        gens = {k: int(r[1] or 0) + 1 for k, r in zip(keys, replies, strict=True)}
        again, deps = retry_plan(record, states)
        phases: tuple[dict[str, list[Any]], dict[str, list[Any]]] = (
            defaultdict(list),
            defaultdict(list),
        )
        for key in keys:
            if key not in again:
                continue
            mine = deps.get(key, [])
            retried = [[name, gens[dep]] for name, dep in mine if dep in again]
            item = [key[1], gens[key], [name for name, _ in mine], retried]
            # Jobs that will wait for others first: none of theirs can end before.
            phases[0 if retried else 1][key[0]].append(item)
        count = 0
        for phase in phases:
            for queue, items in phase.items():
                count += int(await self._run("flow_retry", queue, [orjson.dumps(items).decode()]))
        return count
