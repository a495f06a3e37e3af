"""The Redis backend (Redis >= 6.2, standalone; keys are Cluster-ready)."""

from corral.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
