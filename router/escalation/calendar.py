"""Add minutes of working time to a moment, under a business-hours calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from router.escalation.schemas import WEEKDAYS, BusinessHours

# Days searched for the next working period; a calendar with no day is rejected.
MAX_DAYS_AHEAD = 14


def add_working_minutes(
    start: datetime, minutes: float, calendar: BusinessHours | None
) -> datetime:
    """Return the moment `minutes` of working time after `start`, in UTC.

    Without a calendar every minute counts. With one, only minutes inside its
    hours on its days count, in its time zone (so daylight saving is respected).

    Raises:
        ValueError: the calendar has no working day.
    """
    if calendar is None:
        return start + timedelta(minutes=minutes)
    if not calendar.days:
        raise ValueError("business_hours.days is empty; list at least one weekday")
    zone = ZoneInfo(calendar.timezone)
    moment = start.astimezone(zone)
    remaining = timedelta(minutes=minutes)
    for _ in range(MAX_DAYS_AHEAD * (1 + int(minutes // (24 * 60)))):
        opens, closes = _period_on(moment, calendar, zone)
        if opens is None or closes is None or moment >= closes:
            moment = _next_day(moment, zone)
            continue
        moment = max(moment, opens)
        available = closes - moment
        if remaining <= available:
            return (moment + remaining).astimezone(UTC)
        remaining -= available
        moment = _next_day(moment, zone)
    raise ValueError(
        f"no working time found within {MAX_DAYS_AHEAD} days; check business_hours"
    )


def _period_on(
    moment: datetime, calendar: BusinessHours, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    if WEEKDAYS[moment.weekday()] not in calendar.days:
        return None, None
    day = moment.date()
    opens = datetime.combine(day, calendar.start, tzinfo=zone)
    closes = datetime.combine(day, calendar.end, tzinfo=zone)
    return opens, closes


def _next_day(moment: datetime, zone: ZoneInfo) -> datetime:
    following = moment.date() + timedelta(days=1)
    return datetime.combine(following, datetime.min.time(), tzinfo=zone)
