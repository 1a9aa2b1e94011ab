"""The outbound FHIR client is bounded: a FHIR server that misbehaves (gzip bomb, endless or
trickled body, trickled headers, a huge Bundle, deeply nested JSON) costs one hook call a
data-unavailable card, never a 500 or a stuck worker; the next call to a healthy server
gets its full cards. The service runs on a real local HTTP server; the test's own client
waits generously, so a call that never returned fails the test instead of hanging it."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from service import create_app
from tests.cds_spec import assert_valid_response, topics
from tests.core.builders import complete_prefetch, hook_request
from tests.fhir_server_helpers import serve_wsgi
from tests.misbehaving_fhir import MisbehavingFhir, deep_patient

CLIENT_TIMEOUT = 60  # seconds: far above any budget; only a hung call reaches it
# mode -> the reason the clinician reads on the data-unavailable card
MISBEHAVIOURS = {"gzip_bomb": "too large", "endless": "too large", "trickle": "timeout",
                 "trickle_headers": "timeout", "many_entries": "too many entries",
                 "deep_1000": "nested too deeply", "deep_150": "nested too deeply"}


@pytest.fixture
def service(tmp_path):
    """The service on a local HTTP server; the given FHIR servers are its allowed servers."""
    def serve(*fhir_servers: MisbehavingFhir, **fhir):
        allowed = [server.url for server in fhir_servers]
        app = create_app({"server": {"instance_path": str(tmp_path / "instance")},
                          "fhir": {"allowed_servers": allowed, **fhir}})
        return serve_wsgi(app)
    return serve


def call(base: str, fhir_server: str, prefetch: dict | None = None) -> requests.Response:
    body = hook_request(prefetch=prefetch or complete_prefetch(patient="omit"), fhir_server=fhir_server)
    return requests.post(f"{base}/cds-services/baclofen-order-sign", json=body, timeout=CLIENT_TIMEOUT)


def cards_by_topic(response: requests.Response) -> dict[str, tuple]:
    return {card["source"]["topic"]["code"]: (card["indicator"], card["summary"])
            for card in response.json()["cards"]}


def full_cards(base: str) -> dict[str, tuple]:
    """What the service answers with everything in prefetch: the reference answer."""
    body = hook_request(prefetch=complete_prefetch())
    response = requests.post(f"{base}/cds-services/baclofen-order-sign", json=body, timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200 and "data-unavailable" not in topics(response.json())
    return cards_by_topic(response)


def assert_patient_unavailable(response: requests.Response, reason: str = "") -> None:
    """The Patient read failed: the age checks say they could not run, and why."""
    assert response.status_code == 200, response.text
    assert_valid_response(response.json())
    card = next(c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert card["indicator"] == "warning"
    assert card["summary"].endswith(": age")
    assert f"- age (older adults, CKD-EPI from creatinine): {reason}" in card["detail"]


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fhir")]


def wait_for(condition, seconds: float = 20) -> bool:
    """Poll for an event (not a timing assertion: the bound only keeps a broken build from hanging)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("mode", MISBEHAVIOURS)
def test_a_misbehaving_fhir_server_costs_a_data_unavailable_card_then_healthy_calls_recover(service, mode):
    with MisbehavingFhir(mode) as fhir, service(fhir) as served:
        expected = full_cards(served.url)
        assert_patient_unavailable(call(served.url, fhir.url), MISBEHAVIOURS[mode])
        fhir.mode = "healthy"
        recovered = call(served.url, fhir.url)
        assert recovered.status_code == 200
        assert cards_by_topic(recovered) == expected


@pytest.mark.parametrize("mode", ["trickle", "trickle_headers", "endless"])
def test_abandoned_queries_end_and_close_their_connections(service, mode):
    with MisbehavingFhir(mode) as fhir, service(fhir) as served:
        assert_patient_unavailable(call(served.url, fhir.url), MISBEHAVIOURS[mode])
        assert wait_for(lambda: fhir.open_connections == 0), "the service kept reading after its deadline"
        assert wait_for(lambda: not fetch_threads()), f"query threads left: {fetch_threads()}"


def test_calls_stuck_on_one_server_never_hold_up_calls_to_another(service):
    """A call's queries have their own threads: with two queries in parallel per call, six
    calls stuck on a trickling server must not delay a call to a healthy one."""
    with MisbehavingFhir("trickle") as bad, MisbehavingFhir("healthy") as good, \
            service(bad, good, max_workers=2, total_timeout=4.0) as served:
        expected = full_cards(served.url)
        with ThreadPoolExecutor(max_workers=6) as pool:
            stuck = [pool.submit(call, served.url, bad.url) for _ in range(6)]
            assert wait_for(lambda: bad.open_connections >= 6)
            healthy = call(served.url, good.url)
            assert healthy.status_code == 200
            assert cards_by_topic(healthy) == expected
            for future in stuck:
                assert_patient_unavailable(future.result(), "timeout")


def test_the_body_cap_is_configurable(service):
    small_limit = len(deep_patient(150)) - 1
    with MisbehavingFhir("deep_150") as fhir, \
            service(fhir, max_body_bytes=small_limit, max_json_depth=400) as served:
        assert_patient_unavailable(call(served.url, fhir.url), "too large")


def test_a_prefetched_resource_nested_150_deep_is_answered_when_the_limit_allows(tmp_path):
    """A 150-deep Patient in prefetch: 400 under the default request depth limit, and read
    (the rules never look into extensions) when an operator raises the limit."""
    import json
    deep = json.loads(deep_patient(150))
    body = hook_request(prefetch=complete_prefetch(patient=deep))
    for depth, status in ((64, 400), (400, 200)):
        app = create_app({"server": {"instance_path": str(tmp_path / "instance"), "max_json_depth": depth}})
        with serve_wsgi(app) as served:
            response = requests.post(f"{served.url}/cds-services/baclofen-order-sign", json=body,
                                     timeout=CLIENT_TIMEOUT)
        assert response.status_code == status, response.text
        if status == 200:
            assert "data-unavailable" not in topics(response.json())
