"""The README's path: `baclofen-cds serve --demo` (gunicorn, a real subprocess) answers the
demo page, and an order signed there gets its cards while the service fetches from
itself (/demo/fhir) over HTTP."""
from __future__ import annotations

import os

import pytest
import requests

from tests.fhir_server_helpers import serve_cli


@pytest.fixture(scope="module")
def served_cli(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    environ = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(folder / "instance")}
    with serve_cli(["--demo", "--workers", "1"], folder, env=environ) as base:
        yield base


def test_serve_demo_signs_an_order_end_to_end(served_cli, renal_failure_story):
    assert "Sign order" in requests.get(f"{served_cli}/demo", timeout=5).text
    hook_request = requests.post(f"{served_cli}/demo/api/hook-request", timeout=5, json={
        "patientId": renal_failure_story["patient"]["id"],
        "order": {"product": "197391", "dose": "10", "frequency": "TID"}}).json()
    assert hook_request["fhirServer"] == f"{served_cli}/demo/fhir"
    response = requests.post(f"{served_cli}/cds-services/baclofen-order-sign", json=hook_request, timeout=10)
    assert response.status_code == 200, response.text
    topics = {card["source"]["topic"]["code"]: card["indicator"] for card in response.json()["cards"]}
    assert topics.get("renal-avoid") == "critical", topics
