"""Catalog v2 words read by the engine: course, lapsed course, established therapy, dialysis
from Procedures, adults, sources on cards. Fixed `now` so the edges are exact."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from storydata import hookdata_from_story

from cards.engine import evaluate
from cards.facts import Facts
from cards.hookdata import HookData
from cards.knowledge import load_knowledge
from fhir_fixtures import load_story

K = load_knowledge()
NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
TAB10 = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197391",
                     "display": "Baclofen 10 MG Oral Tablet"}]}


def order(rid: str, status: str, authored: datetime, tablets: int = 3, **extra) -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": TAB10,
            "authoredOn": authored.isoformat(),
            "dosageInstruction": [{"timing": {"repeat": {"frequency": tablets, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "{tbl}"}}]}],
            **extra}


def facts(history: list[dict], draft: dict | None = None, **more) -> Facts:
    data = HookData(hook="order-sign", fhir_version="R4", now=NOW, patient_id="p",
                    drafts=(draft or order("draft", "draft", NOW, tablets=4),),
                    patient={"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01",
                             "gender": "female"},
                    medication_requests=tuple(history), **more)
    return Facts(data, K)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.mark.parametrize("ended_days_ago, lapsed", [(30, True), (30.01, False)])
def test_a_course_lapses_for_at_most_30_days(ended_days_ago, lapsed):
    # authored 60 days before it ended: no supply duration, so it ends 30 days after authoredOn
    previous = order("old", "completed", days_ago(ended_days_ago + 30))
    f = facts([previous])
    draft = f.drafts[0]
    assert f.lapsed(draft) is lapsed
    assert f.current_dose(draft)[0] == (30 if lapsed else None)
    assert f.naive_for(draft) is (not lapsed)


def test_each_draft_of_a_request_has_its_own_current_dose():
    morning = order("morning", "active", days_ago(90), tablets=1)
    evening = order("evening", "active", days_ago(20), tablets=2)
    drafts = tuple(order(f"new-{old}", "draft", NOW, priorPrescription={"reference": f"MedicationRequest/{old}"})
                   for old in ("morning", "evening"))
    f = Facts(replace(facts([morning, evening]).data, drafts=drafts), K)
    assert [f.current_dose(d)[0] for d in f.drafts] == [10, 20]
    assert [f.current_dose(d)[1][0].id for d in f.drafts] == ["morning", "evening"]


def test_a_link_joins_orders_whatever_the_gap_and_dates_the_course():
    first = order("first", "completed", days_ago(400))
    current = order("current", "active", days_ago(60),
                    priorPrescription={"reference": "MedicationRequest/first"})
    f = facts([first, current])
    assert f.course_start(f.drafts[0]) == days_ago(400)


def test_without_a_link_a_long_gap_starts_a_new_course():
    first = order("first", "completed", days_ago(400))
    current = order("current", "active", days_ago(60))
    f = facts([first, current])
    assert f.course_start(f.drafts[0]) == days_ago(60)


def test_the_supply_duration_ends_an_order():
    supplied = {"dispenseRequest": {"expectedSupplyDuration": {"value": 90, "unit": "days", "code": "d"}}}
    first = order("first", "completed", days_ago(200), **supplied)  # ends 110 days ago
    current = order("current", "active", days_ago(80))  # 30 days after: same course
    f = facts([first, current])
    assert f.course_start(f.drafts[0]) == days_ago(200)


@pytest.mark.parametrize("days, established", [(14, True), (13.99, False)])
def test_established_therapy_from_14_days(days, established):
    f = facts([order("current", "active", days_ago(days))])
    assert f.established_therapy(f.drafts[0]) is established


@pytest.mark.parametrize("days, dialysis", [(30, True), (30.01, False), (-1, False)])
def test_dialysis_procedure_of_the_last_30_days(days, dialysis):
    procedure = {"resourceType": "Procedure", "id": "hd", "status": "completed",
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": "302497006"}]},
                 "subject": {"reference": "Patient/p"}, "performedDateTime": days_ago(days).isoformat()}
    assert facts([], procedures=(procedure,)).dialysis is dialysis


@pytest.mark.parametrize("status, dialysis", [("in-progress", True), ("not-done", False),
                                              ("entered-in-error", False)])
def test_dialysis_procedure_status(status, dialysis):
    procedure = {"resourceType": "Procedure", "id": "hd", "status": status,
                 "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "90945"}]},
                 "subject": {"reference": "Patient/p"},
                 "performedPeriod": {"start": days_ago(2).isoformat()}}
    assert facts([], procedures=(procedure,)).dialysis is dialysis


def test_an_active_taper_order_counts_todays_step_as_d0():
    def step(sequence, tablets, days=None):
        repeat = {"frequency": tablets, "period": 1, "periodUnit": "d"}
        if days:
            repeat["boundsDuration"] = {"value": days, "unit": "d", "code": "d"}
        return {"sequence": sequence, "timing": {"repeat": repeat},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "{tbl}"}}]}
    taper = order("taper", "active", days_ago(4), dosageInstruction=[step(1, 4, 3), step(2, 3, 3), step(3, 2)])
    f = facts([taper])
    assert f.current_dose(f.drafts[0])[0] == 30


def test_an_unselected_draft_counts_as_a_duplicate_and_for_the_combined_dose():
    other = order("other", "draft", NOW, tablets=2)
    f = facts([], draft=order("draft", "draft", NOW, tablets=2), other_drafts=(other,))
    assert [o.id for o in f.duplicates(f.drafts[0])] == ["other"]


def test_a_draft_that_replaces_the_other_is_no_duplicate():
    other = order("other", "draft", NOW, tablets=2)
    draft = order("draft", "draft", NOW, tablets=2, basedOn=[{"reference": "MedicationRequest/other"}])
    f = facts([], draft=draft, other_drafts=(other,))
    assert f.duplicates(f.drafts[0]) == []


def test_unknown_age_keeps_the_adult_dose_checks():
    data = hookdata_from_story(load_story("sandbox-pill-20mg"))
    data = replace(data, patient=dict(data.patient, birthDate=None))
    topics = {c["source"]["topic"]["code"] for c in evaluate(data, K)}
    assert "start-dose-high" in topics and "pediatric-dosing" not in topics


def _cards(story_id: str) -> dict:
    return {c["source"]["topic"]["code"]: c for c in evaluate(hookdata_from_story(load_story(story_id)), K)}


def test_a_dose_card_cites_the_source_of_its_numbers():
    cramps = _cards("cirrhosis-first-order-30")["start-dose-high"]["source"]
    spasticity = _cards("sandbox-pill-20mg")["start-dose-high"]["source"]
    assert cramps["label"] == K["sources"]["cirrhosis"]["label"] and "EASL" in cramps["label"]
    assert spasticity["label"] == K["sources"]["label"]["label"]


@pytest.mark.parametrize("story_id, topic, source", [
    ("elderly-start", "elderly-start", "seed"), ("tolerance", "tolerance", "seed"),
    ("avoid-cyclobenzaprine", "avoid-cyclobenzaprine", "seed_beers"),
    ("avoid-quinidine", "avoid-quinidine", "cirrhosis"), ("renal-avoid", "renal-avoid", "renal")])
def test_topic_sources(story_id, topic, source):
    card = _cards(story_id)[topic]
    assert card["source"]["label"] == K["sources"][source]["label"]
    assert "Source:" not in card["detail"] and card["source"]["label"] not in card["detail"]


def test_a_refuted_condition_is_no_reason():
    refuted = {"resourceType": "Condition", "id": "fm", "subject": {"reference": "Patient/p"},
               "verificationStatus": {"coding": [{"code": "refuted"}]},
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "203082005"}]}}
    draft = order("draft", "draft", NOW, reasonReference=[{"reference": "Condition/fm"}])
    f = facts([], draft=draft, conditions=(refuted,))
    assert f.drafts[0].reason == frozenset() and f.drafts[0].indication == "unknown"


def test_rule_7_leaves_room_for_active_orders_the_draft_does_not_replace():
    from cards.cardbuilder import DoseLimit
    from cards.rules import RULES
    dose_above_max = next(rule for rule in RULES if rule.topic == "dose-above-max")
    (finding,) = dose_above_max.findings(Facts(hookdata_from_story(load_story("dose-combined-active")), K))
    assert finding.dose_limit == DoseLimit(10, "the ceiling")
    crowded = hookdata_from_story(load_story("dose-combined-active"))
    current = next(r for r in crowded.medication_requests if r["status"] == "active")
    bigger = dict(current, id="bigger")
    (finding,) = dose_above_max.findings(Facts(replace(crowded, medication_requests=(current, bigger)), K))
    assert finding.dose_limit is None and "no dose of this draft fits" in finding.detail
