"""Properties of every response (issue 9): one target dose per draft, no dose change beside
renal-avoid, no fraction of a tablet and at most 4 administrations a day; every suggested
resource valid FHIR. Over all fixture stories, and over orders generated from them."""
from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from storydata import hookdata_from_story

from cards.dose import administrations_per_day, daily_dose, dose_quantity, product_strength, quantity_unit
from cards.engine import evaluate
from cards.knowledge import load_knowledge
from fhir_fixtures import PATIENT_VIEW_STORIES, all_stories
from fhircheck import validate

K = load_knowledge()
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
STORIES = all_stories()
PATIENT_VIEW = all_stories(folder=PATIENT_VIEW_STORIES)
NOW = datetime.now(timezone.utc)
PRODUCTS = {
    "tablet 5": ({"coding": [{"system": RXNORM, "code": "430902", "display": "Baclofen 5 MG Oral Tablet"}]}, "{pill}"),
    "tablet 10": ({"coding": [{"system": RXNORM, "code": "197391", "display": "Baclofen 10 MG Oral Tablet"}]}, "{pill}"),
    "tablet 20": ({"coding": [{"system": RXNORM, "code": "197392", "display": "Baclofen 20 MG Oral Tablet"}]}, "{pill}"),
    "solution 1 mg/mL": ({"coding": [{"system": RXNORM, "code": "250976"}], "text": "Baclofen 1 MG/ML Oral Solution"}, "mL"),
    "unknown strength": ({"text": "baclofen"}, "mg"),
}


# --- reading a response --------------------------------------------------------------------


def baclofen_resources(card: dict):
    """(action type, MedicationRequest) of every baclofen dose a card suggests."""
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            resource = action.get("resource") or {}
            if resource.get("resourceType") != "MedicationRequest" or not resource.get("dosageInstruction"):
                continue
            concept = resource.get("medicationCodeableConcept") or {}
            names = " ".join([concept.get("text", "")] + [c.get("display", "") for c in concept.get("coding", [])])
            if "baclofen" in names.lower():
                yield action["type"], resource


def steps(resource: dict) -> list[list[dict]]:
    """The dosage instructions grouped by sequence, in order."""
    groups: dict = {}
    for instruction in resource["dosageInstruction"]:
        groups.setdefault(instruction.get("sequence"), []).append(instruction)
    return [groups[key] for key in sorted(groups, key=lambda s: (s is None, s or 0))]


def target_of(resource: dict) -> float:
    """The dose the suggestion ends on: its last step's daily dose, 0 when a taper stops (its
    last step, a numbered one, has a length)."""
    strength = product_strength([resource.get("medicationCodeableConcept") or {}], K)
    last = steps(resource)[-1]
    if all("sequence" in i and "boundsDuration" in (i["timing"].get("repeat") or {}) for i in last):
        return 0
    return daily_dose({"dosageInstruction": last}, strength, K)


MOOT_BESIDE_AVOID = {"dose-above-max", "start-dose-high", "titration-step", "elderly-start",
                     "cirrhosis-next-steps", "tolerance"}
_LABEL_TARGET = re.compile(r"^(?:Change|Taper) to (\d+(?:\.\d+)?) mg/day")


def check_response(cards: list[dict], version: str) -> None:
    changes: dict[str, set] = {}
    avoided, duplicates = {}, set()
    topics = {card["source"]["topic"]["code"] for card in cards}
    if "renal-avoid" in topics:
        assert not topics & MOOT_BESIDE_AVOID, f"avoid wins: {topics & MOOT_BESIDE_AVOID} beside renal-avoid"
    for card in cards:
        topic = card["source"]["topic"]["code"]
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if action.get("resource"):
                    validate(action["resource"], version)
                if topic == "renal-avoid" and action["type"] == "delete":
                    avoided[action["resourceId"].split("/")[-1]] = card
                if topic == "duplicate-therapy" and action["type"] == "delete":
                    duplicates.add(action["resourceId"].split("/")[-1])
            check_label_matches_dose(suggestion)
        for kind, resource in baclofen_resources(card):
            check_whole_doses(resource)
            if kind == "update":
                changes.setdefault(resource.get("id"), set()).add((topic, target_of(resource)))
    for draft_id, found in changes.items():
        targets = {target for _, target in found}
        assert len(targets) <= 1, f"draft {draft_id}: several target doses {sorted(found)}"
        assert draft_id not in duplicates, f"draft {draft_id}: a dose change on a duplicate {found}"
        if draft_id in avoided:
            assert found == {("renal-avoid", 0)}, f"draft {draft_id}: a dose change beside renal-avoid {found}"


def check_label_matches_dose(suggestion: dict) -> None:
    """What the clinician reads on the button is the dose the update writes."""
    label = _LABEL_TARGET.match(suggestion["label"])
    updates = [a["resource"] for a in suggestion["actions"] if a["type"] == "update"]
    if suggestion["label"].startswith("Taper off"):
        assert [target_of(r) for r in updates] == [0], suggestion["label"]
    elif label:
        assert [target_of(r) for r in updates] == [float(label[1])], suggestion["label"]


