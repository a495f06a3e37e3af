"""The history hashes on Redis expire on their own: a queue's history never grows."""

from __future__ import annotations

from corral.backends.base import Completion, Retention
from corral.backends.redis import RedisBackend
from tests.contract.conftest import claim_one, enqueue


async def test_history_hashes_expire_an_hour_or_a_day_after_their_window(
    backend: RedisBackend,
) -> None:
    await enqueue(backend, "q", "a", "b")
    a = await claim_one(backend, "q")
    await backend.complete("q", [Completion(a.id, a.token, b"1")], Retention())
    b = await claim_one(backend, "q")
    await backend.fail("q", b.id, b.token, b"{}", None, Retention())
    record = await backend.get("q", a.id)
    assert record is not None and record.finished_at is not None
    minute = record.finished_at // 60_000
    keys = backend._k("q")
    client = backend.redis
    hour_key, day_key = keys.history(60_000, minute), keys.history(900_000, minute // 15)
    assert hour_key.endswith(f"hm:{minute // 60}") and day_key.endswith(f"hq:{minute // 1440}")
    # Minutes are read for the last hour, quarter hours for the last day.
    assert await client.expiretime(hour_key) == (minute // 60 + 2) * 3600
    assert await client.expiretime(day_key) == (minute // 1440 + 2) * 86400
    fields = {k.decode(): int(v) for k, v in (await client.hgetall(hour_key)).items()}
    failed_minute = (await backend.get("q", b.id)).finished_at // 60_000  # type: ignore[union-attr]
    assert fields.get(f"{failed_minute}:f") == 1
    assert sum(v for k, v in fields.items() if not k.endswith(":f")) == 1
