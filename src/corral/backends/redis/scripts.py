"""Loading the Lua scripts in ``lua/`` and calling them through one typed entry point."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

__all__ = ["SCRIPT_NAMES", "ScriptSet", "source"]

SCRIPT_NAMES = (
    "abort",
    "cancel",
    "claim",
    "clean",
    "complete",
    "drain",
    "enqueue",
    "fail",
    "limits",
    "promote",
    "reap",
    "release",
    "remove",
    "renew",
    "retry",
    "schedule_fire",
    "schedule_upsert",
    "update",
)

_INCLUDE = re.compile(r"^--@include (\w+)$", re.MULTILINE)

#: Scripts that may run when Redis is at maxmemory (Redis >= 7): they shrink memory or
#: keep workers draining and leases alive. Enqueue, progress/log writes and schedule
#: writes are refused instead (StoreFull), so a full Redis fills no further.
ALLOW_OOM = frozenset(
    {
        "abort",
        "cancel",
        "claim",
        "clean",
        "complete",
        "drain",
        "fail",
        "promote",
        "reap",
        "release",
        "remove",
        "renew",
        "retry",
    }
)


def _read(relative: str) -> str:
    return resources.files("corral.backends.redis").joinpath("lua", relative).read_text("utf-8")


@cache
def source(name: str) -> str:
    """The full text of a script, with its ``--@include`` lines inlined."""
    return _INCLUDE.sub(lambda m: _read(f"includes/{m.group(1)}.lua"), _read(f"{name}.lua"))


class ScriptSet:
    """The scripts registered on one client; each is loaded once (EVALSHA after that)."""

    def __init__(self, client: Redis, *, flags: bool = False) -> None:
        def text(name: str) -> str:
            # Script flags need Redis 7; older servers would read the shebang as Lua.
            if flags and name in ALLOW_OOM:
                return "#!lua flags=allow-oom\n" + source(name)
            return source(name)

        self._client = client
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(text(name)) for name in SCRIPT_NAMES
        }

    def sha(self, name: str) -> str:
        """The SHA1 to ``EVALSHA`` script ``name`` with (e.g. inside a pipeline)."""
        return str(self._scripts[name].sha)

    async def load(self, name: str) -> None:
        """Load script ``name`` again (after a ``NOSCRIPT`` reply)."""
        script = self._scripts[name]
        script.sha = await self._client.script_load(script.script)

    async def run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run script ``name``; ``client`` may be a pipeline to batch calls."""
        script = self._scripts[name]
        if client is not None:
            return await script(keys=keys, args=args, client=client)
        # The hot path: one EVALSHA, without the generic wrapper's layers per call.
        try:
            return await self._client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, len(keys), *keys, *args
            )
        except NoScriptError:  # the server restarted or flushed its scripts
            await self.load(name)
            return await self._client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, len(keys), *keys, *args
            )
