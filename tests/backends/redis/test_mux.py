"""MuxRedis: ordinary commands pipelined on one connection, on a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import redis
from redis.exceptions import DataError, NoScriptError, ResponseError

from corral.backends.redis.mux import MuxRedis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[MuxRedis]:
    mux = MuxRedis.from_url(redis_url, socket_timeout=5)
    try:
        yield mux
    finally:
        await mux.aclose()


def client_count(url: str) -> int:
    admin = redis.Redis.from_url(url)
    try:
        return len(admin.client_list()) - 1  # not counting the admin client itself
    finally:
        admin.close()


async def test_concurrent_commands_get_their_own_replies_on_one_connection(
    client: MuxRedis, redis_url: str
) -> None:
    async def round_trip(i: int) -> tuple[bytes | None, int, dict[bytes, bytes]]:
        await client.set(f"k{i}", f"v{i}")
        await client.hset(f"h{i}", mapping={"n": str(i)})
        return (
            await client.get(f"k{i}"),
            await client.incr("counter"),
            await client.hgetall(f"h{i}"),
        )

    results = await asyncio.gather(*(round_trip(i) for i in range(300)))
    assert [r[0] for r in results] == [f"v{i}".encode() for i in range(300)]
    assert sorted(r[1] for r in results) == list(range(1, 301))
    assert [r[2] for r in results] == [{b"n": str(i).encode()} for i in range(300)]
    assert client_count(redis_url) == 1  # one shared connection, no pool growth


async def test_error_replies_raise_and_leave_the_connection_in_step(client: MuxRedis) -> None:
    await client.set("s", "x")
    wrong, after = await asyncio.gather(
        client.lpush("s", 1), client.get("s"), return_exceptions=True
    )
    assert isinstance(wrong, ResponseError) and "WRONGTYPE" in str(wrong)
    assert after == b"x"
    with pytest.raises(NoScriptError):  # redis-py's own exception classes
        await client.evalsha("0" * 40, 0)
    with pytest.raises(DataError, match="NoneType"):
        await client.execute_command("SET", "k", None)
    with pytest.raises(DataError, match="bool"):
        await client.set("k", True)  # type: ignore[arg-type]
    assert await client.set("m", memoryview(b"view"))  # as redis-py encodes it
    assert await client.get("m") == b"view"
    assert await client.get("s") == b"x"


async def test_reply_callbacks_and_multi_word_commands_match_redis_py(client: MuxRedis) -> None:
    info = await client.info("server")
    assert "redis_version" in info  # parsed to a dict by redis-py's callback
    sha = await client.script_load("return 7")
    assert await client.script_exists(sha) == [True]
    assert await client.evalsha(sha, 0) == 7
    assert await client.config_get("maxmemory-policy")


async def test_blocking_commands_do_not_hold_up_the_shared_connection(
    client: MuxRedis,
) -> None:
    pop = asyncio.ensure_future(client.blpop(["nothing"], timeout=2))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    assert await client.incr("n") == 1
    assert time.monotonic() - started < 0.5
    await client.rpush("nothing", "x")
    assert await pop == (b"nothing", b"x")
    async with client.pipeline(transaction=True) as pipe:  # MULTI/EXEC: pooled
        pipe.incr("n").incr("n")
        assert await pipe.execute() == [2, 3]


async def test_a_killed_connection_is_replaced_and_no_command_is_sent_twice(
    client: MuxRedis, redis_url: str
) -> None:
    assert await client.incr("n") == 1
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        admin.close()
    # Written to the dead connection: ConnectionError (they may have run; only the
    # caller knows whether a second run is safe). Not yet written: sent on a new one.
    first = await asyncio.gather(*(client.incr("n") for _ in range(20)), return_exceptions=True)
    assert all(isinstance(v, (int, redis.ConnectionError)) for v in first)
    then = await asyncio.gather(*(client.incr("n") for _ in range(20)))
    values = [v for v in first if isinstance(v, int)] + then
    assert sorted(values) == list(range(2, 2 + len(values)))  # none ran twice


async def test_a_silent_server_times_out_instead_of_hanging(redis_url: str) -> None:
    mux = MuxRedis.from_url(redis_url, socket_timeout=0.3, retry=None)
    admin = redis.Redis.from_url(redis_url)
    try:
        await mux.ping()
        stuck = mux._link
        admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            await mux.incr("n")
        assert time.monotonic() - started < 2.0  # well before the pause ends
        assert stuck is not None and stuck.broken is not None  # the stuck link was dropped
        admin.execute_command("CLIENT", "UNPAUSE")
        assert await mux.incr("after") == 1  # a new link
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        await mux.aclose()


async def test_unreachable_server_raises_connection_error() -> None:
    mux = MuxRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5, retry=None)
    try:
        with pytest.raises(redis.ConnectionError):
            await mux.get("k")
    finally:
        await mux.aclose()


async def test_an_error_reply_that_is_not_a_response_error_is_raised() -> None:
    # Redis restarting answers -LOADING while it reads its AOF; redis-py maps that to
    # BusyLoadingError, a ConnectionError (so retry policies retry it), not a
    # ResponseError. A socket that answers like a loading server stands in for one.
    def reply(command: bytes) -> bytes:
        if b"HELLO" in command:
            return b"%1\r\n+proto\r\n:3\r\n"
        if b"CLIENT" in command:  # the connection's handshake
            return b"+OK\r\n"
        return b"-LOADING Redis is loading the dataset in memory\r\n"

    async def loading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(b"".join(reply(c) for c in data.split(b"*")[1:]))
        writer.close()

    server = await asyncio.start_server(loading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mux = MuxRedis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=5)
    try:
        with pytest.raises(redis.BusyLoadingError):
            await mux.get("k")
        assert mux._link is not None  # it went down the shared connection
    finally:
        await mux.aclose()
        server.close()
