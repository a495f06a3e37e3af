"""Durable enqueue: the wait for the disk covers the enqueue's own writes.

``WAITAOF`` (Redis >= 7.2) waits for the writes of the connection it is sent on, so it
must go on the connection that ran the enqueue. This machine's Redis may predate 7.2:
the routing is then shown with ``WAIT`` (the same kind of per-connection wait, which
7.0 has) in its place, by the client address MONITOR reports for each command.
"""

from __future__ import annotations

import asyncio

import redis
from chaos.harness import RedisProc

from corral.backends.base import NewJob
from corral.backends.redis import RedisBackend


async def test_the_durable_wait_runs_on_the_connection_that_ran_the_enqueue(
    aof_redis: RedisProc,
) -> None:
    backend = RedisBackend(aof_redis.url, durable=True)
    await backend.connect()
    version = tuple(int(p) for p in aof_redis.version().split(".")[:2])
    if version < (7, 2):
        backend._durable_wait = (("WAIT", 0, 0),)
    wait_name = "WAITAOF" if version >= (7, 2) else "WAIT"
    monitor = redis.asyncio.Redis.from_url(aof_redis.url)
    try:
        async with monitor.monitor() as m:
            await backend.enqueue("q", [NewJob(id="j1", name="t", data=b"[[],{}]")])
            seen: dict[str, str] = {}
            async with asyncio.timeout(5):
                while wait_name not in seen:
                    command = await m.next_command()
                    words = command["command"].split()
                    name = words[0].upper()
                    if name in ("FCALL", "EVALSHA") and "enqueue" in command["command"]:
                        name = "enqueue"
                    seen.setdefault(name, f"{command['client_address']}:{command['client_port']}")
        assert "enqueue" in seen
        assert seen["enqueue"] == seen[wait_name]  # one connection: the wait covers it
    finally:
        await monitor.aclose()
        await backend.close()
