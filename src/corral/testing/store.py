"""Point an app, tasks and all, at another store for a while (a test's own)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from corral.backends.redis.cluster import is_cluster_url, parse_cluster_url
from corral.backends.redis.sentinel_url import is_sentinel_url, parse_sentinel_url
from corral.errors import ConfigurationError
from corral.settings import REDIS_SCHEMES, resolve_url

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["close_everywhere", "delete_prefix", "use_store"]


@contextmanager
def use_store(app: Corral, url: str, *, prefix: str | None = None) -> Iterator[Corral]:
    """Within the block, ``app`` (the one your tasks are registered on) uses the store
    at ``url`` (and key ``prefix`` on Redis); its connections are closed on the way in
    and out, and its URL and prefix restored after. Call it from sync code (a sync
    fixture); ConfigurationError when the app is connected on the running loop."""
    chosen = resolve_url(url)
    close_everywhere(app)
    saved = (app.url, app.prefix)
    app.url = chosen
    if prefix is not None:
        app.prefix = prefix
    try:
        yield app
    finally:
        try:
            close_everywhere(app)
        finally:
            app.url, app.prefix = saved


def close_everywhere(app: Corral) -> None:
    """Close the app's connections on every event loop it used: Corral's background
    loop and any loop still open; a closed loop's are only forgotten."""
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for loop in list(app._backends):
        if loop.is_closed():
            app._backends.pop(loop, None)
            app._feeds.pop(loop, None)
        elif loop is current:
            raise ConfigurationError(
                "the app is connected on the running event loop: await app.close() first"
            )
        elif loop.is_running():  # another thread's (Corral's background loop)
            asyncio.run_coroutine_threadsafe(app.close(), loop).result(timeout=10)
        else:
            loop.run_until_complete(app.close())


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every Redis key under ``prefix`` (a test's namespace); 0 for SQLite."""
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        return 0
    import redis

    if is_cluster_url(url):
        return _delete_prefix_cluster(url, prefix)
    sentinels: list[Any] = []
    if is_sentinel_url(url):
        client, sentinels = _sentinel_primary(url)
    else:
        client = redis.Redis.from_url(url)
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
        return deleted
    finally:
        for each in (client, *sentinels):
            each.close()


def _sentinel_primary(url: str) -> tuple[Any, list[Any]]:
    from redis.sentinel import Sentinel

    config = parse_sentinel_url(url)
    tls: dict[str, Any] = {"ssl": True, **config.tls_options} if config.tls else {}
    sentinel = Sentinel(
        config.sentinels,
        sentinel_kwargs={
            "username": config.sentinel_username,
            "password": config.sentinel_password,
            "socket_timeout": config.sentinel_timeout,
            **tls,
        },
        db=config.db,
        username=config.username,
        password=config.password,
        **tls,
    )
    return sentinel.master_for(config.service), sentinel.sentinels


def _delete_prefix_cluster(url: str, prefix: str) -> int:
    from redis.cluster import ClusterNode, RedisCluster

    seeds, options = parse_cluster_url(url)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds], **options)  # type: ignore[no-untyped-call, unused-ignore]
    try:
        deleted = 0
        for node in client.get_primaries():  # type: ignore[no-untyped-call, unused-ignore]
            server = client.get_redis_connection(node)
            for key in server.scan_iter(match=f"{prefix}:*", count=1000):
                deleted += int(server.delete(key))  # keys of one node, any slot
        return deleted
    finally:
        client.close()
