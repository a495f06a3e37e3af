"""Loading the Lua scripts in ``lua/`` and calling them through one typed entry point.

On Redis >= 7 the scripts are one function library (``FUNCTION LOAD`` once, then
``FCALL``): the shared helpers in ``lua/includes/`` are defined when the library loads
instead of on every call, which measured about a fifth fewer Redis instructions per
script. Redis 6.2, or a Redis that refuses ``FUNCTION LOAD``, gets ``EVALSHA``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

__all__ = ["SCRIPT_NAMES", "ScriptSet", "library", "source"]

SCRIPT_NAMES = (
    "abort",
    "cancel",
    "claim",
    "clean",
    "complete",
    "drain",
    "enqueue",
    "facts",
    "fail",
    "flow_add",
    "flow_retry",
    "flow_settle",
    "forget",
    "handoff_take",
    "limits",
    "outbox_take",
    "page",
    "park",
    "promote",
    "reap",
    "release",
    "remove",
    "renew",
    "retry",
    "schedule_fire",
    "schedule_upsert",
    "serving",
    "update",
)

_INCLUDE = re.compile(r"^--@include (\w+)$", re.MULTILINE)

#: Scripts that may run when Redis is at maxmemory (Redis >= 7): they shrink memory or
#: keep workers draining and leases alive, or only read. Enqueue, progress/log writes and schedule
#: writes are refused instead (StoreFull), so a full Redis fills no further.
ALLOW_OOM = frozenset(
    {
        "abort",
        "cancel",
        "claim",
        "clean",
        "complete",
        "drain",
        "facts",
        "fail",
        "flow_settle",
        "forget",
        "handoff_take",
        "outbox_take",
        "page",
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


def _parts(name: str) -> tuple[list[str], str]:
    """A script's includes (in order) and its body: ``begin()``, then the script file."""
    text = _read(f"{name}.lua")
    includes = _INCLUDE.findall(text)
    if includes[:1] != ["common"]:
        raise ValueError(f"lua/{name}.lua must include common first")
    # Every script may end a job, and common's ending helpers call into flows.
    includes = ["common", "flows", *(i for i in includes[1:] if i != "flows")]
    return includes, "begin(KEYS, ARGV)\n" + _INCLUDE.sub("", text)


@cache
def source(name: str) -> str:
    """The text to ``EVAL`` script ``name``: its includes inlined ahead of its body."""
    includes, body = _parts(name)
    return "".join(_read(f"includes/{i}.lua") for i in includes) + body


@cache
def library() -> tuple[str, str]:
    """The function library (Redis >= 7) holding every script: (name, FUNCTION LOAD text).

    The includes are defined once, when Redis loads the library, instead of on every
    call; each script becomes a function whose parameters are named KEYS and ARGV, so
    its body reads as it does under ``EVAL``. The name carries a hash of the text:
    workers of two Corral versions on one Redis each call their own functions.
    """
    order: list[str] = []
    bodies = {}
    for name in SCRIPT_NAMES:
        includes, bodies[name] = _parts(name)
        order += [i for i in includes if i not in order]
    shared = "".join(_read(f"includes/{i}.lua") for i in order)
    signed = shared + "".join(bodies.values()) + " ".join(sorted(ALLOW_OOM))
    digest = hashlib.sha1(signed.encode()).hexdigest()[:16]
    lib = f"corral_{digest}"
    functions = []
    for name, body in bodies.items():
        flags = "'allow-oom'" if name in ALLOW_OOM else ""
        functions.append(
            f"redis.register_function{{function_name='{lib}_{name}', flags={{{flags}}}, "
            f"callback=function(KEYS, ARGV)\n{body}\nend}}\n"
        )
    return lib, f"#!lua name={lib}\n{shared}{''.join(functions)}"


class ScriptSet:
    """The scripts, as one function library (``FCALL``) on Redis >= 7, else one
    ``EVALSHA`` each; loaded on first use and again whenever Redis has lost them."""

    def __init__(
        self,
        client: Redis,
        *,
        functions: bool = False,
        flags: bool = False,
        servers: Callable[[], list[Redis]] | None = None,
    ) -> None:
        self._client = client
        # Where loading goes: every primary of a cluster (a promoted replica or a new
        # primary may lack the scripts), else the one server.
        self._servers = servers or (lambda: [client])
        self._functions = functions
        self._library, self._library_text = library()

        def text(name: str) -> str:
            # Script flags need Redis 7; older servers would read the shebang as Lua.
            if flags and name in ALLOW_OOM:
                return "#!lua flags=allow-oom\n" + source(name)
            return source(name)

        self._texts = {name: text(name) for name in SCRIPT_NAMES}
        self._shas = {n: hashlib.sha1(t.encode()).hexdigest() for n, t in self._texts.items()}

    def command(self, name: str) -> tuple[str, str]:
        """The command and its first argument that run script ``name`` (keys count,
        keys and arguments follow), e.g. to pipeline it behind another command."""
        if self._functions:
            return "FCALL", f"{self._library}_{name}"
        return "EVALSHA", self._shas[name]

    @staticmethod
    def missing(exc: BaseException) -> bool:
        """Whether a reply says the script or function is not loaded (restart, flush)."""
        return isinstance(exc, NoScriptError) or (
            isinstance(exc, ResponseError) and str(exc).startswith("Function not found")
        )

    async def load(self, name: str) -> None:
        """Load script ``name`` (with functions: the whole library) on every server.
        A Redis that refuses ``FUNCTION LOAD`` (an ACL, a proxy) gets ``EVALSHA`` from
        then on."""
        for server in self._servers():
            await self._load_on(server, name)

    async def _load_on(self, server: Redis, name: str) -> None:
        if self._functions:
            try:
                await server.execute_command(  # type: ignore[no-untyped-call]
                    "FUNCTION", "LOAD", self._library_text
                )
                return
            except ResponseError as exc:
                if "already exists" in str(exc):  # another process loaded it first
                    return
                if not (isinstance(exc, NoPermissionError) or "unknown command" in str(exc)):
                    raise
                self._functions = False
        await server.script_load(self._texts[name])

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` (loading it first if Redis does not have it)."""
        try:
            return await self._client.execute_command(  # type: ignore[no-untyped-call]
                *self.command(name), len(keys), *keys, *args
            )
        except ResponseError as exc:
            if not self.missing(exc):
                raise
        await self.load(name)
        return await self._client.execute_command(  # type: ignore[no-untyped-call]
            *self.command(name), len(keys), *keys, *args
        )

    async def run_many(self, name: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run script ``name`` once per (keys, args) in one pipelined round trip (two
        more when Redis does not have it yet); replies in order, errors raised."""
        replies = await self._pipelined(name, calls)
        if any(self.missing(r) for r in replies if isinstance(r, Exception)):
            await self.load(name)
            replies = await self._pipelined(name, calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _pipelined(self, name: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command(*self.command(name), len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def run_then(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        *then: tuple[Any, ...],
        server: Redis | None = None,
    ) -> list[Any]:
        """Run script ``name`` and then the commands ``then`` on one connection (one
        pipeline) of ``server`` (default: the client; in a cluster: the keys' node),
        for commands about that connection's writes, such as ``WAIT``. Returns all the
        replies, the script's first."""
        server = server or self._client
        for _ in range(2):
            async with server.pipeline(transaction=False) as pipe:
                pipe.execute_command(*self.command(name), len(keys), *keys, *args)
                for command in then:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
            if not (isinstance(replies[0], Exception) and self.missing(replies[0])):
                break
            await self.load(name)
        for value in replies:
            if isinstance(value, Exception):
                raise value
        return replies
