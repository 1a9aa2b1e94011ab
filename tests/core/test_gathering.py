"""Gathering data: prefetch first, then the EHR's FHIR server over real HTTP on loopback."""
from __future__ import annotations

import time

import pytest
from werkzeug import Response

from tests.cds_spec import assert_valid_response, topics
from tests.core.builders import (active_baclofen, bundle, complete_prefetch, hook_request,
                                 observation, patient)

TOKEN = "ehr-access-token-for-this-patient"
LAB_CODES = {"creatinine": "2160-0", "egfr": "98979-8", "potassium": "2823-3", "magnesium": "19123-9"}


def post(client, body, service="baclofen-order-sign"):
    return client.post(f"/cds-services/{service}", json=body)


def lab_key(request) -> str:
    codes = request.args.get("code", "")
    return next(key for key, code in LAB_CODES.items() if code in codes)


def serve_normal_patient(server, latency: float = 0.0, lab_handler=None):
    """A FHIR server holding the builders' normal patient; records what it was asked."""
    normal = complete_prefetch()

    def delayed(payload):
        def handler(request):
            time.sleep(latency)
            return Response(__import__("json").dumps(payload(request)), content_type="application/fhir+json")
        return handler

    server.expect_request("/fhir/Patient/pat-1").respond_with_handler(delayed(lambda r: patient()))
    server.expect_request("/fhir/Condition").respond_with_handler(delayed(lambda r: normal["conditions"]))
    server.expect_request("/fhir/MedicationRequest").respond_with_handler(delayed(lambda r: normal["meds"]))
    if lab_handler:
        server.expect_request("/fhir/Observation").respond_with_handler(lab_handler)
    else:
        server.expect_request("/fhir/Observation").respond_with_handler(
            delayed(lambda r: normal[lab_key(r)]))


def test_missing_prefetch_keys_are_fetched_with_the_bearer_token(client, fhir_server):
    serve_normal_patient(fhir_server)
    body = hook_request(prefetch={"patient": patient()}, fhir_server=fhir_server.url_for("/fhir"), token=TOKEN)
    response = post(client, body)
    assert response.status_code == 200
    assert_valid_response(response.json)
    asked = [(request.path, request.headers.get("Authorization")) for request, _ in fhir_server.log]
    assert len(asked) == 6  # conditions, meds and four labs; the prefetched patient is not re-read
    assert all(auth == f"Bearer {TOKEN}" for _, auth in asked)
    assert "/fhir/Patient/pat-1" not in {path for path, _ in asked}
    assert {lab_key(r) for r, _ in fhir_server.log if r.path == "/fhir/Observation"} == set(LAB_CODES)
    for request, _ in fhir_server.log:
        assert request.args["patient"] == "pat-1"
    assert "data-unavailable" not in topics(response.json)


def test_queries_run_in_parallel(client, fhir_server):
    serve_normal_patient(fhir_server, latency=0.2)
    labs_missing = complete_prefetch(creatinine="omit", egfr="omit", potassium="omit", magnesium="omit")
    body = hook_request(prefetch=labs_missing, fhir_server=fhir_server.url_for("/fhir"))
    post(client, body)  # warm the connection pool's threads
    started = time.perf_counter()
    response = post(client, hook_request(prefetch=labs_missing, fhir_server=fhir_server.url_for("/fhir")))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert len(fhir_server.log) == 8
    assert elapsed < 0.35, f"four 200 ms queries took {elapsed:.3f} s: not parallel"


def test_a_slow_server_becomes_unavailable_within_the_budget(make_app, fhir_server):
    client = make_app(fhir={"total_timeout": 1.0}).test_client()

    def labs(request):
        if lab_key(request) == "egfr":
            time.sleep(3)
        return Response(__import__("json").dumps(complete_prefetch()[lab_key(request)]),
                        content_type="application/fhir+json")

    serve_normal_patient(fhir_server, lab_handler=labs)
    started = time.perf_counter()
    response = post(client, hook_request(prefetch={"patient": patient()}, fhir_server=fhir_server.url_for("/fhir")))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < 1.8, f"took {elapsed:.2f} s with a 1 s budget"
    card = next(c for c in response.json["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "egfr" in (card["summary"] + card.get("detail", "")).lower()
    assert "renal-unknown" not in topics(response.json), "a failed query is not 'no value on record'"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 401, 404])