def check_whole_doses(resource: dict) -> None:
    strength = product_strength([resource.get("medicationCodeableConcept") or {}], K)
    for step in steps(resource):
        per_day = [administrations_per_day(i.get("timing"), K) for i in step]
        assert all(per_day) and sum(per_day) <= 4, f"more than 4 administrations a day: {step}"
        for instruction in step:
            quantity = dose_quantity(instruction)
            unit = quantity_unit(quantity, K.dose_units)
            value = quantity["value"]
            if unit in K.count_units:
                assert float(value).is_integer(), f"a fraction of a tablet: {quantity}"
                mg = value * strength.mg
            elif unit in K.volume_units:
                assert float(value * 2).is_integer(), f"not a multiple of 0.5 mL: {quantity}"
                mg = value * strength.mg
            else:
                mg = value * K.mass_units[unit]
                if strength and not strength.per_ml:
                    assert float(mg / strength.mg).is_integer(), f"a fraction of a tablet: {quantity}"
            assert mg <= 20, f"more than 20 mg at once: {quantity}"


# --- every story as it is ------------------------------------------------------------------


@pytest.mark.parametrize("story", STORIES, ids=[s["id"] for s in STORIES])
def test_every_story_response_has_one_plan_per_order(story):
    check_response(evaluate(hookdata_from_story(story, now=NOW), K), "R4")


@pytest.mark.parametrize("story", PATIENT_VIEW, ids=[s["id"] for s in PATIENT_VIEW])
def test_every_patient_view_proposal_is_whole_tablets(story):
    cards = evaluate(hookdata_from_story({"drafts": [], **story}, hook="patient-view", now=NOW), K)
    check_response(cards, "R4")


# --- generated orders ----------------------------------------------------------------------


def dosage(value: float, unit: str, frequency: int, stu3: bool) -> dict:
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    timing = {"repeat": {"frequency": frequency, "period": 1, "periodUnit": "d"}}
    return {"timing": timing, **({"doseQuantity": quantity} if stu3 else {"doseAndRate": [{"doseQuantity": quantity}]})}


def baclofen_order(order_id, status, product, value, frequency, authored, stu3=False, split=False):
    """`split`: written as a morning and an evening dose sharing one sequence."""
    concept, unit = PRODUCTS[product]
    instructions = [dosage(value, unit, frequency, stu3)]
    if split:
        instructions = [dosage(value, unit, 1, stu3) for _ in ("MORN", "EVE")]
        for instruction, when in zip(instructions, ("MORN", "EVE")):
            instruction.update(sequence=1)
            instruction["timing"]["repeat"]["when"] = [when]
    return {"resourceType": "MedicationRequest", "id": order_id, "status": status, "intent": "order",
            "subject": {"reference": "Patient/x"}, "authoredOn": authored.date().isoformat(),
            "medicationCodeableConcept": copy.deepcopy(concept), "dosageInstruction": instructions}


def egfr(patient_id: str, value: float) -> dict:
    return {"resourceType": "Observation", "id": "generated-egfr", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "98979-8"}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}", "system": UCUM,
                              "code": "mL/min/{1.73_m2}"}}


orders = st.fixed_dictionaries({
    "product": st.sampled_from(sorted(PRODUCTS)),
    "value": st.sampled_from([0.5, 1, 1.5, 2, 3, 4, 5, 10, 15, 20, 25, 30]),
    "frequency": st.integers(1, 4),
    "split": st.booleans(),
})


@st.composite
def requests(draw):
    story = copy.deepcopy(draw(st.sampled_from(STORIES)))
    patient_id = story["patient"]["id"]
    stu3 = draw(st.booleans())
    new = draw(orders)
    status = draw(st.sampled_from(["draft", "draft", "draft", "stopped"]))
    active = draw(st.none() | st.fixed_dictionaries({"order": orders, "days_ago": st.sampled_from([2, 10, 20, 200, 800]),
                                                     "same_id": st.booleans()}))
    resources = list(story["resources"])
    draft_id = "generated-draft"
    if active:
        active_id = draft_id if active["same_id"] else "generated-active"
        authored = NOW - timedelta(days=active["days_ago"])
        resources.append(baclofen_order(active_id, "active", **active["order"], authored=authored))
        draft_id = active_id
    drafts = [baclofen_order(draft_id, status, **new, authored=NOW, stu3=stu3)]
    if draw(st.booleans()):
        drafts.append(baclofen_order("second-draft", "draft", **draw(orders), authored=NOW, stu3=stu3))
    value = draw(st.none() | st.sampled_from([12, 25, 29.9, 30, 45, 59, 75]))
    if value is not None:
        resources.append(egfr(patient_id, value))
    story = {**story, "resources": resources, "drafts": drafts}
    data = hookdata_from_story(story, hook="medication-prescribe" if stu3 else "order-sign", now=NOW)
    return replace(data, fhir_version="STU3" if stu3 else "R4")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_generated_response_has_one_plan_per_order(data):
    cards = evaluate(data, K)
    for card in cards:  # what the draws reach (pytest --hypothesis-show-statistics)
        for kind, resource in baclofen_resources(card):
            event(f"{kind} {'taper' if len(steps(resource)) > 1 else 'dose'} on {card['source']['topic']['code']}")
    check_response(cards, data.fhir_version)
