"""Logs of a full request cycle hold neither tokens nor the patient's identity.

Every record of every logger is captured at DEBUG (urllib3 and requests included), and
each is checked both as the record (message, args, every attribute) and as the JSON line
service.logs writes.
"""
from __future__ import annotations

import logging

from service.logs import LOGGER_NAME, JsonFormatter

from .conftest import (FEEDBACK_PATH, FHIR_TOKEN, HOOK_PATH, PATIENT_BIRTH_DATE, PATIENT_FAMILY,
                       PATIENT_GIVEN, bearer, feedback_body, fhir_base, order_sign_body)

SECRETS_AND_IDENTITY = (FHIR_TOKEN, PATIENT_FAMILY, PATIENT_GIVEN, PATIENT_BIRTH_DATE)


def everything_logged(records: list[logging.LogRecord]) -> str:
    formatter = JsonFormatter()
    parts = []
    for record in records:
        parts.append(formatter.format(record))
        parts.append(record.getMessage())
        parts.extend(repr(value) for value in vars(record).values())
    return "\n".join(parts)


def test_full_cycle_logs_no_token_and_no_patient_identity(client, token_for, fhir_server, caplog):
    tokens = [token_for("/cds-services"), token_for(HOOK_PATH), token_for(FEEDBACK_PATH)]
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    assert client.get("/cds-services", headers=bearer(tokens[0])).status_code == 200
    response = client.post(HOOK_PATH, json=order_sign_body(fhir_base(fhir_server)),
                           headers=bearer(tokens[1]))
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    card = cards[0]["uuid"] if cards else None
    assert client.post(FEEDBACK_PATH, json=feedback_body(card),
                       headers=bearer(tokens[2])).status_code == 200
    # failures are logged too: a replay and a forged token
    assert client.post(HOOK_PATH, json=order_sign_body(fhir_base(fhir_server)),
                       headers=bearer(tokens[1])).status_code == 401
    assert client.get("/cds-services", headers=bearer(tokens[0][:-4] + "AAAA")).status_code == 401

    assert any(request.path.endswith("/Patient/pat-sec-1") for request, _ in fhir_server.log), \
        "the service never read the patient: the test would prove nothing"
    logged = everything_logged(caplog.records)
    assert caplog.records, "nothing was logged at all"
    for token in tokens:
        assert token not in logged
        assert token.split(".")[2] not in logged  # not even the signature
    for value in SECRETS_AND_IDENTITY:
        assert value not in logged, f"{value!r} appears in the logs"


def test_auth_failure_log_names_the_reason_not_the_token(client, token_for, caplog):
    token = token_for("/cds-services", aud="https://elsewhere.example/cds-services")
    caplog.set_level(logging.DEBUG)
    client.get("/cds-services", headers=bearer(token))
    failures = [r for r in caplog.records if getattr(r, "event", None) == "auth_failed"]
    assert [r.reason for r in failures] == ["wrong audience"]
    assert failures[0].issuer == "https://ehr-a.example.org" and failures[0].kid
    assert failures[0].path == "/cds-services"
    assert token not in everything_logged(caplog.records)
