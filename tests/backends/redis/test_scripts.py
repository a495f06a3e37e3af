"""How the Lua scripts reach Redis: one function library on Redis 7, EVALSHA otherwise,
and both reloaded when Redis has lost them."""

from __future__ import annotations

import asyncio

import redis

from corral.backends.redis import RedisBackend
from corral.backends.redis.scripts import SCRIPT_NAMES, library
from tests.contract.conftest import enqueue

Q = "scripts"
LEASE = 30_000


def libraries(redis_url: str) -> list[str]:
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        # RESP2: each library is a flat [field, value, ...] list.
        return [
            dict(zip(e[::2], e[1::2], strict=True))["library_name"] for e in admin.function_list()
        ]
    finally:
        admin.close()


def test_the_library_registers_every_script_under_a_versioned_name() -> None:
    name, text = library()
    assert name.startswith("corral_") and text.startswith(f"#!lua name={name}\n")
    for script in SCRIPT_NAMES:
        assert f"function_name='{name}_{script}'" in text


async def test_scripts_run_as_functions_and_come_back_after_a_function_flush(
    backend: RedisBackend, redis_url: str
) -> None:
    await enqueue(backend, Q, "j1")
    assert library()[0] in libraries(redis_url)
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.execute_command("FUNCTION", "FLUSH")
        await enqueue(backend, Q, "j2")  # the plain path reloads the library
        admin.execute_command("FUNCTION", "FLUSH")
        # The wait pipelines its claim behind the pop; a missing function there too.
        stop = asyncio.Event()
        jobs, _ = await asyncio.wait_for(
            backend.wait_and_claim([Q], 5.0, 5, LEASE, "w1", stop), 5.0
        )
    finally:
        admin.close()
    assert [job.id for job in jobs] == ["j1", "j2"]
    assert library()[0] in libraries(redis_url)


async def test_a_redis_that_refuses_function_load_gets_evalsha(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("FUNCTION", "FLUSH")
    admin.acl_setuser(
        "nofn", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
        commands=["+@all", "-function"],
    )  # fmt: skip
    user_url = redis_url.replace("redis://", "redis://nofn:pw@")
    backend = RedisBackend(user_url)
    try:
        await backend.connect()
        await enqueue(backend, Q, "j1")
        jobs, _ = await backend.claim(Q, 5, LEASE, "w1")
        assert [job.id for job in jobs] == ["j1"]
        assert libraries(redis_url) == []
    finally:
        await backend.close()
        admin.acl_deluser("nofn")
        admin.close()


async def test_eval_mode_reloads_flushed_scripts(redis_url: str) -> None:
    class EvalBackend(RedisBackend):
        use_functions = False

    backend = EvalBackend(redis_url)
    admin = redis.Redis.from_url(redis_url)
    try:
        await backend.connect()
        await enqueue(backend, Q, "j1")
        admin.script_flush()
        await enqueue(backend, Q, "j2")
        admin.script_flush()
        jobs, _ = await asyncio.wait_for(
            backend.wait_and_claim([Q], 5.0, 5, LEASE, "w1", asyncio.Event()), 5.0
        )
        assert [job.id for job in jobs] == ["j1", "j2"]
    finally:
        await backend.close()
        admin.close()
