"""What the EHR's FHIR server may answer to one lab query, and what the clinician is told:
anything the service cannot read is "could not check" (data-unavailable), never "normal"
or "nothing on record"; harmless extras in a Bundle are ignored."""
from __future__ import annotations

import json

import pytest
from werkzeug import Response

from tests.cds_spec import assert_valid_response, topics
from tests.core.builders import bundle, complete_prefetch, hook_request, observation

POTASSIUM = "2823-3"
LOW_POTASSIUM = observation("k-low", POTASSIUM, 3.1, "mmol/L")
ERROR_OUTCOME = {"resourceType": "OperationOutcome",
                 "issue": [{"severity": "error", "code": "exception"}]}
WARNING_OUTCOME = {"resourceType": "OperationOutcome",
                   "issue": [{"severity": "warning", "code": "informational"}]}


def ask_for_potassium(client, fhir_server, answer: Response) -> dict:
    """Everything prefetched but the potassium, which the FHIR server answers with `answer`.
    No diagnosis on record: the indication is unknown, so potassium matters (rule 4)."""
    fhir_server.expect_request("/fhir/Observation").respond_with_response(answer)
    prefetch = complete_prefetch(potassium="omit", conditions=bundle())
    response = client.post("/cds-services/baclofen-order-sign",
                           json=hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert_valid_response(response.json)
    (asked,) = [request.args["code"] for request, _ in fhir_server.log]
    assert f"http://loinc.org|{POTASSIUM}" in asked
    return response.json


def fhir_json(body) -> Response:
    return Response(json.dumps(body), content_type="application/fhir+json")


def unavailable_text(body: dict) -> str:
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    return (card["summary"] + " " + card.get("detail", "")).lower()


@pytest.mark.parametrize("answer", [
    Response("<html>gateway error</html>", content_type="text/html"),
    fhir_json([LOW_POTASSIUM]),
    fhir_json({"resourceType": "Bundle", "type": "searchset", "entry": {"resource": LOW_POTASSIUM}}),
    fhir_json(bundle(LOW_POTASSIUM, ERROR_OUTCOME)),
], ids=["not-json", "a-json-list", "entry-not-a-list", "error-outcome-in-the-bundle"])
def test_an_unusable_answer_is_data_unavailable(client, fhir_server, answer):
    body = ask_for_potassium(client, fhir_server, answer)
    assert "potassium" in unavailable_text(body)
    assert "hypokalemia" not in topics(body), "nothing from an unusable answer is used"


def test_a_warning_outcome_and_empty_entries_in_a_bundle_are_ignored(client, fhir_server):
    answer = bundle(WARNING_OUTCOME, LOW_POTASSIUM)
    answer["entry"] += [{"fullUrl": "urn:uuid:no-resource"}, "not an entry"]
    body = ask_for_potassium(client, fhir_server, fhir_json(answer))
    assert topics(body).get("hypokalemia") == "warning"
    assert "data-unavailable" not in topics(body)


@pytest.mark.parametrize("server", ["http://127.0.0.1:99999/fhir", "http://user:pw@127.0.0.1:1/fhir",
                                    "http://127.0.0.1:abc/fhir"])
def test_a_malformed_fhir_server_url_is_never_called(client, server):
    response = client.post("/cds-services/baclofen-order-sign",
                           json=hook_request(prefetch=complete_prefetch(potassium="omit"), fhir_server=server))
    assert response.status_code in (400, 412), response.json
    assert "fhirServer" in response.json["error"] or response.json.get("field") == "fhirServer"
