"""POST /cds-services/{id}/feedback, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from service import create_app
from service.store.store import FeedbackItem
from tests.store.helpers import ORDER_SIGN, PATIENT_ID, columns_containing, make_card, make_config

from tests.conftest import SANDBOX_REQUESTS as SANDBOX
FEEDBACK = f"/cds-services/{ORDER_SIGN}/feedback"
WHEN = "2026-11-21T22:33:41.304Z"


@pytest.fixture
def app(database_url, tmp_path):
    application = create_app(make_config(database_url, tmp_path / "instance"))
    yield application
    application.extensions["baclofen_cds"].store.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["baclofen_cds"].store


def _feedback_rows(store) -> list[dict]:
    from sqlalchemy import select

    from service.store.schema import feedback

    with store.engine.connect() as connection:
        return [r._asdict() for r in connection.execute(select(feedback).order_by(feedback.c.id))]


def _sandbox_body(name: str) -> bytes:
    return (SANDBOX / name).read_bytes()


@pytest.mark.parametrize("name", ["feedback-accepted.json", "feedback-overridden.json"])
def test_the_sandbox_bodies_are_accepted(client, store, name):
    response = client.post(FEEDBACK, data=_sandbox_body(name), content_type="application/json")
    assert response.status_code == 200
    assert response.get_json() == {}
    sent = json.loads(_sandbox_body(name))["feedback"][0]
    [row] = _feedback_rows(store)
    assert (row["card_uuid"], row["outcome"], row["card_known"]) == (sent["card"], sent["outcome"], False)


def test_feedback_on_an_issued_card_is_linked_to_it(client, store):
    card = make_card("renal-dose", suggestions=1)
    store.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [card])
    suggestion = card["suggestions"][0]["uuid"]
    body = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                          "acceptedSuggestions": [{"id": suggestion}], "outcomeTimestamp": WHEN}]}
    assert client.post(FEEDBACK, json=body).status_code == 200
    [row] = _feedback_rows(store)
    assert row["card_known"] is True and row["accepted_suggestions"] == suggestion


def test_an_override_reason_is_kept_but_not_the_free_text_comment(client, store):
    reason = {"system": "https://baclofen-cds.example/override", "code": "tolerated-before"}
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": WHEN,
                          "overrideReason": {"reason": reason, "userComment": "Mrs Abernathy insists"}}]}
    assert client.post(FEEDBACK, json=body).status_code == 200
    [row] = _feedback_rows(store)
    assert (row["reason_code"], row["reason_display"], row["has_user_comment"]) == ("tolerated-before", "", True)
    assert "Abernathy" not in json.dumps(row, default=str)


def test_nothing_patient_identifying_is_stored_after_cards_and_feedback(client, store):
    card = make_card("renal-dose")
    store.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [card])
    comment = f"patient {PATIENT_ID} tolerated 80 mg before"
    body = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": WHEN,
                          "overrideReason": {"userComment": comment}}]}
    assert client.post(FEEDBACK, json=body).status_code == 200
    assert len(_feedback_rows(store)) == 1
    assert columns_containing(store.engine, PATIENT_ID) == []
    assert columns_containing(store.engine, "tolerated 80 mg") == []


def test_several_items_in_one_request_are_all_kept(client, store):
    items = [{"card": f"c-{i}", "outcome": "overridden", "outcomeTimestamp": WHEN} for i in range(5)]
    assert client.post(FEEDBACK, json={"feedback": items}).status_code == 200
    assert len(_feedback_rows(store)) == 5


def test_an_unknown_service_is_404(client):
    response = client.post("/cds-services/no-such-service/feedback",
                           json={"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": WHEN}]})
    assert response.status_code == 404


def test_invalid_json_is_400(client):
    response = client.post(FEEDBACK, data=b'{"feedback": [', content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]


def test_a_wrong_content_type_is_415(client):
    response = client.post(FEEDBACK, data=b"{}", content_type="text/plain")
    assert response.status_code == 415


OK = {"card": "c-ok", "outcome": "accepted", "outcomeTimestamp": WHEN}


@pytest.mark.parametrize("body, problem", [
    ([], "body: must be a JSON object"),
    ({}, "feedback: must be a non-empty array"),
    ({"feedback": []}, "feedback: must be a non-empty array"),
    ({"feedback": [OK, "x"]}, "feedback[1]: must be an object"),
    ({"feedback": [OK, {**OK, "outcome": "ignored"}]}, "feedback[1].outcome: must be accepted or overridden"),
    ({"feedback": [{**OK, "card": ""}]}, "feedback[0].card: must be the card's uuid"),
    ({"feedback": [{**OK, "card": 12}]}, "feedback[0].card: must be the card's uuid"),
    ({"feedback": [{k: v for k, v in OK.items() if k != "outcomeTimestamp"}]}, "feedback[0].outcomeTimestamp: must be"),
    ({"feedback": [{**OK, "outcomeTimestamp": "2026-11-21"}]}, "feedback[0].outcomeTimestamp: must be"),
    ({"feedback": [{**OK, "outcomeTimestamp": "2026-11-21T22:33:41"}]}, "feedback[0].outcomeTimestamp: must be"),
    ({"feedback": [{**OK, "acceptedSuggestions": {"id": "s"}}]}, "feedback[0].acceptedSuggestions: must be an array"),
    ({"feedback": [{**OK, "acceptedSuggestions": [{"uuid": "s"}]}]}, "feedback[0].acceptedSuggestions[0].id: must be"),
    ({"feedback": [{**OK, "overrideReason": {"userComment": "x"}}]}, "feedback[0].overrideReason: only allowed when outcome is overridden"),
    ({"feedback": [{**OK, "outcome": "overridden", "acceptedSuggestions": [{"id": "s"}]}]},
     "feedback[0].acceptedSuggestions: only allowed when outcome is accepted"),
    ({"feedback": [{**OK, "outcome": "overridden", "overrideReason": {"reason": {"code": "x"}}}]},
     "feedback[0].overrideReason.reason.system: must be a non-empty string"),
    ({"feedback": [{**OK, "outcome": "overridden", "overrideReason": {"reason": {"system": "s", "code": "x", "display": 3}}}]},
     "feedback[0].overrideReason.reason.display: must be a non-empty string"),
    ({"feedback": [{**OK, "outcome": "overridden", "overrideReason": {"userComment": 3}}]},
     "feedback[0].overrideReason.userComment: must be a string"),
    ({"feedback": [{**OK, "outcome": "overridden", "overrideReason": "because"}]},
     "feedback[0].overrideReason: must be an object"),
])
def test_an_invalid_item_is_400_naming_it_and_nothing_is_stored(client, store, body, problem):
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(problem)
    assert _feedback_rows(store) == []


def test_timestamps_with_an_offset_are_kept_in_utc(client, store):
    body = {"feedback": [{**OK, "outcomeTimestamp": "2026-11-21T23:33:41+01:00"}]}
    assert client.post(FEEDBACK, json=body).status_code == 200
    assert _feedback_rows(store)[0]["outcome_at"].isoformat() == "2026-11-21T22:33:41"


def test_the_store_itself_keeps_an_offset_timestamp_in_utc(store):
    """The store's own guard, for any caller (the HTTP layer converts to UTC first)."""
    moment = datetime(2026, 11, 21, 23, 33, 41, tzinfo=timezone(timedelta(hours=1)))
    store.record_feedback(ORDER_SIGN, [FeedbackItem(card="a-card", outcome="accepted", outcome_at=moment)])
    assert _feedback_rows(store)[0]["outcome_at"].isoformat() == "2026-11-21T22:33:41"


def test_feedback_is_counted_in_the_metrics(client):
    client.post(FEEDBACK, json={"feedback": [OK]})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cds_feedback_total{outcome="accepted",service="baclofen-order-sign"}' in text
