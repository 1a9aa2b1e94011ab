"""FHIR date and dateTime strings of any precision, as timezone-aware datetimes (naive = UTC)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

DAY = timedelta(days=1)


@lru_cache(maxsize=8192)
def parse_when(text: str | None) -> datetime | None:
    """'2026', '2026-10', '2026-10-02', '2026-10-02T08:00:00(.123)(Z|+01:00)' -> aware datetime.

    Partial dates take their first instant; unreadable text gives None (the value is ignored).
    """
    if not isinstance(text, str) or len(text) < 4:
        return None
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=timezone.utc)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_date(text: str | None) -> date | None:
    when = parse_when(text)
    return when.date() if when else None


def age_on(birth: date, on: date) -> int:
    """Whole years; someone born on 29 February turns a year older on 1 March in other years."""
    before_birthday = (on.month, on.day) < (birth.month, birth.day)
    return on.year - birth.year - before_birthday


def days_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier) / DAY


def observation_time(observation: dict) -> datetime | None:
    """When the sample was taken: effective[x], else when the result was issued."""
    period = observation.get("effectivePeriod") or {}
    for text in (observation.get("effectiveDateTime"), observation.get("effectiveInstant"),
                 period.get("end"), period.get("start"), observation.get("issued")):
        when = parse_when(text)
        if when:
            return when
    return None
