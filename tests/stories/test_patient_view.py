"""The patient-view service (rule 21, next steps for cramps on baclofen) through the HTTP API,
on every patient-view story: with a complete prefetch (no fhirServer), and with no prefetch
(the service fetches from the fixture FHIR server over real HTTP on loopback). A story about a
failed FHIR query runs once more with that query failing. Beyond which card fires, each story's
`expect_card` checks what the clinician sees: phrases of the summary and detail, the proposed
baclofen daily dose, the codes of the ServiceRequests and the other medications proposed.
"""
from __future__ import annotations

import pytest

from cards.knowledge import load_knowledge
from cards.medication import read_order
from fhir_fixtures import PATIENT_VIEW_STORIES, load_story, story_ids
from fhir_fixtures.fhir_server import InMemoryFhir
from fhir_fixtures.requests import PATIENT_VIEW, hook_request
from tests.cards.fhircheck import validate
from tests.cds_spec import assert_valid_response
# The service and the served fixture FHIR servers (healthy, and failing the stories'
# `unavailable` queries) are built as for the order stories: the imported fixtures use this
# module's `stories` and `fixture_fhir`, and the client allows both servers.
from tests.stories.test_stories import (assert_expectations,  # noqa: F401
                                        assert_fetched_from_fixture_server, client, failing_fhir,
                                        healthy_fhir)

SERVICE_ID = "baclofen-patient-view"
TOPIC = "cramps-next-steps"
STORY_IDS = story_ids(PATIENT_VIEW_STORIES)
CASES = [(story_id, "complete") for story_id in STORY_IDS] + [
    (story_id, "failing") for story_id in STORY_IDS
    if load_story(story_id, folder=PATIENT_VIEW_STORIES).get("unavailable")]
KNOWLEDGE = load_knowledge()


@pytest.fixture(scope="module")
def stories():
    return {story_id: load_story(story_id, folder=PATIENT_VIEW_STORIES) for story_id in STORY_IDS}


@pytest.fixture(scope="module")
def fixture_fhir(stories):
    return InMemoryFhir.from_stories(stories.values())


