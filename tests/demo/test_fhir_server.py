"""The fixture FHIR server over real HTTP: reads, searches, paging, _include, errors."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

from fhir_fixtures.fhir_server import InMemoryFhir, SimulatedFailure, create_fhir_app, simulated_failures
from tests.fhir_server_helpers import serve_wsgi

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def days_ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


def observation(obs_id: str, patient: str, loinc: str, value: float, days_old: int,
                status: str = "final") -> dict:
    return {"resourceType": "Observation", "id": obs_id, "status": status,
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": days_ago(days_old),
            "valueQuantity": {"value": value, "unit": "mg/dL"}}


RESOURCES = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ames", "given": ["Ann"]}],
     "gender": "female", "birthDate": "1950-01-01"},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Berg"}], "gender": "male"},
    observation("cr-new", "p1", "2160-0", 1.9, 5),
    observation("cr-old", "p1", "2160-0", 1.1, 200),
    observation("cr-mid", "p1", "2160-0", 1.4, 60, status="preliminary"),
    observation("k-1", "p1", "2823-3", 3.1, 10),
    observation("cr-p2", "p2", "2160-0", 0.8, 3),
    {"resourceType": "Condition", "id": "c-active", "subject": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active"}]},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "19943007"}]}},
    {"resourceType": "Condition", "id": "c-resolved", "subject": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"code": "resolved"}]},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55300003"}]}},
    {"resourceType": "Medication", "id": "med-bac",
     "code": {"coding": [{"system": RXNORM, "code": "197391"}]}},
    {"resourceType": "MedicationRequest", "id": "mr-active", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/p1"}, "authoredOn": days_ago(40),
     "medicationReference": {"reference": "Medication/med-bac"}},
    {"resourceType": "MedicationRequest", "id": "mr-stopped", "status": "stopped", "intent": "order",
     "subject": {"reference": "Patient/p1"}, "authoredOn": days_ago(400),
     "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "197392"}]}},
]


@pytest.fixture(scope="module")
def fhir():
    with serve_wsgi(create_fhir_app(RESOURCES)) as served:
        yield served


def get(fhir, path: str, **params) -> requests.Response:
    return requests.get(f"{fhir.url}/{path}", params=params, timeout=5)


def ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def test_metadata_is_an_r4_capability_statement(fhir):
    response = get(fhir, "metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement" and body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Condition", "MedicationRequest", "Medication"} <= types


def test_read_and_unknown_read(fhir):
    assert get(fhir, "Patient/p1").json()["id"] == "p1"
    missing = get(fhir, "Patient/nobody")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    assert get(fhir, "Practitioner/x").status_code == 404


def test_search_by_patient_in_every_spelling(fhir):
    for value in ("p1", "Patient/p1", f"{fhir.url}/Patient/p1"):
        assert sorted(ids(get(fhir, "Observation", patient=value).json())) == \
            ["cr-mid", "cr-new", "cr-old", "k-1"]
    assert ids(get(fhir, "Observation", subject="Patient/p2").json()) == ["cr-p2"]


def test_searchset_bundle_shape(fhir):
    bundle = get(fhir, "Observation", patient="p2").json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 1
    assert bundle["entry"][0]["fullUrl"] == f"{fhir.url}/Observation/cr-p2"
    assert bundle["link"][0] == {"relation": "self", "url": f"{fhir.url}/Observation?patient=p2"}
    empty = get(fhir, "Observation", patient="nobody").json()
    assert empty["total"] == 0 and "entry" not in empty


def test_token_lists_bare_codes_and_status(fhir):
    both = get(fhir, "Observation", patient="p1", code=f"{LOINC}|2160-0,{LOINC}|2823-3").json()
    assert both["total"] == 4
    assert ids(get(fhir, "Observation", patient="p1", code="2823-3").json()) == ["k-1"]
    assert get(fhir, "Observation", patient="p1", code="http://other|2823-3").json()["total"] == 0
    assert ids(get(fhir, "Observation", patient="p1", status="preliminary").json()) == ["cr-mid"]
    assert ids(get(fhir, "MedicationRequest", patient="p1", status="active,on-hold").json()) == ["mr-active"]
    assert ids(get(fhir, "Condition", patient="p1", **{"clinical-status": "active,recurrence"}).json()) == ["c-active"]
    assert ids(get(fhir, "Patient", _id="p2").json()) == ["p2"]


@pytest.mark.parametrize("prefix, days, expected", [
    ("ge", 30, ["cr-new"]), ("gt", 5, []), ("lt", 100, ["cr-old"]), ("le", 60, ["cr-mid", "cr-old"]),
    ("eq", 5, ["cr-new"]), ("", 200, ["cr-old"]),
])
def test_date_prefixes(fhir, prefix, days, expected):
    bundle = get(fhir, "Observation", patient="p1", code="2160-0", date=f"{prefix}{days_ago(days)}").json()
    assert sorted(ids(bundle)) == expected


def test_authoredon_and_sort(fhir):
    assert ids(get(fhir, "MedicationRequest", patient="p1", authoredon=f"ge{days_ago(100)}").json()) == ["mr-active"]
    newest_first = get(fhir, "Observation", patient="p1", code="2160-0", _sort="-date").json()
    assert ids(newest_first) == ["cr-new", "cr-mid", "cr-old"]
    assert ids(get(fhir, "Observation", patient="p1", code="2160-0", _sort="date").json()) == \
        ["cr-old", "cr-mid", "cr-new"]
    assert ids(get(fhir, "MedicationRequest", patient="p1", _sort="authoredon").json()) == \
        ["mr-stopped", "mr-active"]


def test_paging_follows_absolute_next_links(fhir):
    url, seen, pages = f"{fhir.url}/Observation?patient=p1&_sort=-date&_count=1", [], 0
    while url:
        bundle = requests.get(url, timeout=5).json()
        assert bundle["total"] == 4
        seen += ids(bundle)
        pages += 1
        url = next((l["url"] for l in bundle["link"] if l["relation"] == "next"), None)
        assert url is None or url.startswith(f"{fhir.url}/Observation?")
    assert pages == 4 and seen == ["cr-new", "k-1", "cr-mid", "cr-old"]


def test_count_zero_gives_only_the_total(fhir):
    bundle = get(fhir, "Observation", patient="p1", _count="0").json()
    assert bundle["total"] == 4 and "entry" not in bundle


def test_include_medication(fhir):
    bundle = get(fhir, "MedicationRequest", patient="p1",
                 _include="MedicationRequest:medication").json()
    assert sorted(ids(bundle)) == ["mr-active", "mr-stopped"]
    assert ids(bundle, "include") == ["med-bac"]
    assert bundle["total"] == 2


def test_post_search_with_a_form_body(fhir):
    response = requests.post(f"{fhir.url}/Observation/_search",
                             data={"patient": "Patient/p1", "code": f"{LOINC}|2160-0", "_count": "1",
                                   "_sort": "-date"}, timeout=5)
    assert response.status_code == 200
    bundle = response.json()
    assert ids(bundle) == ["cr-new"] and bundle["total"] == 3
    assert any(link["relation"] == "next" for link in bundle["link"])


@pytest.mark.parametrize("params", [
    {"patient": "p1", "value-quantity": "gt1"},
    {"patient": "p1", "code:text": "creatinine"},
    {"patient": "p1", "_sort": "value"},
    {"patient": "p1", "_include": "Observation:subject"},
    {"patient": "p1", "_count": "many"},
    {"patient": "p1", "date": "sa2020-01-01"},
    {"patient": "p1", "date": "yesterday"},
])
def test_unsupported_parameters_are_400_operation_outcomes(fhir, params):
    response = get(fhir, "Observation", **params)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_read_only(fhir):
    response = requests.post(f"{fhir.url}/Patient", json={"resourceType": "Patient"}, timeout=5)
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_browsers_may_read_it(fhir):
    preflight = requests.options(f"{fhir.url}/Condition", headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"}, timeout=5)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert get(fhir, "Patient/p1").headers["Access-Control-Allow-Origin"] == "*"


def test_helper_logs_requests_and_adds_latency():
    delayed: list[str] = []

    def latency(environ) -> float:
        delayed.append(environ["PATH_INFO"])
        return 0.01

    with serve_wsgi(create_fhir_app(RESOURCES), latency=latency) as served:
        response = requests.get(f"{served.url}/Patient/p1", headers={"Authorization": "Bearer t"}, timeout=5)
        assert response.status_code == 200 and delayed == ["/Patient/p1"]
        assert served.requests[-1].authorization == "Bearer t"
        assert served.requests[-1].path == "/Patient/p1"


def test_conflicting_fixture_ids_are_refused():
    with pytest.raises(ValueError):
        InMemoryFhir([{"resourceType": "Patient", "id": "x", "gender": "male"},
                      {"resourceType": "Patient", "id": "x", "gender": "female"}])


@pytest.mark.parametrize("reason, status, check", [
    ("HTTP 503", 503, lambda r: r.json()["resourceType"] == "OperationOutcome"),
    ("OperationOutcome", 200, lambda r: r.json()["resourceType"] == "OperationOutcome"),
    ("unreadable", 200, lambda r: r.text.startswith("<html>")),
    ("timeout", 504, lambda r: r.json()["issue"][0]["code"] == "timeout"),
])
def test_simulated_failures_hit_only_the_matching_query(reason, status, check):
    failure = SimulatedFailure("Observation", "p1", frozenset({f"{LOINC}|2160-0"}), reason)
    with serve_wsgi(create_fhir_app(RESOURCES, [failure], timeout_seconds=0.3)) as served:
        failed = requests.get(f"{served.url}/Observation", timeout=5, params={
            "patient": "Patient/p1", "code": f"{LOINC}|2160-0,{LOINC}|14682-9"})
        assert failed.status_code == status and check(failed)
        posted = requests.post(f"{served.url}/Observation/_search", timeout=5,
                               data={"patient": "p1", "code": f"{LOINC}|2160-0"})
        assert posted.status_code == status
        for params in ({"patient": "p1", "code": f"{LOINC}|2823-3"},
                       {"patient": "p2", "code": f"{LOINC}|2160-0"}):
            assert requests.get(f"{served.url}/Observation", params=params, timeout=5).json()["total"] == 1


def test_failures_are_located_by_the_prefetch_templates():
    story = {"id": "s", "patient": {"resourceType": "Patient", "id": "p1"},
             "unavailable": {"creatinine": "HTTP 503", "patient": "timeout"}}
    templates = {"patient": "Patient/{{context.patientId}}",
                 "creatinine": "Observation?patient={{context.patientId}}&code=http://loinc.org|2160-0,"
                               "http://loinc.org|14682-9&_sort=-date&_count=10"}
    assert simulated_failures([story], templates) == [
        SimulatedFailure("Observation", "p1", frozenset({f"{LOINC}|2160-0", f"{LOINC}|14682-9"}), "HTTP 503"),
        SimulatedFailure("Patient", "p1", frozenset(), "timeout"),
    ]
