"""Gathering data: prefetch first, then the EHR's FHIR server over real HTTP on loopback."""
from __future__ import annotations

import json
import threading

import pytest
from werkzeug import Response

from tests.cds_spec import assert_valid_response, topics
from tests.core.builders import (active_baclofen, bundle, complete_prefetch, hook_request,
                                 observation, patient)

TOKEN = "ehr-access-token-for-this-patient"
# Safety nets only: a broken service makes the test fail after this long instead of hanging.
BARRIER_SECONDS = HANG_SECONDS = 10
LAB_CODES = {"creatinine": "2160-0", "egfr": "98979-8", "potassium": "2823-3", "magnesium": "19123-9"}


class ConcurrencyProbe:
    """Counts requests in flight on the test FHIR server; `most` is the peak."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now = self.most = 0

    def __enter__(self):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc_info):
        with self._lock:
            self.now -= 1


def post(client, body, service="baclofen-order-sign"):
    return client.post(f"/cds-services/{service}", json=body)


def lab_key(request) -> str:
    codes = request.args.get("code", "")
    return next(key for key, code in LAB_CODES.items() if code in codes)


def serve_normal_patient(server, lab_handler=None):
    """A FHIR server holding the builders' normal patient; records what it was asked."""
    normal = complete_prefetch()

    def answer(payload):
        return lambda request: fhir_json(payload(request))

    server.expect_request("/fhir/Patient/pat-1").respond_with_handler(answer(lambda r: patient()))
    server.expect_request("/fhir/Condition").respond_with_handler(answer(lambda r: normal["conditions"]))
    server.expect_request("/fhir/MedicationRequest").respond_with_handler(answer(lambda r: normal["meds"]))
    server.expect_request("/fhir/Procedure").respond_with_handler(answer(lambda r: normal["procedures"]))
    server.expect_request("/fhir/Observation").respond_with_handler(
        lab_handler or answer(lambda r: normal[lab_key(r)]))


def fhir_json(payload) -> Response:
    return Response(json.dumps(payload), content_type="application/fhir+json")


def test_missing_prefetch_keys_are_fetched_with_the_bearer_token(client, fhir_server):
    serve_normal_patient(fhir_server)
    body = hook_request(prefetch={"patient": patient()}, fhir_server=fhir_server.url_for("/fhir"), token=TOKEN)
    response = post(client, body)
    assert response.status_code == 200
    assert_valid_response(response.json)
    asked = [(request.path, request.headers.get("Authorization")) for request, _ in fhir_server.log]
    assert len(asked) == 7  # conditions, meds, procedures, four labs; not the prefetched patient
    assert all(auth == f"Bearer {TOKEN}" for _, auth in asked)
    assert "/fhir/Patient/pat-1" not in {path for path, _ in asked}
    assert {lab_key(r) for r, _ in fhir_server.log if r.path == "/fhir/Observation"} == set(LAB_CODES)
    procedure_queries = [r for r, _ in fhir_server.log if r.path == "/fhir/Procedure"]
    assert [r.args["status"] for r in procedure_queries] == ["completed,in-progress"]
    for request, _ in fhir_server.log:
        assert request.args["patient"] == "pat-1"
    assert "data-unavailable" not in topics(response.json)


def test_queries_run_in_parallel(client, fhir_server):
    """The four lab queries meet at a barrier on the FHIR server: answered one after the
    other, the first would wait there in vain and fail (no lab data, data-unavailable)."""
    in_flight = ConcurrencyProbe()
    barrier = threading.Barrier(len(LAB_CODES), timeout=BARRIER_SECONDS)

    def labs(request):
        with in_flight:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return Response("the lab queries did not arrive together", status=500)
            return fhir_json(complete_prefetch()[lab_key(request)])

    serve_normal_patient(fhir_server, lab_handler=labs)
    labs_missing = complete_prefetch(creatinine="omit", egfr="omit", potassium="omit", magnesium="omit")
    response = post(client, hook_request(prefetch=labs_missing, fhir_server=fhir_server.url_for("/fhir"),
                                         token=TOKEN))
    assert response.status_code == 200
    assert len(fhir_server.log) == len(LAB_CODES)
    assert in_flight.most == len(LAB_CODES)
    assert "data-unavailable" not in topics(response.json)


def test_a_slow_server_becomes_unavailable_within_the_budget(make_app, fhir_server):
    """The eGFR query hangs until the test has its answer: the service must give up on it
    within its budget, and say the eGFR could not be checked."""
    client = make_app(fhir={"total_timeout": 1.0}).test_client()
    answered = threading.Event()

    def labs(request):
        if lab_key(request) == "egfr":
            answered.wait(timeout=HANG_SECONDS)
        return fhir_json(complete_prefetch()[lab_key(request)])

    serve_normal_patient(fhir_server, lab_handler=labs)
    try:
        response = post(client, hook_request(prefetch={"patient": patient()},
                                             fhir_server=fhir_server.url_for("/fhir")))
        hung = not answered.is_set()
    finally:
        answered.set()
    assert hung, "the egfr query was still hanging when the service answered"
    assert response.status_code == 200
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
        return fhir_json(complete_prefetch()[key])

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



HEMODIALYSIS = {"resourceType": "Procedure", "id": "hd-1", "status": "completed",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "302497006",
                                     "display": "Hemodialysis"}]},
                "subject": {"reference": "Patient/pat-1"}, "performedDateTime": "2026-11-27T09:00:00Z"}


@pytest.fixture
def engine_input(monkeypatch):
    """The HookData each call hands to the (real) engine."""
    from cards import engine
    seen = []
    real = engine.evaluate

    def recording(data, knowledge):
        seen.append(data)
        return real(data, knowledge)
    monkeypatch.setattr(engine, "evaluate", recording)
    return seen


@pytest.mark.parametrize("service", ["baclofen-order-sign", "baclofen-patient-view"])
def test_prefetched_procedures_reach_the_engine_checked(client, engine_input, service):
    malformed = {**HEMODIALYSIS, "id": "hd-2", "status": {"not": "a code"}}
    other = {"resourceType": "Observation", "id": "stray", "status": "final"}
    hook = "patient-view" if service.endswith("patient-view") else "order-sign"
    body = hook_request(hook, prefetch=complete_prefetch(procedures=bundle(HEMODIALYSIS, malformed, other)))
    response = post(client, body, service)
    assert response.status_code == 200, response.json
    [data] = engine_input
    assert data.procedures == (HEMODIALYSIS,)  # the malformed one is unreadable, the stray ignored
    assert data.unavailable == {"procedures": "unreadable"}


def test_procedures_missing_from_prefetch_are_fetched(client, engine_input, fhir_server):
    fhir_server.expect_request("/fhir/Procedure").respond_with_json(bundle(HEMODIALYSIS))
    body = hook_request("patient-view", prefetch=complete_prefetch(procedures="omit"),
                        fhir_server=fhir_server.url_for("/fhir"))
    response = post(client, body, "baclofen-patient-view")
    assert response.status_code == 200, response.json
    assert [r.path for r, _ in fhir_server.log] == ["/fhir/Procedure"]
    assert engine_input[0].procedures == (HEMODIALYSIS,)
