"""Every patient story through the engine: exactly the expected cards fire; the fixtures are
valid, realistic FHIR R4."""
from collections import Counter
from datetime import date

import pytest
from storydata import hookdata_from_story
from fhircheck import validate

from cards.engine import evaluate, is_relevant
from cards.knowledge import load_knowledge
from fhir_fixtures import PATIENT_VIEW_STORIES, all_stories, load_story, resolve_token, story_ids
from tests.story_checks import assert_cards_seen

K = load_knowledge()
STORIES = story_ids()


def fired(data) -> dict:
    if not is_relevant(data.drafts, K, data.medications):
        return {}
    return {card["source"]["topic"]["code"]: card["indicator"] for card in evaluate(data, K)}


@pytest.mark.parametrize("story_id", STORIES)
def test_story_fires_exactly_what_it_expects(story_id):
    story = load_story(story_id)
    data = hookdata_from_story(story)
    got = fired(data)
    assert got == story["expect"]["fires"], story["title"]
    assert not set(story["expect"]["silent"]) & set(got)
    assert_cards_seen(story, story["expect"], evaluate(data, K) if got else [])


@pytest.mark.parametrize("story_id", [s for s in STORIES if "unavailable" in load_story(s)])
def test_story_with_failed_queries(story_id):
    story = load_story(story_id)
    got = fired(hookdata_from_story(story, failing=True))
    assert got == story["expect_unavailable"]["fires"]


def test_every_rule_has_a_firing_story():
    stories = all_stories() + all_stories(folder=PATIENT_VIEW_STORIES)
    topics = {t for s in stories for t in s["expect"]["fires"]}
    topics |= {t for s in stories for t in s.get("expect_unavailable", {}).get("fires", {})}
    assert topics == set(K.topics)


def test_near_misses_exist_at_every_threshold():
    for story_id in ("renal-edge-30", "renal-edge-60", "potassium-edge-3-5", "magnesium-edge-mmol",
                     "magnesium-edge-mgdl", "magnesium-edge-meq", "elderly-edge",
                     "dose-30-cramps-no-cirrhosis", "baseline-cramps-cirrhosis"):
        assert story_id in STORIES


@pytest.mark.parametrize("story_id", STORIES)
def test_story_resources_are_valid_r4(story_id):
    story = load_story(story_id)
    validate(story["patient"])
    for resource in story["resources"] + story["drafts"]:
        validate(resource)
        reference = resource.get("subject", {}).get("reference")
        assert reference in (None, f"Patient/{story['patient']['id']}")
        if resource["resourceType"] == "Observation":
            assert resource["code"]["coding"][0]["system"] == "http://loinc.org"
        if resource["resourceType"] == "Condition":
            systems = {c["system"] for c in resource["code"]["coding"]}
            assert systems == {"http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"}
    assert {d["status"] for d in story["drafts"]} <= {"draft", "stopped"}


def test_ids_are_unique_across_stories():
    stories = all_stories()
    patients = Counter(s["patient"]["id"] for s in stories)
    assert max(patients.values()) == 1
    resources = Counter((r["resourceType"], r["id"]) for s in stories for r in s["resources"])
    assert max(resources.values()) == 1
    assert all(s["id"] == s["patient"]["id"] for s in stories)


def test_date_tokens():
    today = date(2026, 2, 28)
    assert resolve_token("@today", today) == "2026-02-28"
    assert resolve_token("@today-30d", today) == "2026-01-29"
    assert resolve_token("@today-65y", today) == "1961-02-28"
    assert resolve_token("@today-65y+1d", today) == "1961-03-01"
    assert resolve_token("@today-1m", date(2026, 3, 31)) == "2026-02-28"
    assert resolve_token("@now-2h", today) == "2026-02-28T10:00:00Z"
    assert resolve_token("@today-2w", today) == "2026-02-14"
    assert load_story("elderly-start", today)["patient"]["birthDate"] == "1961-02-28"
