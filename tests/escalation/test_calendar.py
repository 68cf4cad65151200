"""Working minutes under a business-hours calendar."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from router.escalation.calendar import add_working_minutes
from router.escalation.schemas import BusinessHours

BERLIN = BusinessHours(timezone="Europe/Berlin", start=time(9), end=time(17))


def test_no_calendar_counts_every_minute() -> None:
    start = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    assert add_working_minutes(start, 90, None) == datetime(
        2026, 3, 7, 0, 30, tzinfo=UTC
    )


def test_inside_hours_adds_directly() -> None:
    # 10:00 in Berlin is 09:00 UTC in winter.
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    assert add_working_minutes(start, 30, BERLIN) == datetime(
        2026, 3, 4, 9, 30, tzinfo=UTC
    )


def test_friday_evening_rolls_to_monday() -> None:
    # Friday 16:30 Berlin: 30 minutes left that day, 30 more on Monday from 09:00.
    start = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
    assert add_working_minutes(start, 60, BERLIN) == datetime(
        2026, 3, 9, 8, 30, tzinfo=UTC
    )


def test_night_start_waits_for_opening() -> None:
    start = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    assert add_working_minutes(start, 15, BERLIN) == datetime(
        2026, 3, 4, 8, 15, tzinfo=UTC
    )


def test_daylight_saving_is_respected() -> None:
    # In summer 09:00 Berlin is 07:00 UTC.
    start = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
    assert add_working_minutes(start, 0.5 * 60, BERLIN) == datetime(
        2026, 7, 1, 7, 30, tzinfo=UTC
    )


def test_end_before_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be later than start"):
        BusinessHours(start=time(17), end=time(9))


def test_unknown_timezone_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone 'Mars/Olympus' is unknown"):
        BusinessHours(timezone="Mars/Olympus")
