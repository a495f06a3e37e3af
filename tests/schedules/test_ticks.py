"""Tick arithmetic and validation of schedules (no store needed)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from corral import ConfigurationError, Corral, InvalidName
from corral.schedules import ScheduleSpec, last_tick_at_or_before, next_tick

BERLIN = ZoneInfo("Europe/Berlin")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def local(ms_value: int) -> datetime:
    return datetime.fromtimestamp(ms_value / 1000, tz=BERLIN)


def spec(**fields: object) -> ScheduleSpec:
    return ScheduleSpec(**{"name": "s", "task": "t.x", "queue": "q", **fields})  # type: ignore[arg-type]


def test_interval_ticks_are_aligned_to_the_epoch() -> None:
    every = spec(every=60)
    assert next_tick(every, 125_000) == 180_000
    assert next_tick(every, 180_000) == 240_000  # strictly after
    assert last_tick_at_or_before(every, 180_000, 1_000_000) == 960_000


def test_cron_in_a_time_zone() -> None:
    weekly = spec(cron="0 9 * * 1", tz="Europe/Berlin")
    tick = next_tick(weekly, ms(datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN)))  # a Monday
    assert local(tick) == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)


def _day_ticks(expr: str, day: datetime) -> list[datetime]:
    s = spec(cron=expr, tz="Europe/Berlin")
    ticks, t = [], ms(day.replace(hour=0)) - 1
    end = ms(day.replace(hour=23, minute=59))
    while (t := next_tick(s, t)) <= end:
        ticks.append(local(t))
    return ticks


def test_dst_autumn_fires_once() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
    ticks = _day_ticks("30 2 * * *", datetime(2026, 10, 25, tzinfo=BERLIN))
    assert len(ticks) == 1


def test_dst_spring_does_not_miss_the_day() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist.
    ticks = _day_ticks("30 2 * * *", datetime(2026, 3, 29, tzinfo=BERLIN))
    assert len(ticks) == 1
    assert ticks[0].hour == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression '61 * * * *': Bad minute"),
        ({"cron": "0 9 * * xyz"}, "Bad day-of-week"),
        ({"cron": "* * * *"}, "Wrong number of fields"),
        ({"cron": "0 9 * * *", "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 9 * * *", "every": 60}, "exactly one of cron= and every="),
        ({}, "exactly one of cron= and every="),
        ({"every": 0.01}, "at least 0.1 seconds"),
    ],
)
def test_invalid_schedules_name_the_problem(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("*", r"\*")):
        spec(**fields)


def test_bad_schedule_name() -> None:
    with pytest.raises(InvalidName, match="invalid schedule name"):
        spec(name="no spaces", every=1)


def test_decorator_validates_at_registration() -> None:
    app = Corral("sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="Bad hour"):
        app.task(name="r.daily", cron="0 25 * * *")(lambda: None)
    with pytest.raises(ConfigurationError, match="must take no arguments"):

        @app.task(name="r.args", every=60)
        def needs(x: int) -> None: ...

    @app.task(name="r.ok", cron="0 9 * * 1", tz="Europe/Berlin")
    def weekly() -> None: ...

    assert [s.name for s in app.declared_schedules] == ["r.ok"]
