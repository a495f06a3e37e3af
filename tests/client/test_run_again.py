"""Job.run_again: a new job of the same task and settings, linked to the old one."""

from __future__ import annotations

import pytest

from corral import Corral, InvalidArguments


async def test_run_again_keeps_settings_and_links_back(app: Corral) -> None:
    @app.task(name="reports.build", queue="reports", attempts=2)
    async def build(account: str, *, pages: int = 1) -> None:
        return None

    old = await build.options(priority=4, group="acme", attempts=5, timeout=30).enqueue(
        "acme", pages=3
    )
    await old.refresh()
    new = await old.run_again(["acme"], {"pages": 9})
    await new.refresh()
    assert new.id != old.id and new.queue == "reports" and new.name == "reports.build"
    assert (new.args, new.kwargs, new.priority, new.group) == (["acme"], {"pages": 9}, 4, "acme")
    assert new.options == {"attempts": 5, "timeout": 30.0, "rerun_of": old.id}
    assert new.rerun_of == old.id and old.rerun_of is None
    same = await old.run_again()
    await same.refresh()
    assert (same.args, same.kwargs) == (["acme"], {"pages": 3})


async def test_run_again_checks_the_arguments(app: Corral) -> None:
    @app.task(name="reports.build", queue="reports")
    async def build(account: str) -> None:
        return None

    old = await build.enqueue("acme")
    await old.refresh()
    with pytest.raises(InvalidArguments, match="missing a required argument: 'account'"):
        await old.run_again([], {"nope": 1})
    assert (await app.queue("reports").counts())["waiting"] == 1
