"""Flows on Redis: creating a flow's jobs, and passing outcomes between queues.

Within one queue an outcome reaches its dependents in the script that records it
(``flow_note`` in ``lua/includes/flows.lua``). A dependent in another queue may
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
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from corral.backends.flow_records import (
    DependencyOutcome,
    FlowEdge,
    FlowJob,
    FlowRecord,
    OnFailure,
    decode_flow,
    encode_flow,
    heard_anew,
    retry_plan,
    spawn_order,
)
from corral.backends.redis.plumbing import Plumbing
from corral.backends.redis.records import job_row, stored_state
from corral.errors import JobNotFound
from corral.faults import maybe_crash

__all__ = ["INTENT_AGE_MS", "RedisFlows"]

log = logging.getLogger("corral.redis")

#: Handoffs taken per round, and how long a taken one is held from other workers (ms).
_HANDOFF_BATCH = 500
_HANDOFF_HOLD_MS = 30_000
#: Flows that lost a job, checked per round (Backend.prune_flows).
_PRUNE_BATCH = 100
#: (Redis Cluster) A creation intent this old (ms) is rolled forward by the workers:
#: its producer has stopped, or is too slow to tell apart from one that has.
INTENT_AGE_MS = 5_000
#: Seconds between two looks for such intents by one backend (in ``pass_handoffs``).
_INTENT_EVERY = 1.0

#: One step of creating a flow: a queue and its jobs as flow_add.lua takes them.
Step = tuple[str, list[Any]]

# The record and the creation intent of a flow (KEYS: record, intent, intents index;
# ARGV: record, intent, flow id): both, or neither when the record exists.
# The flow is listed (KEYS 4, the index of list_flows; ARGV 4 created_at) either way:
# a repeated start lists a flow stored by an older version, which had no listing.
_INTENT = """
local stored = redis.call('GET', KEYS[1])
if stored then
  redis.call('ZADD', KEYS[4], 'NX', cjson.decode(stored).at, ARGV[3])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[4], 'NX', ARGV[4], ARGV[3])
local t = redis.call('TIME')
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[3])
return 1
"""

# The intent and its index entry (KEYS: intent, intents index; ARGV: flow id).
_INTENT_DONE = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _creation_items(
    backend: Plumbing, jobs: Sequence[FlowJob], parent: list[Any] | None = None
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The jobs as flow_add.lua takes them, by queue: (those with dependencies, the
    others). ``parent`` ([queue, key base, id, policy]): a parked job that waits for
    every one of them (its children), under each one's name."""
    dependents: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
    for j in jobs:
        base = backend._k(j.queue).base
        for e in j.depends_on:
            dependents[(e.queue, e.job_id)].append(
                [j.queue, base, j.job.id, e.name, e.on_failure.value, int(e.pass_result)]
            )
        if parent is not None:
            dependents[(j.queue, j.job.id)].append([*parent[:3], j.name, parent[3], 0])
    blocked: dict[str, list[Any]] = defaultdict(list)
    roots: dict[str, list[Any]] = defaultdict(list)
    for j in jobs:
        mine = dependents.get((j.queue, j.job.id))
        item = [job_row(j.job), orjson.dumps(mine).decode() if mine else "", len(j.depends_on)]
        (blocked if j.depends_on else roots)[j.queue].append(item)
    return blocked, roots


def _creation_steps(backend: Plumbing, jobs: Sequence[FlowJob]) -> list[Step]:
    """The queues' jobs as flow_add.lua takes them: blocked jobs' steps first, so no
    job can end before every dependent of it exists."""
    blocked, roots = _creation_items(backend, jobs)
    return [*blocked.items(), *roots.items()]


