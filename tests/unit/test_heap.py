"""The long-running processes' garbage-collector setting (``corral serve``, ``corral
worker``): the start-up heap frozen, young collections every 10,000 allocations."""

from __future__ import annotations

import gc

from corral.cli.heap import settle_heap


def test_settle_heap_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (10_000, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