def test_http_errors_become_unavailable_never_a_500(client, fhir_server, status):
    serve_normal_patient(fhir_server, lab_handler=lambda request: Response("{}", status=status))
    response = post(client, hook_request(prefetch={"patient": patient()}, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert_valid_response(response.json)
    assert topics(response.json)["data-unavailable"] == "warning"
    lab_calls = [r for r, _ in fhir_server.log if r.path == "/fhir/Observation"]
    retried = status in (502, 503, 504)
    assert len(lab_calls) == (8 if retried else 4), "one retry on 502/503/504, none otherwise"


def test_one_503_is_retried_and_recovers(client, fhir_server):
    failed_once: set[str] = set()

    def flaky(request):
        key = lab_key(request)
        if key not in failed_once:
            failed_once.add(key)
            return Response("busy", status=503)
        return Response(__import__("json").dumps(complete_prefetch()[key]), content_type="application/fhir+json")

    serve_normal_patient(fhir_server, lab_handler=flaky)
    response = post(client, hook_request(prefetch={"patient": patient()}, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert "data-unavailable" not in topics(response.json)


def test_connection_refused_becomes_unavailable(make_app):
    client = make_app(fhir={"allowed_servers": ["http://127.0.0.1:9/fhir"]}).test_client()
    response = post(client, hook_request(prefetch={"patient": patient()}, fhir_server="http://127.0.0.1:9/fhir"))
    assert response.status_code == 200
    assert topics(response.json)["data-unavailable"] == "warning"


def test_operation_outcome_becomes_unavailable(client, fhir_server):
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
    serve_normal_patient(fhir_server)
    prefetch = complete_prefetch(creatinine=outcome)
    response = post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir")))
    card = next(c for c in response.json["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "creatinine" in (card["summary"] + card.get("detail", "")).lower()
    assert fhir_server.log == []  # an OperationOutcome is an answer: not fetched again


def test_missing_data_without_fhir_server_is_412(client):
    response = post(client, hook_request(prefetch={"patient": patient()}))
    assert response.status_code == 412
    assert "fhirServer" in response.json["error"]


def test_complete_prefetch_needs_no_fhir_server(client):
    response = post(client, hook_request())
    assert response.status_code == 200
    assert "data-unavailable" not in topics(response.json)


def test_null_and_empty_prefetch_mean_nothing_on_record(client):
    """null = a read found nothing; an empty Bundle = no results: both are facts, not failures."""
    prefetch = complete_prefetch(creatinine=None, egfr=bundle())
    response = post(client, hook_request(prefetch=prefetch))
    assert response.status_code == 200
    found = topics(response.json)
    assert "renal-unknown" in found and "data-unavailable" not in found


def test_paged_search_results_are_followed(client, fhir_server):
    serve_normal_patient(fhir_server)
    fhir_server.clear()
    page_2 = fhir_server.url_for("/fhir/page-2")
    fhir_server.expect_request("/fhir/MedicationRequest").respond_with_json(bundle(next_url=page_2))
    fhir_server.expect_request("/fhir/page-2").respond_with_json(bundle(active_baclofen()))
    prefetch = complete_prefetch(meds="omit")
    response = post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert [r.path for r, _ in fhir_server.log] == ["/fhir/MedicationRequest", "/fhir/page-2"]
    assert "duplicate-therapy" in topics(response.json)


def test_a_paged_prefetch_bundle_is_continued_on_the_fhir_server(client, fhir_server):
    fhir_server.expect_request("/fhir/page-2").respond_with_json(bundle(active_baclofen()))
    prefetch = complete_prefetch(meds=bundle(next_url=fhir_server.url_for("/fhir/page-2")))
    response = post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert [r.path for r, _ in fhir_server.log] == ["/fhir/page-2"]
    assert "duplicate-therapy" in topics(response.json)


def test_next_links_to_another_server_are_not_followed(client, fhir_server):
    fhir_server.expect_request("/fhir/MedicationRequest").respond_with_json(
        bundle(next_url="http://127.0.0.1:9/elsewhere/page-2"))
    prefetch = complete_prefetch(meds="omit")
    response = post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir"), token=TOKEN))
    assert response.status_code == 200
    assert [r.path for r, _ in fhir_server.log] == ["/fhir/MedicationRequest"]


def test_pages_are_bounded(make_app, fhir_server):
    client = make_app(fhir={"max_pages": 3}).test_client()
    fhir_server.expect_request("/fhir/MedicationRequest").respond_with_json(
        bundle(next_url=fhir_server.url_for("/fhir/MedicationRequest")))
    prefetch = complete_prefetch(meds="omit")
    response = post(client, hook_request(prefetch=prefetch, fhir_server=fhir_server.url_for("/fhir")))
    assert response.status_code == 200
    assert len(fhir_server.log) == 3


def test_unreadable_lab_result_is_unavailable_not_normal(client):
    broken = observation("egfr-bad", "98979-8", 80, "mL/min/{1.73_m2}")
    broken["valueQuantity"]["value"] = "eighty"
    response = post(client, hook_request(prefetch=complete_prefetch(egfr=bundle(broken))))
    assert response.status_code == 200
    card = next(c for c in response.json["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "egfr" in (card["summary"] + card.get("detail", "")).lower()


def test_naive_datetimes_from_sloppy_ehrs_are_read(client):
    egfr = observation("egfr-low", "98979-8", 24, "mL/min/{1.73_m2}")
    egfr["effectiveDateTime"] = egfr["effectiveDateTime"] + "T08:00:00"  # no time zone
    response = post(client, hook_request(prefetch=complete_prefetch(egfr=bundle(egfr))))
    assert topics(response.json).get("renal-avoid") == "critical"


def test_referenced_medication_is_fetched(client, fhir_server):
    fhir_server.expect_request("/fhir/Medication/med-1").respond_with_json({
        "resourceType": "Medication", "id": "med-1",
        "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197392",
                             "display": "Baclofen 20 MG Oral Tablet"}]}})
    body = hook_request(fhir_server=fhir_server.url_for("/fhir"), token=TOKEN)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationReference"] = {"reference": "Medication/med-1"}
    del draft["medicationCodeableConcept"]
    response = post(client, body)
    assert response.status_code == 200
    assert [r.path for r, _ in fhir_server.log] == ["/fhir/Medication/med-1"]
    assert "start-dose-high" in topics(response.json)

