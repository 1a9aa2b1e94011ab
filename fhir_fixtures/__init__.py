"""Clinical patient stories (stories/*.json) with relative dates.

A story: {"id", "title", "expect": {"fires": {topic: indicator}, "silent": [topic...]},
"patient", "resources", "drafts"}; `expect` is for complete data. A story about a failed
FHIR query also has "unavailable": {data key: reason} (keys of cards.hookdata) and
"expect_unavailable" (same shape as `expect`): the response when those queries fail.

Dates are tokens resolved at load time: "@today", "@today-30d", "@today-65y+1d",
"@now-2h" (units y, m = months, w, d, h). "@today..." gives a FHIR date, "@now..." (or
any hour offset) a dateTime in UTC.
"""
from __future__ import annotations

import json
import re
from calendar import monthrange
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

STORIES = Path(__file__).with_name("stories")
# Stories for the patient-view service (no drafts; "hook": "patient-view", "expect_card").
PATIENT_VIEW_STORIES = Path(__file__).with_name("patient_view")
_TOKEN = re.compile(r"^@(today|now)((?:[+-]\d+[ymwdh])*)$")
_OFFSET = re.compile(r"([+-]\d+)([ymwdh])")


def story_ids(folder: Path = STORIES) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.json"))


def load_story(story_id: str, today: date | None = None, folder: Path = STORIES) -> dict:
    raw = json.loads((folder / f"{story_id}.json").read_text(encoding="utf-8"))
    return resolve_dates(raw, today)


def all_stories(today: date | None = None, folder: Path = STORIES) -> list[dict]:
    return [load_story(story_id, today, folder) for story_id in story_ids(folder)]


def resolve_dates(value, today: date | None = None):
    """Every date token anywhere in the JSON value replaced by a FHIR date/dateTime."""
    if isinstance(value, dict):
        return {key: resolve_dates(item, today) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_dates(item, today) for item in value]
    if isinstance(value, str) and value.startswith("@"):
        return resolve_token(value, today)
    return value


def resolve_token(token: str, today: date | None = None) -> str:
    match = _TOKEN.match(token)
    if not match:
        return token
    now = _now(today)
    base, offsets = match[1], _OFFSET.findall(match[2])
    when = now if base == "now" else datetime.combine(now.date(), time(), timezone.utc)
    for amount, unit in offsets:
        when = _shift(when, int(amount), unit)
    if base == "today" and not any(unit == "h" for _, unit in offsets):
        return when.date().isoformat()
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(today: date | None) -> datetime:
    if today is None:
        return datetime.now(timezone.utc).replace(microsecond=0)
    return datetime.combine(today, time(12, 0), timezone.utc)


def _shift(when: datetime, amount: int, unit: str) -> datetime:
    if unit in "ym":
        months = when.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = when.year + months // 12, months % 12 + 1
        return when.replace(year=year, month=month, day=min(when.day, monthrange(year, month)[1]))
    hours = {"w": 168, "d": 24, "h": 1}[unit]
    return when + timedelta(hours=amount * hours)
