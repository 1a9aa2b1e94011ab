"""Behaviours that deliberate bugs once slipped past (issue 11), each checked through the
HTTP API: what the clinician is shown, what /metrics counts, what the log says."""
from __future__ import annotations

import copy
import logging

import pytest
from werkzeug import Response

from fhir_fixtures import load_story
from fhir_fixtures.requests import hook_request as story_request
from service.logs import LOGGER_NAME
from tests.cds_spec import assert_valid_response, topics
from tests.core.builders import complete_prefetch, hook_request
from tests.store.helpers import drop_postgres_database, metric_value
from tests.store.helpers import postgres_url  # noqa: F401 - fixture

ORDER_SIGN = "baclofen-order-sign"
RENAL_LOINC = ("98979-8", "2160-0")  # eGFR, creatinine


def post(client, body, service=ORDER_SIGN):
    return client.post(f"/cds-services/{service}", json=body)


def call_story(client, story: dict) -> dict:
    """The story's drafts on order-sign with a complete prefetch of its data."""
    templates = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    response = post(client, story_request(story, "order-sign", "complete",
                                          prefetch_templates=templates))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_valid_response(response.get_json())
    return response.get_json()


def card_for(body: dict, topic: str) -> dict:
    found = [card for card in body["cards"] if card["source"].get("topic", {}).get("code") == topic]
    assert len(found) == 1, f"expected one {topic} card, got topics {topics(body)}"
    return found[0]


def resources_of(story: dict, resource_type: str) -> list[dict]:
    return [r for r in story["resources"] if r["resourceType"] == resource_type]


# --- a failed renal query is "could not check", never "nothing on record" ---------------------

def test_an_operation_outcome_answered_for_the_renal_queries_is_data_unavailable(client, fhir_server):
    """The FHIR server answers 200 with an OperationOutcome (not a Bundle) for eGFR and
    creatinine: the check could not run, which is not the same as no value on record."""
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "exception", "diagnostics": "index down"}]}
    fhir_server.expect_request("/fhir/Observation").respond_with_json(
        outcome, content_type="application/fhir+json")
    prefetch = complete_prefetch(creatinine="omit", egfr="omit")
    response = post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert_valid_response(response.json)
    asked = {code for request, _ in fhir_server.log for code in RENAL_LOINC
             if code in request.args.get("code", "")}
    assert asked == set(RENAL_LOINC), "both renal queries went to the server"
    card = card_for(response.json, "data-unavailable")
    text = (card["summary"] + " " + card.get("detail", "")).lower()
    assert "egfr" in text or "creatinine" in text or "renal" in text, card
    assert "renal-unknown" not in topics(response.json), "a failed query is not 'no eGFR on record'"


# --- the avoid cards carry their one-click fix ----------------------------------------------

@pytest.mark.parametrize("story_id", ["avoid-cyclobenzaprine", "avoid-quinidine",
                                      "benzodiazepine-older-adult"])
def test_avoid_cards_suggest_deleting_the_draft(client, story_id):
    story = load_story(story_id)
    card = card_for(call_story(client, story), story_id)
    draft_id = story["drafts"][0]["id"]
    actions = [action for suggestion in card["suggestions"] for action in suggestion["actions"]]
    assert [(a["type"], a.get("resourceId")) for a in actions] == [
        ("delete", f"MedicationRequest/{draft_id}")]


@pytest.mark.parametrize("story_id", ["avoid-cyclobenzaprine", "avoid-quinidine",
                                      "benzodiazepine-older-adult"])
def test_avoid_rules_need_a_cramp_context(client, story_id):
    """Without cramps, cirrhosis or baclofen on record, the same drug is no cramp treatment."""
    story = load_story(story_id)
    story["resources"] = [r for r in story["resources"]
                          if r["resourceType"] not in ("Condition", "MedicationRequest")]
    assert story_id not in topics(call_story(client, story))


@pytest.mark.parametrize("status", ["refuted", "entered-in-error"])
def test_refuted_conditions_do_not_make_a_cramp_context(client, status):
    story = load_story("avoid-cyclobenzaprine")
    assert "avoid-cyclobenzaprine" in topics(call_story(client, story))  # as recorded: fires
    for condition in resources_of(story, "Condition"):
        condition["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": status}]}
    assert "avoid-cyclobenzaprine" not in topics(call_story(client, story))


