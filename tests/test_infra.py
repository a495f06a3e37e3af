"""Checks that the test infrastructure itself works (private Redis, flushing, env isolation)."""

from __future__ import annotations

import os
import socket

import pytest
import redis

from tests.conftest import flush
from tests.redis_server import RedisServer


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


def test_redis_answers_ping_and_is_recent_enough(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        version = str(client.info("server")["redis_version"])
        assert _version_tuple(version) >= (6, 2), version
    finally:
        client.close()


def test_redis_url_is_flushed_between_tests(redis_url: str) -> None:
    db0 = redis.Redis.from_url(redis_url)
    db3 = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    try:
        assert db0.dbsize() == 0
        db0.set("corral:test:leftover", b"0")
        # keys in other DBs must go too (FLUSHALL, not FLUSHDB)
        db3.set("corral:test:leftover", b"3")
        assert db0.get("corral:test:leftover") == b"0"
        flush(redis_url)  # the same path the redis_url fixture takes before every test
        assert db0.get("corral:test:leftover") is None
        assert db3.get("corral:test:leftover") is None
    finally:
        db0.close()
        db3.close()


def test_env_is_isolated() -> None:
    assert "CORRAL_URL" not in os.environ
    assert "REDIS_URL" not in os.environ


def test_server_is_private_and_stops() -> None:
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping() is True
        finally:
            client.close()
        port = server.port
    # stopped: nothing listens on its port any more
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
