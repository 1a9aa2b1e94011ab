"""Inputs that used to answer 500 (or 200 without recording) answer 400 naming the field, on
SQLite and PostgreSQL, with nothing half-stored; a retried feedback request is stored once.

The app is served over real HTTP (serve_wsgi) on a store per test (tests/store/helpers.py).
"""
from __future__ import annotations

import json
import re
import socket
import time
import uuid

import pytest
import requests

from service.app import create_app
from tests.fhir_server_helpers import serve_wsgi
from tests.store.helpers import database_url, make_config, postgres_url  # noqa: F401 - fixture

from .conftest import FEEDBACK_PATH, HOOK_PATH, order_sign_body

ADMIN_TOKEN = "admin-token-for-bad-input-tests"
SURROGATE = "\ud800"


@pytest.fixture
def served(database_url, tmp_path):  # noqa: F811 - the fixture imported above
    config = make_config(database_url, tmp_path / "instance", admin={"token": ADMIN_TOKEN},
                         demo={"enabled": True})
    app = create_app(config)
    with serve_wsgi(app) as http:
        yield http, app.extensions["baclofen_cds"].store


def post_json(url: str, body) -> requests.Response:
    """JSON as requests sends it: non-ASCII (and lone surrogates) as \\u escapes."""
    return requests.post(url, data=json.dumps(body), timeout=15,
                         headers={"Content-Type": "application/json"})


def item(**changes) -> dict:
    entry = {"card": str(uuid.uuid4()), "outcome": "overridden",
             "outcomeTimestamp": "2026-11-21T22:33:41Z",
             "overrideReason": {"reason": {"system": "http://example.org/reasons",
                                           "code": "patient-tolerates", "display": "Tolerates"}}}
    entry.update(changes)
    return entry


def reason(**coding) -> dict:
    base = {"system": "http://example.org/reasons", "code": "patient-tolerates"}
    return {"reason": {**base, **coding}}


def assert_bad_request(response: requests.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field, response.json()


@pytest.mark.parametrize("entry, field", [
    (item(outcomeTimestamp="9999-12-31T23:59:59-14:00"), "outcomeTimestamp"),
    (item(outcomeTimestamp="0001-01-01T00:00:00+14:00"), "outcomeTimestamp"),
    (item(overrideReason=reason(code=SURROGATE)), "overrideReason.reason.code"),
    (item(overrideReason=reason(system="http://x/" + SURROGATE)), "overrideReason.reason.system"),
    (item(overrideReason=reason(display=f"a{SURROGATE}b")), "overrideReason.reason.display"),
    (item(overrideReason=reason(display="a\u0000b")), "overrideReason.reason.display"),
    (item(overrideReason=reason(code="a\u0000")), "overrideReason.reason.code"),
    (item(card="abc\n"), "card"),
], ids=["ts-max-west", "ts-min-east", "surrogate-code", "surrogate-system",
        "surrogate-display", "nul-display", "nul-code", "newline-card"])
def test_bad_feedback_is_400_naming_the_field_and_nothing_is_stored(served, entry, field):
    http, store = served
    # the bad item second: the good first one must not be stored either
    response = post_json(http.url + FEEDBACK_PATH, {"feedback": [item(), entry]})
    assert_bad_request(response, f"feedback[1].{field}")
    assert store.counts()["feedback"] == 0


def test_extreme_but_valid_timestamps_are_stored(served):
    """Control: the edges that do fit in UTC are accepted and kept."""
    http, store = served
    entries = [item(outcomeTimestamp="9999-12-31T23:59:59Z"),
               item(outcomeTimestamp="0001-01-01T00:00:00Z")]
    assert post_json(http.url + FEEDBACK_PATH, {"feedback": entries}).status_code == 200
    assert store.counts()["feedback"] == 2


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_report_since_out_of_range_is_400(served, since):
    http, _ = served
    response = requests.get(http.url + "/admin/report", params={"since": since}, timeout=15,
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert_bad_request(response, "since")


@pytest.mark.parametrize("patient_id", [SURROGATE, "pat\u0000-1"], ids=["surrogate", "nul"])
def test_unstorable_patient_id_is_400_not_a_silent_non_record(served, patient_id):
    http, store = served
    body = order_sign_body()
    body["context"]["patientId"] = patient_id
    response = post_json(http.url + HOOK_PATH, body)
    assert_bad_request(response, "context.patientId")
    assert store.counts()["cards"] == 0


@pytest.mark.parametrize("raw", [b'{"hook": "\xed\xa0\x80"}', b'{"hook": "\\ud800"'],
                         ids=["surrogate-bytes", "surrogate-then-truncated"])
def test_a_body_that_is_not_json_even_with_lone_surrogates_allowed_is_400_body(served, raw):
    http, store = served
    response = requests.post(http.url + HOOK_PATH, data=raw, timeout=15,
                             headers={"Content-Type": "application/json"})
    assert_bad_request(response, "body")
    assert "not valid JSON" in response.json()["error"]
    assert store.counts()["cards"] == 0


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/demo/api/render", "/demo/api/hook-request"])
@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_on_the_demo_api_is_400(served, path, depth):
    http, _ = served
    response = requests.post(http.url + path, data=nested(depth), timeout=15,
                             headers={"Content-Type": "application/json"})
    assert_bad_request(response, "body")


# --- idempotent feedback -----------------------------------------------------------------

def send_and_drop(url: str, path: str, body: bytes) -> None:
    """Send a whole request on a raw socket and close it without reading the answer, as a
    client whose connection dropped."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


def wait_for_feedback_rows(store, expected: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    while (count := store.counts()["feedback"]) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_feedback_retried_after_a_dropped_connection_is_stored_once(served):
    http, store = served
    accepted = {"card": str(uuid.uuid4()), "outcome": "accepted",
                "outcomeTimestamp": "2026-11-21T22:35:00+01:00"}
    raw = json.dumps({"feedback": [item(), accepted]}).encode()
    counted_before = feedback_counted(http.url)
    send_and_drop(http.url, FEEDBACK_PATH, raw)
    assert wait_for_feedback_rows(store, 2) == 2, "the dropped request was not processed"
    retry = requests.post(http.url + FEEDBACK_PATH, data=raw, timeout=15,
                          headers={"Content-Type": "application/json"})
    assert retry.status_code == 200
    assert store.counts()["feedback"] == 2
    assert feedback_counted(http.url) - counted_before == 2, "the retry was counted again"


def feedback_counted(url: str) -> float:
    """cds_feedback_total over all labels, from /metrics (counters are per process)."""
    text = requests.get(url + "/metrics", timeout=10).text
    return sum(float(value) for value in re.findall(r"^cds_feedback_total\{[^}]*\} (\S+)$", text, re.M))


def test_feedback_differing_in_content_is_stored_again(served):
    """Control: the same card with another outcome or time is a new item, kept."""
    http, store = served
    first = item()
    later = {**first, "outcomeTimestamp": "2026-11-21T22:40:00Z"}
    accepted = {**first, "outcome": "accepted"}
    accepted.pop("overrideReason")
    for entry in (first, later, accepted, first):
        assert post_json(http.url + FEEDBACK_PATH, {"feedback": [entry]}).status_code == 200
    assert store.counts()["feedback"] == 3