# --- lab statuses --------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["registered", "preliminary", "entered-in-error", "cancelled"])
def test_a_lab_without_a_final_result_does_not_count(client, status):
    story = load_story("renal-avoid")
    assert topics(call_story(client, story)).get("renal-avoid") == "critical"
    for lab in resources_of(story, "Observation"):
        lab["status"] = status
    found = topics(call_story(client, story))
    assert "renal-avoid" not in found and "renal-unknown" in found


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_final_amended_and_corrected_labs_count(client, status):
    story = load_story("renal-avoid")
    for lab in resources_of(story, "Observation"):
        lab["status"] = status
    card = card_for(call_story(client, story), "renal-avoid")
    assert "24" in card["summary"]


# --- tolerance -----------------------------------------------------------------------------

def _with_draft_frequency(story: dict, per_day: int) -> dict:
    story = copy.deepcopy(story)
    dosage = story["drafts"][0]["dosageInstruction"][0]
    dosage["timing"]["repeat"]["frequency"] = per_day
    dosage["text"] = f"1 tbl {per_day} times a day"
    return story


def test_tolerance_fires_on_a_rising_dose_only(client):
    story = load_story("tolerance")  # on 10 mg x3/day (30 mg/day) for more than 90 days
    card = card_for(call_story(client, _with_draft_frequency(story, 4)), "tolerance")
    assert "30" in card["summary"] and "40" in card["summary"]
    assert "tolerance" not in topics(call_story(client, _with_draft_frequency(story, 3)))


# --- the hook route's own duties: metrics and a failing store ------------------------------

def test_the_hook_route_records_its_metrics(client):
    before = client.get("/metrics").get_data(as_text=True)
    body = call_story(client, load_story("renal-avoid"))
    assert topics(body)["renal-avoid"] == "critical"
    assert post(client, {"hook": "order-sign"}).status_code == 400
    after = client.get("/metrics").get_data(as_text=True)

    def delta(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("cds_hook_requests_total", service=ORDER_SIGN, status="200") == 1
    assert delta("cds_hook_requests_total", service=ORDER_SIGN, status="400") == 1
    assert delta("cds_hook_duration_seconds_count", service=ORDER_SIGN) == 2
    assert delta("cds_cards_total", service=ORDER_SIGN, topic="renal-avoid", indicator="critical") == 1


def test_the_hook_route_counts_failed_fhir_queries(client, fhir_server):
    before = client.get("/metrics").get_data(as_text=True)
    fhir_server.expect_request("/fhir/Observation").respond_with_response(Response("{}", status=404))
    prefetch = complete_prefetch(potassium="omit")
    assert post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir"))).status_code == 200
    after = client.get("/metrics").get_data(as_text=True)
    assert metric_value(after, "cds_fhir_fetch_errors_total", data_key="potassium", reason="HTTP 404") \
        - metric_value(before, "cds_fhir_fetch_errors_total", data_key="potassium", reason="HTTP 404") == 1


def test_a_store_that_fails_mid_run_still_answers_the_cards(make_app, postgres_url, caplog):
    """The PostgreSQL database is dropped while the service runs: recording the cards
    fails, the clinician still gets them, and the log says so (once, with the error)."""
    client = make_app(store={"url": postgres_url}).test_client()
    story = load_story("renal-avoid")
    assert topics(call_story(client, story))["renal-avoid"] == "critical"
    store = client.application.extensions["baclofen_cds"].store
    assert store.counts()["cards"] >= 1
    drop_postgres_database(postgres_url)
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)

    body = call_story(client, story)
    store.flush()  # the cards are recorded by a background batch: write (and fail) now

    assert card_for(body, "renal-avoid")["indicator"] == "critical"
    failures = [r for r in caplog.records if getattr(r, "event", None) == "store_failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    store.close()


def test_a_draft_without_an_id_gets_the_warning_but_no_delete_it_cannot_target(client):
    story = load_story("avoid-cyclobenzaprine")
    del story["drafts"][0]["id"]
    card = card_for(call_story(client, story), "avoid-cyclobenzaprine")
    assert "suggestions" not in card
    assert "cyclobenzaprine" in card["summary"].lower()
