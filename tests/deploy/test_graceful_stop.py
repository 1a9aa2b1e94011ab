"""SIGTERM (what Kubernetes, compose and systemd send) lets the calls in flight finish with
their cards, records those cards, and exits 0."""
from __future__ import annotations

import threading

import requests

from service.config import validate_config
from service.store import open_store
from tests.deploy.replicas import (ORDER_SIGN, Replica, renal_avoid_card, renal_fhir_app,
                                   renal_order_sign, replica_env)
from tests.fhir_server_helpers import serve_wsgi, wait_until

FHIR_LATENCY = 1.5  # seconds: well inside the service's 2.5 s FHIR budget


def test_sigterm_finishes_the_call_in_flight_and_records_its_cards(tmp_path):
    with serve_wsgi(renal_fhir_app()) as fhir:
        replica = Replica("graceful", tmp_path, replica_env(tmp_path, fhir_server=fhir.url), arguments=("--workers", "1"))
        replica.start()
        try:
            fhir.latency = FHIR_LATENCY
            answers = []
            call = threading.Thread(target=lambda: answers.append(requests.post(
                f"{replica.url}/cds-services/{ORDER_SIGN}", json=renal_order_sign(fhir.url), timeout=20)))
            call.start()
            wait_until(lambda: fhir.requests, "the call to reach the FHIR server")
            exit_status = replica.terminate()
            call.join(timeout=20)
        finally:
            replica.stop()
    assert exit_status == 0
    (answer,) = answers
    assert answer.status_code == 200
    card = renal_avoid_card(answer.json()["cards"])
    assert card is not None and card["indicator"] == "critical"
    assert "eGFR 24" in card["summary"]
    store = open_store(validate_config({"server": {"instance_path": str(tmp_path / "instance")}}))
    assert store.counts()["cards"] == len(answer.json()["cards"])
    store.close()
    log = replica.log.read_text()
    assert "Traceback" not in log