@pytest.fixture(scope="module")
def service(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    return next(s for s in response.get_json()["services"] if s["id"] == SERVICE_ID)


def test_there_are_patient_view_stories():
    assert len(STORY_IDS) >= 10, STORY_IDS


def test_discovery_declares_the_patient_view_service(service):
    assert service["hook"] == "patient-view"
    assert set(service["prefetch"]) == {"patient", "conditions", "meds", "creatinine", "egfr",
                                        "potassium", "magnesium", "procedures"}
    assert service["prefetch"]["procedures"].startswith("Procedure?patient={{context.patientId}}")


@pytest.mark.parametrize("prefetch", ["complete", "none"], ids=["prefetch", "fetch"])
@pytest.mark.parametrize("story_id, data", CASES,
                         ids=[s if d == "complete" else f"{s}-failing" for s, d in CASES])
def test_patient_view_story(story_id, data, prefetch, stories, fixture_fhir, healthy_fhir,
                            failing_fhir, client, service):
    story = stories[story_id]
    failing, fetching = data == "failing", prefetch == "none"
    served_fhir = failing_fhir if failing else healthy_fhir
    request = hook_request(story, PATIENT_VIEW, prefetch,
                           fhir_server=served_fhir.url if fetching or failing else None,
                           prefetch_templates=service["prefetch"], fhir=fixture_fhir, failing=failing)
    assert "draftOrders" not in request["context"]
    served_fhir.clear_log()

    response = client.post(f"/cds-services/{SERVICE_ID}", json=request)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_valid_response(body)
    expect = story["expect_unavailable"] if failing else story["expect"]
    assert_expectations(story, expect, body["cards"])
    expect_card = story.get("expect_card_unavailable" if failing else "expect_card")
    if expect_card is not None:
        assert_card_shows(story, the_card(body["cards"]), expect_card)
    if fetching:
        assert_fetched_from_fixture_server(story, served_fhir.requests)
        assert any(entry.path.endswith("/Procedure") for entry in served_fhir.requests)


def the_card(cards: list[dict]) -> dict:
    matching = [card for card in cards if card["source"]["topic"]["code"] == TOPIC]
    assert len(matching) == 1, cards
    assert matching[0]["indicator"] == "info"
    return matching[0]


def assert_card_shows(story: dict, card: dict, expect: dict) -> None:
    label = f"{story['id']}: {card['summary']}"
    assert len(card["summary"]) < 140, label
    for phrase in expect["summary"]:
        assert phrase in card["summary"], f"{label}: summary lacks {phrase!r}"
    for phrase in expect["detail"]:
        assert phrase in card["detail"], f"{label}: detail lacks {phrase!r}\n{card['detail']}"
    for phrase in expect["detail_absent"]:
        assert phrase not in card["detail"], f"{label}: detail has {phrase!r}\n{card['detail']}"
    created = [action["resource"] for s in card.get("suggestions", []) for action in s["actions"]]
    assert all(a["type"] == "create" for s in card.get("suggestions", []) for a in s["actions"]), label
    for resource in created:
        validate(resource)
        assert resource["subject"] == {"reference": f"Patient/{story['patient']['id']}"}, label
        assert resource["status"] == "draft" and resource["intent"] == "proposal", label
    assert sorted(_service_request_codes(created)) == expect["service_requests"], label
    baclofen, others = _medications(created)
    assert [order.daily_mg for order in baclofen] == (
        [expect["baclofen_mg"]] if expect["baclofen_mg"] is not None else []), label
    assert sorted(others) == expect["medications"], label
    if baclofen:
        assert_proposal_replaces_the_active_order(story, baclofen[0].resource)


def assert_proposal_replaces_the_active_order(story: dict, proposal: dict) -> None:
    active = [r for r in story["resources"]
              if r["resourceType"] == "MedicationRequest" and r["status"] == "active"]
    assert proposal["priorPrescription"] == {"reference": f"MedicationRequest/{active[0]['id']}"}
    assert "id" not in proposal
    for dosage in proposal["dosageInstruction"]:  # whole tablets, 1-4 a day
        assert float(dosage["doseAndRate"][0]["doseQuantity"]["value"]).is_integer(), dosage
        assert 1 <= dosage["timing"]["repeat"]["frequency"] <= 4, dosage
    assert proposal["medicationCodeableConcept"]["coding"][0]["code"] in \
        KNOWLEDGE["drugs"]["baclofen"]["rxnorm"]


def _service_request_codes(resources: list[dict]) -> list[str]:
    return [coding["code"] for r in resources if r["resourceType"] == "ServiceRequest"
            for coding in r["code"]["coding"]]


def _medications(resources: list[dict]):
    orders = [read_order(r, {}, KNOWLEDGE) for r in resources if r["resourceType"] == "MedicationRequest"]
    baclofen = [order for order in orders if order.kind == "baclofen"]
    others = [order.resource["medicationCodeableConcept"]["text"]
              for order in orders if order.kind != "baclofen"]
    return baclofen, others


@pytest.mark.parametrize("hook_service", ["baclofen-order-sign", "baclofen-order-select"])
def test_order_hooks_never_give_the_patient_view_card(client, service, stories, hook_service):
    """Rule 21 answers the chart, not an order: an order about the same patient does not get it."""
    story = stories["pv-cirrhosis-20"]
    draft = {**[r for r in story["resources"] if r.get("status") == "active"][0],
             "id": "pv-draft", "status": "draft"}
    hook = hook_service.removeprefix("baclofen-")
    request = hook_request(story, hook, "complete", prefetch_templates=service["prefetch"],
                           drafts=[draft])
    response = client.post(f"/cds-services/{hook_service}", json=request)
    assert response.status_code == 200
    assert TOPIC not in {card["source"]["topic"]["code"] for card in response.get_json()["cards"]}


def test_patient_view_without_prefetch_or_fhir_server_is_a_412(client, stories):
    request = hook_request(stories["pv-cirrhosis-20"], PATIENT_VIEW, "none")
    response = client.post(f"/cds-services/{SERVICE_ID}", json=request)
    assert response.status_code == 412
    assert "prefetch" in response.get_json()["error"]


def test_patient_view_requires_a_patient_id(client, stories, service):
    request = hook_request(stories["pv-cirrhosis-20"], PATIENT_VIEW, "complete",
                           prefetch_templates=service["prefetch"])
    del request["context"]["patientId"]
    response = client.post(f"/cds-services/{SERVICE_ID}", json=request)
    assert response.status_code == 400
    assert response.get_json()["field"] == "context.patientId"
