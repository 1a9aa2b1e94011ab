"""The demo over HTTP: page, order composer, Markdown rendering, the mounted FHIR server
answering every prefetch template for every fixture patient, and a signed order's cards."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
import requests

from service.gather import fill_template
from tests.conftest import sandbox_request

BACLOFEN_10_TID = {"product": "197391", "dose": "10", "frequency": "TID"}


def discovery(served_demo) -> dict:
    return requests.get(f"{served_demo.url}/cds-services", timeout=5).json()


def test_demo_is_off_unless_enabled(client):
    assert client.get("/demo").status_code == 404
    assert client.get("/demo/fhir/metadata").status_code == 404


def test_page_lists_every_fixture_patient_with_its_story(demo_app, stories):
    page = demo_app.test_client().get("/demo")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for story in stories:
        assert f'data-patient-id="{story["patient"]["id"]}"' in html
    assert "<script src=\"/demo/static/demo.js\"></script>" in html
    assert "http://" not in html and "https://" not in html  # nothing from a CDN: works offline


def test_static_assets_are_served(demo_app):
    client = demo_app.test_client()
    assert client.get("/demo/static/demo.js").status_code == 200
    assert client.get("/demo/static/demo.css").status_code == 200


def test_hook_request_for_a_composed_order(served_demo, renal_failure_story):
    patient_id = renal_failure_story["patient"]["id"]
    body = requests.post(f"{served_demo.url}/demo/api/hook-request", timeout=5, json={
        "patientId": patient_id, "order": {**BACLOFEN_10_TID, "reason": "spasticity"}}).json()
    assert body["hook"] == "order-sign" and "prefetch" not in body
    assert body["fhirServer"] == f"{served_demo.url}/demo/fhir"
    assert body["context"]["patientId"] == patient_id
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert draft["status"] == "draft" and draft["subject"]["reference"] == f"Patient/{patient_id}"
    assert draft["medicationCodeableConcept"]["coding"][0]["code"] == "197391"
    dosage = draft["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 10
    assert dosage["timing"]["repeat"] == {"frequency": 3, "period": 1, "periodUnit": "d"}
    assert draft["reasonCode"][0]["coding"][0]["code"] == "221360009"


@pytest.mark.parametrize("body", [
    {"patientId": "nobody", "order": BACLOFEN_10_TID},
    {"order": "10 mg"},
    {"patientId": None, "order": {**BACLOFEN_10_TID, "product": "0"}},
    {"order": {**BACLOFEN_10_TID, "dose": "-5"}},
    {"order": {**BACLOFEN_10_TID, "frequency": "hourly"}},
])
def test_bad_orders_are_400(demo_app, stories, body):
    body = {"patientId": stories[0]["patient"]["id"], **body} if "patientId" not in body else body
    assert demo_app.test_client().post("/demo/api/hook-request", json=body).status_code == 400


def test_markdown_is_rendered_without_raw_html(demo_app):
    client = demo_app.test_client()
    html = client.post("/demo/api/render", json={"markdown": [
        "**eGFR 24** <script>alert(1)</script> [x](javascript:alert(1))\n\n| a | b |\n|---|---|\n| 1 | 2 |"]}
    ).get_json()["html"][0]
    assert "<strong>eGFR 24</strong>" in html and "<table>" in html
    assert "<script>" not in html and 'href="javascript' not in html
    assert client.post("/demo/api/render", json={"markdown": "not a list"}).status_code == 400
    assert client.post("/demo/api/render", json=["a list"]).status_code == 400


def test_rule_catalog_page(demo_app):
    page = demo_app.test_client().get("/demo/rules")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "renal-avoid" in html and "<table>" in html


def test_every_prefetch_template_is_answered_for_every_patient(served_demo, stories):
    """Searches as the Sandbox prefetches (POST _search); the story tests cover GET, as
    the service fetches, for every patient and template."""
    fhir_base, session = f"{served_demo.url}/demo/fhir", requests.Session()
    services = discovery(served_demo)["services"]
    templates = {(key, template) for service in services for key, template in service["prefetch"].items()}
    assert templates
    for story in stories:
        patient_id = story["patient"]["id"]
        for key, template in sorted(templates):
            if key in story.get("unavailable", {}):
                continue  # the story is about that query failing: the server fails it
            query = fill_template(template, {"patientId": patient_id})
            path, _, params = query.partition("?")
            answer = (session.post(f"{fhir_base}/{path}/_search", timeout=5,
                                   data=parse_qsl(params, keep_blank_values=True))
                      if params else session.get(f"{fhir_base}/{query}", timeout=5))
            assert answer.status_code == 200, (patient_id, key, query, answer.text)
            assert_about_patient(answer.json(), patient_id)


def assert_about_patient(resource: dict, patient_id: str) -> None:
    if resource["resourceType"] == "Patient":
        assert resource["id"] == patient_id
        return
    assert resource["resourceType"] == "Bundle" and resource["type"] == "searchset"
    for entry in resource.get("entry", []):
        if entry["search"]["mode"] == "match":
            assert entry["resource"]["subject"]["reference"] == f"Patient/{patient_id}"


def test_signing_in_the_demo_fetches_over_http_and_returns_the_critical_card(
        served_demo, renal_failure_story):
    service = next(s for s in discovery(served_demo)["services"] if s["hook"] == "order-sign")
    hook_request = requests.post(f"{served_demo.url}/demo/api/hook-request", timeout=5, json={
        "patientId": renal_failure_story["patient"]["id"], "order": BACLOFEN_10_TID}).json()
    served_demo.clear_log()
    response = requests.post(f"{served_demo.url}/cds-services/{service['id']}", json=hook_request, timeout=10)
    assert response.status_code == 200, response.text
    topics = {card["source"]["topic"]["code"]: card["indicator"] for card in response.json()["cards"]}
    assert topics.get("renal-avoid") == "critical", topics
    assert any(entry.path.startswith("/demo/fhir/Observation") for entry in served_demo.requests)


def test_what_the_cds_hooks_sandbox_does_against_the_demo(served_demo, renal_failure_story):
    """The Sandbox's FHIR reads, its POST _search prefetch, then its captured order-sign."""
    fhir_base = f"{served_demo.url}/demo/fhir"
    patient_id = renal_failure_story["patient"]["id"]
    assert requests.get(f"{fhir_base}/metadata", timeout=5).json()["fhirVersion"].startswith("4.0.")
    assert requests.get(f"{fhir_base}/Patient/{patient_id}", timeout=5).json()["id"] == patient_id
    assert requests.get(f"{fhir_base}/Patient", timeout=5).json()["total"] >= 1
    assert requests.get(f"{fhir_base}/Condition?patient={patient_id}", timeout=5).status_code == 200

    service = next(s for s in discovery(served_demo)["services"] if s["hook"] == "order-sign")
    prefetch = {}
    for key, template in service["prefetch"].items():
        path, _, params = fill_template(template, {"patientId": patient_id}).partition("?")
        answer = (requests.post(f"{fhir_base}/{path}/_search", data=parse_qsl(params), timeout=5)
                  if params else requests.get(f"{fhir_base}/{path}", timeout=5))
        prefetch[key] = answer.json()
    body = sandbox_request("order-sign-baclofen")
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["subject"] = {"reference": f"Patient/{patient_id}"}
    body.update(fhirServer=fhir_base, prefetch=prefetch)
    body["context"]["patientId"] = patient_id

    response = requests.post(f"{served_demo.url}/cds-services/{service['id']}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    topics = {card["source"]["topic"]["code"]: card["indicator"] for card in response.json()["cards"]}
    assert topics.get("renal-avoid") == "critical", topics


def test_every_fixture_patient_can_be_opened_in_the_sandbox(stories):
    """The Sandbox's patient list reads name[0].given and name[0].family of GET /Patient;
    docs/demo.md tells Sandbox users that a story's id is its patient's id."""
    for story in stories:
        name = story["patient"]["name"][0]
        assert name["given"] and name["family"], story["id"]
        assert story["patient"]["id"] == story["id"]


def test_the_story_order_is_signed_as_the_story_drafted_it(served_demo, stories):
    story = next(s for s in stories if s["id"] == "abrupt-stop")
    body = requests.post(f"{served_demo.url}/demo/api/hook-request", timeout=5,
                         json={"patientId": story["patient"]["id"], "storyOrder": True}).json()
    assert [e["resource"] for e in body["context"]["draftOrders"]["entry"]] == story["drafts"]
    response = requests.post(f"{served_demo.url}/cds-services/baclofen-order-sign", json=body, timeout=10)
    topics = {card["source"]["topic"]["code"]: card["indicator"] for card in response.json()["cards"]}
    assert topics == story["expect"]["fires"]


def test_the_demo_offers_the_patient_view_story(served_demo, demo_app):
    """The cirrhosis patient at 20 mg/day: the page offers patient-view on the chart, the demo
    builds the patient-view request (no drafts, no prefetch), and the service, fetching from
    /demo/fhir, answers the next-steps card with its 30 mg/day proposal."""
    html = demo_app.test_client().get("/demo").get_data(as_text=True)
    assert 'data-patient-id="pv-cirrhosis-20"' in html and 'class="patient-view"' in html
    service = next(s for s in discovery(served_demo)["services"] if s["hook"] == "patient-view")
    body = requests.post(f"{served_demo.url}/demo/api/hook-request", timeout=5,
                         json={"patientId": "pv-cirrhosis-20", "hook": "patient-view"}).json()
    assert body["hook"] == "patient-view" and "prefetch" not in body
    assert body["context"] == {"userId": "Practitioner/demo-prescriber", "patientId": "pv-cirrhosis-20"}
    served_demo.clear_log()
    response = requests.post(f"{served_demo.url}/cds-services/{service['id']}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert card["source"]["topic"]["code"] == "cramps-next-steps"
    assert "increase to 30 mg/day" in card["summary"]
    proposal = card["suggestions"][0]["actions"][0]["resource"]
    assert proposal["intent"] == "proposal" and "(30 mg/day)" in proposal["dosageInstruction"][0]["text"]
    assert any(entry.path == "/demo/fhir/Procedure" for entry in served_demo.requests)
