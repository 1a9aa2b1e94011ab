"""Lookback edges: a lab taken exactly `lookback_days` before now still counts; one second
older does not. (Through the HTTP API the service's clock cannot be pinned to the second, so
these run the engine with a fixed `now`.)"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from cards.engine import evaluate
from cards.knowledge import load_knowledge
from fhir_fixtures import load_story
from tests.cards.storydata import hookdata_from_story

K = load_knowledge()
NOW = datetime(2026, 11, 21, 12, 30, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=K.value("electrolytes", "lookback_days"))


def topics_with_potassium_taken(age: timedelta) -> set[str]:
    story = load_story("hypokalemia", today=NOW.date())  # potassium 3.2 mmol/L
    data = hookdata_from_story(story, now=NOW)
    taken = (NOW - age).isoformat()
    observations = tuple(dict(o, effectiveDateTime=taken) if "potassium" in o["id"] else o
                         for o in data.observations)
    return {card["source"]["topic"]["code"] for card in evaluate(replace(data, observations=observations), K)}


@pytest.mark.parametrize("age", [timedelta(days=10), LOOKBACK], ids=["recent", "exactly-at-the-edge"])
def test_a_potassium_within_the_lookback_counts(age):
    found = topics_with_potassium_taken(age)
    assert "hypokalemia" in found and "electrolytes-unknown" not in found


def test_a_potassium_one_second_beyond_the_lookback_does_not_count():
    found = topics_with_potassium_taken(LOOKBACK + timedelta(seconds=1))
    assert "hypokalemia" not in found and "electrolytes-unknown" in found
