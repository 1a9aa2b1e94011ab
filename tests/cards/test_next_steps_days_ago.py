"""Rule 21's "(N days ago)" on a fixed clock: it counts calendar days, like the date it
follows, at any time of day (the story test runs at the wall clock's time, so it catches a
rounding error only in the afternoon)."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from cards.engine import evaluate
from cards.knowledge import load_knowledge
from fhir_fixtures import PATIENT_VIEW_STORIES, load_story
from tests.cards.storydata import hookdata_from_story

TODAY = date(2026, 3, 12)  # the dose was changed on 9 March (authored "@today-3d")


@pytest.mark.parametrize("clock", [time(0, 30), time(11, 59), time(12, 1), time(23, 30)])
def test_days_since_the_last_change_are_calendar_days(clock):
    story = load_story("pv-recent-change", today=TODAY, folder=PATIENT_VIEW_STORIES)
    now = datetime.combine(TODAY, clock, timezone.utc)
    cards = evaluate(hookdata_from_story(story, hook="patient-view", now=now), load_knowledge())
    [card] = [c for c in cards if c["source"]["topic"]["code"] == "cramps-next-steps"]
    assert "(3 days ago)" in card["detail"], card["detail"]
    assert "last changed 2026-03-09 (3 days ago)" in card["detail"], card["detail"]
