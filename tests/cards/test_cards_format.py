"""Cards are valid CDS Hooks 2.0 cards and their suggested resources valid FHIR."""
import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from fhircheck import empty_paths, validate
from storydata import hookdata_from_story

from cards.cardbuilder import DoseLimit
from cards.engine import evaluate, is_relevant
from cards.facts import Facts
from cards.knowledge import load_knowledge
from cards.rules import RULES
from fhir_fixtures import load_story, story_ids

K = load_knowledge()
SANDBOX = Path(__file__).resolve().parents[1] / "data" / "sandbox-requests"
TOPIC_SYSTEM = K.value("project", "topic_system")
RULE_BY_TOPIC = {rule.topic: rule for rule in RULES}


def all_cards(version="R4"):
    for story_id in story_ids():
        data = hookdata_from_story(load_story(story_id))
        if version == "STU3":
            data = replace(data, hook="medication-prescribe", fhir_version="STU3",
                           drafts=tuple(to_stu3(d) for d in data.drafts))
        for card in evaluate(data, K):
            yield story_id, data, card


def to_stu3(request: dict) -> dict:
    """An R4 draft as an STU3 MedicationRequest (dose directly on the Dosage)."""
    converted = json.loads(json.dumps(request))
    for dosage in converted.get("dosageInstruction", []):
        for dose_and_rate in dosage.pop("doseAndRate", []):
            dosage.update(dose_and_rate)
    return converted


def check_card(card: dict, data, version: str) -> None:
    assert not empty_paths(card), empty_paths(card)
    assert len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["detail"] and card["source"]["label"]
    assert card["source"]["topic"]["system"] == TOPIC_SYSTEM
    if card["indicator"] != "info":
        assert all(set(r) == {"system", "code", "display"} for r in card["overrideReasons"])
    else:
        assert "overrideReasons" not in card
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
    for suggestion in card.get("suggestions", []):
        assert suggestion["label"] and isinstance(suggestion["isRecommended"], bool)
        for action in suggestion["actions"]:
            check_action(action, data, version)


def check_action(action: dict, data, version: str) -> None:
    assert action["description"]
    if action["type"] == "delete":
        assert action["resourceId"] in {f"MedicationRequest/{d['id']}" for d in data.drafts}
        return
    resource = action["resource"]
    validate(resource, version)
    assert resource.get("subject") == {"reference": f"Patient/{data.patient_id}"} or \
        action["type"] == "update"
    if action["type"] == "update":
        (draft,) = [d for d in data.drafts if d["id"] == resource["id"]]
        assert resource["status"] == "draft"  # a taper of a stop order is a draft again
        rewritten = {"dosageInstruction", "status", "statusReason"}
        if any("sequence" in i for i in resource["dosageInstruction"]):  # a taper starts today
            rewritten.add("authoredOn")
        if "switched to baclofen" in action["description"]:  # a product switch (dose_writer)
            rewritten |= {"medicationCodeableConcept", "medicationReference", "contained"}
        assert {k: v for k, v in draft.items() if k not in rewritten} == \
            {k: v for k, v in resource.items() if k not in rewritten}
    else:
        assert resource["status"] == "draft" and resource["intent"] == "proposal"
        expected = {"R4": ("ServiceRequest", "MedicationRequest"),
                    "STU3": ("ProcedureRequest", "MedicationRequest")}[version]
        assert resource["resourceType"] in expected


@pytest.mark.parametrize("version", ["R4", "STU3"])
def test_every_card_of_every_story_is_valid(version):
    count = 0
    for story_id, data, card in all_cards(version):
        check_card(card, data, version)
        count += 1
    assert count > 30


def test_stu3_drafts_give_the_same_topics():
    r4 = sorted((s, c["source"]["topic"]["code"]) for s, _, c in all_cards("R4"))
    stu3 = sorted((s, c["source"]["topic"]["code"]) for s, _, c in all_cards("STU3"))
    assert r4 == stu3


def test_uuids_are_unique_within_and_across_calls():
    data = hookdata_from_story(load_story("hypomagnesemia-renal"))
    ids = [x["uuid"] for _ in range(2) for c in evaluate(data, K) for x in [c, *c.get("suggestions", [])]]
    assert len(ids) == len(set(ids)) > 4


def test_uuids_are_random_rfc_4122_uuids():
    charts = [hookdata_from_story(load_story(s)) for s in story_ids()]
    ids = [x["uuid"] for _ in range(6) for data in charts for c in evaluate(data, K)
           for x in [c, *c.get("suggestions", [])]]
    assert len(ids) > 700
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)
    assert {text[19] for text in ids} == set("89ab")  # every variant digit, so the bits are random


def test_cards_are_ordered_critical_warning_info():
    rank = {"critical": 0, "warning": 1, "info": 2}
    orders = [[c["indicator"] for c in evaluate(hookdata_from_story(load_story(s)), K)] for s in story_ids()]
    assert all(order == sorted(order, key=rank.get) for order in orders)
    first = evaluate(hookdata_from_story(load_story("pediatric-creatinine-only")), K)
    assert [c["indicator"] for c in first] == ["warning", "info"]
    second = evaluate(hookdata_from_story(load_story("hypomagnesemia-renal")), K)
    assert [c["indicator"] for c in second] == ["critical", "warning"]


