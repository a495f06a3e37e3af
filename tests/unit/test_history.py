"""History arithmetic: p95 from merged histograms, points and totals, span checks."""

from __future__ import annotations

import pytest

from corral import Corral
from corral.backends.base import DURATION_BUCKETS, HistoryWindow
from corral.history import History, percentile, span_window

N = len(DURATION_BUCKETS) + 1


def hist(**at: int) -> list[int]:
    """A histogram with ``b<i>=n`` counts."""
    counts = [0] * N
    for name, n in at.items():
        counts[int(name[1:])] = n
    return counts


def test_percentile_interpolates_inside_the_bucket() -> None:
    assert percentile([0] * N) is None
    # 100 runs in (5, 10] ms: the 95th is 95 % of the way through that bucket.
    assert percentile(hist(b1=100)) == pytest.approx(9.75)
    # 95 fast runs and 5 slow ones: the p95 is still in the fast bucket's top.
    assert percentile(hist(b0=95, b7=5)) == pytest.approx(5.0)
    assert percentile(hist(b0=94, b7=6)) == pytest.approx(500 + 500 * (1 / 6), abs=0.01)
    # Past the last bound, the last bound (the histogram knows no more).
    assert percentile(hist(**{f"b{N - 1}": 3})) == DURATION_BUCKETS[-1] * 1000


def test_a_p95_over_slots_comes_from_the_merged_histogram() -> None:
    fast = (0, *hist(b0=90))
    slow = (2, *hist(b9=10))  # 2 failed, 10 runs in (2.5, 5] s
    window = HistoryWindow(start=600_000, step=60_000, slots={"a": [fast, slow], "b": [slow, fast]})
    one = History.build("a", "hour", window, [window.slots["a"]])
    assert [p.ts for p in one.points] == [600_000, 660_000]
    assert [(p.completed, p.failed) for p in one.points] == [(90, 0), (10, 2)]
    assert one.points[0].p95_ms == pytest.approx(4.75)
    assert (one.completed, one.failed) == (100, 2)
    # Of 100 runs the 95th is the 5th of the 10 slow ones: half way through (2.5, 5] s.
    # (An average of the per-slot p95s would say about 2.4 s.)
    assert one.p95_ms == pytest.approx(3750)
    both = History.build(None, "hour", window, window.slots.values())
    assert [(p.completed, p.failed) for p in both.points] == [(100, 2), (100, 2)]
    assert both.to_dict()["totals"] == {"completed": 200, "failed": 4, "p95_ms": 3750.0}


@pytest.mark.parametrize("span", ["week", "", None, 60, "HOUR"])
def test_a_span_other_than_hour_or_day_is_refused(span: object) -> None:
    with pytest.raises(ValueError, match=r"span must be 'hour' or 'day', got"):
        span_window(span)


async def test_corral_history_checks_span_and_queue_first(tmp_path) -> None:
    app = Corral(f"sqlite:///{tmp_path / 'h.db'}")
    with pytest.raises(ValueError, match="span must be"):
        await app.history("q", span="week")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue name"):
        await app.history("bad name")
    empty = await app.history("q", span="day")
    assert len(empty.points) == 96 and (empty.completed, empty.failed, empty.p95_ms) == (0, 0, None)
    await app.close()


def test_history_sync_adds_every_queue_together(tmp_path) -> None:
    app = Corral(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        whole = app.history_sync(None)
    finally:
        app.close_sync()
    assert (whole.queue, whole.span, len(whole.points), whole.completed) == (None, "hour", 60, 0)
