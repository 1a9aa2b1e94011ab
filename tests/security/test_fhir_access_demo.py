"""Without client authentication (local use) the only FHIR server allowed without
configuration is the demo's own, at this server's listening address: not any loopback
port, not another path, not whatever Host header the caller sent."""
from __future__ import annotations

import re

import pytest
import requests

from fhir_fixtures import all_stories

from .conftest import fhir_handler

ORDER_SIGN_PATH = "/cds-services/baclofen-order-sign"


@pytest.fixture(scope="module")
def story_id():
    return next(story["patient"]["id"] for story in all_stories()
                if story["expect"].get("fires", {}).get("renal-avoid") == "critical")


def demo_hook_request(served, patient_id: str, **headers) -> dict:
    response = requests.post(served.url + "/demo/api/hook-request", timeout=10, headers=headers,
                             json={"patientId": patient_id, "storyOrder": True})
    assert response.status_code == 200, response.text
    return response.json()


def test_demo_fhir_server_comes_from_the_listener_not_the_host_header(served_demo, story_id):
    body = demo_hook_request(served_demo, story_id, Host="evil.example:4444",
                             **{"X-Forwarded-Host": "evil.example"})
    assert body["fhirServer"] == served_demo.url + "/demo/fhir"


def test_the_demo_fhir_server_is_allowed(served_demo, story_id):
    """Control: the page's own request fetches from /demo/fhir and gets the critical card."""
    response = requests.post(served_demo.url + ORDER_SIGN_PATH,
                             json=demo_hook_request(served_demo, story_id), timeout=15)
    assert response.status_code == 200, response.text
    indicators = {card["source"]["topic"]["code"]: card["indicator"] for card in response.json()["cards"]}
    assert indicators.get("renal-avoid") == "critical", indicators


def test_other_loopback_servers_and_paths_are_refused(served_demo, story_id, httpserver):
    httpserver.expect_request(re.compile("^/")).respond_with_handler(fhir_handler)
    body = demo_hook_request(served_demo, story_id)
    body["fhirAuthorization"] = {"access_token": "caller-chosen-token", "token_type": "Bearer",
                                 "expires_in": 300, "scope": "patient/*.read", "subject": "x"}
    for server in (f"http://127.0.0.1:{httpserver.port}/demo/fhir",
                   f"http://localhost:{served_demo.port}/demo/fhir",
                   served_demo.url + "/openapi.json"):
        served_demo.clear_log()
        response = requests.post(served_demo.url + ORDER_SIGN_PATH, timeout=15,
                                 json={**body, "fhirServer": server})
        assert response.status_code == 412, (server, response.text)
        assert [r.path for r in served_demo.requests] == [ORDER_SIGN_PATH], server
    assert httpserver.log == []
