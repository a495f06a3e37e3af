"""``corral notify endpoints|enable`` run as a user would, on both stores."""

from __future__ import annotations

import json
import re

import orjson

from corral import Corral
from tests.cli.run import corral


async def _states(url: str) -> None:
    app = Corral(url)
    try:
        backend = await app.backend()
        await backend.set_endpoint(
            "webhook:0a1b2c3d4e5f6071",
            orjson.dumps(
                {"label": "https://hooks.example.com", "disabled": True, "reason": "answered 410"}
                | {"at": 1_764_000_000.0}
            ),
        )
        await backend.set_endpoint(
            "email:99aa",
            orjson.dumps({"label": "ops@example.com", "failing": True, "reason": "451 later"}),
        )
    finally:
        await app.close()


async def test_endpoints_lists_disabled_and_failing_ones_and_enable_clears_one(url: str) -> None:
    healthy = corral("notify", "endpoints", url=url)
    assert healthy.returncode == 0, healthy.stderr
    assert "none disabled, none failing" in healthy.stdout
    await _states(url)
    terminal = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}
    out = corral("notify", "endpoints", url=url, env=terminal)
    assert out.returncode == 0, out.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)
    assert max(len(line) for line in plain.splitlines()) <= 80
    flat = re.sub(r"[│┃\s]", "", plain)
    for text in ("webhook:0a1b2c3d4e5f6071", "disabled", "answered410", "email:99aa", "failing"):
        assert text in flat
    # The command it prints runs as shown.
    hint = plain.strip().splitlines()[-1]
    assert hint == "enable one again: corral notify enable webhook:0a1b2c3d4e5f6071"
    enabled = corral(*hint.split(": ", 1)[1].split()[1:], url=url)
    assert enabled.returncode == 0, enabled.stderr
    assert "enabled" in enabled.stdout
    left = json.loads(corral("notify", "endpoints", "--json", url=url).stdout)
    assert [(e["key"], e["failing"], e["disabled"]) for e in left] == [("email:99aa", True, False)]
    audit = json.loads(corral("audit", "--json", url=url).stdout)
    assert (audit[0]["action"], audit[0]["target"]) == ("notify.enable", "webhook:0a1b2c3d4e5f6071")


async def test_enable_of_an_unknown_endpoint_says_so(url: str) -> None:
    out = corral("notify", "enable", "webhook:nope", url=url)
    assert out.returncode == 1
    assert "no endpoint 'webhook:nope' is disabled or failing" in out.stderr
    assert "Traceback" not in out.stderr
