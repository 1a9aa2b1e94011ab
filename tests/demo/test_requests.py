"""Hook requests built from stories: contexts per hook, complete prefetch, STU3 drafts."""
from __future__ import annotations

import uuid

import pytest

from fhir_fixtures import load_story
from fhir_fixtures.requests import hook_request, stu3_medication_request
from service.declarations import prefetch_templates
from cards.knowledge import load_knowledge

TEMPLATES = prefetch_templates(load_knowledge())
R4_DRAFT = {
    "resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
    "category": [{"coding": [{"code": "community"}]}, {"coding": [{"code": "outpatient"}]}],
    "medicationCodeableConcept": {"coding": [{"code": "197391"}]},
    "subject": {"reference": "Patient/p"}, "encounter": {"reference": "Encounter/e"},
    "requester": {"reference": "Practitioner/x"}, "reportedBoolean": False, "doNotPerform": False,
    "dosageInstruction": [{"timing": {"code": {"text": "TID"}}, "doseAndRate": [
        {"type": {"text": "ordered"}, "doseRange": {"high": {"value": 10, "unit": "mg"}},
         "rateQuantity": {"value": 1, "unit": "mL/h"}}]}],
    "dispenseRequest": {"initialFill": {"quantity": {"value": 10}}, "numberOfRepeatsAllowed": 2},
    "substitution": {"allowedBoolean": True},
}


def test_stu3_conversion_of_a_draft():
    stu3 = stu3_medication_request(R4_DRAFT)
    assert stu3["category"] == {"coding": [{"code": "community"}]}
    dosage = stu3["dosageInstruction"][0]
    assert "doseAndRate" not in dosage
    assert dosage["doseRange"] == {"high": {"value": 10, "unit": "mg"}}
    assert dosage["rateQuantity"] == {"value": 1, "unit": "mL/h"}
    assert stu3["context"] == {"reference": "Encounter/e"} and "encounter" not in stu3
    assert stu3["requester"] == {"agent": {"reference": "Practitioner/x"}}
    assert "reportedBoolean" not in stu3 and "doNotPerform" not in stu3
    assert stu3["dispenseRequest"] == {"numberOfRepeatsAllowed": 2}
    assert stu3["substitution"] == {"allowed": True}
    assert R4_DRAFT["category"][0] == {"coding": [{"code": "community"}]}  # input untouched


@pytest.mark.parametrize("hook, field", [("order-sign", "draftOrders"), ("order-select", "draftOrders"),
                                         ("medication-prescribe", "medications")])
def test_context_per_hook(hook, field):
    story = load_story("renal-avoid")
    request = hook_request(story, hook, "none", fhir_server="http://127.0.0.1:1/fhir")
    uuid.UUID(request["hookInstance"])
    assert request["fhirServer"] == "http://127.0.0.1:1/fhir" and "prefetch" not in request
    context = request["context"]
    assert context["patientId"] == story["patient"]["id"]
    drafts = [e["resource"] for e in context[field]["entry"]]
    assert [d["id"] for d in drafts] == [d["id"] for d in story["drafts"]]
    if hook == "order-select":
        assert context["selections"] == [f"MedicationRequest/{d['id']}" for d in story["drafts"]]
    if hook == "medication-prescribe":
        assert all("doseAndRate" not in d for draft in drafts for d in draft.get("dosageInstruction", []))


def test_complete_prefetch_answers_every_template():
    story = load_story("renal-avoid")
    prefetch = hook_request(story, "order-sign", "complete", prefetch_templates=TEMPLATES)["prefetch"]
    assert set(prefetch) == set(TEMPLATES)
    assert prefetch["patient"]["id"] == story["patient"]["id"]
    egfr = prefetch["egfr"]
    assert egfr["resourceType"] == "Bundle" and egfr["total"] >= 1


def test_complete_prefetch_carries_referenced_medications_in_the_draft_bundle():
    story = load_story("medication-reference")
    request = hook_request(story, "order-sign", "complete", prefetch_templates=TEMPLATES)
    kinds = [e["resource"]["resourceType"] for e in request["context"]["draftOrders"]["entry"]]
    assert kinds == ["MedicationRequest", "Medication"]


def test_failing_prefetch_leaves_out_or_fails_the_unavailable_keys():
    story = load_story("data-unavailable")
    healthy = hook_request(story, "order-sign", "complete", prefetch_templates=TEMPLATES)["prefetch"]
    failing = hook_request(story, "order-sign", "complete", prefetch_templates=TEMPLATES,
                           failing=True)["prefetch"]
    assert set(story["unavailable"]) <= set(healthy)
    for key, reason in story["unavailable"].items():
        if reason == "OperationOutcome":
            assert failing[key]["resourceType"] == "OperationOutcome"
        else:
            assert key not in failing


def test_a_complete_prefetch_needs_the_templates():
    with pytest.raises(ValueError):
        hook_request(load_story("renal-avoid"), "order-sign", "complete")