class RedisFlows(Plumbing):
    """Flow creation, reads and the cross-queue handoff."""

    _intents_due = 0.0

    async def add_flow(
        self, flow_id: str, jobs: Sequence[FlowJob], fail_fast: bool = False
    ) -> bool:
        now_ms = await self.time_ms()
        spec = encode_flow(list(jobs), now_ms, fail_fast)
        if fail_fast:  # before any job exists, so none can fail unheard of
            stored = await self.get_flow(flow_id)
            if stored is None or stored.fail_fast:  # (a stored flow keeps its option)
                await self._fail_fast_members(
                    flow_id, [(j.queue, j.job.id, j.name or j.job.name) for j in jobs]
                )
        steps = _creation_steps(self, jobs)
        if self._cluster_url:
            return await self._add_by_intent(flow_id, spec, now_ms, steps)
        # One server (standalone, Sentinel): the record and every queue's jobs in one
        # script, so a producer that dies half-way has stored nothing.
        by_queue: dict[str, list[Any]] = {}
        for queue, items in steps:
            by_queue.setdefault(queue, []).extend(items)
        queues = list(by_queue)
        fresh = [await self._follow_new(queue) for queue in queues]
        keys = [k for q in queues for k in self._queue_keys(self._k(q))]
        keys += [self._registry.flow_prefix + flow_id, self._registry.flow_index]
        further = [[self._k(q).script_base, by_queue[q]] for q in queues[1:]]
        args = [
            self._k(queues[0]).script_base,
            flow_id,
            orjson.dumps(by_queue[queues[0]]).decode(),
            orjson.dumps(further).decode(),
            spec,
            "",
            now_ms,
        ]
        scripts = self._scripts_or_fail()
        reply = await self._call(lambda: scripts.run("flow_add", keys, args))
        if not int(reply[0]):
            return False
        for queue, new, unlisted in zip(queues, fresh, reply[1:], strict=True):
            await self._register(queue, new or bool(unlisted))
        return True

    async def _add_by_intent(
        self, flow_id: str, spec: bytes, now_ms: int, steps: list[Step]
    ) -> bool:
        """Redis Cluster: no script reaches two queues' slots. The record and a
        creation intent (every step) are written in one script of the ``{flows}``
        slot; the steps are applied in order; the intent is then deleted. A producer
        that dies in between leaves the intent, which workers roll forward
        (:meth:`finish_flows`), as does starting the same flow id again."""
        client = self._client_or_fail()
        reg = self._registry
        keys = [
            reg.flow_prefix + flow_id,
            reg.flow_intent_prefix + flow_id,
            reg.flow_intents,
            reg.flow_index,
        ]
        intent = orjson.dumps(steps)
        new = await self._call(
            lambda: client.eval(_INTENT, 4, *keys, spec, intent, flow_id, now_ms)
        )
        maybe_crash("flow_intent_written")
        if not int(new):
            stored = await self._call(lambda: client.get(keys[1]))
            if stored is not None:  # a creation cut short: finish it
                await self._apply_intent(flow_id, stored)
            return False
        await self._apply_intent(flow_id, intent)
        return True

    async def _apply_intent(self, flow_id: str, intent: bytes) -> None:
        """Apply a creation intent's steps in order (each at most once: see flow_add's
        note), then delete it."""
        for n, (queue, items) in enumerate(orjson.loads(intent)):
            fresh = await self._follow_new(queue)
            _, unlisted = await self._run(
                "flow_add", queue, [flow_id, orjson.dumps(items).decode(), "", "", n]
            )
            await self._register(queue, fresh or bool(unlisted))
            maybe_crash("flow_step_applied")
        client, reg = self._client_or_fail(), self._registry
        keys = [reg.flow_intent_prefix + flow_id, reg.flow_intents]
        await self._call(lambda: client.eval(_INTENT_DONE, 2, *keys, flow_id))

    async def finish_flows(self, older_than_ms: int | None = None) -> int:
        """Roll forward the creation intents (Redis Cluster) older than
        ``older_than_ms``: flows whose producer stopped before every job was stored.
        Idempotent and safe from many processes; returns how many were finished."""
        client, reg = self._client_or_fail(), self._registry
        age = INTENT_AGE_MS if older_than_ms is None else older_than_ms
        due = await self.time_ms() - age
        ids = await self._call(
            lambda: client.zrangebyscore(reg.flow_intents, "-inf", due, start=0, num=50)
        )
        for raw in ids:
            flow_id, key = raw.decode(), reg.flow_intent_prefix + raw.decode()
            stored = await self._call(lambda key=key: client.get(key))  # type: ignore[misc]
            if stored is None:
                await self._call(lambda f=flow_id: client.zrem(reg.flow_intents, f))  # type: ignore[misc]
                continue
            log.warning("finishing the creation of flow %s (its producer stopped)", flow_id)
            await self._apply_intent(flow_id, stored)
        return len(ids)

    async def _fail_fast_members(self, flow_id: str, jobs: Sequence[tuple[str, str, str]]) -> None:
        """Each queue's ``ff:<flow id>`` hash (see flow_fail_fast in lua/includes/flows.lua)."""
        by_queue: dict[str, dict[str, str]] = defaultdict(dict)
        for queue, job_id, name in jobs:
            by_queue[queue][job_id] = name or job_id
        for queue, members in by_queue.items():
            others = sorted(q for q in by_queue if q != queue)
            mapping = members | {"!me": queue, "!q": orjson.dumps(others).decode()}
            await self._hset(self._k(queue).base + "ff:" + flow_id, mapping)

    async def _hset(self, key: str, mapping: dict[Any, Any]) -> None:
        client = self._client_or_fail()
        await self._call(lambda: client.hset(key, mapping=mapping))

    async def _hdel(self, key: str, field: str) -> None:
        client = self._client_or_fail()
        await self._call(lambda: client.hdel(key, field))

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

    async def spawned(self, queue: str, job_id: str) -> list[tuple[str, str, str]]:
        client = self._client_or_fail()
        fields = await self._call(lambda: client.hgetall(self._k(queue).job(job_id)))
        edges = []
        for field, value in fields.items():
            if field.startswith(b"c:"):
                child_queue, child_id = orjson.loads(value)
                edges.append((child_queue, child_id, field[2:].decode()))
        return spawn_order(job_id, edges)

    async def dependents(
        self, queue: str, job_ids: Sequence[str]
    ) -> list[tuple[str, str, FlowEdge]]:
        if not job_ids:
            return []
        keys = self._k(queue)

        def add(pipe: Any) -> None:
            for job_id in job_ids:
                pipe.hget(keys.job(job_id), "fdn")

        out = []
        for job_id, raw in zip(job_ids, await self._pipelined(add), strict=True):
            # 'fdn': [queue, key base, id, edge name, policy, pass] per dependent.
            for dq, _, di, name, policy, passed in orjson.loads(raw) if raw else ():
                edge = FlowEdge(name, queue, job_id, OnFailure(policy), bool(passed))
                out.append((dq, di, edge))
        return out

    async def prune_flows(self, queue: str) -> int:
        client = self._client_or_fail()
        gone = self._k(queue).base + "fgone"
        ids = await self._call(lambda: client.srandmember(gone, _PRUNE_BATCH))
        pruned = 0
        for raw in ids or ():
            flow_id = raw.decode()
            record = await self.get_flow(flow_id)
            if record is None:  # pruned already, or a WaitForChildren spawn (no record)
                await self._delete(self._k(queue).base + "ff:" + flow_id)
            elif await self._exists(self._registry.flow_intent_prefix + flow_id):
                continue  # still being created (Cluster): look again next round
            elif not await self._any_job_left(record):
                await self._delete(self._registry.flow_prefix + flow_id)
                await self._call(lambda f=flow_id: client.zrem(self._registry.flow_index, f))  # type: ignore[misc]
                queues = {q for q, _, _ in record.jobs}
                for q in queues:
                    base = self._k(q).base
                    # The creation's step notes (Cluster), so the id can start afresh.
                    notes = [f"{base}fa:{n}:{flow_id}" for n in range(2 * len(queues))]
                    await self._delete(base + "ff:" + flow_id, *notes)
                pruned += 1
            await self._call(lambda r=raw: client.srem(gone, r))  # type: ignore[misc]
        return pruned

    async def _any_job_left(self, record: FlowRecord) -> bool:
        client = self._client_or_fail()
        by_queue: dict[str, list[str]] = defaultdict(list)
        for queue, job_id, _ in record.jobs:
            by_queue[queue].append(self._k(queue).job(job_id))
        for keys in by_queue.values():
            for i in range(0, len(keys), 500):  # one slot per queue: one EXISTS each
                part = keys[i : i + 500]
                if await self._call(lambda part=part: client.exists(*part)):  # type: ignore[misc]
                    return True
        return False

    async def _delete(self, *keys: str) -> None:
        """Delete keys of one slot."""
        client = self._client_or_fail()
        await self._call(lambda: client.delete(*keys))

    async def _exists(self, key: str) -> bool:
        client = self._client_or_fail()
        return bool(await self._call(lambda: client.exists(key)))

    async def pass_handoffs(self, queue: str) -> int:
        if self._cluster_url and time.monotonic() >= self._intents_due:
            self._intents_due = time.monotonic() + _INTENT_EVERY
            await self.finish_flows()
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
        parent = [queue, self._k(queue).base, job_id, on_failure.value]
        blocked, roots = _creation_items(self, children, parent)
        # No script reaches two slots: children waiting for other children first (in
        # every queue), then the others of other queues, then the park below stores
        # those of this queue. So no child ends before its dependents exist, and the
        # park counts only the outcomes still missing: one that ended first is not
        # waited for.
        mine = roots.pop(queue, [])
        for other, items in [*blocked.items(), *roots.items()]:
            fresh = await self._follow_new(other)
            _, unlisted = await self._run(
                "flow_add", other, [spawn_id, orjson.dumps(items).decode()]
            )
            await self._register(other, fresh or bool(unlisted))
        names = orjson.dumps([[c.name, c.queue, c.job.id] for c in children]).decode()
        reply = await self._run(
            "park", queue, [job_id, token, spawn_id, names, orjson.dumps(mine).decode()]
        )
        return int(reply) != 0

    async def retry_flow(
        self, flow_id: str, roots: Collection[tuple[str, str]] | None = None
    ) -> int:
        record = await self.get_flow(flow_id)
        if record is None:
            raise JobNotFound(f"no flow {flow_id!r}")
        client = self._client_or_fail()

        async def read(queue: str, job_id: str) -> Any:
            key = self._k(queue).job(job_id)
            return await self._call(lambda: client.hmget(key, "state", "fgen", "name"))

        keys = [(q, i) for q, i, _ in record.jobs]
        replies = await asyncio.gather(*(read(q, i) for q, i in keys))
        # A waiting job added by add_job stores no state (records.stored_state).
        states = {k: stored_state(r[0], r[2]) for k, r in zip(keys, replies, strict=True)}
        gens = {k: int(r[1] or 0) + 1 for k, r in zip(keys, replies, strict=True)}
        again, deps = retry_plan(record, states, roots)
        phases: tuple[dict[str, list[Any]], dict[str, list[Any]]] = (
            defaultdict(list),
            defaultdict(list),
        )
        for key in keys:
            if key not in again:
                continue
            mine = deps.get(key, [])
            # A dependency unfinished now hands over its current generation (not bumped).
            retried = [
                [name, gens[dep] if dep in again else gens[dep] - 1]
                for name, dep in mine
                if heard_anew(dep, again, states)
            ]
            item = [key[1], gens[key], [name for name, _ in mine], retried]
            # Jobs that will wait for others first: none of theirs can end before.
            phases[0 if retried else 1][key[0]].append(item)
        if record.fail_fast:  # it fires again on the next failure
            for queue in {q for q, _, _ in record.jobs}:
                await self._hdel(self._k(queue).base + "ff:" + flow_id, "!x")
        count = 0
        for phase in phases:
            for queue, items in phase.items():
                count += int(await self._run("flow_retry", queue, [orjson.dumps(items).decode()]))
        return count
