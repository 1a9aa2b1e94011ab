"""Run-ahead (issue 13): FHIR data fetched for order-select is reused by the next calls for
the same patient, server and access token for a short time; never across tokens or patients;
bounded in memory. Through the HTTP API against a real local FHIR server."""
from __future__ import annotations

import pytest

from service.config import RunaheadConfig
from service.fhir_client import FetchResult
from service.runahead import RunAhead, cache_of
from tests.core.builders import hook_request, patient
from tests.core.test_gathering import post, serve_normal_patient

TOKEN = "ehr-access-token-for-this-patient"
PREFETCHED = {"patient"}  # what order() sends; every other declared query is fetched


def queries_per_call(client) -> int:
    """One FHIR query per prefetch the order services declare, less what order() prefetches."""
    services = client.get("/cds-services").json["services"]
    declared = [set(s["prefetch"]) for s in services if s["hook"] in ("order-select", "order-sign")]
    assert declared[0] == declared[1] and PREFETCHED < declared[0]
    return len(declared[0] - PREFETCHED)


def order(hook: str, fhir_server, token: str = TOKEN) -> dict:
    return hook_request(hook, prefetch={"patient": patient()}, fhir_server=fhir_server.url_for("/fhir"),
                        token=token)


def authorizations(fhir_server) -> list[str]:
    return [request.headers.get("Authorization") for request, _ in fhir_server.log]


def test_order_sign_reuses_what_order_select_fetched(client, fhir_server):
    serve_normal_patient(fhir_server)
    select = post(client, order("order-select", fhir_server), "baclofen-order-select")
    sign = post(client, order("order-sign", fhir_server))
    assert select.status_code == sign.status_code == 200
    assert len(fhir_server.log) == queries_per_call(client)
    summaries = lambda response: sorted(card["summary"] for card in response.json["cards"])  # noqa: E731
    assert summaries(select) == summaries(sign)
    assert "Age 76: start baclofen low (5 mg up to three times daily)" in summaries(sign)


def test_another_token_fetches_again(client, fhir_server):
    serve_normal_patient(fhir_server)
    post(client, order("order-select", fhir_server), "baclofen-order-select")
    post(client, order("order-sign", fhir_server, token="another-users-token"))
    queries = queries_per_call(client)
    assert len(fhir_server.log) == 2 * queries
    assert authorizations(fhir_server)[queries:] == ["Bearer another-users-token"] * queries


def test_another_patient_fetches_again(client, fhir_server):
    serve_normal_patient(fhir_server)
    other = patient() | {"id": "pat-2"}
    fhir_server.expect_request("/fhir/Patient/pat-2").respond_with_json(other)
    post(client, order("order-select", fhir_server), "baclofen-order-select")
    body = order("order-sign", fhir_server)
    body["context"]["patientId"] = "pat-2"
    body["prefetch"]["patient"] = other
    body["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/pat-2"}
    assert post(client, body).status_code == 200
    queries = queries_per_call(client)
    second = [request for request, _ in fhir_server.log][queries:]
    assert len(second) == queries
    assert {request.args.get("patient") for request in second} == {"pat-2"}


def test_run_ahead_can_be_switched_off(make_app, fhir_server):
    client = make_app(runahead={"enabled": False}).test_client()
    serve_normal_patient(fhir_server)
    post(client, order("order-select", fhir_server), "baclofen-order-select")
    post(client, order("order-sign", fhir_server))
    assert len(fhir_server.log) == 2 * queries_per_call(client)


def test_the_token_itself_is_never_kept(make_app, fhir_server):
    app = make_app()
    serve_normal_patient(fhir_server)
    post(app.test_client(), order("order-sign", fhir_server))
    cache = cache_of(app.extensions["baclofen_cds"].fhir)
    assert len(cache) == queries_per_call(app.test_client())
    assert not any(TOKEN in str(key) for key in cache._cache)


class FakeFhir:
    """Counts what it was asked; answers every query with one resource of `size` bytes."""

    def __init__(self, size: int = 10, error: str | None = None):
        self.asked: list[str] = []
        self.size, self.error = size, error

    def fetch(self, base_url, token, queries):
        self.asked += list(queries.values())
        result = FetchResult(error=self.error) if self.error else \
            FetchResult(resources=({"resourceType": "Basic", "id": "x" * self.size},))
        return {name: result for name in queries}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_ahead(clock=None, **settings) -> RunAhead:
    return RunAhead(RunaheadConfig(**settings), timer=clock or Clock())


def test_data_is_reused_only_for_the_configured_time():
    clock, fhir = Clock(), FakeFhir()
    cache = run_ahead(clock, ttl_seconds=60)
    cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-1", {"labs": "Observation?patient=pat-1"})
    clock.now += 59
    cache.fetch(fhir, "https://ehr/fhir/", TOKEN, "pat-1", {"labs": "Observation?patient=pat-1"})
    assert len(fhir.asked) == 1
    clock.now += 2
    cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-1", {"labs": "Observation?patient=pat-1"})
    assert len(fhir.asked) == 2


def test_another_server_fetches_again():
    fhir, cache = FakeFhir(), run_ahead()
    for server in ("https://ehr-a/fhir", "https://ehr-b/fhir"):
        cache.fetch(fhir, server, TOKEN, "pat-1", {"labs": "Observation?patient=pat-1"})
    assert len(fhir.asked) == 2


def test_failed_queries_are_not_kept():
    fhir, cache = FakeFhir(error="timeout"), run_ahead()
    for _ in range(2):
        result = cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-1", {"labs": "Observation"})
        assert result["labs"].error == "timeout"
    assert len(fhir.asked) == 2 and len(cache) == 0


@pytest.mark.parametrize("settings, kept", [
    ({"max_entries": 3, "max_bytes": 10_000_000}, 3),
    ({"max_entries": 1000, "max_bytes": 3 * 100}, 2),  # each entry is ~130 bytes of JSON
])
def test_memory_is_bounded_least_recently_used_first(settings, kept):
    fhir, cache = FakeFhir(size=100), run_ahead(**settings)
    for number in range(10):
        cache.fetch(fhir, "https://ehr/fhir", TOKEN, f"pat-{number}", {"patient": f"Patient/pat-{number}"})
    assert len(cache) == kept
    assert cache.bytes <= settings["max_bytes"]
    fhir.asked.clear()
    cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-9", {"patient": "Patient/pat-9"})  # newest: kept
    cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-0", {"patient": "Patient/pat-0"})  # oldest: gone
    assert fhir.asked == ["Patient/pat-0"]


def test_what_a_caller_changes_does_not_reach_the_next_call():
    fhir, cache = FakeFhir(), run_ahead()
    first = cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-1", {"p": "Patient/pat-1"})
    first["p"].resources[0]["id"] = "changed"
    second = cache.fetch(fhir, "https://ehr/fhir", TOKEN, "pat-1", {"p": "Patient/pat-1"})
    assert second["p"].resources[0]["id"] == "x" * 10


def test_a_query_that_does_not_name_the_patient_is_still_kept_per_patient():
    fhir, cache = FakeFhir(), run_ahead()
    for patient_id in ("pat-1", "pat-2"):
        cache.fetch(fhir, "https://ehr/fhir", TOKEN, patient_id, {"med": "Medication/5"})
    assert fhir.asked == ["Medication/5", "Medication/5"]
