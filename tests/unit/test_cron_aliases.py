"""Cron aliases (``@daily``...) are accepted as their 5-field forms (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corral.errors import ConfigurationError
from corral.schedules import ScheduleSpec, next_tick

START = datetime(2026, 3, 4, 10, 17, 30, tzinfo=UTC)  # a Wednesday


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@yearly", datetime(2027, 1, 1, tzinfo=UTC)),
        ("@annually", datetime(2027, 1, 1, tzinfo=UTC)),
        ("@monthly", datetime(2026, 4, 1, tzinfo=UTC)),
        ("@weekly", datetime(2026, 3, 8, tzinfo=UTC)),  # Sunday midnight
        ("@daily", datetime(2026, 3, 5, tzinfo=UTC)),
        ("@midnight", datetime(2026, 3, 5, tzinfo=UTC)),
        ("@hourly", datetime(2026, 3, 4, 11, tzinfo=UTC)),
        ("@DAILY", datetime(2026, 3, 5, tzinfo=UTC)),
    ],
)
def test_aliases_fire_like_their_five_field_forms(alias: str, expected: datetime) -> None:
    spec = ScheduleSpec(name="s", task="t.x", queue="q", cron=alias)
    assert spec.cron == alias  # shown as the user wrote it
    assert next_tick(spec, _ms(START)) == _ms(expected)


def test_reboot_is_refused_with_a_reason() -> None:
    with pytest.raises(ConfigurationError, match="@reboot is not supported"):
        ScheduleSpec(name="s", task="t.x", queue="q", cron="@reboot")


def test_an_unknown_alias_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown cron alias '@often'.*@daily"):
        ScheduleSpec(name="s", task="t.x", queue="q", cron="@often")
