"""Issue 13 through the HTTP API, on SQLite and PostgreSQL: a card overridden once is not
shown again in the same order; an override reason may snooze the topic for the patient;
critical cards always come back; a store failure hides nothing."""
from __future__ import annotations

import copy
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select, text, update

from service import create_app
from service.store.schema import baclofen_orders
from service.store.schema import cards as cards_table
from service.store.schema import feedback as feedback_table
from service.store.schema import overrides, suppressed_cards
from tests.core.builders import bundle, complete_prefetch, hook_request, observation, patient
from service.store.commands import main as store_cli
from tests.store.helpers import make_config

SELECT = "/cds-services/baclofen-order-select"
SIGN = "/cds-services/baclofen-order-sign"
REASONS = "https://baclofen-cds.example.org/CodeSystem/override-reason"
WHEN = "2026-11-30T09:00:00Z"


@pytest.fixture
def app(database_url, tmp_path):
    return create_app(make_config(database_url, tmp_path / "instance"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["baclofen_cds"].store


def order(hook: str = "order-select", egfr: float = 45, pills: float = 3, draft_id: str = "request-123",
          patient_id: str = "pat-1") -> dict:
    """Baclofen 20 mg tablets, `pills` a day, for a patient of 76 with this eGFR."""
    labs = bundle(observation("egfr-1", "98979-8", egfr, "mL/min/{1.73_m2}"))
    body = hook_request(hook, prefetch=complete_prefetch(egfr=labs, patient={**patient(), "id": patient_id}))
    body["context"]["patientId"] = patient_id
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["id"] = draft_id
    draft["subject"] = {"reference": f"Patient/{patient_id}"}
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = pills
    if hook == "order-select":
        body["context"]["selections"] = [f"MedicationRequest/{draft_id}"]
    return body


def call(client, body: dict) -> dict[str, dict]:
    """The cards of one hook call, by topic."""
    path = SELECT if body["hook"] == "order-select" else SIGN
    response = client.post(path, json={**copy.deepcopy(body), "hookInstance": str(uuid.uuid4())})
    assert response.status_code == 200, response.get_json()
    return {card["source"]["topic"]["code"]: card for card in response.get_json()["cards"]}


def override(client, card: dict, reason: str = "benefit-outweighs-risk") -> None:
    response = client.post(SELECT + "/feedback", json={"feedback": [{
        "card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": WHEN,
        "overrideReason": {"reason": {"system": REASONS, "code": reason}}}]})
    assert response.status_code == 200, response.get_json()


# The one target for the 76-year-old's draft (catalog v2, one plan per order): 15 mg/day, the
# older-adult start dose, lower than the renal half; 20 mg tablets cannot make it, so the
# suggestion switches to three 5 mg tablets once daily.
TARGET = ("update", "15 mg once daily (15 mg/day)", 3, "baclofen 5 MG Oral Tablet")


def suggested_dose(card: dict) -> tuple[str, str, float, str]:
    """What the first suggestion writes: action type, dose text, tablets per dose, product."""
    action = card["suggestions"][0]["actions"][0]
    dosage = action["resource"]["dosageInstruction"][0]
    tablets = dosage["doseAndRate"][0]["doseQuantity"]["value"]
    return action["type"], dosage["text"], tablets, action["resource"]["medicationCodeableConcept"]["text"]


def suppressions(store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(suppressed_cards.c.topic_code, suppressed_cards.c.why,
                                         suppressed_cards.c.reason_code)
                                  .order_by(suppressed_cards.c.id)).all()
    return [tuple(row) for row in rows]


def age_store(store, days: float) -> None:
    """Move every stored card and feedback `days` into the past: "the next day"."""
    shift = timedelta(days=days)
    with store.engine.begin() as connection:
        for table, columns in ((cards_table, ("issued_at",)),
                               (feedback_table, ("outcome_at", "received_at")),
                               (overrides, ("overridden_at",))):
            for row in connection.execute(select(table.c.id, *(table.c[c] for c in columns))).all():
                values = {c: row[i + 1] - shift for i, c in enumerate(columns)}
                connection.execute(update(table).where(table.c.id == row[0]).values(**values))


def test_an_overridden_warning_is_not_shown_again_in_the_same_order(client, store):
    first = call(client, order())
    assert first["renal-reduce"]["summary"].startswith("eGFR 45 mL/min/1.73m2")
    assert suggested_dose(first["renal-reduce"]) == TARGET
    override(client, first["renal-reduce"])

    again = call(client, order())
    assert "renal-reduce" not in again
    assert suggested_dose(again["start-dose-high"]) == TARGET  # not overridden: still there
    signed = call(client, order("order-sign"))
    assert "renal-reduce" not in signed and "start-dose-high" in signed
    assert suppressions(store) == [("renal-reduce", "same-order", "benefit-outweighs-risk")] * 2


def test_another_order_the_same_day_shows_the_card(client, store):
    override(client, call(client, order())["renal-reduce"])
    assert suggested_dose(call(client, order(draft_id="another-order"))["renal-reduce"]) == TARGET


def without_id(pills: float = 3) -> dict:
    body = order("order-sign", pills=pills)
    del body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    return body


def test_a_draft_without_id_is_known_by_its_medication_and_dose(client, store):
    override(client, call(client, without_id())["renal-reduce"])
    assert "renal-reduce" not in call(client, without_id())
    assert suppressions(store) == [("renal-reduce", "same-order", "benefit-outweighs-risk")]
    # The older-adult card says the same at any dose; at another dose it is another order.
    override(client, call(client, without_id())["elderly-start"])
    assert "elderly-start" not in call(client, without_id())
    assert call(client, without_id(pills=2))["elderly-start"]["summary"].startswith("Age 76: start baclofen low")


def test_the_same_draft_days_later_is_another_order(client, store):
    override(client, call(client, without_id())["renal-reduce"])
    age_store(store, 2)  # beyond [suppression] same_order_hours (24)
    assert "renal-reduce" in call(client, without_id())


def test_a_site_sets_its_own_snooze_days(database_url, tmp_path):
    config = make_config(database_url, tmp_path / "instance", knowledge={
        "override_snooze": {"reasons": {"tolerated-dose": {"days": 2}}}})
    app = create_app(config)
    client, store = app.test_client(), app.extensions["baclofen_cds"].store
    override(client, call(client, order())["renal-reduce"], "tolerated-dose")
    age_store(store, 1)
    assert "renal-reduce" not in call(client, order(draft_id="day-2"))
    age_store(store, 2)
    assert "renal-reduce" in call(client, order(draft_id="day-4"))


def test_a_changed_dose_brings_the_card_back(client, store):
    override(client, call(client, order())["renal-reduce"])
    changed = call(client, order(pills=2))  # 40 mg/day: the summary names the new dose
    assert changed["renal-reduce"]["summary"].endswith("reduce baclofen (40 mg/day) by half")
    assert suggested_dose(changed["renal-reduce"]) == TARGET  # the start dose still sets the target
    assert suppressions(store) == []


def test_a_new_lab_brings_the_card_back(client):
    override(client, call(client, order(egfr=45))["renal-reduce"])
    assert call(client, order(egfr=44))["renal-reduce"]["summary"].startswith("eGFR 44 ")


def test_an_overridden_critical_card_always_comes_back(client, store):
    first = call(client, order(egfr=24))
    assert first["renal-avoid"]["indicator"] == "critical"
    override(client, first["renal-avoid"], "tolerated-dose")
    for body in (order(egfr=24), order("order-sign", egfr=24)):
        card = call(client, body)["renal-avoid"]
        assert card["suggestions"][0]["actions"][0]["type"] == "delete"
    assert suppressions(store) == []


def test_a_site_may_snooze_critical_cards(database_url, tmp_path):
    config = make_config(database_url, tmp_path / "instance",
                         knowledge={"override_snooze": {"critical": True}})
    client = create_app(config).test_client()
    override(client, call(client, order(egfr=24))["renal-avoid"], "tolerated-dose")
    assert "renal-avoid" not in call(client, order(egfr=24, draft_id="next-order"))


def test_a_snoozing_reason_hides_the_topic_for_this_patient_on_the_next_days_order(client, store):
    override(client, call(client, order())["renal-reduce"], "tolerated-dose")
    age_store(store, 1)
    next_order = call(client, order(draft_id="next-day-order", pills=2))
    assert "renal-reduce" not in next_order and "start-dose-high" in next_order
    assert suppressions(store) == [("renal-reduce", "snooze", "tolerated-dose")]
    other_patient = call(client, order(draft_id="next-day-order", patient_id="pat-2"))
    assert suggested_dose(other_patient["renal-reduce"]) == TARGET


def test_a_snooze_ends_after_its_days(client, store):
    override(client, call(client, order())["renal-reduce"], "tolerated-dose")  # 30 days
    age_store(store, 31)
    assert "renal-reduce" in call(client, order(draft_id="a-month-later"))


@pytest.mark.parametrize("reason", ["benefit-outweighs-risk", "newer-renal-result", "site-own-code"])
def test_a_non_snoozing_reason_suppresses_nothing_beyond_the_order(client, store, reason):
    override(client, call(client, order())["renal-reduce"], reason)
    assert "renal-reduce" not in call(client, order("order-sign"))  # the same order
    age_store(store, 1)
    assert "renal-reduce" in call(client, order(draft_id="next-day-order"))


def test_an_accepted_card_is_not_suppressed(client):
    card = call(client, order())["renal-reduce"]
    override(client, card)
    response = client.post(SELECT + "/feedback", json={"feedback": [{
        "card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN}]})
    assert response.status_code == 200
    assert "renal-reduce" in call(client, order())  # its latest outcome is accepted


def test_each_mechanism_can_be_switched_off(database_url, tmp_path):
    config = make_config(database_url, tmp_path / "instance",
                         suppression={"once_per_order": False, "snooze": False})
    client = create_app(config).test_client()
    override(client, call(client, order())["renal-reduce"], "tolerated-dose")
    assert "renal-reduce" in call(client, order())


def test_the_overrides_read_is_a_statement_tracing_sees(client, store):
    """Untraced, the read skips SQLAlchemy Core (service/store/prepared.py); with a listener
    on the engine's statements, as tracing adds, it goes through Core, suppresses alike and,
    being a read, takes no SQLite write lock."""
    override(client, call(client, order())["renal-reduce"])
    statements = []

    def listener(connection, cursor, statement, *_):
        if threading.get_ident() == call_thread:  # not the card batch, written meanwhile
            statements.append(statement)
    call_thread = threading.get_ident()
    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        cards = call(client, order())
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    assert "renal-reduce" not in cards and "start-dose-high" in cards
    read = next(index for index, statement in enumerate(statements) if "FROM overrides" in statement)
    assert "BEGIN IMMEDIATE" not in statements[:read]


def test_a_store_that_cannot_answer_hides_nothing(client, store, caplog):
    override(client, call(client, order())["renal-reduce"])
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE overrides"))
    assert "renal-reduce" in call(client, order())
    assert any(getattr(r, "event", "") == "suppression_lookup_failed" for r in caplog.records)


def test_a_suppression_that_cannot_be_recorded_is_not_made(client, store, caplog):
    override(client, call(client, order())["renal-reduce"])
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE suppressed_cards"))
    cards = call(client, order())
    assert list(cards) == ["renal-reduce", "start-dose-high", "elderly-start"]
    assert any(getattr(r, "event", "") == "store_failed" for r in caplog.records)


ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def test_the_report_counts_a_scripted_sequence_exactly(database_url, tmp_path, monkeypatch, capsys):
    config = make_config(database_url, tmp_path / "instance", admin={"token": ADMIN_TOKEN})
    client = create_app(config).test_client()
    first = call(client, order())                                  # 3 shown
    override(client, first["renal-reduce"], "benefit-outweighs-risk")
    override(client, first["start-dose-high"], "tolerated-dose")
    assert list(call(client, order())) == ["elderly-start"]         # 2 suppressed (same order)
    assert list(call(client, order("order-sign"))) == ["elderly-start"]  # 2 suppressed
    assert len(call(client, order(patient_id="pat-2"))) == 3       # another patient: 3 shown
    # A new order for pat-1 at another dose: renal-reduce is back, start-dose-high snoozed.
    assert list(call(client, order(draft_id="second-order", pills=2))) == ["renal-reduce", "elderly-start"]

    response = client.get("/admin/report", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    report = response.get_json()
    topics = {t["topic"]["code"]: t for t in report["topics"]}
    counts = {code: (t["cards_shown"], t["suppressed"], t["accepted"], t["overridden"], t["override_rate"],
                     t["cards_per_100_orders"]) for code, t in topics.items()}
    assert counts == {"renal-reduce": (3, 2, 0, 1, 0.3333, 100.0),
                      "start-dose-high": (2, 3, 0, 1, 0.5, 66.7),
                      "elderly-start": (5, 0, 0, 0, 0.0, 166.7)}
    assert topics["start-dose-high"]["suppressed_by"] == {"same-order": 2, "snooze:tolerated-dose": 1}
    assert [(r["code"], r["count"]) for r in topics["renal-reduce"]["override_reasons"]] == [
        ("benefit-outweighs-risk", 1)]
    burden = report["burden"]
    assert (burden["baclofen_orders"], burden["cards_shown"], burden["suppressed"],
            burden["cards_per_100_orders"]) == (3, 10, 5, 333.3)
    assert sum(week["shown"] for week in burden["weeks"]) == 10
    assert sum(week["suppressed"] for week in burden["weeks"]) == 5
    assert sum(w["shown"] for w in topics["start-dose-high"]["weeks"]) == 2

    monkeypatch.setenv("BACLOFEN_CDS_SERVER__INSTANCE_PATH", str(config.instance_path))
    monkeypatch.setenv("BACLOFEN_CDS_STORE__URL", config.store.url)
    assert store_cli(["report"]) == 0
    text_report = capsys.readouterr().out
    assert "suppressed 3 (same-order 2, snooze:tolerated-dose 1), 66.7 cards per 100 baclofen orders" in text_report
    assert "Alert burden: 3 baclofen orders, 10 cards shown (333.3 per 100 orders), 5 suppressed" in text_report
    assert store_cli(["report", "--format", "html"]) == 0
    html = capsys.readouterr().out
    assert "<title>Cards per 100 baclofen orders, by week</title>" in html
    assert "333.3 per 100 orders (n=3)" in html and "<script" not in html


def test_purge_deletes_old_suppressions_orders_and_overrides(client, store):
    override(client, call(client, order())["renal-reduce"])
    call(client, order())  # one suppressed card, two order rows
    age_store(store, 400)
    with store.engine.begin() as connection:
        for table, column in ((suppressed_cards, "suppressed_at"), (baclofen_orders, "called_at")):
            for row_id, moment in connection.execute(select(table.c.id, table.c[column])).all():
                connection.execute(update(table).where(table.c.id == row_id)
                                   .values(**{column: moment - timedelta(days=400)}))
    result = store.purge(datetime.now(timezone.utc) - timedelta(days=365))
    assert (result.suppressed_cards, result.baclofen_orders) == (1, 2)
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(overrides)) == 0
