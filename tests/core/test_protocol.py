"""The CDS Hooks protocol: discovery, the Sandbox's real requests, bad input, CORS."""
from __future__ import annotations

import json

import pytest

from tests.cds_spec import assert_no_empty_values, assert_valid_response
from tests.conftest import sandbox_request
from tests.core.builders import SERVICE_FOR_HOOK, bundle, complete_prefetch, hook_request, patient

DATA_KEYS = {"patient", "conditions", "meds", "creatinine", "egfr", "potassium", "magnesium",
             "procedures"}


def post(client, body, service="baclofen-order-sign", **kwargs):
    return client.post(f"/cds-services/{service}", json=body, **kwargs)


def test_discovery_declares_four_services_with_narrow_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.json["services"]
    assert_no_empty_values(response.json)
    assert {(s["id"], s["hook"]) for s in services} == {
        ("baclofen-order-sign", "order-sign"),
        ("baclofen-order-select", "order-select"),
        ("baclofen-medication-prescribe", "medication-prescribe"),
        ("baclofen-patient-view", "patient-view"),
    }
    for service in services:
        assert service["title"] and service["description"]
        assert set(service["prefetch"]) == DATA_KEYS
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        for key in ("creatinine", "egfr", "potassium", "magnesium"):
            query = service["prefetch"][key]
            assert query.startswith("Observation?patient={{context.patientId}}&code=http://loinc.org|")
            assert "_sort=-date" in query and "_count=" in query
        assert service["prefetch"]["procedures"].startswith(
            "Procedure?patient={{context.patientId}}&status=completed,in-progress"
            "&code=http://snomed.info/sct|302497006,")
    labs = services[0]["prefetch"]
    assert "2160-0" in labs["creatinine"] and "98979-8" in labs["egfr"]
    assert "2823-3" in labs["potassium"] and "19123-9" in labs["magnesium"]


@pytest.mark.parametrize("name", ["order-select-baclofen", "order-sign-baclofen", "order-select-nomed",
                                  "patient-view-other"])
def test_every_captured_sandbox_request_gets_a_valid_response(make_app, fhir_server, name):
    """The Sandbox's bodies as captured, their fhirServer pointed at a local FHIR server."""
    fhir_server.expect_request("/fhir/Patient/pat-1").respond_with_json(patient())
    fhir_server.expect_request("/fhir/Condition").respond_with_json(bundle())
    fhir_server.expect_request("/fhir/MedicationRequest").respond_with_json(bundle())
    fhir_server.expect_request("/fhir/Observation").respond_with_json(bundle())
    fhir_server.expect_request("/fhir/Procedure").respond_with_json(bundle())
    body = sandbox_request(name)
    body["fhirServer"] = fhir_server.url_for("/fhir")
    response = post(make_app().test_client(), body, SERVICE_FOR_HOOK[body["hook"]])
    assert response.status_code == 200, response.json
    assert_valid_response(response.json)
    if name == "order-select-nomed":
        assert response.json == {"cards": []}
        assert fhir_server.log == []  # nothing to decide: nothing fetched
    elif name == "patient-view-other":
        assert response.json == {"cards": []}  # no baclofen, no cramps: nothing to say
        assert any(request.path == "/fhir/Procedure" for request, _ in fhir_server.log)
    else:
        assert response.json["cards"], "a 60 mg/day start in a 76-year-old must say something"


def test_sandbox_category_as_single_object_is_still_evaluated(client):
    body = hook_request()
    assert isinstance(body["context"]["draftOrders"]["entry"][0]["resource"]["category"], dict)
    response = post(client, body)
    assert response.status_code == 200
    topics = {card["source"]["topic"]["code"] for card in response.json["cards"]}
    assert "start-dose-high" in topics  # the dose (3 x 20 mg pills a day) was read


@pytest.mark.parametrize("hook", ["order-select", "medication-prescribe"])
def test_other_hooks_evaluate_the_same_order(client, hook):
    response = post(client, hook_request(hook), SERVICE_FOR_HOOK[hook])
    assert response.status_code == 200, response.json
    assert_valid_response(response.json)
    assert "start-dose-high" in {c["source"]["topic"]["code"] for c in response.json["cards"]}


def test_order_select_reads_only_the_selected_drafts(client):
    body = hook_request("order-select")
    body["context"]["selections"] = ["MedicationRequest/some-other-order"]
    response = post(client, body, "baclofen-order-select")
    assert response.json == {"cards": []}


def test_no_relevant_order_answers_exactly_empty_cards(client):
    body = hook_request()
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"text": "Amoxicillin 500 MG Oral Capsule"}
    response = post(client, body)
    assert response.status_code == 200
    assert response.get_data(as_text=True).strip() == '{"cards":[]}'


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


@pytest.mark.parametrize("service", ["baclofen-order-sign", "baclofen-patient-view"])
def test_cors_preflight_allows_the_sandbox_headers(client, service):
    response = client.options(f"/cds-services/{service}", headers={
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
        "Access-Control-Request-Private-Network": "true",
    })
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")


# --- bad input: a clear 4xx JSON error naming what is wrong, never a 500 -------------------

def _without(path: str):
    def change(body):
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        del target[last]
    return change


def _setting(path: str, value):
    def change(body):
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        target[last] = value
    return change


