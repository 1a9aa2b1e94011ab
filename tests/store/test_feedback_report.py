"""A scripted session: cards issued, some accepted, some overridden with reasons; the
override report (CLI and /admin/report) shows exact counts and rates, also after a restart."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from service import create_app
from service.store.commands import main as store_cli
from service.store.schema import cards as cards_table
from tests.store.helpers import ORDER_SIGN, PATIENT_ID, make_card, make_config

FEEDBACK = f"/cds-services/{ORDER_SIGN}/feedback"
TOKEN = "admin-token-for-tests-0123456789"
REASONS = "https://baclofen-cds.example/override-reason"
WHEN = "2026-11-21T22:33:41Z"


def _reason(code: str, display: str | None = None) -> dict:
    coding = {"system": REASONS, "code": code}
    return {"reason": {**coding, "display": display}} if display else {"reason": coding}


@pytest.fixture
def config(database_url, tmp_path):
    return make_config(database_url, tmp_path / "instance", admin={"token": TOKEN})


def _start(config):
    app = create_app(config)
    return app, app.test_client(), app.extensions["baclofen_cds"].store


def _post(client, *items) -> None:
    response = client.post(FEEDBACK, json={"feedback": [{"outcomeTimestamp": WHEN, **i} for i in items]})
    assert response.status_code == 200, response.get_json()


def _script_session(client, store) -> None:
    renal = [make_card("renal-dose", "critical") for _ in range(10)]
    age = [make_card("age", "warning", suggestions=0) for _ in range(4)]
    store.record_cards(ORDER_SIGN, "order-sign", "hi-1", PATIENT_ID, renal[:6])
    store.record_cards(ORDER_SIGN, "order-sign", "hi-2", PATIENT_ID, renal[6:] + age)
    # renal[0] first overridden, then accepted: its latest outcome counts.
    _post(client, {"card": renal[0]["uuid"], "outcome": "overridden"})
    for card in renal[:4]:
        _post(client, {"card": card["uuid"], "outcome": "accepted",
                       "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]})
    _post(client, *[{"card": c["uuid"], "outcome": "overridden",
                     "overrideReason": _reason("tolerated", "Tolerated this dose before")} for c in renal[4:7]])
    # No display, as the Sandbox sends it: the report names it from the knowledge file.
    _post(client, {"card": renal[7]["uuid"], "outcome": "overridden",
                   "overrideReason": _reason("benefit-outweighs-risk")},
          {"card": renal[8]["uuid"], "outcome": "overridden"})
    _post(client, {"card": age[0]["uuid"], "outcome": "overridden",
                   "overrideReason": {**_reason("benefit-outweighs-risk", "Benefit outweighs risk"),
                                      "userComment": "ok"}})
    _post(client, {"card": "never-issued-1", "outcome": "accepted"},
          {"card": "never-issued-2", "outcome": "overridden"})


def _without_time(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "generated_at"}


def _by_code(report: dict) -> dict:
    return {t["topic"]["code"]: t for t in report["topics"]}


def _check_expected(report: dict) -> None:
    topics = _by_code(report)
    renal, age = topics["renal-dose"], topics["age"]
    assert (renal["cards_shown"], renal["accepted"], renal["overridden"], renal["no_feedback"]) == (10, 4, 5, 1)
    assert (renal["override_rate"], renal["acceptance_rate"]) == (0.5, 0.4)
    assert [(r["code"], r["count"], r["display"]) for r in renal["override_reasons"]] == [
        ("tolerated", 3, "Tolerated this dose before"), ("", 1, "(no reason given)"),
        ("benefit-outweighs-risk", 1, "Benefit outweighs the risk for this patient")]
    assert renal["override_reasons"][0]["share"] == 0.6
    assert (age["cards_shown"], age["accepted"], age["overridden"], age["override_rate"]) == (4, 0, 1, 0.25)
    assert age["override_reasons"][0]["display"] == "Benefit outweighs risk"
    assert report["totals"] == {"cards_shown": 14, "accepted": 4, "overridden": 6, "no_feedback": 4,
                                "override_rate": 0.4286, "acceptance_rate": 0.2857}
    assert report["feedback_for_unknown_cards"] == 2
    assert [t["topic"]["code"] for t in report["topics"]] == ["renal-dose", "age"]


def _admin_report(client, query: str = "") -> dict:
    response = client.get(f"/admin/report{query}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.get_json()


def test_the_report_after_a_scripted_session_and_a_restart(config):
    app, client, store = _start(config)
    _script_session(client, store)
    before = _admin_report(client)
    _check_expected(before)
    store.close()

    app, client, store = _start(config)  # a restart: a new process would see the same
    after = _admin_report(client)
    assert _without_time(after) == _without_time(before)
    store.close()


def test_the_cli_report_in_three_formats(config, monkeypatch, capsys):
    app, client, store = _start(config)
    _script_session(client, store)
    store.close()
    monkeypatch.setenv("BACLOFEN_CDS_SERVER__INSTANCE_PATH", str(config.instance_path))
    monkeypatch.setenv("BACLOFEN_CDS_STORE__URL", config.store.url)

    assert store_cli(["report", "--format", "json"]) == 0
    _check_expected(json.loads(capsys.readouterr().out))

    assert store_cli(["report"]) == 0
    text = capsys.readouterr().out
    assert "Renal dose [renal-dose]" in text and "override rate 50.0%" in text
    assert "3  Tolerated this dose before (tolerated)" in text

    assert store_cli(["report", "--format", "html"]) == 0
    html = capsys.readouterr().out
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "50.0% overridden (n=10)" in html
    assert "src=" not in html and "href=" not in html and "<script" not in html  # self-contained


def test_since_counts_only_cards_issued_from_that_date(config, monkeypatch, capsys):
    app, client, store = _start(config)
    _script_session(client, store)
    long_ago = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=30)
    with store.engine.begin() as connection:
        connection.execute(update(cards_table).where(cards_table.c.topic_code == "age").values(issued_at=long_ago))
    since = (datetime.now(timezone.utc) - timedelta(days=7)).date().isoformat()
    report = _admin_report(client, f"?since={since}")
    assert list(_by_code(report)) == ["renal-dose"]
    assert report["since"].startswith(since)
    assert _admin_report(client)["totals"]["cards_shown"] == 14
    store.close()


def test_the_admin_report_needs_the_token(config, database_url, tmp_path):
    app, client, store = _start(config)
    assert client.get("/admin/report").status_code == 401
    assert client.get("/admin/report", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/admin/report?since=yesterday",
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 400
    store.close()
    app, client, store = _start(make_config(database_url, tmp_path / "other"))
    assert client.get("/admin/report", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    store.close()
