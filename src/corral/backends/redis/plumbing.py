"""What the parts of :class:`~corral.backends.redis.backend.RedisBackend` (admin,
audit, flows, history, outbox) use of it: declared once here, defined by the backend.

The parts are mixins, each a module of the backend named for what it holds; typing
them against this class keeps each one checked on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.backends.redis.keys import QueueKeys, RegistryKeys
    from corral.backends.redis.scripts import ScriptSet
    from redis.asyncio import Redis

__all__ = ["Plumbing"]


class Plumbing:
    """The backend's plumbing, as its parts see it (see ``backend.py`` for each)."""

    _registry: RegistryKeys
    _cluster_url: bool

    async def _call(self, do: Callable[[], Awaitable[Any]]) -> Any:
        raise NotImplementedError

    async def _pipelined(
        self, add: Callable[[Any], object], transaction: bool = False
    ) -> list[Any]:
        raise NotImplementedError

    def _client_or_fail(self) -> Redis:
        raise NotImplementedError

    def _k(self, queue: str) -> QueueKeys:
        raise NotImplementedError

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        raise NotImplementedError

    def _queue_keys(self, keys: QueueKeys) -> list[str]:
        raise NotImplementedError

    def _scripts_or_fail(self) -> ScriptSet:
        raise NotImplementedError

    async def _follow_new(self, queue: str) -> bool:
        raise NotImplementedError

    async def _register(self, queue: str, fresh: bool) -> None:
        raise NotImplementedError

    async def time_ms(self) -> int:
        raise NotImplementedError