BAD_BODIES = {
    "wrong hook": (_setting("hook", "order-select"), "hook"),
    "no hook": (_without("hook"), "hook"),
    "no hookInstance": (_without("hookInstance"), "hookInstance"),
    "hookInstance not a UUID": (_setting("hookInstance", "abc"), "hookInstance"),
    "no context": (_without("context"), "context"),
    "context not an object": (_setting("context", []), "context"),
    "no patientId": (_without("context.patientId"), "context.patientId"),
    "no userId": (_without("context.userId"), "context.userId"),
    "patientId not a string": (_setting("context.patientId", 7), "context.patientId"),
    "no draftOrders": (_without("context.draftOrders"), "context.draftOrders"),
    "draftOrders not a Bundle": (_setting("context.draftOrders", {"resourceType": "Patient"}),
                                 "context.draftOrders"),
    "entry not a list": (_setting("context.draftOrders.entry", {}), "context.draftOrders.entry"),
    "entry without resource": (_setting("context.draftOrders.entry", [{}]),
                               "context.draftOrders.entry[0].resource"),
    "malformed dose": (
        _setting("context.draftOrders.entry", [{"resource": {
            "resourceType": "MedicationRequest", "id": "x", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "medicationCodeableConcept": {"text": "Baclofen 10 MG Oral Tablet"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": "ten"}}]}]}}]),
        "context.draftOrders.entry[0].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value"),
    "fhirAuthorization without fhirServer": (
        _setting("fhirAuthorization", {"access_token": "t", "token_type": "Bearer", "expires_in": 60,
                                       "scope": "patient/*.read", "subject": "x"}), "fhirServer"),
    "fhirServer not a URL": (_setting("fhirServer", "ftp://x"), "fhirServer"),
    "prefetch not an object": (_setting("prefetch", []), "prefetch"),
    "prefetch value not a resource": (_setting("prefetch.patient", "Patient/1"), "prefetch.patient"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_bodies_get_400_naming_the_field(client, case):
    change, field = BAD_BODIES[case]
    body = hook_request()
    change(body)
    response = post(client, body)
    assert response.status_code == 400, response.json
    assert response.json["field"] == field
    assert field in response.json["error"]


def test_fhir_authorization_fields_are_checked(client):
    body = hook_request(fhir_server="https://ehr.example.org/fhir", token="t")
    del body["fhirAuthorization"]["access_token"]
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["field"] == "fhirAuthorization.access_token"


@pytest.mark.parametrize("expires_in, status", [(300, 200), (300.0, 200), (1.5, 400), (True, 400), ("300", 400)])
def test_expires_in_is_a_json_integer(client, fhir_server, expires_in, status):
    """300.0 is an integer in JSON (and in the OpenAPI document's JSON Schema); 1.5 is not."""
    body = hook_request(prefetch=complete_prefetch(), fhir_server=fhir_server.url_for("/fhir"), token="t")
    body["fhirAuthorization"]["expires_in"] = expires_in
    response = post(client, body)
    assert response.status_code == status, response.json
    if status == 400:
        assert response.json["field"] == "fhirAuthorization.expires_in"


def test_order_select_requires_selections(client):
    body = hook_request("order-select")
    del body["context"]["selections"]
    response = post(client, body, "baclofen-order-select")
    assert response.status_code == 400 and response.json["field"] == "context.selections"


def test_medication_prescribe_requires_medications(client):
    body = hook_request("medication-prescribe")
    del body["context"]["medications"]
    response = post(client, body, "baclofen-medication-prescribe")
    assert response.status_code == 400 and response.json["field"] == "context.medications"


@pytest.mark.parametrize("raw", ["{", "", "[1,", "nul", '{"hook": "order-sign",}'])
def test_invalid_json_is_400(client, raw):
    response = client.post("/cds-services/baclofen-order-sign", data=raw, content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json["error"]


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_body_must_be_an_object(client, body):
    response = client.post("/cds-services/baclofen-order-sign", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 400 and response.json["field"] == "body"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client, content_type):
    response = client.post("/cds-services/baclofen-order-sign", data=json.dumps(hook_request()),
                           content_type=content_type)
    assert response.status_code == 415 and "Content-Type" in response.json["error"]


def test_body_over_the_limit_is_413(make_app):
    client = make_app(server={"max_body_bytes": 2048}).test_client()
    response = post(client, hook_request())
    assert response.status_code == 413 and "error" in response.json


def test_deeply_nested_json_is_400(client):
    raw = '{"hook": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post("/cds-services/baclofen-order-sign", data=raw, content_type="application/json")
    assert response.status_code == 400 and "nested" in response.json["error"]


def test_too_many_bundle_entries_is_400(make_app):
    client = make_app(server={"max_bundle_entries": 5}).test_client()
    body = hook_request()
    entries = body["context"]["draftOrders"]["entry"]
    body["context"]["draftOrders"]["entry"] = entries * 6
    response = post(client, body)
    assert response.status_code == 400 and response.json["field"] == "context.draftOrders.entry"


def test_overlong_string_is_400(make_app):
    client = make_app(server={"max_string_length": 1000}).test_client()
    body = hook_request()
    body["context"]["userId"] = "P" * 1001
    response = post(client, body)
    assert response.status_code == 400 and "longer" in response.json["error"]


def test_unknown_service_is_404(client):
    response = post(client, hook_request(), "no-such-service")
    assert response.status_code == 404 and "no-such-service" in response.json["error"]


@pytest.mark.parametrize("method,path", [
    ("get", "/cds-services/baclofen-order-sign"),
    ("put", "/cds-services/baclofen-order-sign"),
    ("delete", "/cds-services"),
    ("post", "/cds-services"),
])
def test_wrong_method_is_405(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405 and "error" in response.json


@pytest.mark.parametrize("token", ["tok\u014den", "a b", "token\n", "ünïcode"])
def test_an_access_token_that_is_not_a_bearer_token_is_400(client, token):
    body = hook_request(fhir_server="https://ehr.example.org/fhir", token="t")
    body["fhirAuthorization"]["access_token"] = token
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["field"] == "fhirAuthorization.access_token"