def test_summary_names_the_number_and_its_date():
    story = load_story("renal-avoid")
    (card,) = evaluate(hookdata_from_story(story), K)
    egfr = next(r for r in story["resources"] if r["id"] == "renal-avoid-egfr")
    assert card["summary"] == f"eGFR 24 mL/min/1.73m2 ({egfr['effectiveDateTime']}): avoid baclofen"
    assert card["suggestions"][0]["actions"] == [{
        "type": "delete", "description": "Remove the draft order for Baclofen 5 MG Oral Tablet.",
        "resourceId": "MedicationRequest/renal-avoid-draft"}]


def test_stale_low_renal_value_offers_creatinine_on_the_reduce_card():
    (card,) = evaluate(hookdata_from_story(load_story("renal-reduce-stale")), K)
    created = [a["resource"]["code"]["coding"][0]["code"] for s in card["suggestions"]
               for a in s["actions"] if a["type"] == "create"]
    assert created == ["2160-0"] and card["selectionBehavior"] == "any"


def test_renal_reduce_asks_for_half_the_draft_dose():
    facts = Facts(hookdata_from_story(load_story("renal-edge-30")), K)
    (finding,) = RULE_BY_TOPIC["renal-reduce"].findings(facts)
    assert finding.dose_limit == DoseLimit(7.5, "the renal limit")
    assert finding.draft == "renal-edge-30-draft"


def test_magnesium_oxide_not_offered_at_egfr_below_30():
    cards = {c["source"]["topic"]["code"]: c for c in
             evaluate(hookdata_from_story(load_story("hypomagnesemia-renal")), K)}
    assert "suggestions" not in cards["hypomagnesemia"]
    assert "not** suggested" in cards["hypomagnesemia"]["detail"]
    (offered,) = evaluate(hookdata_from_story(load_story("hypomagnesemia")), K)
    resource = offered["suggestions"][0]["actions"][0]["resource"]
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "6582"


def test_several_drafts_give_one_card_naming_all():
    story = load_story("renal-avoid")
    second = dict(story["drafts"][0], id="renal-avoid-draft-2")
    data = replace(hookdata_from_story(story), drafts=(story["drafts"][0], second))
    cards = {c["source"]["topic"]["code"]: c for c in evaluate(data, K)}
    assert set(cards) == {"renal-avoid", "duplicate-therapy"}
    for card in cards.values():
        assert "(+1 more order)" in card["summary"]
        deleted = {a["resourceId"] for s in card["suggestions"] for a in s["actions"] if a["type"] == "delete"}
        assert deleted == {"MedicationRequest/renal-avoid-draft", "MedicationRequest/renal-avoid-draft-2"}


def test_data_unavailable_names_each_check():
    data = hookdata_from_story(load_story("data-unavailable"), failing=True)
    (card,) = evaluate(data, K)
    assert "renal function (eGFR): timeout" in card["detail"]
    assert "renal function (serum creatinine): HTTP 503" in card["detail"]


def test_override_reasons_follow_site_configuration():
    knowledge = load_knowledge({"override_reasons": {"renal-avoid": [{"code": "x", "display": "Site X"}]}})
    (card,) = evaluate(hookdata_from_story(load_story("renal-avoid")), knowledge)
    assert [r["display"] for r in card["overrideReasons"]] == ["Site X"]


def sandbox_drafts(name: str) -> list[dict]:
    body = json.loads((SANDBOX / name).read_text())
    return [e["resource"] for e in body["context"]["draftOrders"]["entry"]]


def test_is_relevant():
    assert not is_relevant(sandbox_drafts("order-select-nomed.json"), K)
    assert is_relevant(sandbox_drafts("order-sign-baclofen.json"), K)
    cyclobenzaprine = load_story("avoid-cyclobenzaprine")["drafts"][0]
    assert is_relevant([cyclobenzaprine], K)
    assert not is_relevant([dict(cyclobenzaprine, status="stopped")], K)
    assert is_relevant([load_story("abrupt-stop")["drafts"][0]], K)
    assert not is_relevant([load_story("intrathecal-ignored")["drafts"][0]], K)
    referenced = {"resourceType": "MedicationRequest", "status": "draft",
                  "medicationReference": {"reference": "Medication/unknown"}}
    assert is_relevant([referenced], K)
    assert not is_relevant([referenced], K, {"Medication/unknown": {"code": {"text": "Paracetamol"}}})


def test_sandbox_pill_request_gives_60_mg_per_day():
    from cards.hookdata import HookData
    from datetime import datetime, timezone
    body = json.loads((SANDBOX / "order-sign-baclofen.json").read_text())
    data = HookData(hook="order-sign", fhir_version="R4", now=datetime.now(timezone.utc),
                    patient_id="pat-1", drafts=tuple(sandbox_drafts("order-sign-baclofen.json")),
                    patient=body["prefetch"]["patient"])
    summaries = [c["summary"] for c in evaluate(data, K)]
    assert any("60 mg/day" in s for s in summaries)
